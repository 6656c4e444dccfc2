"""The queue authority's groups (ivr/acd/groups.py): the counts, free agents and lines it keeps
per caller signature agree with what a walk over every agent and every caller finds, through the
authority's random interleavings (test_acd_authority.py's machine, with registrations that run
out between timers due at the same instant); and a registration that has run out before its
timer ran counts as gone."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule
from test_acd_authority import (
    ACCOUNTS,
    AGENTS,
    FULL,
    GENERAL,
    QUEUE,
    AuthorityMachine,
    Recorder,
    authority,
    caller,
    ready,
)

from ivr.acd.authority import Agent, QueueAuthority, Waiting
from ivr.acd.model import AgentSpec, AgentState, Outcome
from ivr.core.clock import TimerHandle, VirtualClock


def brute_figures(auth: QueueAuthority) -> dict[str, tuple[int, float | None]]:
    """Every caller's position and expected wait, counting every agent and every caller."""
    from ivr.acd.estimator import expected_wait

    now = auth.clock.now()
    out: dict[str, tuple[int, float | None]] = {}
    for call_id, waiting in auth.waiting.items():
        ticket = waiting.ticket
        position = 1 + sum(1 for w in auth.waiting.values() if w.ticket.queue == ticket.queue
                           and w.ticket.sort_key() < ticket.sort_key())  # fmt: skip
        sig = auth._signature(ticket)
        able = sum(1 for a in auth.agents.values()
                   if a.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)
                   and a.contact and a.registered_until > now and auth._serves(a, sig))  # fmt: skip
        out[call_id] = (position, expected_wait(position, able, auth.queues[ticket.queue]
                                                .handle.mean))  # fmt: skip
    return out


class GroupsMachine(AuthorityMachine):
    """The authority's machine, plus registrations that run out at the instant of a timer set
    before them (that timer runs first and finds the registration run out); every caller rung is
    checked to be the one the rules pick at that moment."""

    @initialize()
    def start(self) -> None:
        super().start()
        ring = self.auth._ring

        def checked(waiting: Waiting, agents: list[Agent]) -> None:
            self.check_choice(waiting, agents)
            ring(waiting, agents)

        self.auth._ring = checked  # type: ignore[method-assign]

    def check_choice(self, chosen: Waiting, agents: list[Agent]) -> None:
        """Nobody ahead of ``chosen`` (by priority, then join time, across queues) could have
        been offered to an agent free now; ``agents`` are the free ones able to take ``chosen``,
        less those who missed them unless nobody else is free."""
        auth = self.auth
        now = self.clock.now()
        free = [a for a in auth.agents.values() if a.state == AgentState.AVAILABLE
                and a.contact is not None and a.registered_until > now]  # fmt: skip
        for waiting in auth.waiting.values():
            if waiting.ticket.sort_key() < chosen.ticket.sort_key() and not waiting.offers \
                    and waiting.not_before <= now:
                sig = auth._signature(waiting.ticket)
                assert not any(auth._serves(a, sig) for a in free), (waiting.ticket, chosen)
        assert not chosen.offers and chosen.not_before <= now
        fits = {a.spec.id for a in free if auth._serves(a, auth._signature(chosen.ticket))}
        fresh = fits - chosen.missed_by
        assert {a.spec.id for a in agents} == (fresh or fits)

    @rule(agent=st.sampled_from([a.id for a in AGENTS]), expires=st.sampled_from([1, 2, 5, 10]))
    def register_briefly(self, agent: str, expires: float) -> None:
        self.auth.registered(agent, f"sip:{agent}@127.0.0.1", expires)

    @precondition(lambda self: (self.clock.next_due() or 0.0) > self.clock.now())
    @rule(agent=st.sampled_from([a.id for a in AGENTS]))
    def register_until_the_next_timer(self, agent: str) -> None:
        due = self.clock.next_due()
        assert due is not None
        # runs out at the same instant as a timer set before it: that timer runs first
        self.auth.registered(agent, f"sip:{agent}@127.0.0.1", due - self.clock.now())

    @precondition(lambda self: self.clock.next_due() is not None)
    @rule()
    def to_the_next_timer(self) -> None:
        due = self.clock.next_due()
        assert due is not None
        self.clock.advance(due - self.clock.now())  # every timer due then runs

    @invariant()
    def groups_agree_with_a_walk(self) -> None:
        auth = self.auth
        groups = auth._groups
        now = self.clock.now()
        lapsed = any(a.contact is not None and a.registered_until <= now
                     for a in auth.agents.values())  # fmt: skip
        assert groups.lapsed(now) == lapsed
        assert groups.free_agents == sum(1 for a in auth.agents.values()
                                         if a.state == AgentState.AVAILABLE
                                         and a.contact is not None)  # fmt: skip
        for sig, group in groups.groups.items():
            servers = [a for a in auth.agents.values() if auth._serves(a, sig)]
            assert group.logged_in == sum(1 for a in servers if a.state != AgentState.LOGGED_OUT)
            if not lapsed:
                assert group.working == auth._able_scan(sig, logged_in_only=False, working=True)
            assert set(group.free) == {a.spec.id for a in servers if a.state == AgentState.AVAILABLE
                                       and a.contact is not None}  # fmt: skip
            mine = [w for w in auth.waiting.values() if auth._signature(w.ticket) == sig]
            assert group.waiting == len(mine)
            assert group.ready == sorted(w.ticket.sort_key() for w in mine if not w.offers)
            assert all(w.group is group for w in mine)

    @invariant()
    def figures_agree_with_a_walk(self) -> None:
        auth = self.auth
        brute = brute_figures(auth)
        assert auth.waits() == brute
        for call_id, (position, wait) in brute.items():
            assert auth.position(call_id) == position
            assert auth.expected_wait(call_id) == wait
        now = self.clock.now()
        for status in auth.queue_status():
            joined = [w.ticket.joined_at for w in auth.waiting.values()
                      if w.ticket.queue == status.name]  # fmt: skip
            assert status.longest_wait == now - min(joined, default=now)
            assert status.waiting == len(joined)


GroupsMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=60,
                                           deadline=None)  # fmt: skip
test_groups_agree_with_a_walk_through_random_interleavings = GroupsMachine.TestCase


def test_a_caller_whose_agent_pauses_while_ringing_is_offered_to_the_next_free_agent() -> None:
    auth, rec, _ = authority(GENERAL, ACCOUNTS)
    ready(auth, "g1")
    auth.join(caller("c1"))
    auth.pause("g1", "phone trouble")  # while ringing: withdrawn, c1 back in line
    assert rec.withdrawn == rec.offers
    ready(auth, "a1")
    assert [(o.call_id, o.agent) for o in rec.offers] == [("c1", "g1"), ("c1", "a1")]


def test_a_missed_caller_goes_to_another_free_agent_before_the_one_who_missed() -> None:
    auth, rec, clock = authority(GENERAL, ACCOUNTS)
    ready(auth, "g1")  # idle longest: first choice of longest-idle
    clock.advance(1)
    auth.join(caller("c1"))
    ready(auth, "a1")
    auth.result(rec.offers[0].id, Outcome.NO_ANSWER)
    clock.advance(5)  # the retry delay: g1 and a1 are both free
    assert [(o.call_id, o.agent) for o in rec.offers] == [("c1", "g1"), ("c1", "a1")]


def test_callers_with_different_needs_are_served_by_priority_then_join_time() -> None:
    auth, rec, clock = authority(FULL)
    ready(auth, "f1")
    auth.pause("f1")
    auth.join(caller("retail-en"))
    clock.advance(1)
    auth.join(caller("accounts", skills=("accounts",), tier="accounts"))
    clock.advance(1)
    auth.join(caller("corporate-zh", priority=9, language="zh"))
    auth.resume("f1")
    for _ in range(3):
        auth.result(rec.offers[-1].id, Outcome.ANSWERED)
        auth.ended("f1")  # no wrap-up: the next caller at once
    assert [o.call_id for o in rec.offers] == ["corporate-zh", "retail-en", "accounts"]


class _Never:
    def cancel(self) -> None:
        pass


class StuckClock(VirtualClock):
    """Time moves, timers never run (an event loop far behind)."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return _Never()


def test_a_registration_run_out_before_its_timer_ran_is_neither_offered_nor_counted() -> None:
    brief = AgentSpec("g2", skills={"general": 5}, languages=("en",), wrap_up=0)
    clock = StuckClock()
    rec = Recorder()
    auth = QueueAuthority([GENERAL, brief], [QUEUE], clock, rec)
    auth.registered("g1", "sip:g1@127.0.0.1", 3600)
    auth.registered("g2", "sip:g2@127.0.0.1", 10)
    for agent in ("g1", "g2"):
        auth.login(agent)
        auth.pause(agent)
    assert auth.join(caller("c1")) is None
    clock.advance(11)  # g2's registration ran out; its timer never runs
    assert auth.agents["g2"].contact is not None and auth._groups.lapsed(clock.now())
    auth.resume("g2")
    assert rec.offers == []  # available, but not reachable any more
    assert auth.expected_wait("c1") is None  # g1 paused, g2 unreachable: nobody working
    assert auth.waits() == {"c1": (1, None)}
    assert [q.able_agents for q in auth.queue_status()] == [0]
    auth.resume("g1")
    assert [(o.call_id, o.agent) for o in rec.offers] == [("c1", "g1")]
    assert [q.able_agents for q in auth.queue_status()] == [1]


def test_the_longest_wait_is_the_earliest_join_whatever_the_priority() -> None:
    clock = VirtualClock()
    auth = QueueAuthority([GENERAL], [QUEUE], clock, Recorder())
    auth.login("g1")  # logged in, not registered: callers wait
    for n, priority in enumerate([3, 5, 9, 9, 3]):
        auth.join(caller(f"c{n}", priority=priority))
        clock.advance(10)
    auth.leave("c0")  # the earliest (priority 3) goes: c1 (priority 5, third in line) is next
    assert [q.longest_wait for q in auth.queue_status()] == [40.0]
    assert auth.waits() == {"c2": (1, None), "c3": (2, None), "c1": (3, None), "c4": (4, None)}
