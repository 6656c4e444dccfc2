"""The agent queue at scale: 10,000 waiting callers, 1,000 agents -> docs/PERFORMANCE.md.

Run with ``make bench-acd`` (``.venv/bin/python bench/acd_scale.py --write``). One contact
centre is generated from a seed (agents with mixed skills, tiers and languages; five queues, one
per strategy; callers with mixed priorities, skills, tiers and languages), 10,000 callers are put
in line behind 1,000 busy agents, and then a stream of the events of a real centre is played on
a virtual clock: an agent's call ends and they are free (the authority picks the next caller they
can take), a caller joins, a caller hangs up, an offer's result comes back (mostly answered, some
missed: the agent is free again and rings for someone else), and now and then every waiting
caller's position and expected wait are recomputed. Each event is timed on its own.

The reference, measured in the same run on the same stream: :class:`Reference`, the same rules
as a newcomer writes them (on each event, sort the callers and scan every pair of a waiting caller
and a free agent; for the waits, sort each queue's callers and count, per caller, the agents able
to take them by scanning them all). Both must make the same decisions: every offer (which agent
for which caller) and every exit of the timed stream are compared at the end, and a smaller run
(``--check``, also part of every run) plays both side by side comparing offers per event and
positions, waits and queue figures as it goes.

Seeds: the authority was profiled and tuned on seed 7 (``--seed 7``); the figures written to
docs/PERFORMANCE.md come from seed 2026 (the default) and the side-by-side check from seed 3.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import random
import statistics
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.acd.authority import OFFER_GRACE, QueueAuthority, QueueStatus  # noqa: E402
from ivr.acd.estimator import HandleTimes, expected_wait  # noqa: E402
from ivr.acd.model import (  # noqa: E402
    AgentSpec,
    AgentState,
    ExitReason,
    Offer,
    Outcome,
    QueueSpec,
    Ticket,
    tier_rank,
)
from ivr.acd.strategy import STRATEGY, Candidate  # noqa: E402
from ivr.core.clock import TimerHandle, VirtualClock  # noqa: E402

JUDGED_SEED = 2026  # the figures in docs/PERFORMANCE.md
TUNING_SEED = 7  # what the authority was profiled on
CHECK_SEED = 3  # the side-by-side check
CHECK_WAITS_EVERY = 50  # events between comparisons of every position and wait
EVENT_KINDS = ("agent free", "caller joins", "caller hangs up", "offer result", "all waits")
PER_CALLER = "all waits, per caller"  # the authority only: position() and expected_wait() each

# --- the centre ---------------------------------------------------------------------------------


@dataclass
class Centre:
    agents: list[AgentSpec]
    queues: list[QueueSpec]


def make_centre(rng: random.Random, agents: int) -> Centre:
    """``agents`` agents (70 % general only, 20 % accounts, 10 % full) and five queues."""
    specs = []
    for n in range(agents):
        roll = rng.random()
        skills = {"general": rng.randint(1, 10)}
        if rng.random() < 0.25:
            skills["sales"] = rng.randint(1, 10)
        if roll < 0.70:
            tier = "general"
        elif roll < 0.90:
            tier = "accounts"
            skills["accounts"] = rng.randint(1, 10)
        else:
            tier = "full"
            skills["accounts"] = rng.randint(1, 10)
            skills["corporate"] = rng.randint(1, 10)
        languages = rng.choices([("en",), ("zh",), ("en", "zh"), ()], weights=[55, 15, 25, 5])[0]
        specs.append(AgentSpec(f"agent{n:04d}", f"Agent {n}", skills, tier, languages,
                               wrap_up=0.0))  # fmt: skip
    full = [a.id for a in specs if a.tier == "full"]
    queues = [
        QueueSpec("general", "longest-idle", skills=("general",), max_wait=3600),
        QueueSpec("sales", "round-robin", skills=("sales",)),
        QueueSpec("accounts", "skill-level", skills=("accounts",), tier="accounts"),
        QueueSpec("corporate", "fewest-calls", skills=("corporate",), tier="full",
                  members=tuple(full[: len(full) * 2 // 3])),
        QueueSpec("vip", "ring-all", skills=("corporate",), tier="full",
                  members=tuple(full[:10])),
    ]  # fmt: skip
    return Centre(specs, queues)


def make_ticket(rng: random.Random, n: int) -> Ticket:
    """Caller ``n``: a queue, a priority (corporate and small-business lines higher), the skills,
    tier and language the call needs."""
    queue = rng.choices(["general", "sales", "accounts", "corporate", "vip"],
                        weights=[55, 15, 20, 8, 2])[0]  # fmt: skip
    priority = rng.choices([5, 7, 9], weights=[75, 15, 10])[0]
    skills: tuple[str, ...] = ()
    tier = "general"
    if queue == "general" and rng.random() < 0.1:
        skills, tier = ("accounts",), "accounts"
    elif queue == "accounts" and rng.random() < 0.3:
        skills = ("general",)
    elif queue == "vip":
        priority = 10
    language = rng.choices(["en", "zh", ""], weights=[65, 30, 5])[0]
    return Ticket(f"call{n:06d}", queue, priority, skills, tier, language, worker=n % 4)


# --- the reference ------------------------------------------------------------------------------


class Listener(Protocol):
    def offer(self, offer: Offer) -> None: ...
    def withdraw(self, offer: Offer) -> None: ...
    def exit(self, ticket: Ticket, reason: ExitReason) -> None: ...


@dataclass
class RefAgent:
    spec: AgentSpec
    index: int
    state: AgentState = AgentState.LOGGED_OUT
    idle_since: float = 0.0
    contact: str | None = None
    registered_until: float = 0.0
    calls: int = 0
    misses: int = 0
    offer: Offer | None = None
    answered_at: float = 0.0
    queue: str = ""
    timer: TimerHandle | None = None


@dataclass
class RefCaller:
    ticket: Ticket
    offers: dict[int, Offer] = field(default_factory=dict)
    missed_by: set[str] = field(default_factory=set)
    not_before: float = 0.0
    max_wait_timer: TimerHandle | None = None
    retry_timer: TimerHandle | None = None


@dataclass
class RefQueue:
    spec: QueueSpec
    handle: HandleTimes = field(default_factory=HandleTimes)
    last_rung: int | None = None


class Reference:
    """The baseline: the queue authority's rules (docs/ACD.md, ivr/acd/authority.py) written
    the straightforward way, for the events this benchmark plays (no pause or log-out requests,
    no worker deaths). Callers live in a dict; every event sorts them and scans each waiting
    caller against each free agent; positions come from sorting, able agents from a scan of
    every agent. It shares the rules' own parts with the authority (AgentSpec.can_take, the
    strategies, the estimator) and none of its bookkeeping."""

    def __init__(self, agents: Sequence[AgentSpec], queues: Sequence[QueueSpec],
                 clock: VirtualClock, listener: Listener) -> None:  # fmt: skip
        self.clock = clock
        self.listener = listener
        self.agents = {spec.id: RefAgent(spec, n) for n, spec in enumerate(agents)}
        self.queues = {q.name: RefQueue(q) for q in queues}
        self.callers: dict[str, RefCaller] = {}
        self.offers: dict[int, tuple[Offer, TimerHandle]] = {}
        self.next_offer = 1
        self.next_seq = 1

    # callers

    def join(self, ticket: Ticket) -> ExitReason | None:
        queue = self.queues[ticket.queue]
        waiting = sum(1 for c in self.callers.values() if c.ticket.queue == ticket.queue)
        if queue.spec.max_callers is not None and waiting >= queue.spec.max_callers:
            return ExitReason.FULL
        if not any(a.state != AgentState.LOGGED_OUT and self.serves(a, ticket)
                   for a in self.agents.values()):  # fmt: skip
            return ExitReason.NO_AGENTS
        ticket.joined_at = self.clock.now()
        ticket.seq = self.next_seq
        self.next_seq += 1
        caller = RefCaller(ticket)
        self.callers[ticket.call_id] = caller
        if queue.spec.max_wait is not None:
            caller.max_wait_timer = self.clock.call_later(
                queue.spec.max_wait, partial(self.max_wait, ticket.call_id))
        self.dispatch()
        return None

    def leave(self, call_id: str) -> bool:
        caller = self.remove(call_id)
        if caller is None:
            return False
        for offer in list(caller.offers.values()):
            self.close(offer)
            self.free(self.agents[offer.agent])
            self.listener.withdraw(offer)
        self.dispatch()
        return True

    def max_wait(self, call_id: str) -> None:
        caller = self.callers.get(call_id)
        if caller is not None:
            self.leave(call_id)
            self.listener.exit(caller.ticket, ExitReason.MAX_WAIT)

    def remove(self, call_id: str) -> RefCaller | None:
        caller = self.callers.pop(call_id, None)
        if caller is not None:
            for timer in (caller.max_wait_timer, caller.retry_timer):
                if timer is not None:
                    timer.cancel()
        return caller

    # offers

    def result(self, offer_id: int, outcome: Outcome) -> bool:
        if offer_id not in self.offers:
            return False
        offer = self.offers[offer_id][0]
        self.close(offer)
        agent = self.agents[offer.agent]
        caller = self.callers.get(offer.call_id)
        if caller is not None:
            caller.offers.pop(offer.id, None)
        if outcome == Outcome.ANSWERED and caller is not None:
            self.remove(offer.call_id)
            for other in list(caller.offers.values()):
                self.close(other)
                self.free(self.agents[other.agent])
                self.listener.withdraw(other)
            agent.calls += 1
            agent.misses = 0
            agent.answered_at = self.clock.now()
            agent.queue = caller.ticket.queue
            self.set(agent, AgentState.ON_CALL)
            agent.offer = offer
        elif outcome in (Outcome.ANSWERED, Outcome.CALLER_GONE):
            self.free(agent)
        else:
            agent.offer = None
            agent.misses += 1
            if agent.state == AgentState.RINGING:
                paused = agent.misses >= agent.spec.max_misses
                self.set(agent, AgentState.PAUSED if paused else AgentState.AVAILABLE)
            if caller is not None:
                caller.missed_by.add(agent.spec.id)
                if not caller.offers:
                    delay = self.queues[caller.ticket.queue].spec.retry_delay
                    caller.not_before = self.clock.now() + delay
                    caller.retry_timer = self.clock.call_later(delay, self.dispatch)
        self.dispatch()
        return True

    def overdue(self, offer: Offer) -> None:
        if offer.id in self.offers:
            self.listener.withdraw(offer)
            self.result(offer.id, Outcome.NO_ANSWER)

    def close(self, offer: Offer) -> None:
        entry = self.offers.pop(offer.id, None)
        if entry is not None:
            entry[1].cancel()

    # agents

    def ended(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        if agent.state != AgentState.ON_CALL:
            return
        now = self.clock.now()
        self.queues[agent.queue].handle.add(now - agent.answered_at + agent.spec.wrap_up)
        if agent.spec.wrap_up > 0:
            self.set(agent, AgentState.WRAP_UP)
            agent.timer = self.clock.call_later(agent.spec.wrap_up,
                                                partial(self.wrapped_up, agent))  # fmt: skip
        else:
            self.wrapped_up(agent)

    def wrapped_up(self, agent: RefAgent) -> None:
        agent.offer = None
        agent.idle_since = self.clock.now()
        self.set(agent, AgentState.AVAILABLE)
        self.dispatch()

    def login(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        if agent.state == AgentState.LOGGED_OUT:
            agent.misses = 0
            agent.idle_since = self.clock.now()
            self.set(agent, AgentState.AVAILABLE)
        self.dispatch()

    def resume(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        if agent.state == AgentState.PAUSED:
            agent.misses = 0
            agent.idle_since = self.clock.now()
            self.set(agent, AgentState.AVAILABLE)
        self.dispatch()

    def registered(self, agent_id: str, contact: str, expires: float) -> None:
        agent = self.agents[agent_id]
        agent.contact = contact
        agent.registered_until = self.clock.now() + expires
        self.dispatch()

    def set(self, agent: RefAgent, state: AgentState) -> None:
        if agent.timer is not None:
            agent.timer.cancel()
            agent.timer = None
        agent.state = state

    def free(self, agent: RefAgent) -> None:
        agent.offer = None
        if agent.state in (AgentState.RINGING, AgentState.ON_CALL):
            self.set(agent, AgentState.AVAILABLE)

    # matching

    def serves(self, agent: RefAgent, ticket: Ticket) -> bool:
        spec = self.queues[ticket.queue].spec
        if spec.members is not None and agent.spec.id not in spec.members:
            return False
        return agent.spec.can_take((*spec.skills, *ticket.skills),
                                   max(spec.tier, ticket.tier, key=tier_rank), ticket.language)

    def dispatch(self) -> None:
        now = self.clock.now()
        free = [a for a in self.agents.values() if a.state == AgentState.AVAILABLE
                and a.contact is not None and a.registered_until > now]  # fmt: skip
        if not free:
            return
        for caller in sorted(self.callers.values(), key=lambda c: c.ticket.sort_key()):
            if caller.offers or caller.not_before > now:
                continue
            fits = [a for a in free if a.state == AgentState.AVAILABLE
                    and self.serves(a, caller.ticket)]  # fmt: skip
            if fits:
                fresh = [a for a in fits if a.spec.id not in caller.missed_by]
                self.ring(caller, fresh or fits)

    def ring(self, caller: RefCaller, agents: list[RefAgent]) -> None:
        ticket = caller.ticket
        queue = self.queues[ticket.queue]
        spec = queue.spec
        candidates = [Candidate(a.spec.id, a.index, a.idle_since, a.calls,
                                a.spec.level(ticket.skills)) for a in agents]  # fmt: skip
        ordered = STRATEGY[spec.strategy](candidates, queue.last_rung)
        for candidate in ordered if spec.strategy == "ring-all" else ordered[:1]:
            agent = self.agents[candidate.id]
            assert agent.contact is not None
            offer = Offer(self.next_offer, ticket.call_id, agent.spec.id, agent.contact,
                          ticket.worker, spec.ring_timeout, ticket.callback)  # fmt: skip
            self.next_offer += 1
            timer = self.clock.call_later(spec.ring_timeout + OFFER_GRACE,
                                          partial(self.overdue, offer))  # fmt: skip
            self.offers[offer.id] = (offer, timer)
            caller.offers[offer.id] = offer
            agent.offer = offer
            self.set(agent, AgentState.RINGING)
            queue.last_rung = candidate.index
            self.listener.offer(offer)

    # figures

    def able(self, ticket_queue: str, ticket: Ticket) -> int:
        now = self.clock.now()
        return sum(1 for a in self.agents.values()
                   if a.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)
                   and a.contact and a.registered_until > now
                   and self.serves(a, ticket))  # fmt: skip

    def waits(self) -> dict[str, tuple[int, float | None]]:
        """Every waiting caller's position in their queue and expected wait."""
        out: dict[str, tuple[int, float | None]] = {}
        for name, queue in self.queues.items():
            line = sorted((c.ticket for c in self.callers.values() if c.ticket.queue == name),
                          key=Ticket.sort_key)  # fmt: skip
            for position, ticket in enumerate(line, 1):
                able = self.able(name, ticket)
                out[ticket.call_id] = (position, expected_wait(position, able, queue.handle.mean))
        return out

    def queue_status(self) -> list[QueueStatus]:
        now = self.clock.now()
        out = []
        for name, queue in self.queues.items():
            line = [c.ticket for c in self.callers.values() if c.ticket.queue == name]
            oldest = min((t.joined_at for t in line), default=now)
            spec = queue.spec
            probe = Ticket("", name, skills=(), tier=spec.tier, language="")
            out.append(QueueStatus(name, len(line), now - oldest, self.able(name, probe),
                                   queue.handle.mean))  # fmt: skip
        return out


# --- the authority, seen the same way ----------------------------------------------------------


class Impl(Protocol):
    """What the driver calls: QueueAuthority and Reference both answer it."""

    def join(self, ticket: Ticket) -> ExitReason | None: ...
    def leave(self, call_id: str) -> bool: ...
    def result(self, offer_id: int, outcome: Outcome) -> bool: ...
    def ended(self, agent_id: str) -> None: ...
    def login(self, agent_id: str) -> None: ...
    def resume(self, agent_id: str) -> None: ...
    def registered(self, agent_id: str, contact: str, expires: float) -> None: ...
    def queue_status(self) -> list[QueueStatus]: ...


def authority_waits(auth: QueueAuthority) -> dict[str, tuple[int, float | None]]:
    """Every waiting caller's position and expected wait from the authority (one caller at a
    time on an authority older than QueueAuthority.waits)."""
    bulk = getattr(auth, "waits", None)
    if bulk is not None:
        return dict(bulk())
    return per_caller_waits(auth)


def per_caller_waits(auth: QueueAuthority) -> dict[str, tuple[int, float | None]]:
    """The same through position() and expected_wait(), as each caller's announcements ask."""
    out: dict[str, tuple[int, float | None]] = {}
    for call_id in list(auth.waiting):
        position = auth.position(call_id)
        assert position is not None
        out[call_id] = (position, auth.expected_wait(call_id))
    return out


def make_impl(kind: str, centre: Centre, clock: VirtualClock, listener: Listener,
              ) -> tuple[Impl, Callable[[], object], Callable[[str], AgentState]]:  # fmt: skip
    """The implementation, its "all waits" call and how to read an agent's state."""
    if kind == "authority":
        auth = QueueAuthority(centre.agents, centre.queues, clock, listener)
        return auth, partial(authority_waits, auth), lambda a: auth.agents[a].state
    ref = Reference(centre.agents, centre.queues, clock, listener)
    return ref, ref.waits, lambda a: ref.agents[a].state


# --- the event stream ---------------------------------------------------------------------------


@dataclass
class Recorder:
    """The listener: the open offers, and every decision in order."""

    open: dict[int, Offer] = field(default_factory=dict)
    decisions: list[tuple[str, ...]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)

    def offer(self, offer: Offer) -> None:
        self.open[offer.id] = offer
        self.decisions.append(("offer", str(offer.id), offer.call_id, offer.agent))

    def withdraw(self, offer: Offer) -> None:
        self.open.pop(offer.id, None)
        self.decisions.append(("withdraw", str(offer.id)))

    def exit(self, ticket: Ticket, reason: ExitReason) -> None:
        self.decisions.append(("exit", ticket.call_id, reason.value))
        self.gone.append(ticket.call_id)


class Pool:
    """A set with a random pick in O(1)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.where: dict[str, int] = {}

    def add(self, item: str) -> None:
        self.where[item] = len(self.items)
        self.items.append(item)

    def discard(self, item: str) -> None:
        index = self.where.pop(item, None)
        if index is None:
            return
        last = self.items.pop()
        if index < len(self.items):
            self.items[index] = last
            self.where[last] = index

    def pick(self, rng: random.Random) -> str:
        return self.items[rng.randrange(len(self.items))]

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Run:
    """What one implementation did with one stream."""

    times: dict[str, list[float]]  # event kind -> seconds each
    decisions: list[tuple[str, ...]]
    waiting: int
    on_call: int


class Driver:
    """Plays a centre's events on one implementation; every random draw depends only on the
    seed and on the decisions, so two implementations that decide alike see the same stream."""

    def __init__(self, kind: str, seed: int, agents: int, callers: int) -> None:
        self.rng = random.Random(seed)
        self.centre = make_centre(self.rng, agents)
        self.clock = VirtualClock()
        self.rec = Recorder()
        self.impl, self.waits, self.state = make_impl(kind, self.centre, self.clock, self.rec)
        self.per_caller = partial(per_caller_waits, self.impl) \
            if isinstance(self.impl, QueueAuthority) else None
        self.target = callers
        self.calls = 0
        self.waiting = Pool()
        self.on_call = Pool()
        self.paused: dict[str, float] = {}
        self.times: dict[str, list[float]] = {k: [] for k in (*EVENT_KINDS, PER_CALLER)}
        for spec in self.centre.agents:
            self.impl.registered(spec.id, f"sip:{spec.id}@10.0.0.1:5060", 86400.0)
            self.impl.login(spec.id)
        while len(self.waiting) < callers or self.rec.open:
            if self.rec.open:
                self.answer(next(iter(self.rec.open.values())), Outcome.ANSWERED)
            else:
                self.join()
            self.clock.advance(0.01)

    def join(self) -> None:
        self.calls += 1
        ticket = make_ticket(self.rng, self.calls)
        if self.impl.join(ticket) is None:
            self.waiting.add(ticket.call_id)

    def answer(self, offer: Offer, outcome: Outcome) -> None:
        self.rec.open.pop(offer.id, None)
        self.impl.result(offer.id, outcome)
        self.settled(offer, outcome)

    def settled(self, offer: Offer, outcome: Outcome) -> None:
        if outcome == Outcome.ANSWERED and offer.call_id in self.waiting.where:
            self.waiting.discard(offer.call_id)
            self.on_call.add(offer.agent)
        elif self.state(offer.agent) == AgentState.PAUSED:
            self.paused[offer.agent] = self.clock.now()

    def step(self) -> tuple[str, Callable[[], object], Callable[[], None]]:
        """The next event: its kind, the call to time and what the driver notes after it."""
        rng = self.rng
        roll = rng.random()
        if self.rec.open and roll < 0.3:
            offer = next(iter(self.rec.open.values()))
            outcome = rng.choices([Outcome.ANSWERED, Outcome.NO_ANSWER, Outcome.REJECTED],
                                  weights=[90, 6, 4])[0]  # fmt: skip
            self.rec.open.pop(offer.id)
            return ("offer result", partial(self.impl.result, offer.id, outcome),
                    partial(self.settled, offer, outcome))  # fmt: skip
        if roll < 0.6 and len(self.on_call):
            agent = self.on_call.pick(rng)
            self.on_call.discard(agent)
            return "agent free", partial(self.impl.ended, agent), _nothing
        if len(self.waiting) < self.target:
            self.calls += 1
            ticket = make_ticket(rng, self.calls)
            outcome_box: list[ExitReason | None] = []
            return ("caller joins", lambda: outcome_box.append(self.impl.join(ticket)),
                    partial(self._joined, ticket, outcome_box))  # fmt: skip
        call_id = self.waiting.pick(rng)
        self.waiting.discard(call_id)
        return "caller hangs up", partial(self.impl.leave, call_id), _nothing

    def _joined(self, ticket: Ticket, box: list[ExitReason | None]) -> None:
        if box[0] is None:
            self.waiting.add(ticket.call_id)
        else:
            self.rec.decisions.append(("exit", ticket.call_id, box[0].value))

    def housekeeping(self) -> None:
        """Time passes (timers fire: retries); agents paused for missed calls come back."""
        self.clock.advance(self.rng.expovariate(1 / 0.08))
        now = self.clock.now()
        for agent, since in list(self.paused.items()):
            if now - since > 30:
                del self.paused[agent]
                self.impl.resume(agent)
        while self.rec.gone:  # left by an exit (max wait)
            self.waiting.discard(self.rec.gone.pop())

    def play(self, events: int, waits_every: int, after: Callable[[int], None] | None = None,
             ) -> Run:  # fmt: skip
        clock = time.perf_counter
        for n in range(events):
            self.housekeeping()
            kind, call, note = self.step()
            start = clock()
            call()
            self.times[kind].append(clock() - start)
            note()
            if waits_every and n % waits_every == waits_every - 1:
                start = clock()
                self.waits()
                self.times["all waits"].append(clock() - start)
                if self.per_caller is not None:
                    start = clock()
                    self.per_caller()
                    self.times[PER_CALLER].append(clock() - start)
            if after is not None:
                after(n)
        return Run(self.times, self.rec.decisions, len(self.waiting), len(self.on_call))


def _nothing() -> None:
    pass


# --- the side-by-side check ---------------------------------------------------------------------


def check(seed: int, agents: int, callers: int, events: int) -> int:
    """Play both implementations side by side: the same offers and exits after every event, the
    same positions, waits and queue figures every few events. Returns the decisions compared."""
    ours = Driver("authority", seed, agents, callers)
    ref = Driver("reference", seed, agents, callers)
    assert ours.rec.decisions == ref.rec.decisions, "setup decided differently"
    auth = ours.impl
    assert isinstance(auth, QueueAuthority)

    def compare(n: int) -> None:
        assert ours.rec.decisions == ref.rec.decisions, f"event {n}: decisions differ"
        if n % CHECK_WAITS_EVERY == 0:
            mine = ours.waits()
            assert mine == ref.waits(), f"event {n}: waits differ"
            assert isinstance(mine, dict)
            for call_id, (position, wait) in mine.items():
                assert auth.position(call_id) == position
                assert auth.expected_wait(call_id) == wait
            assert ours.impl.queue_status() == ref.impl.queue_status(), f"event {n}: status"

    for n in range(events):
        for driver in (ours, ref):
            driver.housekeeping()
            _kind, call, note = driver.step()
            call()
            note()
        compare(n)
    return len(ours.rec.decisions)


# --- the report ---------------------------------------------------------------------------------


def summary(times: list[float]) -> tuple[float, float, int]:
    """Median and p99 in microseconds, and the number of samples."""
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1e6, p99 * 1e6, len(ordered)


def fmt_us(us: float) -> str:
    if us >= 10_000:
        return f"{us / 1000:,.0f} ms"
    if us >= 1000:
        return f"{us / 1000:.1f} ms"
    return f"{us:.0f} µs" if us >= 10 else f"{us:.1f} µs"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def report(opts: argparse.Namespace, ours: Run, ref: Run, checked: int, load: float) -> str:
    rows = []
    for kind in EVENT_KINDS:
        om, op, on = summary(ours.times[kind])
        rm, rp, rn = summary(ref.times[kind])
        rows.append(f"| {kind} | {fmt_us(om)} | {fmt_us(op)} | {on:,} | {fmt_us(rm)} | "
                    f"{fmt_us(rp)} | {rn:,} | **{rm / om:,.0f}** |")  # fmt: skip
    if ours.times[PER_CALLER]:
        pm, pp, pn = summary(ours.times[PER_CALLER])
        rm = summary(ref.times["all waits"])[0]
        rows.append(f"| all waits, one caller at a time | {fmt_us(pm)} | {fmt_us(pp)} | {pn:,} "
                    f"| – | – | – | **{rm / pm:,.0f}** |")  # fmt: skip
    paragraphs = [
        f"`bench/acd_scale.py`, run by `make bench-acd` ({time.strftime('%Y-%m-%d')}, about two "
        f"minutes) on {platform.python_implementation()} {platform.python_version()}, "
        f"{cpu_name()}, {os.cpu_count()} cores, one of them used; load average {load:.1f} when "
        "it started (the machine is shared: the figures are not a floor, the ratios are what "
        "carries). `--only authority --seed 7` times the authority alone (for a profiler).",
        f"A generated centre (seed {opts.seed}): {opts.agents:,} agents (70 % general only, "
        "20 % accounts, 10 % full; English, Chinese, both or any language), five queues (one "
        f"per strategy, two with member lists), {opts.callers:,} callers waiting (priorities 5, "
        "7, 9 and 10, some needing account work, English, Chinese or unsaid) while every agent "
        f"is busy. Then {opts.events:,} events of a real centre on a virtual clock, each timed "
        "on its own: an agent's call ends and the authority picks who they take next; a caller "
        "joins; a caller hangs up; an offer's result comes back (90 % answered, the rest missed: "
        f"the agent is free again and rings for someone else); and every {opts.waits_every} "
        f"events (every {opts.ref_waits_every:,} for the reference) every waiting caller's "
        "position and expected wait are recomputed (`QueueAuthority.waits()`; one caller at a "
        "time is `position()` and `expected_wait()` for each, as the callers' announcements "
        "ask).",
        "The reference (`Reference` in the same file) applies the same rules the "
        "straightforward way: on each event it sorts the callers and tries every pair of a "
        "waiting caller and a free agent; positions come from sorting each queue, the agents "
        "able to take a caller from a look at every agent. It shares the rules' own parts with "
        "the authority (`AgentSpec.can_take`, the strategies, the estimator), none of its "
        f"bookkeeping. It made the same {len(ours.decisions):,} decisions (every offer, "
        "withdrawal and exit) as the authority on this stream; a side-by-side run (seed "
        f"{CHECK_SEED}: {opts.check_agents} agents, {opts.check_callers:,} callers, "
        f"{opts.check_events:,} events) compared {checked:,} decisions after every event and "
        f"every caller's position, wait and queue figures every {CHECK_WAITS_EVERY} events. The "
        f"authority was profiled and tuned on seed {TUNING_SEED}, not on these. Before "
        "`ivr/acd/groups.py` the authority walked the line and looked at every agent much like "
        "the reference (measured once, 2026-12-07, same machine and seed: agent free 379 µs, "
        "caller joins 1.1 ms, hangs up 112 µs, offer result 114 µs, all waits one caller at a "
        "time 11.3 s; medians).",
    ]
    return "\n".join([
        f"## The agent queue at scale ({opts.callers:,} waiting callers, {opts.agents:,} agents)",
        *(textwrap.fill(p, 100, break_on_hyphens=False) + "\n" for p in paragraphs),
        "| event | authority median | p99 | n | reference median | p99 | n | ratio of medians |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])


def write_performance(section: str) -> None:
    path = ROOT / "docs" / "PERFORMANCE.md"
    text = path.read_text(encoding="utf-8")
    start = text.find("## The agent queue at scale")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("" if end < 0 else text[end:])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=JUDGED_SEED)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--callers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--waits-every", type=int, default=25)
    parser.add_argument("--ref-waits-every", type=int, default=1000)
    parser.add_argument("--check-agents", type=int, default=120)
    parser.add_argument("--check-callers", type=int, default=1500)
    parser.add_argument("--check-events", type=int, default=3000)
    parser.add_argument("--only", choices=["authority", "reference"],
                        help="time one implementation (for profiling); no report")
    parser.add_argument("--write", action="store_true", help="update docs/PERFORMANCE.md")
    opts = parser.parse_args()
    logging.getLogger("ivr.acd").setLevel(logging.ERROR)  # agents paused for misses: expected
    if opts.only:
        every = opts.waits_every if opts.only == "authority" else opts.ref_waits_every
        run = Driver(opts.only, opts.seed, opts.agents, opts.callers).play(opts.events, every)
        for kind in (*EVENT_KINDS, PER_CALLER):
            if run.times[kind]:
                median, p99, n = summary(run.times[kind])
                print(f"{kind:21} median {fmt_us(median):>9}  p99 {fmt_us(p99):>9}  n {n}")
        return 0
    load = os.getloadavg()[0]
    checked = check(CHECK_SEED, opts.check_agents, opts.check_callers, opts.check_events)
    print(f"side by side: {checked} decisions alike", flush=True)
    gc.collect()
    ours = Driver("authority", opts.seed, opts.agents, opts.callers).play(opts.events,
                                                                           opts.waits_every)
    print("authority done", flush=True)
    gc.collect()
    ref = Driver("reference", opts.seed, opts.agents, opts.callers).play(opts.events,
                                                                         opts.ref_waits_every)
    if ours.decisions != ref.decisions:
        raise SystemExit("the authority and the reference decided differently on the stream")
    section = report(opts, ours, ref, checked, load)
    print(section)
    if opts.write:
        write_performance(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
