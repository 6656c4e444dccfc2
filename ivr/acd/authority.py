"""The queue authority: one per machine, it decides which agent rings for which caller.

It holds the callers waiting (every queue's tickets ordered by priority, then by when they
joined), the agents (state, registration, idle time, missed rings) and the offers out (an agent
ringing for a caller). It places no calls and plays nothing: it tells a listener to ring an agent
(:meth:`AuthorityListener.offer`), to stop ringing one (:meth:`~AuthorityListener.withdraw`) and
that a caller leaves by one of the queue's exits (:meth:`~AuthorityListener.exit`); the caller's
engine process does the rest and reports back (:meth:`QueueAuthority.result`,
:meth:`~QueueAuthority.ended`). Every change is one method call, on one thread (the event loop
it was made on), and the interface is narrow enough that the state could live in a shared store.

Rules, in the words of docs/ACD.md:

* a caller is offered only to an agent who is available, registered, a member of the queue (or
  any agent, for a queue without a member list), and allowed to take the call: the skills it
  needs, a permission tier at least the call's, one of its languages;
* callers are served by priority, then by the time they joined (across the queues an agent
  serves); within the agents able to take a caller, the queue's strategy picks;
* an offer ends in exactly one result; a miss (no answer, rejected, unreachable) puts the agent
  back (or pauses them after ``max_misses`` in a row) and lets the caller wait ``retry_delay``
  before the next try, keeping their place; the agent who missed is tried again for that caller
  only when nobody else can take it;
* the authority never leaves an agent ringing: an offer with no result within its ring timeout
  plus :data:`OFFER_GRACE` counts as no answer;
* an answered call makes the agent ``on_call`` until :meth:`~QueueAuthority.ended`, then
  ``wrap_up`` for the agent's wrap-up time; a pause or log-out asked for meanwhile waits for the
  end of the call;
* a caller who can no longer be served (the last agent able to take them logs out, or no agent
  logged in could take them when they came) leaves by the ``no_agents`` exit (a logged-in agent
  whose phone is between registrations still counts); ``max_wait`` and ``full`` are
  the queue's other exits.

Listener calls are made after the change that causes them is complete, never from inside one,
so a listener may call back into the authority at once (a simulated agent that answers at once).
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, runtime_checkable

from ivr.acd.estimator import HandleTimes, expected_wait
from ivr.acd.groups import Group, Groups, Key, Signature
from ivr.acd.model import (
    AgentSpec,
    AgentState,
    ExitReason,
    Offer,
    Outcome,
    QueueSpec,
    Ticket,
)
from ivr.acd.strategy import STRATEGY, Candidate
from ivr.core.clock import Clock, TimerHandle

log = logging.getLogger("ivr.acd")

OFFER_GRACE = 5.0  # seconds past the ring timeout before a missing result counts as no answer


class AuthorityListener(Protocol):
    """What the authority asks of the engine processes."""

    def offer(self, offer: Offer) -> None:
        """Ring ``offer.agent`` for the caller; report with :meth:`QueueAuthority.result`."""

    def withdraw(self, offer: Offer) -> None:
        """Stop ringing (another agent answered, or the agent paused or logged out)."""

    def exit(self, ticket: Ticket, reason: ExitReason) -> None:
        """The caller leaves the queue without an agent (max wait, no agents)."""


@runtime_checkable
class MoveListener(Protocol):
    """What a listener may also be told (optional: a listener that keeps no record of the call,
    such as the simulator's answering machine, leaves it out)."""

    def moved(self, ticket: Ticket, old_queue: str) -> None:
        """A supervisor moved the waiting caller: to ``ticket.queue`` from ``old_queue``, or
        to the head of their queue (the same name). The caller keeps waiting; for the record."""


class QueueError(ValueError):
    """A request the authority cannot take (unknown queue or agent, a caller already waiting)."""


@dataclass
class Agent:
    """An agent's live state."""

    spec: AgentSpec
    index: int
    state: AgentState = AgentState.LOGGED_OUT
    reason: str = ""
    since: float = 0.0  # when the state began
    idle_since: float = 0.0
    contact: str | None = None
    registered_until: float = 0.0
    calls: int = 0
    misses: int = 0
    offer: Offer | None = None  # ringing for
    call_id: str | None = None  # on a call with
    answered_at: float = 0.0
    queue: str = ""  # of the call in progress
    pending: tuple[AgentState, str] | None = None  # a pause or log-out waiting for the call's end
    timer: TimerHandle | None = None  # the end of wrap-up, or of the registration
    registration_timer: TimerHandle | None = None


@dataclass
class Waiting:
    """A ticket and what the authority does for it."""

    ticket: Ticket
    group: Group  # the callers of the same signature
    offers: dict[int, Offer] = field(default_factory=dict)
    missed_by: set[str] = field(default_factory=set)
    not_before: float = 0.0
    max_wait_timer: TimerHandle | None = None
    retry_timer: TimerHandle | None = None


@dataclass
class QueueState:
    spec: QueueSpec
    keys: list[Key] = field(default_factory=list)  # sorted ticket keys
    handle: HandleTimes = field(default_factory=HandleTimes)
    last_rung: int | None = None  # definition index of the agent rung last (round-robin)
    placed: int = 0  # tickets moved to the head (a place before their join time)


@dataclass(frozen=True)
class AgentStatus:
    id: str
    name: str
    state: AgentState
    reason: str
    since: float
    calls: int
    registered: bool
    call_id: str | None


@dataclass(frozen=True)
class CallerStatus:
    call_id: str
    queue: str
    position: int
    waited: float
    priority: int
    ringing: int  # agents ringing for the caller now
    callback: bool  # off the line, keeping their place for a callback


@dataclass(frozen=True)
class QueueStatus:
    name: str
    waiting: int
    longest_wait: float
    able_agents: int
    handle_mean: float


class QueueAuthority:
    """See the module docstring.

    Args:
        agents: Every agent, in definition order (the strategies' last tie-break).
        queues: Every queue.
        clock: Time and timers (a virtual clock in the simulator).
        listener: Who rings agents and tells callers they leave (may be set later).
        on_state: Told every agent state change: ``(agent id, state, reason, wall time)``
            (the agents' record: occupancy, time in state).
    """

    def __init__(self, agents: Sequence[AgentSpec], queues: Sequence[QueueSpec], clock: Clock,
                 listener: AuthorityListener | None = None,
                 on_state: Callable[[str, AgentState, str, float], None] | None = None,
                 ) -> None:  # fmt: skip
        self.clock = clock
        self.listener = listener
        self.on_state = on_state
        self.agents: dict[str, Agent] = {
            spec.id: Agent(spec, index) for index, spec in enumerate(agents)
        }
        self.queues: dict[str, QueueState] = {q.name: QueueState(q) for q in queues}
        self.waiting: dict[str, Waiting] = {}
        self.orphans: list[Ticket] = []  # callback tickets of dead workers, out of line
        self._order: list[tuple[Key, str]] = []  # every ticket, served first
        self._by_key: dict[Key, str] = {}
        self._groups = Groups(self.agents, self._serves)
        self._offers: dict[int, tuple[Offer, TimerHandle]] = {}
        self._offer_ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._outbox: deque[Callable[[], None]] = deque()
        self._flushing = False

    # --- callers ----------------------------------------------------------------------------

    def join(self, ticket: Ticket) -> ExitReason | None:
        """Put a caller in line; None when they wait, else the exit they take at once."""
        queue = self._queue(ticket.queue)
        if ticket.call_id in self.waiting:
            raise QueueError(f"call {ticket.call_id} is already waiting")
        spec = queue.spec
        if spec.max_callers is not None and len(queue.keys) >= spec.max_callers:
            return ExitReason.FULL
        sig = self._signature(ticket)
        if not self._able(sig, logged_in_only=True):
            return ExitReason.NO_AGENTS
        ticket.joined_at = self.clock.now()
        ticket.seq = next(self._seq)
        ticket.place = None  # a callback tried again goes to the end of the line
        self._insert(ticket)
        if spec.max_wait is not None:
            self.waiting[ticket.call_id].max_wait_timer = self.clock.call_later(
                spec.max_wait, lambda: self._exit(ticket.call_id, ExitReason.MAX_WAIT))
        self._dispatch()
        self._flush()
        return None

    def _insert(self, ticket: Ticket) -> None:
        """Put ``ticket`` in line at the place its sort key gives it."""
        waiting = Waiting(ticket, self._groups.group(self._signature(ticket)))
        self.waiting[ticket.call_id] = waiting
        self._list(waiting)

    def _list(self, waiting: Waiting) -> None:
        """Enter a waiting caller's key in the lines (queue, every caller, their group)."""
        ticket = waiting.ticket
        key = ticket.sort_key()
        queue = self.queues[ticket.queue]
        bisect.insort(queue.keys, key)
        queue.placed += ticket.place is not None
        bisect.insort(self._order, (key, ticket.call_id))
        self._by_key[key] = ticket.call_id
        waiting.group.waiting += 1
        waiting.group.set_ready(key, not waiting.offers)

    def _unlist(self, waiting: Waiting) -> None:
        """Take a waiting caller's key out of the lines (:meth:`_list` undone)."""
        ticket = waiting.ticket
        key = ticket.sort_key()
        queue = self.queues[ticket.queue]
        del queue.keys[bisect.bisect_left(queue.keys, key)]
        queue.placed -= ticket.place is not None
        del self._order[bisect.bisect_left(self._order, (key, ticket.call_id))]
        del self._by_key[key]
        waiting.group.waiting -= 1
        waiting.group.set_ready(key, False)

    def leave(self, call_id: str) -> bool:
        """The caller is gone (hung up, took a key exit): withdraw what rings for them."""
        waiting = self._remove(call_id)
        if waiting is None:
            return False
        self._withdraw_offers(waiting)
        self._dispatch()
        self._flush()
        return True

    def callback(self, call_id: str, number: str) -> bool:
        """The caller hangs up but keeps their place: at the head, the agent chosen is offered
        with ``callback`` set (call the agent, then ``number``). False when not waiting."""
        waiting = self.waiting.get(call_id)
        if waiting is None:
            return False
        waiting.ticket.callback = number
        if waiting.max_wait_timer is not None:  # nobody is on the line to leave by an exit
            waiting.max_wait_timer.cancel()
            waiting.max_wait_timer = None
        self._withdraw_offers(waiting)  # what rang for the caller on the line
        self._offers_changed(waiting)
        self._dispatch()
        self._flush()
        return True

    def move(self, call_id: str, queue: str | None = None, head: bool = False) -> Ticket:
        """A supervisor moves a waiting caller to ``queue`` and/or to the head of their queue;
        the caller keeps waiting (their wait counts from when they first joined).

        To another queue: the caller takes the place their join time gives them there (at its
        head with ``head``); what rang for them is withdrawn (the agents may not be the new
        queue's); the new queue's ``max_wait`` counts from the move, so a caller who already
        waited longer is not sent out at once. To the head: the caller is given the priority of
        the caller at the head (if higher) and a place before theirs.

        Raises:
            QueueError: not waiting, an unknown queue, nothing to do, the new queue full, or
                nobody logged in who could take the caller there.
        """
        waiting = self.waiting.get(call_id)
        if waiting is None:
            raise QueueError(f"call {call_id[:80]!r} is not waiting")
        ticket = waiting.ticket
        old = ticket.queue
        target = self._queue(queue or old)
        name = target.spec.name
        if name == old and not head:
            raise QueueError(f"call {call_id[:80]!r} is in queue {old} already")
        if name != old:
            self._check_room(target, ticket)
        self._unlist(waiting)
        if name != old:
            self._requeue(waiting, target)
        if head and target.keys:
            neg_priority, place, _ = target.keys[0]
            ticket.priority = max(ticket.priority, -neg_priority)
            ticket.place = place - 1.0
        self._list(waiting)
        log.info("call %s: moved by a supervisor: queue %s -> %s%s", call_id, old, name,
                 " (head)" if head else "")  # fmt: skip
        self._emit(partial(self._tell_moved, ticket, old))
        self._dispatch()
        self._flush()
        return ticket

    def _check_room(self, target: QueueState, ticket: Ticket) -> None:
        """Whether ``ticket`` may move into ``target``: room there, and (for a caller on the
        line) an agent logged in who could take them."""
        spec = target.spec
        if spec.max_callers is not None and len(target.keys) >= spec.max_callers:
            raise QueueError(f"queue {spec.name} is full ({spec.max_callers} callers)")
        sig = (spec.name, ticket.skills, ticket.tier, ticket.language)
        if ticket.callback is None and not self._able(sig, logged_in_only=True):
            raise QueueError(f"nobody logged in could take this caller in queue {spec.name}")

    def _requeue(self, waiting: Waiting, target: QueueState) -> None:
        """Make an unlisted caller one of ``target``'s: offers withdrawn, its max wait."""
        ticket = waiting.ticket
        self._withdraw_offers(waiting)
        waiting.missed_by.clear()
        if waiting.max_wait_timer is not None:
            waiting.max_wait_timer.cancel()
            waiting.max_wait_timer = None
        ticket.queue, ticket.place = target.spec.name, None
        waiting.group = self._groups.group(self._signature(ticket))
        if target.spec.max_wait is not None and ticket.callback is None:
            waiting.max_wait_timer = self.clock.call_later(
                target.spec.max_wait, lambda: self._exit(ticket.call_id, ExitReason.MAX_WAIT))

    def position(self, call_id: str) -> int | None:
        """1 for the next caller of the queue, ...; None when not waiting."""
        waiting = self.waiting.get(call_id)
        if waiting is None:
            return None
        keys = self.queues[waiting.ticket.queue].keys
        return bisect.bisect_left(keys, waiting.ticket.sort_key()) + 1

    def expected_wait(self, call_id: str) -> float | None:
        """Seconds the caller should still wait (None: not waiting, or nobody can take them)."""
        position = self.position(call_id)
        if position is None:
            return None
        ticket = self.waiting[call_id].ticket
        able = self._able(self._signature(ticket), logged_in_only=False, working=True)
        return expected_wait(position, able, self.queues[ticket.queue].handle.mean)

    # --- offers -----------------------------------------------------------------------------

    def result(self, offer_id: int, outcome: Outcome) -> bool:
        """How an offer ended. False for an offer already settled (a late or repeated report)."""
        entry = self._offers.get(offer_id)
        if entry is None:
            return False
        offer = entry[0]
        self._close_offer(offer)
        agent = self.agents[offer.agent]
        waiting = self.waiting.get(offer.call_id)
        if waiting is not None:
            waiting.offers.pop(offer.id, None)
        if outcome == Outcome.ANSWERED and waiting is not None:
            self._answered(agent, waiting, offer)
        elif outcome in (Outcome.ANSWERED, Outcome.CALLER_GONE):
            self._agent_free(agent, keep_idle=True)  # the caller left first
            if waiting is not None:  # gone means gone: never offered again (no ring loop)
                self.leave(offer.call_id)
        else:
            self._missed(agent, waiting, outcome)
        if waiting is not None and offer.call_id in self.waiting:
            self._offers_changed(waiting)
        self._dispatch()
        self._flush()
        return True

    def ended(self, agent_id: str) -> None:
        """The agent's call is over: wrap-up, then the next caller."""
        agent = self._agent(agent_id)
        if agent.state != AgentState.ON_CALL:
            return
        queue = self.queues.get(agent.queue)
        now = self.clock.now()
        if queue is not None:
            queue.handle.add(now - agent.answered_at + agent.spec.wrap_up)
        agent.call_id = None
        if agent.spec.wrap_up > 0:
            self._set(agent, AgentState.WRAP_UP)
            agent.timer = self.clock.call_later(agent.spec.wrap_up,
                                                lambda: self._wrapped_up(agent))  # fmt: skip
        else:
            self._wrapped_up(agent)
        self._flush()

    # --- agents -----------------------------------------------------------------------------

    def login(self, agent_id: str) -> None:
        self._come_back(self._agent(agent_id), AgentState.LOGGED_OUT)

    def logout(self, agent_id: str, reason: str = "") -> None:
        self._change(self._agent(agent_id), AgentState.LOGGED_OUT, reason)

    def pause(self, agent_id: str, reason: str = "") -> None:
        agent = self._agent(agent_id)
        if agent.state == AgentState.LOGGED_OUT:
            raise QueueError(f"agent {agent_id} is logged out")
        self._change(agent, AgentState.PAUSED, reason or "paused")

    def resume(self, agent_id: str) -> None:
        self._come_back(self._agent(agent_id), AgentState.PAUSED)

    def _come_back(self, agent: Agent, away: AgentState) -> None:
        """Available again from ``away`` (logged out, paused); a pending change to ``away``
        during a call is called off."""
        if agent.state == away:
            agent.misses = 0
            agent.idle_since = self.clock.now()
            self._set(agent, AgentState.AVAILABLE)
        elif agent.pending is not None and agent.pending[0] == away:
            agent.pending = None
        self._dispatch()
        self._flush()

    def registered(self, agent_id: str, contact: str | None, expires: float = 0.0) -> None:
        """The agent's phone is reachable at ``contact`` for ``expires`` seconds (None or 0:
        no longer reachable)."""
        agent = self._agent(agent_id)
        if agent.registration_timer is not None:
            agent.registration_timer.cancel()
            agent.registration_timer = None
        if contact is None or expires <= 0:
            # Not a reason to send callers away: a logged-in agent's phone re-registers.
            agent.contact, agent.registered_until = None, 0.0
            self._groups.registered(agent)
        else:
            agent.contact = contact
            agent.registered_until = self.clock.now() + expires
            self._groups.registered(agent)
            agent.registration_timer = self.clock.call_later(
                expires, lambda: self.registered(agent_id, None))
            self._dispatch()
        self._flush()

    def worker_gone(self, worker: int, heir: int | None = None) -> None:
        """An engine process died with its calls: its callers leave, its agents are freed.

        Its callback tickets are no call of its own (the caller hung up; their place is a
        promise): they keep their place and go to worker ``heir``; with no heir (no worker is
        left), they wait out of line in :attr:`orphans` for the next worker to :meth:`adopt`
        them.
        """
        for call_id in [c for c, w in self.waiting.items() if w.ticket.worker == worker]:
            waiting = self.waiting[call_id]
            self._withdraw_offers(waiting, tell=False)  # nobody left to tell
            if waiting.ticket.callback is not None and heir is not None:
                waiting.ticket.worker = heir
                self._offers_changed(waiting)
                continue
            self._remove(call_id)
            if waiting.ticket.callback is not None:
                self.orphans.append(waiting.ticket)
        for agent in self.agents.values():
            if agent.state == AgentState.ON_CALL and agent.offer is not None \
                    and agent.offer.worker == worker:
                self.ended(agent.spec.id)
        self._dispatch()
        self._flush()

    def adopt(self, worker: int) -> int:
        """Worker ``worker`` takes the :attr:`orphans` (callback tickets of dead workers) back
        into line, each at its old place; how many."""
        orphans, self.orphans = self.orphans, []
        for ticket in orphans:
            ticket.worker = worker
            self._insert(ticket)
        if orphans:
            self._dispatch()
            self._flush()
        return len(orphans)

    # --- status -----------------------------------------------------------------------------

    def agent_status(self) -> list[AgentStatus]:
        now = self.clock.now()
        return [AgentStatus(a.spec.id, a.spec.name, a.state, a.reason, a.since, a.calls,
                            a.contact is not None and a.registered_until > now, a.call_id)
                for a in self.agents.values()]  # fmt: skip

    def caller_status(self, limit: int = 1000) -> list[CallerStatus]:
        """The callers waiting, served first first (at most ``limit``): for supervisors."""
        now = self.clock.now()
        waits = self.waits()
        out = []
        for _key, call_id in self._order[:limit]:
            ticket = self.waiting[call_id].ticket
            out.append(CallerStatus(call_id, ticket.queue, waits[call_id][0],
                                    now - ticket.joined_at, ticket.priority,
                                    len(self.waiting[call_id].offers),
                                    ticket.callback is not None))  # fmt: skip
        return out

    def queue_status(self) -> list[QueueStatus]:
        now = self.clock.now()
        out = []
        for name, queue in self.queues.items():
            oldest = _oldest(queue.keys, default=now)
            if queue.placed:  # a moved caller's place is not their join time: look at all
                oldest = min((self.waiting[self._by_key[k]].ticket.joined_at
                              for k in queue.keys), default=now)  # fmt: skip
            spec = queue.spec
            able = self._able((name, spec.skills, spec.tier, ""), logged_in_only=False,
                              working=True)  # fmt: skip
            out.append(QueueStatus(name, len(queue.keys), now - oldest, able, queue.handle.mean))
        return out

    def waits(self) -> dict[str, tuple[int, float | None]]:
        """Every waiting caller's position and expected wait, by call id: what :meth:`position`
        and :meth:`expected_wait` say of each, in one pass (status pages, announcements)."""
        if self._groups.lapsed(self.clock.now()):  # rare: count the slow way
            return {c: (self.position(c) or 0, self.expected_wait(c)) for c in self.waiting}
        out: dict[str, tuple[int, float | None]] = {}
        for queue in self.queues.values():
            handle = queue.handle.mean
            for position, key in enumerate(queue.keys, 1):
                call_id = self._by_key[key]
                able = self.waiting[call_id].group.working
                out[call_id] = (position, expected_wait(position, able, handle))
        return out

    # --- inside: callers ---------------------------------------------------------------------

    def _remove(self, call_id: str) -> Waiting | None:
        waiting = self.waiting.pop(call_id, None)
        if waiting is None:
            return None
        self._unlist(waiting)
        for timer in (waiting.max_wait_timer, waiting.retry_timer):
            if timer is not None:
                timer.cancel()
        return waiting

    def _exit(self, call_id: str, reason: ExitReason) -> None:
        waiting = self.waiting.get(call_id)
        if waiting is None:
            return
        self.leave(call_id)
        self._emit(partial(self._tell_exit, waiting.ticket, reason))
        self._flush()

    def _check_no_agents(self) -> None:
        """Callers nobody logged in can take any more leave by the ``no_agents`` exit."""
        if all(g.logged_in or not g.waiting for g in self._groups.groups.values()):
            return  # the loop below would find nobody
        gone: dict[Signature, bool] = {}
        for waiting in list(self.waiting.values()):
            if waiting.ticket.callback is not None:  # nobody on the line: wait for tomorrow
                continue
            sig = self._signature(waiting.ticket)
            if sig not in gone:
                gone[sig] = not self._able(sig, logged_in_only=True)
            if gone[sig]:
                self._exit(waiting.ticket.call_id, ExitReason.NO_AGENTS)

    # --- inside: agents ---------------------------------------------------------------------

    def _set(self, agent: Agent, state: AgentState, reason: str = "") -> None:
        if agent.timer is not None:
            agent.timer.cancel()
            agent.timer = None
        agent.state, agent.reason, agent.since = state, reason, self.clock.now()
        self._groups.agent_changed(agent)
        if self.on_state is not None:
            self.on_state(agent.spec.id, state, reason, self.clock.wall())

    def _change(self, agent: Agent, state: AgentState, reason: str) -> None:
        """Pause or log out now, or at the end of the call in progress."""
        if agent.state == AgentState.ON_CALL:
            agent.pending = (state, reason)
        else:
            offer = agent.offer
            if agent.state == AgentState.RINGING and offer is not None:
                self._close_offer(offer)
                waiting = self.waiting.get(offer.call_id)
                if waiting is not None:
                    waiting.offers.pop(offer.id, None)
                    self._offers_changed(waiting)
                self._emit(partial(self._tell_withdraw, offer))
            agent.offer = None
            self._set(agent, state, reason)
        if state == AgentState.LOGGED_OUT:
            self._check_no_agents()
        self._dispatch()
        self._flush()

    def _withdraw_offers(self, waiting: Waiting, tell: bool = True) -> None:
        """Withdraw everything ringing for ``waiting``: the agents are free again (their idle
        time kept) and, with ``tell``, the caller's worker is told to stop ringing them."""
        for offer in list(waiting.offers.values()):
            self._close_offer(offer)
            self._agent_free(self.agents[offer.agent], keep_idle=True)
            if tell:
                self._emit(partial(self._tell_withdraw, offer))
        waiting.offers.clear()

    def _agent_free(self, agent: Agent, keep_idle: bool) -> None:
        agent.offer = None
        if agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            if not keep_idle:
                agent.idle_since = self.clock.now()
            self._set(agent, AgentState.AVAILABLE)

    def _answered(self, agent: Agent, waiting: Waiting, offer: Offer) -> None:
        now = self.clock.now()
        self._remove(offer.call_id)
        self._withdraw_offers(waiting)  # ring-all: the others stop ringing
        agent.calls += 1
        agent.misses = 0
        agent.call_id = offer.call_id
        agent.answered_at = now
        agent.queue = waiting.ticket.queue
        self._set(agent, AgentState.ON_CALL)
        agent.offer = offer

    def _missed(self, agent: Agent, waiting: Waiting | None, outcome: Outcome) -> None:
        agent.offer = None
        agent.misses += 1
        if agent.state == AgentState.RINGING:
            if agent.misses >= agent.spec.max_misses:
                self._set(agent, AgentState.PAUSED, f"missed {agent.misses} calls in a row")
                log.warning("call -: agent %s paused: missed %d calls in a row (last: %s)",
                            agent.spec.id, agent.misses, outcome)  # fmt: skip
            else:
                self._set(agent, AgentState.AVAILABLE)
        if waiting is None:
            return
        waiting.missed_by.add(agent.spec.id)
        if not waiting.offers:
            delay = self.queues[waiting.ticket.queue].spec.retry_delay
            waiting.not_before = self.clock.now() + delay
            waiting.retry_timer = self.clock.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._dispatch()
        self._flush()

    def _wrapped_up(self, agent: Agent) -> None:
        agent.offer = None
        agent.idle_since = self.clock.now()
        pending, agent.pending = agent.pending, None
        if pending is not None:
            self._set(agent, pending[0], pending[1])
            if pending[0] == AgentState.LOGGED_OUT:
                self._check_no_agents()
        else:
            self._set(agent, AgentState.AVAILABLE)
        self._dispatch()
        self._flush()

    # --- inside: matching -------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Offer waiting callers, best first, to the agents free now.

        The best caller a free agent can take is rung, then the best of the rest, until no free
        agent can take anyone: of each group with a free agent, the first caller with no offer
        out and no retry delay running is a candidate; the best candidate wins. Ringing only
        makes agents busy, never free, so this rings the same callers in the same order as a
        walk down the whole line (:meth:`_dispatch_scan`), at the cost of the groups, not of
        the line.
        """
        if not self._order or not self._groups.free_agents:
            return
        now = self.clock.now()
        if self._groups.lapsed(now):
            self._dispatch_scan(now)
            return
        while True:
            best: tuple[Key, Group] | None = None
            for group in self._groups.groups.values():
                if not group.free or not group.ready:
                    continue
                for key in group.ready:
                    if self.waiting[self._by_key[key]].not_before <= now:
                        if best is None or key < best[0]:
                            best = (key, group)
                        break
            if best is None:
                return
            key, group = best
            waiting = self.waiting[self._by_key[key]]
            fits = list(group.free.values())
            fresh = [a for a in fits if a.spec.id not in waiting.missed_by]
            self._ring(waiting, fresh or fits)

    def _dispatch_scan(self, now: float) -> None:
        """:meth:`_dispatch` by walking every waiting caller (while a registration has run out
        and its timer has not run yet: the groups' free agents may include it)."""
        free = [a for a in self.agents.values() if a.state == AgentState.AVAILABLE
                and a.contact is not None and a.registered_until > now]  # fmt: skip
        if not free or not self._order:
            return
        cache: dict[Signature, list[Agent]] = {}
        for _key, call_id in list(self._order):
            waiting = self.waiting.get(call_id)
            if waiting is None or waiting.offers or waiting.not_before > now:
                continue
            sig = self._signature(waiting.ticket)
            if sig not in cache:
                cache[sig] = [a for a in free if self._serves(a, sig)]
            fits = [a for a in cache[sig] if a.state == AgentState.AVAILABLE]
            cache[sig] = fits
            if not fits:
                continue
            fresh = [a for a in fits if a.spec.id not in waiting.missed_by]
            self._ring(waiting, fresh or fits)
            if not any(a.state == AgentState.AVAILABLE for a in free):
                return

    def _ring(self, waiting: Waiting, agents: list[Agent]) -> None:
        ticket = waiting.ticket
        queue = self.queues[ticket.queue]
        spec = queue.spec
        candidates = [Candidate(a.spec.id, a.index, a.idle_since, a.calls,
                                a.spec.level(ticket.skills)) for a in agents]  # fmt: skip
        ordered = STRATEGY[spec.strategy](candidates, queue.last_rung)
        chosen = ordered if spec.strategy == "ring-all" else ordered[:1]
        for candidate in chosen:
            agent = self.agents[candidate.id]
            assert agent.contact is not None
            offer = Offer(next(self._offer_ids), ticket.call_id, agent.spec.id, agent.contact,
                          ticket.worker, spec.ring_timeout, ticket.callback)  # fmt: skip
            timer = self.clock.call_later(spec.ring_timeout + OFFER_GRACE,
                                          partial(self._overdue, offer))  # fmt: skip
            self._offers[offer.id] = (offer, timer)
            waiting.offers[offer.id] = offer
            agent.offer = offer
            self._set(agent, AgentState.RINGING)
            queue.last_rung = candidate.index
            self._emit(partial(self._tell_offer, offer))
        self._offers_changed(waiting)

    def _overdue(self, offer: Offer) -> None:
        if offer.id in self._offers:
            log.warning("call %s: no result for agent %s within the ring timeout: no answer",
                        offer.call_id, offer.agent)  # fmt: skip
            self._emit(partial(self._tell_withdraw, offer))
            self.result(offer.id, Outcome.NO_ANSWER)

    def _close_offer(self, offer: Offer) -> None:
        entry = self._offers.pop(offer.id, None)
        if entry is not None:
            entry[1].cancel()

    def _serves(self, agent: Agent, sig: Signature) -> bool:
        queue_name, skills, tier, language = sig
        return self.queues[queue_name].spec.admits(agent.spec, skills, tier, language)

    def _able(self, sig: Signature, *, logged_in_only: bool, working: bool = False) -> int:
        """Agents who could take callers of ``sig``: logged in (and, unless ``logged_in_only``,
        registered; with ``working``, not paused)."""
        group = self._groups.group(sig)
        if logged_in_only and not working:
            return group.logged_in
        if working and not logged_in_only and not self._groups.lapsed(self.clock.now()):
            return group.working
        return self._able_scan(sig, logged_in_only=logged_in_only, working=working)

    def _able_scan(self, sig: Signature, *, logged_in_only: bool, working: bool) -> int:
        """:meth:`_able` by looking at every agent."""
        now = self.clock.now()
        count = 0
        for agent in self.agents.values():
            if agent.state == AgentState.LOGGED_OUT:
                continue
            if working and agent.state == AgentState.PAUSED:
                continue
            if not logged_in_only and not (agent.contact and agent.registered_until > now):
                continue
            if self._serves(agent, sig):
                count += 1
        return count

    @staticmethod
    def _signature(ticket: Ticket) -> Signature:
        return (ticket.queue, ticket.skills, ticket.tier, ticket.language)

    @staticmethod
    def _offers_changed(waiting: Waiting) -> None:
        """A caller with no offer out is in their group's line for the next free agent."""
        waiting.group.set_ready(waiting.ticket.sort_key(), not waiting.offers)

    # --- plumbing ---------------------------------------------------------------------------

    def _queue(self, name: str) -> QueueState:
        queue = self.queues.get(name)
        if queue is None:
            raise QueueError(f"no queue {name!r} (queues: {', '.join(sorted(self.queues))})")
        return queue

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise QueueError(f"no agent {agent_id!r}")
        return agent

    def _listener(self) -> AuthorityListener:
        if self.listener is None:
            raise RuntimeError("the queue authority has no listener")
        return self.listener

    def _tell_offer(self, offer: Offer) -> None:
        self._listener().offer(offer)

    def _tell_withdraw(self, offer: Offer) -> None:
        self._listener().withdraw(offer)

    def _tell_exit(self, ticket: Ticket, reason: ExitReason) -> None:
        self._listener().exit(ticket, reason)

    def _tell_moved(self, ticket: Ticket, old_queue: str) -> None:
        self.tell_moved(self._listener(), ticket, old_queue)

    @staticmethod
    def tell_moved(listener: object, ticket: Ticket, old_queue: str) -> None:
        """Tell ``listener`` of a move if it listens for moves (:class:`MoveListener`)."""
        if isinstance(listener, MoveListener):
            listener.moved(ticket, old_queue)

    def _emit(self, call: Callable[[], None]) -> None:
        self._outbox.append(call)

    def _flush(self) -> None:
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._outbox:
                self._outbox.popleft()()
        finally:
            self._flushing = False


def _oldest(keys: list[Key], default: float) -> float:
    """The earliest join time among sorted ticket keys: the first key of each priority."""
    oldest = default if not keys else math.inf
    index = 0
    while index < len(keys):
        neg_priority, joined_at, _ = keys[index]
        oldest = min(oldest, joined_at)
        index = bisect.bisect_left(keys, (neg_priority, math.inf, 0), index)
    return oldest


def agents_in(states: Iterable[AgentStatus], state: AgentState) -> list[str]:
    """The ids of the agents in ``state`` (for status lines and tests)."""
    return [a.id for a in states if a.state == state]
