"""The queue authority (ivr/acd/authority.py) on a virtual clock: who rings for whom, and the
races that leave other ACDs' agents stuck, driven at random by hypothesis."""

from __future__ import annotations

import pytest
from acd_helpers import Recorder
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ivr.acd.authority import QueueAuthority, QueueError
from ivr.acd.estimator import spoken_wait
from ivr.acd.model import AgentSpec, AgentState, ExitReason, Offer, Outcome, QueueSpec, Ticket
from ivr.core.clock import VirtualClock

GENERAL = AgentSpec("g1", "Gina", skills={"general": 5}, tier="general", languages=("en",),
                    wrap_up=10)  # fmt: skip
ACCOUNTS = AgentSpec("a1", "Ann", skills={"general": 3, "accounts": 7}, tier="accounts",
                     languages=("en", "zh"), wrap_up=10)  # fmt: skip
FULL = AgentSpec("f1", "Fay", skills={"general": 9, "accounts": 9, "corporate": 9}, tier="full",
                 languages=("en", "zh"), wrap_up=0)  # fmt: skip
QUEUE = QueueSpec("general", ring_timeout=15, retry_delay=5, max_wait=600, max_callers=50)


def authority(*agents: AgentSpec, queue: QueueSpec = QUEUE) -> tuple[QueueAuthority, Recorder,
                                                                     VirtualClock]:  # fmt: skip
    clock = VirtualClock()
    recorder = Recorder()
    return QueueAuthority(agents, [queue], clock, recorder), recorder, clock


def ready(auth: QueueAuthority, agent_id: str) -> None:
    auth.registered(agent_id, f"sip:{agent_id}@127.0.0.1:5070", 3600)
    auth.login(agent_id)


def caller(call_id: str, priority: int = 5, skills: tuple[str, ...] = ("general",),
           tier: str = "general", language: str = "en") -> Ticket:  # fmt: skip
    return Ticket(call_id, "general", priority, skills, tier, language)


def test_a_corporate_caller_overtakes_retail_callers_already_waiting() -> None:
    auth, rec, clock = authority(GENERAL, FULL)
    ready(auth, "g1")
    auth.pause("g1", "lunch")  # logged in (callers may wait) but not taking calls
    for n in range(3):
        assert auth.join(caller(f"retail-{n}")) is None
        clock.advance(10)
    assert auth.join(caller("corp", priority=9)) is None
    assert [auth.position(c) for c in ("corp", "retail-0", "retail-2")] == [1, 2, 4]
    auth.resume("g1")
    assert [o.call_id for o in rec.offers] == ["corp"]


def test_a_caller_needing_account_work_never_rings_a_general_only_agent() -> None:
    auth, rec, clock = authority(GENERAL, ACCOUNTS)
    ready(auth, "g1")
    auth.login("a1")  # logged in, phone not registered yet
    assert auth.join(caller("acct", skills=("accounts",), tier="accounts")) is None
    clock.advance(30)
    assert rec.offers == []  # g1 is free, but may not take it
    auth.registered("a1", "sip:a1@127.0.0.1:5071", 3600)
    assert [(o.call_id, o.agent) for o in rec.offers] == [("acct", "a1")]


def test_a_missed_agent_is_skipped_the_caller_keeps_their_place_and_three_misses_pause() -> None:
    solo = AgentSpec("s1", skills={"general": 1}, max_misses=3)
    auth, rec, clock = authority(solo, GENERAL)
    ready(auth, "s1")
    auth.pause("s1")
    auth.join(caller("first"))
    clock.advance(1)
    auth.join(caller("second"))
    auth.resume("s1")
    assert [(o.agent, o.call_id) for o in rec.offers] == [("s1", "first")]
    auth.result(rec.offers[-1].id, Outcome.NO_ANSWER)
    assert auth.position("first") == 1  # still first in line ...
    assert rec.offers[-1].call_id == "second"  # ... while its retry delay runs, s1 is not idle
    auth.result(rec.offers[-1].id, Outcome.REJECTED)
    clock.advance(5)  # the retry delay: nobody else can take "first": s1 rings again
    assert [(o.agent, o.call_id) for o in rec.offers[-1:]] == [("s1", "first")]
    ringing = rec.offers[-1]
    ready(auth, "g1")  # free now: takes "second" (s1 rings for "first" already)
    assert [(o.agent, o.call_id) for o in rec.offers[-1:]] == [("g1", "second")]
    auth.result(ringing.id, Outcome.NO_ANSWER)  # s1's third miss in a row: paused
    status = {a.id: a for a in auth.agent_status()}
    assert status["s1"].state == AgentState.PAUSED and "missed 3" in status["s1"].reason
    auth.result(rec.offers[-1].id, Outcome.ANSWERED)
    auth.ended("g1")
    clock.advance(5 + GENERAL.wrap_up)
    assert [(o.agent, o.call_id) for o in rec.offers[-1:]] == [("g1", "first")]


def test_exits_full_no_agents_and_max_wait() -> None:
    small = QueueSpec("general", max_callers=1, max_wait=60)
    auth, rec, clock = authority(GENERAL, queue=small)
    assert auth.join(caller("early")) == ExitReason.NO_AGENTS  # nobody logged in
    auth.login("g1")
    auth.pause("g1")
    assert auth.join(caller("one")) is None
    assert auth.join(caller("two")) == ExitReason.FULL
    clock.advance(61)
    assert rec.exits == [("one", ExitReason.MAX_WAIT)] and auth.position("one") is None
    auth.join(caller("three"))
    auth.logout("g1")  # the last agent able to take the call leaves
    assert rec.exits[-1] == ("three", ExitReason.NO_AGENTS)


def test_ring_all_rings_every_free_agent_and_the_first_answer_withdraws_the_rest() -> None:
    auth, rec, _ = authority(GENERAL, ACCOUNTS, FULL,
                             queue=QueueSpec("general", strategy="ring-all"))  # fmt: skip
    for agent in ("g1", "a1", "f1"):
        ready(auth, agent)
    auth.join(caller("c"))
    assert sorted(o.agent for o in rec.offers) == ["a1", "f1", "g1"]
    answered = next(o for o in rec.offers if o.agent == "a1")
    assert auth.result(answered.id, Outcome.ANSWERED)
    assert sorted(o.agent for o in rec.withdrawn) == ["f1", "g1"]
    states = {a.id: a.state for a in auth.agent_status()}
    assert states == {"g1": AgentState.AVAILABLE, "a1": AgentState.ON_CALL,
                      "f1": AgentState.AVAILABLE}  # fmt: skip
    assert not auth.result(answered.id, Outcome.NO_ANSWER)  # settled once


@pytest.mark.parametrize(("strategy", "expected"), [
    ("round-robin", ["g1", "a1", "f1", "g1"]),
    ("fewest-calls", ["g1", "a1", "f1", "g1"]),
    ("skill-level", ["f1", "f1", "f1", "f1"]),
])  # fmt: skip
def test_strategies_pick_in_their_order(strategy: str, expected: list[str]) -> None:
    agents = [AgentSpec(a.id, skills=a.skills, tier=a.tier, wrap_up=0)
              for a in (GENERAL, ACCOUNTS, FULL)]  # fmt: skip
    auth, rec, clock = authority(*agents, queue=QueueSpec("general", strategy=strategy))
    for agent in ("g1", "a1", "f1"):
        ready(auth, agent)
        clock.advance(1)
    for n in range(4):
        auth.join(caller(f"c{n}"))
        offer = rec.offers[-1]
        auth.result(offer.id, Outcome.ANSWERED)
        auth.ended(offer.agent)
        clock.advance(1)
    assert [o.agent for o in rec.offers] == expected


def test_wrap_up_then_the_next_caller_and_a_pause_waits_for_the_end_of_the_call() -> None:
    auth, rec, clock = authority(GENERAL)
    ready(auth, "g1")
    auth.join(caller("c1"))
    auth.join(caller("c2"))
    auth.result(rec.offers[0].id, Outcome.ANSWERED)
    auth.pause("g1", "coffee")  # asked for during the call
    assert {a.id: a.state for a in auth.agent_status()}["g1"] == AgentState.ON_CALL
    auth.ended("g1")
    assert {a.id: a.state for a in auth.agent_status()}["g1"] == AgentState.WRAP_UP
    clock.advance(10)
    status = {a.id: a for a in auth.agent_status()}["g1"]
    assert status.state == AgentState.PAUSED and status.reason == "coffee"
    assert len(rec.offers) == 1
    auth.resume("g1")
    assert [o.call_id for o in rec.offers] == ["c1", "c2"]


def test_an_offer_without_a_result_counts_as_no_answer() -> None:
    auth, rec, clock = authority(GENERAL)
    ready(auth, "g1")
    auth.join(caller("c"))
    clock.advance(QUEUE.ring_timeout + 5.1)
    assert rec.withdrawn == rec.offers[:1]
    assert auth.agents["g1"].misses == 1


def test_expected_wait_follows_position_agents_and_handle_times() -> None:
    agents = [AgentSpec(f"x{n}", skills={"general": 1}, wrap_up=0) for n in range(2)]
    auth, rec, clock = authority(*agents)
    for agent in ("x0", "x1"):
        ready(auth, agent)
    for n in range(6):
        auth.join(caller(f"c{n}"))
    for offer in list(rec.offers):
        auth.result(offer.id, Outcome.ANSWERED)
    clock.advance(120)
    auth.ended("x0")  # a handle time of 120 s pulls the mean down from the 180 s default
    handle = auth.queues["general"].handle.mean
    assert handle == 120.0
    # c3 is now first (c2 was offered to x0 at once); two agents: one round of 120 s.
    waiting = sorted(auth.waiting, key=lambda c: auth.position(c) or 0)
    assert auth.expected_wait(waiting[0]) == 120.0
    assert auth.expected_wait(waiting[-1]) == 240.0
    assert spoken_wait(240.0) is not None and spoken_wait(240.0).minutes == 4
    assert spoken_wait(61.0).minutes == 2  # rounded up: never promise less than the estimate
    assert spoken_wait(3600.0).over


def test_a_dead_worker_takes_its_callers_and_frees_its_agents() -> None:
    auth, rec, _ = authority(GENERAL, ACCOUNTS)
    ready(auth, "g1")
    ready(auth, "a1")
    auth.join(Ticket("w1-a", "general", skills=("general",), worker=1))
    auth.join(Ticket("w1-b", "general", skills=("general",), worker=1))
    auth.join(Ticket("w2-a", "general", skills=("general",), worker=2))
    first = rec.offers[0]
    auth.result(first.id, Outcome.ANSWERED)
    auth.worker_gone(1)
    assert set(auth.waiting) == {"w2-a"}
    assert all(a.state != AgentState.ON_CALL or a.call_id == "w2-a" for a in auth.agent_status())


def test_unknown_queue_agent_and_a_caller_joining_twice_are_refused() -> None:
    auth, _, _ = authority(GENERAL)
    with pytest.raises(QueueError, match="no queue 'nope'"):
        auth.join(Ticket("x", "nope"))
    with pytest.raises(QueueError, match="no agent"):
        auth.login("nobody")
    auth.login("g1")
    auth.join(caller("twice"))
    with pytest.raises(QueueError, match="already waiting"):
        auth.join(caller("twice"))


# --- random interleavings -------------------------------------------------------------------

AGENTS = [
    AgentSpec("g1", skills={"general": 3}, tier="general", languages=("en",), wrap_up=5,
              max_misses=2),
    AgentSpec("g2", skills={"general": 5}, tier="general", wrap_up=0, max_misses=3),
    AgentSpec("a1", skills={"general": 2, "accounts": 6}, tier="accounts", wrap_up=3),
    AgentSpec("f1", skills={"general": 9, "accounts": 9}, tier="full", languages=("en", "zh"),
              wrap_up=1),
]  # fmt: skip
QUEUES = [QueueSpec("general", ring_timeout=15, retry_delay=5, max_wait=300, max_callers=6),
          QueueSpec("vip", strategy="ring-all", ring_timeout=10, retry_delay=2)]  # fmt: skip


class AuthorityMachine(RuleBasedStateMachine):
    """Callers come and go, agents answer, miss, pause and vanish, workers die, time passes:
    afterwards nothing is stuck."""

    @initialize()
    def start(self) -> None:
        self.clock = VirtualClock()
        self.rec = Recorder()
        self.auth = QueueAuthority(AGENTS, QUEUES, self.clock, self.rec)
        self.calls = 0
        self.settled: set[int] = set()

    def open_offers(self) -> list[Offer]:
        return [o for o, _ in self.auth._offers.values()]

    @rule(queue=st.sampled_from(["general", "vip"]), priority=st.integers(0, 10),
          needs=st.sampled_from([("general", "general"), ("accounts", "accounts")]),
          language=st.sampled_from(["en", "zh"]), worker=st.integers(0, 2))  # fmt: skip
    def join(self, queue: str, priority: int, needs: tuple[str, str], language: str,
             worker: int) -> None:  # fmt: skip
        self.calls += 1
        ticket = Ticket(f"c{self.calls}", queue, priority, (needs[0],), needs[1], language,
                        worker)  # fmt: skip
        self.auth.join(ticket)

    @precondition(lambda self: bool(self.auth.waiting))
    @rule(data=st.data())
    def caller_hangs_up(self, data: st.DataObject) -> None:
        self.auth.leave(data.draw(st.sampled_from(sorted(self.auth.waiting))))

    @precondition(lambda self: bool(self.auth.waiting))
    @rule(data=st.data())
    def caller_asks_to_be_called_back(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.auth.waiting)))
        position = self.auth.position(call_id)
        assert self.auth.callback(call_id, "+8613800000001")
        assert self.auth.position(call_id) == position  # the place is kept
        # what rang for the caller on the line stopped; a free agent is offered the callback
        offers = self.auth.waiting[call_id].offers.values()
        assert all(o.callback == "+8613800000001" for o in offers)

    @precondition(lambda self: bool(self.auth._offers))
    @rule(data=st.data(), outcome=st.sampled_from(list(Outcome)))
    def offer_ends(self, data: st.DataObject, outcome: Outcome) -> None:
        offer = data.draw(st.sampled_from(sorted(self.open_offers(), key=lambda o: o.id)))
        assert self.auth.result(offer.id, outcome)
        assert not self.auth.result(offer.id, outcome)  # a repeated report changes nothing

    @rule(agent=st.sampled_from([a.id for a in AGENTS]),
          action=st.sampled_from(["login", "logout", "pause", "resume", "register",
                                  "unregister", "end_call"]))  # fmt: skip
    def agent_acts(self, agent: str, action: str) -> None:
        if action == "register":
            self.auth.registered(agent, f"sip:{agent}@127.0.0.1", 120)
        elif action == "unregister":
            self.auth.registered(agent, None)
        elif action == "end_call":
            self.auth.ended(agent)
        elif action == "pause":
            try:
                self.auth.pause(agent, "break")
            except QueueError:
                assert self.auth.agents[agent].state == AgentState.LOGGED_OUT
        else:
            getattr(self.auth, action)(agent)

    @rule(seconds=st.sampled_from([0.5, 3, 6, 16, 25, 130]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(worker=st.integers(0, 2), heir=st.sampled_from([None, 0, 1, 2]))
    def worker_dies(self, worker: int, heir: int | None) -> None:
        promised = {c for c, w in self.auth.waiting.items() if w.ticket.worker == worker
                    and w.ticket.callback is not None} | {t.call_id for t in self.auth.orphans}
        self.auth.worker_gone(worker, None if heir == worker else heir)
        assert all(w.ticket.worker != worker for w in self.auth.waiting.values())
        # callbacks are kept: with the heir, or out of line until a worker adopts them
        kept = {c for c, w in self.auth.waiting.items() if w.ticket.callback is not None}
        assert promised <= kept | {t.call_id for t in self.auth.orphans}

    @precondition(lambda self: bool(self.auth.orphans))
    @rule(worker=st.integers(0, 2))
    def worker_adopts(self, worker: int) -> None:
        orphans = [t.call_id for t in self.auth.orphans]
        assert self.auth.adopt(worker) == len(orphans)
        assert not self.auth.orphans
        assert all(self.auth.waiting[c].ticket.worker == worker for c in orphans)

    @invariant()
    def nothing_is_stuck(self) -> None:
        auth = self.auth
        offers = {o.id: o for o in self.open_offers()}
        for agent in auth.agents.values():
            ringing = [o for o in offers.values() if o.agent == agent.spec.id]
            if agent.state == AgentState.RINGING:
                # rings for exactly one caller, who is still waiting
                assert len(ringing) == 1 and agent.offer == ringing[0]
                assert ringing[0].call_id in auth.waiting
            else:
                assert not ringing
            if agent.state == AgentState.ON_CALL:
                assert agent.call_id is not None and agent.call_id not in auth.waiting
            if agent.state in (AgentState.PAUSED, AgentState.LOGGED_OUT):
                assert agent.call_id is None or agent.pending is None
        for offer in offers.values():
            waiting = auth.waiting[offer.call_id]
            assert offer.id in waiting.offers
        for waiting in auth.waiting.values():
            assert set(waiting.offers) <= set(offers)
        # every offer the listener was given is open, or was settled or withdrawn: never lost
        told = {o.id for o in self.rec.offers}
        assert set(offers) <= told
        # work-conserving: no free agent next to a caller they could take now
        now = self.clock.now()
        for waiting in auth.waiting.values():
            if waiting.offers or waiting.not_before > now:
                continue
            sig = auth._signature(waiting.ticket)
            for agent in auth.agents.values():
                if agent.state == AgentState.AVAILABLE and agent.contact \
                        and agent.registered_until > now:
                    assert not auth._serves(agent, sig), (agent.spec.id, waiting.ticket)
        # the authority's books agree with themselves
        assert len(auth._order) == len(auth.waiting) == len(auth._by_key)
        assert sum(len(q.keys) for q in auth.queues.values()) == len(auth.waiting)


AuthorityMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60,
                                              deadline=None)  # fmt: skip
test_random_interleavings_leave_nothing_stuck = AuthorityMachine.TestCase


def test_caller_gone_removes_the_caller_so_it_is_never_offered_again() -> None:
    """A worker that finds no call for an offer reports caller_gone: the ticket goes (before
    this, the authority offered the same caller again at once, for ever)."""
    auth, rec, _ = authority(GENERAL)
    ready(auth, "g1")
    auth.join(caller("ghost"))
    assert auth.result(rec.offers[0].id, Outcome.CALLER_GONE)
    assert auth.position("ghost") is None and len(rec.offers) == 1
    assert {a.id: a.state for a in auth.agent_status()}["g1"] == AgentState.AVAILABLE
