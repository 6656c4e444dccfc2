"""The engine's enqueue step over RemoteQueues (ivr/host/remote_queues.py) to the queue authority
on its thread and socket (ivr/acd/service.py), as a worker of ``ivr serve --workers N`` runs it:
real time on a LoopClock, agents simulated on the SimChannel, agents logged in by ``ivr agents``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from acd_helpers import ANN, BOB, GINA, Client
from acd_helpers import sock_dir as sock_dir  # the fixture
from engine_harness import Call

from ivr.acd import wire
from ivr.acd.authority import QueueAuthority
from ivr.acd.model import AgentState, Offer, Outcome, QueueSpec, Ticket
from ivr.acd.service import AcdService, ServiceThread
from ivr.cli.main import main
from ivr.core import events as ev
from ivr.core.clock import Clock, LoopClock
from ivr.engine.queueing import AgentOffer, QueueRequest
from ivr.host.queues import AuthorityQueues
from ivr.host.remote_queues import RemoteQueues
from ivr.sim.channel import AgentPlan

FLOW = """
flow: q
languages: [en]
start: agent
nodes:
  agent:
    enqueue:
      queue: {queue}
      skills: [accounts]
      tier: accounts
      announce: {{every: 30, min_interval: 15}}
      on_no_agents: closed
      after: thanks
  closed:
    hangup: {{prompt: "We are closed.", outcome: failed}}
  thanks:
    hangup: {{prompt: "Thank you."}}
"""
QUEUE = QueueSpec("general", ring_timeout=3, retry_delay=0.2, max_wait=600)


@pytest.fixture
def authority(sock_dir: Path) -> Iterator[ServiceThread]:
    def build(clock: Clock) -> QueueAuthority:
        return QueueAuthority([ANN, BOB, GINA], [QUEUE], clock)

    thread = ServiceThread(build, sock_dir / "acd.sock")
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def agents_cli(path: Path, *args: str) -> int:
    return main(["agents", *args, "--socket", str(path)])


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def caller(queues: RemoteQueues, n: int = 1, queue: str = "general",
           plans: dict[str, AgentPlan] | None = None) -> Call:  # fmt: skip
    return Call(FLOW.format(queue=queue), clock=LoopClock(), queues=queues,  # type: ignore[arg-type]
                agents=(plans or {}).get, call_id=f"w1-call-{n}").start()  # fmt: skip


def state(authority: ServiceThread, agent: str) -> AgentState:
    return authority.call(lambda s: s.authority.agents[agent].state)


def test_a_caller_on_worker_1_gets_the_agent_logged_in_with_ivr_agents(
        authority: ServiceThread) -> None:  # fmt: skip
    async def scenario() -> None:
        queues = await RemoteQueues.connect(authority.path, worker=1)
        assert queues.queue_names == ("general",)
        queues.registered("ann", "sim:ann", 3600)  # the worker's registrar saw ann's phone
        assert await asyncio.to_thread(agents_cli, authority.path, "login", "ann") == 0
        call = caller(queues, plans={"ann": AgentPlan(answer_after=0.3, handle=0.5)})
        assert call.of(ev.QUEUE)[0].data["queue"] == "general"
        await until(lambda: bool(call.of(ev.AGENT_CONNECTED)))
        assert call.of(ev.AGENT_RING)[0].data["agent"] == "ann"
        # the worker's result(answered) is on its way to the authority's thread
        await until(lambda: state(authority, "ann") == AgentState.ON_CALL)
        await until(lambda: call.session.finished)
        assert call.nodes[-1] == "thanks" and call.of(ev.AGENT_DONE)[0].data["agent"] == "ann"
        await until(lambda: state(authority, "ann") != AgentState.ON_CALL)
        agent = authority.call(lambda s: s.authority.agents["ann"])
        assert agent.calls == 1 and agent.state in (AgentState.WRAP_UP, AgentState.AVAILABLE)
        assert not authority.call(lambda s: dict(s.authority.waiting))
        assert not queues.waiters
        await queues.close()

    asyncio.run(scenario())


def test_figures_come_back_and_are_announced(authority: ServiceThread) -> None:
    async def scenario() -> None:
        queues = await RemoteQueues.connect(authority.path, worker=1)
        await asyncio.to_thread(agents_cli, authority.path, "login", "ann")  # no phone yet
        call = caller(queues)
        await until(lambda: bool(call.of(ev.QUEUE_ANNOUNCE)))
        assert call.of(ev.QUEUE_ANNOUNCE)[0].data["position"] == 1
        assert call.of(ev.QUEUE_ANNOUNCE)[0].data["minutes"] is None  # nobody can take it now
        second = caller(queues, 2)
        await until(lambda: bool(second.of(ev.QUEUE_ANNOUNCE)))
        assert second.of(ev.QUEUE_ANNOUNCE)[0].data["position"] == 2
        second.hangup()
        call.hangup()
        await until(lambda: not authority.call(lambda s: dict(s.authority.waiting)))
        assert second.outcome == call.outcome == "abandoned_in_queue"
        await queues.close()

    asyncio.run(scenario())


def test_exits_the_authority_answers_reach_the_flow(authority: ServiceThread) -> None:
    async def scenario() -> None:
        queues = await RemoteQueues.connect(authority.path, worker=1)
        closed = caller(queues)  # nobody logged in: the authority answers joined(no_agents)
        await until(lambda: bool(closed.of(ev.QUEUE_EXIT)))
        assert closed.of(ev.QUEUE_EXIT)[0].data["reason"] == "no_agents"
        assert closed.nodes == ["agent", "closed"]
        unknown = caller(queues, 2, queue="sales")  # a queue the authority does not have
        assert unknown.of(ev.QUEUE_EXIT)[0].data["reason"] == "no_queue"
        assert unknown.nodes == ["agent", "closed"]
        await queues.close()

    asyncio.run(scenario())


def test_hanging_up_while_the_agent_rings_frees_the_agent(authority: ServiceThread) -> None:
    async def scenario() -> None:
        queues = await RemoteQueues.connect(authority.path, worker=1)
        queues.registered("ann", "sim:ann", 3600)
        await asyncio.to_thread(agents_cli, authority.path, "login", "ann")
        call = caller(queues, plans={"ann": AgentPlan(answer_after=10)})
        await until(lambda: state(authority, "ann") == AgentState.RINGING)
        call.hangup()
        await until(lambda: state(authority, "ann") == AgentState.AVAILABLE)
        assert call.outcome == "abandoned_in_queue"
        assert not authority.call(lambda s: dict(s.authority.waiting))
        await queues.close()

    asyncio.run(scenario())


class Lines(logging.Handler):
    """The log lines of one logger (`ivr` loggers do not propagate once the CLI set them up)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.logger = logging.getLogger(name)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> Lines:
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)


def test_a_lost_authority_ends_every_wait_with_no_agents_and_says_so(
        authority: ServiceThread) -> None:  # fmt: skip
    async def scenario() -> None:
        queues = await RemoteQueues.connect(authority.path, worker=1)
        await asyncio.to_thread(agents_cli, authority.path, "login", "ann")  # no phone: waits
        calls = [caller(queues, n) for n in (1, 2)]
        await until(lambda: len(authority.call(lambda s: dict(s.authority.waiting))) == 2)
        with Lines("ivr.acd") as log:
            await asyncio.to_thread(authority.stop)
            await asyncio.wait_for(queues.closed.wait(), 5)
        for call in calls:
            assert call.of(ev.QUEUE_EXIT)[0].data["reason"] == "no_agents"
            assert call.nodes[-1] == "closed"
        [lost] = [line for line in log.lines if "lost the queue authority" in line]
        assert "2 callers in line leave by the no_agents exit" in lost
        late = caller(queues, 3)  # later callers take the exit at once
        assert late.of(ev.QUEUE_EXIT)[0].data["reason"] == "no_agents"
        await queues.close()

    asyncio.run(scenario())


def test_connect_errors_are_clear(sock_dir: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(wire.NotListening, match=r"acd\.sock"):
            await RemoteQueues.connect(sock_dir / "acd.sock", worker=1)
        # a worker number another process holds in-process is refused
        auth = QueueAuthority([ANN], [QUEUE], LoopClock())
        service = AcdService(auth, sock_dir / "acd.sock")
        service.add_local(0, AuthorityQueues(auth, worker=0))
        await service.start()
        try:
            with pytest.raises(ConnectionError, match="refused worker 0"):
                await RemoteQueues.connect(sock_dir / "acd.sock", worker=0)
            control = await Client.open(sock_dir / "acd.sock")  # the control side still serves
            await control.send("status")
            await control.expect("status")
            await control.close()
        finally:
            await service.stop()

    asyncio.run(scenario())


def test_a_single_process_uses_the_authority_in_process_and_serves_ivr_agents(
        sock_dir: Path) -> None:  # fmt: skip
    """``ivr serve`` with one process: AuthorityQueues for its calls, the socket for the CLI."""

    async def scenario() -> None:
        auth = QueueAuthority([ANN, BOB, GINA], [QUEUE], LoopClock())
        service = AcdService(auth, sock_dir / "acd.sock")
        local = AuthorityQueues(auth, worker=0)
        service.add_local(0, local)
        await service.start()
        try:
            auth.registered("ann", "sim:ann", 3600)  # the registrar, in-process
            assert await asyncio.to_thread(agents_cli, service.path, "login", "ann") == 0
            call = Call(FLOW.format(queue="general"), clock=LoopClock(),  # type: ignore[arg-type]
                        queues=local, agents={"ann": AgentPlan(answer_after=0.1,
                                                                handle=0.1)}.get)  # fmt: skip
            call.start()
            await until(lambda: bool(call.of(ev.AGENT_CONNECTED)))
            assert auth.agents["ann"].state == AgentState.ON_CALL
            assert await asyncio.to_thread(agents_cli, service.path, "pause", "ann") == 0
            await until(lambda: call.session.finished)
            await until(lambda: auth.agents["ann"].state == AgentState.PAUSED)
        finally:
            await service.stop()

    asyncio.run(scenario())


class Waiter:
    """A QueueWaiter that writes down what it is told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, object]] = []

    def on_offer(self, offer: AgentOffer) -> None:
        self.told.append(("offer", offer.agent))

    def on_withdraw(self, offer_id: int) -> None:
        self.told.append(("withdraw", offer_id))

    def on_queue_exit(self, reason: str) -> None:
        self.told.append(("exit", reason))

    def on_queue_moved(self, queue: str, old_queue: str) -> None:
        self.told.append(("moved", f"{old_queue}->{queue}"))


def test_what_comes_for_an_earlier_place_of_the_same_call_is_not_the_new_one_s(
        sock_dir: Path) -> None:  # fmt: skip
    """The caller leaves (a key) while the authority's max_wait exit is on its way, and joins
    another queue at once: the exit and an offer meant for the first place reach nobody."""
    path = sock_dir / "fake.sock"
    heard: list[dict[str, object]] = []

    async def fake_authority(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def say(op: str, **fields: object) -> None:
            writer.write(wire.encode(wire.message(op, **fields)))

        while line := await reader.readline():
            msg = wire.decode(line)
            heard.append(msg)
            if msg["op"] == "hello":
                say("hello", queues=["general", "sales"])
            elif msg["op"] == "join" and msg["queue"] == "general":
                say("joined", call_id="c", exit=None)
                say("exit", call_id="c", reason="max_wait")  # sent before leave() came
            elif msg["op"] == "join":  # sales
                say("offer", id=1, agent="old", contact="sip:old", ring_timeout=5,
                    call_id="c")  # fmt: skip  # for the first place, before leave() came
                say("joined", call_id="c", exit=None)
                say("offer", id=2, agent="new", contact="sip:new", ring_timeout=5, call_id="c")

    async def scenario() -> None:
        server = await asyncio.start_unix_server(fake_authority, str(path))
        queues = await RemoteQueues.connect(path, worker=1)
        request = QueueRequest("general", 5, (), "en")
        first, second = Waiter(), Waiter()
        place = queues.join("c", request, first)
        assert not isinstance(place, str)
        place.leave()  # a key: the first place is left before any answer came
        queues.join("c", QueueRequest("sales", 5, (), "en"), second)
        await until(lambda: bool(second.told))
        await asyncio.sleep(0.05)
        assert first.told == [] and second.told == [("offer", "new")]
        assert {"op": "result", "offer_id": 1, "outcome": "caller_gone"}.items() <= \
            next(m for m in heard if m["op"] == "result").items()  # fmt: skip
        await queues.close()
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())


CALLBACK_FLOW = """
flow: cb
languages: [en]
start: agent
nodes:
  agent:
    enqueue: {queue: general, skills: [accounts], tier: accounts, keys: {"1": callback},
              on_no_agents: closed}
  closed:
    hangup: {prompt: "We are closed.", outcome: failed}
"""


class Dialer:
    """A worker's callback dialer that writes down what it is offered (the real one dials)."""

    def __init__(self) -> None:
        self.offers: list[tuple[Offer, Ticket]] = []

    def offer(self, offer: Offer, ticket: Ticket) -> None:
        self.offers.append((offer, ticket))


def test_a_callback_chosen_on_one_worker_is_placed_by_another_when_it_dies(
        authority: ServiceThread) -> None:  # fmt: skip
    """The caller presses the callback key on worker 1 and hangs up; worker 1 dies; the
    authority offers ann for the callback to worker 2's dialer, with the ticket; its results
    and a second attempt go back over worker 2's connection."""

    async def scenario() -> None:
        w1 = await RemoteQueues.connect(authority.path, worker=1)
        w2 = await RemoteQueues.connect(authority.path, worker=2)
        dialers = {1: Dialer(), 2: Dialer()}
        w1.callbacks, w2.callbacks = dialers[1].offer, dialers[2].offer
        await asyncio.to_thread(agents_cli, authority.path, "login", "ann")  # no phone yet
        call = Call(CALLBACK_FLOW, clock=LoopClock(), queues=w1,  # type: ignore[arg-type]
                    call_id="w1-cb").start()  # fmt: skip
        await until(lambda: "w1-cb" in authority.call(lambda s: dict(s.authority.waiting)))
        call.channel.caller_dtmf("1")
        assert call.of(ev.CALLBACK)[0].data["number"] == "+8613800000001"
        call.hangup()
        assert call.outcome == "callback_requested"
        await until(lambda: authority.call(
            lambda s: s.authority.waiting["w1-cb"].ticket.callback) == "+8613800000001")
        await w1.close()  # worker 1 dies
        await until(lambda: authority.call(lambda s: s.authority.waiting["w1-cb"].ticket.worker)
                    == 2)  # fmt: skip
        w2.registered("ann", "sip:ann@127.0.0.1:5071", 3600)  # ann's phone: she is offered
        await until(lambda: bool(dialers[2].offers))
        [(offer, ticket)] = dialers[2].offers
        assert not dialers[1].offers
        assert (offer.call_id, offer.agent, offer.contact, offer.worker, offer.callback) == \
            ("w1-cb", "ann", "sip:ann@127.0.0.1:5071", 2, "+8613800000001")  # fmt: skip
        assert (ticket.call_id, ticket.queue, ticket.skills, ticket.tier, ticket.callback) == \
            ("w1-cb", "general", ("accounts",), "accounts", "+8613800000001")  # fmt: skip
        assert ticket.joined_at < asyncio.get_running_loop().time()
        w2.result(offer.id, Outcome.ANSWERED)
        await until(lambda: state(authority, "ann") == AgentState.ON_CALL)
        w2.ended("ann")  # the caller's phone did not answer: tried again later
        await until(lambda: state(authority, "ann") != AgentState.ON_CALL)
        w2.again(replace(ticket, call_id="w1-cb~1"))
        await until(lambda: len(dialers[2].offers) == 2)
        again, again_ticket = dialers[2].offers[1]
        assert (again.call_id, again_ticket.callback) == ("w1-cb~1", "+8613800000001")
        w2.result(again.id, Outcome.NO_ANSWER)  # ann misses it: the ticket keeps its place
        await until(lambda: state(authority, "ann") == AgentState.AVAILABLE)
        assert authority.call(lambda s: s.authority.position("w1-cb~1")) == 1
        await w2.close()

    asyncio.run(scenario())


def test_without_a_dialer_or_an_authority_the_callback_key_keeps_the_caller_waiting(
        authority: ServiceThread) -> None:  # fmt: skip
    async def scenario() -> None:
        queues = await RemoteQueues.connect(authority.path, worker=1)
        await asyncio.to_thread(agents_cli, authority.path, "login", "ann")
        call = Call(CALLBACK_FLOW, clock=LoopClock(), queues=queues,  # type: ignore[arg-type]
                    call_id="w1-stay").start()  # fmt: skip
        await until(lambda: "w1-stay" in authority.call(lambda s: dict(s.authority.waiting)))
        call.channel.caller_dtmf("1")  # no acd.callback in this worker: nothing happens
        assert not call.of(ev.CALLBACK) and not call.session.finished
        queues.callbacks = Dialer().offer
        long_number = Call(CALLBACK_FLOW, caller="9" * 65, clock=LoopClock(),  # type: ignore[arg-type]
                           queues=queues, call_id="w1-long").start()  # fmt: skip
        await until(lambda: "w1-long" in authority.call(lambda s: dict(s.authority.waiting)))
        long_number.channel.caller_dtmf("1")  # a "number" the authority would refuse
        assert not long_number.of(ev.CALLBACK) and not long_number.session.finished
        call.hangup()
        long_number.hangup()
        await until(lambda: not authority.call(lambda s: dict(s.authority.waiting)))
        assert call.outcome == long_number.outcome == "abandoned_in_queue"
        await queues.close()

    asyncio.run(scenario())
