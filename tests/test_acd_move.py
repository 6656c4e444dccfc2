"""A supervisor moves a waiting caller (QueueAuthority.move, docs/ACD.md "Moving a caller"): to
the head of their queue or to another queue, in the authority on a virtual clock, in the
enqueue step (what the caller hears, what the record says, what the report counts), and over
the authority's real Unix socket (the control op and the worker's notice)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from acd_helpers import Client, Recorder
from acd_helpers import sock_dir as sock_dir  # the fixture
from engine_harness import Call

from ivr.acd.authority import QueueAuthority, QueueError
from ivr.acd.model import AgentSpec, AgentState, ExitReason, Outcome, QueueSpec, Ticket
from ivr.acd.service import AcdService
from ivr.core import events as ev
from ivr.core.clock import LoopClock, VirtualClock
from ivr.engine.queueing import AgentOffer, QueueRequest
from ivr.host.queues import AuthorityQueues
from ivr.sim.channel import AgentPlan
from ivr.store.db import CallStore, connect
from ivr.store.queuereport import read_entries

ANN = AgentSpec("ann", "Ann", {"general": 5})
BO = AgentSpec("bo", "Bo", {"general": 5})
QUEUES = [QueueSpec("line", ring_timeout=15, retry_delay=5, max_wait=600, members=("ann",)),
          QueueSpec("side", ring_timeout=15, retry_delay=5, max_wait=100, max_callers=2,
                    members=("bo",))]  # fmt: skip


def centre() -> tuple[QueueAuthority, Recorder, VirtualClock]:
    clock = VirtualClock()
    rec = Recorder()
    auth = QueueAuthority([ANN, BO], QUEUES, clock, rec)
    for agent in ("ann", "bo"):
        auth.login(agent)  # logged in, no phone: callers wait, nobody rings
    return auth, rec, clock


def test_to_the_head_the_caller_is_next_and_the_longest_wait_is_still_true() -> None:
    auth, rec, clock = centre()
    for n, priority in enumerate((7, 5, 5)):
        assert auth.join(Ticket(f"c{n}", "line", priority)) is None
        clock.advance(10)
    assert [auth.position(f"c{n}") for n in range(3)] == [1, 2, 3]
    auth.move("c2", head=True)
    assert [auth.position(f"c{n}") for n in range(3)] == [2, 3, 1]
    assert auth.waiting["c2"].ticket.priority == 7  # the head's, so nobody of 7 passes it
    [line] = [q for q in auth.queue_status() if q.name == "line"]
    assert (line.waiting, line.longest_wait) == (3, 30.0)  # c0's: c2's place is not its join
    auth.move("c1", head=True)
    assert [auth.position(f"c{n}") for n in range(3)] == [3, 1, 2]
    assert rec.moves == [("c2", "line", "line"), ("c1", "line", "line")]
    # the head is served first when an agent comes in
    auth.registered("ann", "sip:ann@127.0.0.1", 600)
    assert [o.call_id for o in rec.offers] == ["c1"]
    assert [(c.call_id, c.position) for c in auth.caller_status()] == \
        [("c1", 1), ("c2", 2), ("c0", 3)]  # fmt: skip


def test_to_another_queue_what_rang_is_withdrawn_and_the_new_queues_agents_take_it() -> None:
    auth, rec, clock = centre()
    auth.registered("ann", "sip:ann@127.0.0.1", 600)
    auth.join(Ticket("c1", "line"))
    [ringing] = rec.offers
    assert ringing.agent == "ann" and auth.agents["ann"].state == AgentState.RINGING
    clock.advance(10)
    auth.move("c1", "side")
    assert rec.withdrawn == [ringing] and auth.agents["ann"].state == AgentState.AVAILABLE
    assert auth.waiting["c1"].ticket.queue == "side" and auth.position("c1") == 1
    assert not auth.result(ringing.id, Outcome.NO_ANSWER)  # the withdrawn offer is settled
    clock.advance(95)  # past side's 100 s max wait counted from the join, not from the move
    assert rec.exits == []
    auth.registered("bo", "sip:bo@127.0.0.1", 600)
    assert [o.agent for o in rec.offers] == ["ann", "bo"]  # side's member, never ann again
    clock.advance(6)  # 100 s after the move: side's max wait
    assert rec.exits == [("c1", ExitReason.MAX_WAIT)]


def test_moves_that_cannot_be_are_refused_and_change_nothing() -> None:
    auth, rec, _ = centre()
    auth.join(Ticket("c1", "line"))
    auth.join(Ticket("s1", "side"))
    auth.join(Ticket("s2", "side"))
    with pytest.raises(QueueError, match="not waiting"):
        auth.move("nobody", "side")
    with pytest.raises(QueueError, match="no queue"):
        auth.move("c1", "elsewhere")
    with pytest.raises(QueueError, match="already"):
        auth.move("c1", "line")
    with pytest.raises(QueueError, match="full"):
        auth.move("c1", "side")  # side holds two callers at most
    auth.leave("s2")
    auth.logout("bo")  # side's only member: only its waiting callers ...
    with pytest.raises(QueueError, match="nobody logged in"):
        auth.move("c1", "side")  # ... no caller is moved to where nobody could take them
    assert auth.waiting["c1"].ticket.queue == "line" and rec.moves == []


# --- the caller's side ------------------------------------------------------------------------

FLOW = """
flow: m
languages: [en]
start: agent
nodes:
  agent:
    enqueue:
      queue: line
      prompt: "Please hold."
      announce: {every: 30, min_interval: 15}
"""


def test_the_moved_caller_keeps_waiting_hears_the_new_position_and_the_record_tells(
        tmp_path: Path) -> None:  # fmt: skip
    clock = VirtualClock()
    auth = QueueAuthority([ANN, BO], QUEUES, clock)
    queues = AuthorityQueues(auth)
    for agent in ("ann", "bo"):
        auth.login(agent)
    auth.join(Ticket("someone", "side"))  # already in side: the caller will be second there
    plans = {"bo": AgentPlan(answer_after=2, handle=30)}
    call = Call(FLOW, clock=clock, queues=queues, agents=plans.get, call_id="m1").start()
    call.finish_prompt()  # "Please hold."
    call.finish_prompt()  # "You are next in line."
    assert call.prompts[-1] == "hold_music"
    music = call.channel.playing
    clock.advance(20)
    auth.move("m1", "side")
    [moved] = call.of(ev.QUEUE_MOVED)
    assert (moved.data["queue"], moved.data["from"], moved.data["head"]) == ("side", "line", False)
    assert moved.data["queue_wait"] >= 20.0  # since the caller joined (the prompts' time too)
    assert call.channel.playing is music  # nothing cut, nothing said at the move
    call.run(15)  # the next announcement: second in side now
    said = call.of(ev.QUEUE_ANNOUNCE)[-1].data
    assert said["position"] == 2
    auth.leave("someone")
    auth.registered("bo", "sim:bo", 600)
    call.run(40)
    [connected] = call.of(ev.AGENT_CONNECTED)
    assert connected.data["agent"] == "bo" and connected.data["queue_wait"] > 20.0
    assert call.outcome == "agent"
    with CallStore(tmp_path / "calls.db") as store:
        store.write_many(call.events)
        store.flush()
    conn = connect(tmp_path / "calls.db")
    try:
        entries = read_entries(conn, "1 = 1", [])
    finally:
        conn.close()
    assert [(e.queue, e.end, e.agent) for e in entries] == \
        [("line", "moved", None), ("side", "answered", "bo")]  # fmt: skip
    assert entries[0].wait == moved.data["queue_wait"]


# --- over the socket ----------------------------------------------------------------------------


def test_a_control_client_lists_and_moves_callers_and_the_worker_hears_of_it(
        sock_dir: Path) -> None:  # fmt: skip
    async def main() -> None:
        path = sock_dir / "acd.sock"
        service = AcdService(QueueAuthority([ANN, BO], QUEUES, LoopClock()), path)
        await service.start()
        try:
            control, worker = await Client.open(path), await Client.open(path)
            await worker.hello(1)
            for agent in ("ann", "bo"):
                await control.send("agents", action="login", agent=agent)
                await control.expect("agents")
            for call_id in ("w1", "w2"):
                await worker.send("join", call_id=call_id, queue="line", priority=5, skills=[],
                                  tier="general", language="en", caller="+100")  # fmt: skip
                assert (await worker.expect("joined"))["exit"] is None
            await control.send("callers")
            listed = (await control.expect("callers"))["callers"]
            assert [(c["call_id"], c["queue"], c["position"]) for c in listed] == \
                [("w1", "line", 1), ("w2", "line", 2)]  # fmt: skip
            assert set(listed[0]) == {"call_id", "queue", "position", "waited", "priority",
                                      "ringing", "callback"}  # no caller number  # fmt: skip
            await control.send("move", call_id="w2", head=True)
            answer = await control.expect("moved")
            assert (answer["queue"], answer["from"], answer["position"]) == ("line", "line", 1)
            notice = await worker.expect("moved")
            assert (notice["call_id"], notice["queue"], notice["from"]) == ("w2", "line", "line")
            await control.send("move", call_id="w1", queue="side")
            assert (await control.expect("moved"))["queue"] == "side"
            assert (await worker.expect("moved"))["from"] == "line"
            for bad, code in (({"call_id": "w1", "queue": "nowhere"}, "refused"),
                              ({"call_id": "gone", "head": True}, "refused"),
                              ({"call_id": "w1", "head": "yes"}, "bad_message"),
                              ({"queue": "side"}, "bad_message")):  # fmt: skip
                await control.send("move", **bad)
                error = await control.expect("error")
                assert error["code"] == code, (bad, error)
            await control.send("status")  # the connection goes on after errors
            assert (await control.expect("status"))["queues"][1]["waiting"] == 1
            await worker.nothing()
        finally:
            await service.stop()

    asyncio.run(main())


class Waiter:
    """An enqueue step's side, as told by the queue (AuthorityQueues)."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str]] = []

    def on_offer(self, offer: AgentOffer) -> None:
        self.told.append(("offer", offer.agent))

    def on_withdraw(self, offer_id: int) -> None:
        self.told.append(("withdraw", str(offer_id)))

    def on_queue_exit(self, reason: str) -> None:
        self.told.append(("exit", reason))

    def on_queue_moved(self, queue: str, old_queue: str) -> None:
        self.told.append(("moved", f"{old_queue}->{queue}"))


def test_in_one_ivr_serve_the_move_reaches_the_callers_step_in_the_process(
        sock_dir: Path) -> None:  # fmt: skip
    async def main() -> None:
        path = sock_dir / "acd.sock"
        authority = QueueAuthority([ANN, BO], QUEUES, LoopClock())
        service = AcdService(authority, path)
        queues = AuthorityQueues(authority, worker=0)
        service.add_local(0, queues)  # as a single ivr serve wires it
        await service.start()
        try:
            control = await Client.open(path)
            for agent in ("ann", "bo"):
                await control.send("agents", action="login", agent=agent)
                await control.expect("agents")
            waiter = Waiter()
            place = queues.join("l1", QueueRequest("line", 5, (), "en"), waiter)
            assert not isinstance(place, str)
            await control.send("move", call_id="l1", queue="side")
            assert (await control.expect("moved"))["position"] == 1
            assert waiter.told == [("moved", "line->side")]
        finally:
            await service.stop()

    asyncio.run(main())
