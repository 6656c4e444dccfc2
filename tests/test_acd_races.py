"""The races that leave other ACDs' agents stuck, driven at random against the real queue
authority and real call objects: engine sessions running the enqueue step on simulated channels
whose agents answer, reject or let it ring, on one virtual clock.

Callers hang up at every point (waiting, while an agent rings, after the bridge), agents pause,
log out, lose their registration, reject and let calls ring out, a worker process dies with its
calls. Afterwards: no agent is left ringing or on a call without a live call, no caller is left
waiting without a call, no agent leg outlives its caller, and every call that ended has a
complete record.
"""

from __future__ import annotations

import contextlib
from typing import Any

from engine_harness import Call
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ivr.acd.authority import QueueAuthority, QueueError
from ivr.acd.model import AgentSpec, AgentState, ExitReason, Offer, QueueSpec, Ticket
from ivr.core import events as ev
from ivr.core.clock import VirtualClock
from ivr.host.queues import AuthorityQueues
from ivr.sim.channel import AgentPlan

FLOW = """
flow: q
languages: [en]
start: agent
nodes:
  agent:
    enqueue:
      queue: line
      priority: "= 9 if call.caller == 'vip' else 5"
      prompt: "Please hold."
      whisper: "A caller."
      announce: {every: 20, min_interval: 10}
      keys: {"9": bye}
      on_no_agents: bye
      on_max_wait: bye
  bye:
    hangup: {prompt: "Goodbye."}
"""
AGENTS = ("a1", "a2", "a3")
PLANS = {"fast": AgentPlan(answer_after=1, handle=20), "slow": AgentPlan(answer_after=30),
         "rude": AgentPlan(rejects=True, answer_after=2),
         "chatty": AgentPlan(answer_after=3, handle=200)}  # fmt: skip


class ByWorker:
    """The authority's listener routing to each worker's queues, as AcdService does."""

    def __init__(self, queues: dict[int, AuthorityQueues]) -> None:
        self.queues = queues

    def offer(self, offer: Offer) -> None:
        self.queues[offer.worker].offer(offer)

    def withdraw(self, offer: Offer) -> None:
        self.queues[offer.worker].withdraw(offer)

    def exit(self, ticket: Ticket, reason: ExitReason) -> None:
        self.queues[ticket.worker].exit(ticket, reason)

    def moved(self, ticket: Ticket, old_queue: str) -> None:
        self.queues[ticket.worker].moved(ticket, old_queue)


class CentreMachine(RuleBasedStateMachine):
    @initialize(plans=st.lists(st.sampled_from(sorted(PLANS)), min_size=3, max_size=3))
    def start(self, plans: list[str]) -> None:
        self.clock = VirtualClock()
        specs = [AgentSpec(a, skills={"general": 5}, wrap_up=2, max_misses=2) for a in AGENTS]
        self.authority = QueueAuthority(specs, [
            QueueSpec("line", ring_timeout=10, retry_delay=2, max_wait=300),
            # where supervisors move callers: two agents, three callers at most, a short wait
            QueueSpec("side", ring_timeout=8, retry_delay=3, max_wait=40, max_callers=3,
                      members=("a1", "a2"))], self.clock)  # fmt: skip
        self.queues = {w: AuthorityQueues(self.authority, worker=w) for w in (0, 1)}
        self.authority.listener = ByWorker(self.queues)  # as the service routes them
        self.plans = dict(zip(AGENTS, (PLANS[p] for p in plans), strict=True))
        self.calls: list[tuple[int, Call]] = []
        self.dead: set[int] = set()
        for agent in AGENTS:
            self.authority.registered(agent, f"sim:{agent}", 600)
            self.authority.login(agent)

    def live(self) -> list[Call]:
        return [c for w, c in self.calls if w not in self.dead and not c.session.finished]

    @rule(worker=st.sampled_from([0, 1]), vip=st.booleans())
    def a_caller_comes(self, worker: int, vip: bool) -> None:
        if worker in self.dead:
            return
        call = Call(FLOW, clock=self.clock, queues=self.queues[worker],
                    agents=self.plans.get, caller="vip" if vip else "+8613800000001",
                    call_id=f"w{worker}-c{len(self.calls)}").start()  # fmt: skip
        self.calls.append((worker, call))

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data())
    def a_caller_hangs_up(self, data: st.DataObject) -> None:
        data.draw(st.sampled_from(self.live())).hangup()

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data())
    def a_caller_presses_the_exit_key(self, data: st.DataObject) -> None:
        data.draw(st.sampled_from(self.live())).press("9")

    @rule(agent=st.sampled_from(AGENTS),
          action=st.sampled_from(["login", "logout", "pause", "resume", "unregister",
                                  "register"]))  # fmt: skip
    def an_agent_acts(self, agent: str, action: str) -> None:
        if action == "register":
            self.authority.registered(agent, f"sim:{agent}", 60)
        elif action == "unregister":
            self.authority.registered(agent, None)
        elif action == "pause":
            with contextlib.suppress(QueueError):  # logged out
                self.authority.pause(agent, "break")
        else:
            getattr(self.authority, action)(agent)

    @precondition(lambda self: bool(self.authority.waiting))
    @rule(data=st.data(), queue=st.sampled_from(["line", "side", None]), head=st.booleans())
    def a_supervisor_moves_a_caller(self, data: st.DataObject, queue: str | None,
                                    head: bool) -> None:  # fmt: skip
        call_id = data.draw(st.sampled_from(sorted(self.authority.waiting)))
        with contextlib.suppress(QueueError):  # nothing to do, full, nobody to take them
            self.authority.move(call_id, queue, head)
            if head:
                assert self.authority.position(call_id) == 1

    @rule(seconds=st.sampled_from([0.5, 1.5, 4, 11, 25, 70]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: 1 not in self.dead)
    @rule()
    def worker_1_dies(self) -> None:
        """Its calls are gone with it: no events, no hang-ups; the authority hears it from
        the closed connection."""
        self.dead.add(1)
        for worker, call in self.calls:
            if worker == 1:
                call.channel._end("worker died")  # the process is gone: nothing more happens
        self.authority.worker_gone(1)

    @invariant()
    def nothing_is_stuck(self) -> None:
        auth = self.authority
        alive = {c.session.call_id: c for c in self.live()}
        for agent in auth.agents.values():
            if agent.state == AgentState.RINGING:
                offer = agent.offer
                assert offer is not None and offer.call_id in alive, (agent, offer)
                assert offer.id in alive[offer.call_id].channel.agent_legs
            if agent.state == AgentState.ON_CALL:
                call = alive.get(agent.call_id or "")
                assert call is not None, f"{agent.spec.id} on a call nobody is on"
                assert call.channel.bridged == agent.spec.id
        for call_id in auth.waiting:
            assert call_id in alive, f"{call_id} waits in the queue without a call"
        for worker, call in self.calls:
            channel = call.channel
            if channel.ended:  # no agent leg outlives its caller
                assert not channel.agent_legs
            if call.session.finished and worker not in self.dead:
                end = call.of(ev.CALL_END)
                assert len(end) == 1 and end[0].data["outcome"]
                queue_events = [e.kind for e in call.events if e.kind in (
                    ev.AGENT_CONNECTED, ev.AGENT_DONE)]  # fmt: skip
                # a call that reached an agent records the end of the agent's call too
                assert queue_events in ([], [ev.AGENT_CONNECTED, ev.AGENT_DONE]), queue_events

    @invariant()
    def the_lines_agree(self) -> None:
        """Every waiting caller's key is in their queue's line, the line of every caller and
        their group's (when no agent rings for them); moves keep it so."""
        auth = self.authority
        for name, queue in auth.queues.items():
            tickets = [w.ticket for w in auth.waiting.values() if w.ticket.queue == name]
            assert queue.keys == sorted(t.sort_key() for t in tickets), name
            assert queue.placed == sum(t.place is not None for t in tickets), name
        assert auth._order == sorted((w.ticket.sort_key(), c) for c, w in auth.waiting.items())
        for waiting in auth.waiting.values():
            assert waiting.group is auth._groups.group(auth._signature(waiting.ticket))
            in_ready = waiting.ticket.sort_key() in waiting.group.ready
            assert in_ready == (not waiting.offers), waiting.ticket
        for group in auth._groups.groups.values():
            assert group.waiting == sum(w.group is group for w in auth.waiting.values())

    def teardown(self) -> None:
        for call in self.live():
            call.hangup()
        self.clock.advance(10)
        auth: Any = getattr(self, "authority", None)
        if auth is None:
            return
        for agent in auth.agents.values():  # everyone free or away, nobody stuck
            assert agent.state not in (AgentState.RINGING, AgentState.ON_CALL), agent
        assert not auth.waiting


CentreMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50,
                                           deadline=None)  # fmt: skip
test_random_interleavings_leave_no_agent_or_caller_stuck = CentreMachine.TestCase
