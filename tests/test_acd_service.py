"""The queue authority on its Unix socket (ivr/acd/service.py): workers as asyncio clients over
the real socket, a worker that dies as a real process, hostile peers, the socket file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import stat
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from acd_helpers import ANN, BOB, GENERAL, GINA, Client, make_authority, settle
from acd_helpers import sock_dir as sock_dir  # the fixture

from ivr.acd import wire
from ivr.acd.authority import QueueAuthority
from ivr.acd.model import AgentState, QueueSpec
from ivr.acd.service import AcdService, ServiceError, ServiceThread
from ivr.core.clock import LoopClock

Scenario = Callable[[AcdService, Path], Awaitable[None]]


def serve(sock_dir: Path, scenario: Scenario, queue: QueueSpec = GENERAL) -> None:
    """Run ``scenario`` against a service on this test's loop."""

    async def main() -> None:
        path = sock_dir / "acd.sock"
        service = AcdService(make_authority(LoopClock(), queue=queue), path)
        await service.start()
        try:
            await scenario(service, path)
        finally:
            await service.stop()
        assert not path.exists()

    asyncio.run(main())


async def ready(control: Client, worker: Client, agent: str) -> None:
    """The agent's phone registers (through ``worker``'s registrar) and they log in."""
    await worker.send("registered", agent=agent, contact=f"sip:{agent}@10.0.0.9", expires=3600)
    await worker.send("status")  # answered once the registration is in
    await worker.expect("status")
    await control.send("agents", action="login", agent=agent)
    # available, or ringing at once for a caller waiting
    assert (await control.expect("agents"))["agent"]["state"] in ("available", "ringing")


async def join(worker: Client, call_id: str, skills: tuple[str, ...] = ("accounts",),
               priority: int = 5) -> None:  # fmt: skip
    await worker.send("join", call_id=call_id, queue="general", priority=priority,
                      skills=list(skills), tier="general", language="en", caller="+86100")


def states(service: AcdService) -> dict[str, AgentState]:
    return {a.id: a.state for a in service.authority.agent_status()}


def test_offers_withdrawals_and_exits_go_to_the_worker_that_carries_the_call(
        sock_dir: Path) -> None:  # fmt: skip
    async def scenario(service: AcdService, path: Path) -> None:
        control, w1, w2 = [await Client.open(path) for _ in range(3)]
        assert (await w1.hello(1))["queues"] == ["general"]
        await w2.hello(2)
        await ready(control, w1, "ann")
        await join(w1, "c1")
        assert (await w1.expect("joined")) ["exit"] is None
        offer = await w1.expect("offer")
        assert (offer["call_id"], offer["agent"], offer["contact"]) == \
            ("c1", "ann", "sip:ann@10.0.0.9")  # fmt: skip
        await join(w2, "c2")
        assert (await w2.expect("joined"))["exit"] is None
        await w2.nothing()  # ann rings for c1; nobody else may take c2
        await ready(control, w2, "bob")
        offer2 = await w2.expect("offer")
        assert (offer2["call_id"], offer2["agent"]) == ("c2", "bob")
        await w1.nothing()
        # c1's worker says ann answered; c2's caller hangs up while bob rings: bob is free
        await w1.send("result", offer_id=offer["id"], outcome="answered")
        await w2.send("leave", call_id="c2")
        assert (await w2.expect("withdraw"))["offer_id"] == offer2["id"]  # bob stops ringing
        assert states(service) == {"ann": AgentState.ON_CALL, "bob": AgentState.AVAILABLE,
                                   "gina": AgentState.LOGGED_OUT}  # fmt: skip
        # figures come back with the request's number
        await join(w2, "c3")
        await w2.expect("joined")
        offer3 = await w2.expect("offer")  # bob, free again
        await w2.send("figures", call_id="c3", req=41)
        figures = await w2.expect("figures")
        assert (figures["req"], figures["position"]) == (41, 1)
        # bob logs out while he rings: the offer is withdrawn on c3's worker, and c3 (whom
        # nobody logged in can take any more? ann still can) keeps waiting
        await control.send("agents", action="logout", agent="bob", reason="home")
        assert (await control.expect("agents"))["agent"]["state"] == "logged_out"
        assert await w2.expect("withdraw") == wire.message("withdraw", offer_id=offer3["id"],
                                                          call_id="c3")  # fmt: skip
        # ann's call ends; after the wrap-up she rings for c3, on worker 2
        await w1.send("ended", agent="ann")
        offer4 = await w2.expect("offer")
        assert (offer4["agent"], offer4["call_id"]) == ("ann", "c3")
        # the last agent who could take c3 logs out: c3 leaves by no_agents, on worker 2
        await control.send("agents", action="logout", agent="ann")
        await control.expect("agents")
        assert (await w2.expect("withdraw"))["offer_id"] == offer4["id"]
        assert await w2.expect("exit") == wire.message("exit", call_id="c3", reason="no_agents")
        await w1.nothing()
        for client in (control, w1, w2):
            await client.close()

    serve(sock_dir, scenario)


def test_joins_that_cannot_wait_are_answered_with_their_exit(sock_dir: Path) -> None:
    async def scenario(service: AcdService, path: Path) -> None:
        control, w1 = await Client.open(path), await Client.open(path)
        await w1.hello(1)
        await join(w1, "early")  # nobody logged in
        assert (await w1.expect("joined"))["exit"] == "no_agents"
        await ready(control, w1, "gina")
        await join(w1, "acct")  # gina may not take accounts calls; no one else is logged in
        assert (await w1.expect("joined"))["exit"] == "no_agents"
        await w1.send("join", call_id="q", queue="sales", priority=5, skills=[], tier="general",
                      language="en")  # fmt: skip
        assert (await w1.expect("joined"))["exit"] == "no_queue"
        await w1.send("join", call_id="t", queue="general", priority=99, skills=[],
                      tier="royal", language="en")  # fmt: skip
        joined = await w1.expect("joined")
        assert joined["exit"] == "no_agents" and "tier" in joined["error"]
        await join(w1, "twice", skills=())
        assert (await w1.expect("joined"))["exit"] is None
        await w1.expect("offer")
        await join(w1, "twice", skills=())
        joined = await w1.expect("joined")
        assert joined["exit"] == "no_agents" and "already waiting" in joined["error"]
        assert set(service.authority.waiting) == {"twice"}
        await control.close()
        await w1.close()

    serve(sock_dir, scenario)


def test_max_wait_exit_reaches_the_caller_s_worker(sock_dir: Path) -> None:
    async def scenario(service: AcdService, path: Path) -> None:
        control, w1, w2 = [await Client.open(path) for _ in range(3)]
        await w1.hello(1)
        await w2.hello(2)
        await control.send("agents", action="login", agent="ann")  # not registered: no offers
        await control.expect("agents")
        await join(w2, "slow")
        await w2.expect("joined")
        assert await w2.expect("exit", timeout=2) == wire.message("exit", call_id="slow",
                                                                 reason="max_wait")  # fmt: skip
        await w1.nothing(0.1)

    serve(sock_dir, scenario, QueueSpec("general", max_wait=0.3))


def test_a_worker_whose_connection_drops_takes_its_callers_and_frees_its_agents(
        sock_dir: Path) -> None:  # fmt: skip
    async def scenario(service: AcdService, path: Path) -> None:
        control, w1, w2 = [await Client.open(path) for _ in range(3)]
        await w1.hello(1)
        await w2.hello(2)
        for agent in ("ann", "bob"):
            await ready(control, w1, agent)
        await join(w1, "a")
        await join(w1, "b")
        got = [await w1.recv() for _ in range(4)]  # joined(a), offer(a), joined(b), offer(b)
        assert [m["op"] for m in got] == ["joined", "offer", "joined", "offer"]
        offers = {o["call_id"]: o for o in got if o["op"] == "offer"}
        await w1.send("result", offer_id=offers["a"]["id"], outcome="answered")  # on a call
        await join(w2, "c")
        await w2.expect("joined")
        await w2.nothing()  # both agents busy with worker 1's calls
        await w1.close()  # worker 1 dies: "b" leaves, both agents are freed
        offer = await w2.expect("offer")
        assert offer["call_id"] == "c"
        auth = service.authority
        assert set(auth.waiting) == {"c"}
        assert service.workers == [2]
        # the authority's books: nobody on a call or ringing for worker 1
        assert states(service) == {"ann": AgentState.WRAP_UP, "bob": AgentState.RINGING,
                                   "gina": AgentState.LOGGED_OUT}  # fmt: skip
        for agent in auth.agents.values():
            if agent.state in (AgentState.RINGING, AgentState.ON_CALL):
                assert agent.offer is not None and agent.offer.worker == 2
        await control.close()
        await w2.close()

    serve(sock_dir, scenario)


def test_a_worker_saying_hello_again_replaces_its_old_connection(sock_dir: Path) -> None:
    async def scenario(service: AcdService, path: Path) -> None:
        control, old = await Client.open(path), await Client.open(path)
        await old.hello(1)
        await ready(control, old, "ann")
        await join(old, "a")
        await old.expect("joined")
        await old.expect("offer")
        new = await Client.open(path)
        await new.hello(1)  # the restarted worker, before the old connection's close was seen
        assert await old.closed_by_peer()
        assert not service.authority.waiting and states(service)["ann"] == AgentState.AVAILABLE
        await join(new, "b")
        await new.expect("joined")
        assert (await new.expect("offer"))["call_id"] == "b"
        await settle()
        assert set(service.authority.waiting) == {"b"}  # the old close took nothing of the new

    serve(sock_dir, scenario)


def test_a_worker_process_killed_takes_its_callers_with_it(sock_dir: Path) -> None:
    """A real process joins two callers (one ringing an agent) and is SIGKILLed."""
    script = textwrap.dedent("""
        import json, socket, sys, time
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(sys.argv[1])
        def send(**m):
            sock.sendall((json.dumps({"v": 1, **m}) + "\\n").encode())
        send(op="hello", worker=3)
        for call in ("p1", "p2"):
            send(op="join", call_id=call, queue="general", priority=5, skills=[],
                 tier="general", language="en", caller="")
        seen = b""
        while seen.count(b"\\n") < 4:  # hello, joined, joined, offer
            seen += sock.recv(4096)
        print("ready", flush=True)
        time.sleep(60)
    """)

    async def scenario(service: AcdService, path: Path) -> None:
        control, w2 = await Client.open(path), await Client.open(path)
        await w2.hello(2)
        await ready(control, w2, "ann")
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(path),
                                                    stdout=asyncio.subprocess.PIPE)  # fmt: skip
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(20):
                assert (await proc.stdout.readline()).strip() == b"ready"
            assert set(service.authority.waiting) == {"p1", "p2"}
            assert states(service)["ann"] == AgentState.RINGING
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            for _ in range(100):
                if not service.authority.waiting:
                    break
                await settle(0.02)
            assert not service.authority.waiting
            assert states(service)["ann"] == AgentState.AVAILABLE
            assert service.workers == [2]
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await control.close()
        await w2.close()

    serve(sock_dir, scenario)


# --- hostile peers --------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    b"x" * (wire.MAX_LINE + 10) + b"\n",
    b"y" * (wire.MAX_LINE + 10),  # no newline ever comes
    b"{not json}\n",
    b'["op", "status"]\n',
    b"\xff\xfe\xfd\n",
    b"[" * 60000 + b"\n",
])  # fmt: skip
def test_a_peer_breaking_the_framing_is_dropped_and_others_are_served(sock_dir: Path,
                                                                     line: bytes) -> None:
    async def scenario(service: AcdService, path: Path) -> None:
        good, bad = await Client.open(path), await Client.open(path)
        await good.hello(1)
        await bad.hello(2)
        await join(bad, "bad-call", skills=())
        await bad.expect("joined")
        with contextlib.suppress(ConnectionError, OSError):  # dropped while still sending
            await bad.raw(line)
        assert await bad.closed_by_peer()
        assert service.workers == [1]  # the bad worker is gone, and its caller with it
        assert not service.authority.waiting
        await good.send("status")
        assert len((await good.expect("status"))["agents"]) == 3

    serve(sock_dir, scenario)


def test_unknown_ops_bad_fields_and_early_joins_are_answered_not_fatal(sock_dir: Path) -> None:
    async def scenario(service: AcdService, path: Path) -> None:
        peer = await Client.open(path)
        await peer.send("launch", missiles=3)
        error = await peer.expect("error")
        assert error["code"] == "unknown_op" and "launch" in error["error"]
        await join(peer, "c")
        assert (await peer.expect("error"))["code"] == "no_hello"
        await peer.send("hello", worker="one")
        assert (await peer.expect("error"))["code"] == "bad_message"
        await peer.send("hello", worker=-1)
        assert (await peer.expect("error"))["code"] == "bad_message"
        await peer.hello(1)
        await peer.send("hello", worker=1)
        assert "already" in (await peer.expect("error"))["error"]
        await peer.send("result", offer_id=99, outcome="maybe")
        assert "outcome" in (await peer.expect("error"))["error"]
        await peer.send("result", offer_id=99, outcome="answered")  # no such offer: ignored
        await peer.send("ended", agent="nobody")
        assert (await peer.expect("error"))["code"] == "refused"
        await peer.send("agents", action="dance", agent="ann")
        assert "action" in (await peer.expect("error"))["error"]
        await peer.send("agents", action="pause")
        assert "needs an agent" in (await peer.expect("error"))["error"]
        await peer.send("status")
        assert (await peer.expect("status"))["queues"][0]["name"] == "general"
        assert service.workers == [1]
        # another version: answered, then the connection closes
        await peer.raw(b'{"v":2,"op":"status"}\n')
        assert (await peer.expect("error"))["code"] == "version"
        assert await peer.closed_by_peer()

    serve(sock_dir, scenario)


def test_random_garbage_from_many_peers_never_stops_the_authority(sock_dir: Path) -> None:
    rng = random.Random(7)
    pieces = [b"\n", b"{", b"}", b'"op":', b'"v":1,', b'"hello"', b'"join"', b'"worker":',
              b"1", b"-", b"[", b"]", b",", b'"call_id":"c"', b"\xff", b"\x00", b" ", b"null",
              b'"agents"', b'"action":"login"', b'"agent":"ann"']  # fmt: skip

    async def scenario(service: AcdService, path: Path) -> None:
        for _ in range(40):
            peer = await Client.open(path)
            data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 200)))
            try:
                await peer.raw(data)
                await settle(0.005)
            except (ConnectionError, OSError):
                pass
            await peer.close()
        good = await Client.open(path)
        await good.send("status")
        assert (await good.expect("status"))["agents"]
        await good.close()

    serve(sock_dir, scenario)


# --- the socket file ------------------------------------------------------------------------


def test_the_socket_is_the_user_s_only_and_a_second_server_is_refused(sock_dir: Path) -> None:
    async def scenario(service: AcdService, path: Path) -> None:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        other = AcdService(make_authority(LoopClock()), path)
        with pytest.raises(ServiceError, match="another queue authority"):
            await other.start()
        peer = await Client.open(path)  # the first still serves
        await peer.send("status")
        await peer.expect("status")
        await peer.close()

    serve(sock_dir, scenario)


def test_a_live_server_without_the_lock_is_refused_too(sock_dir: Path) -> None:
    path = sock_dir / "acd.sock"
    foreign = socket.socket(socket.AF_UNIX)
    foreign.bind(str(path))
    foreign.listen()
    try:
        async def main() -> None:
            with pytest.raises(ServiceError, match="another queue authority"):
                await AcdService(make_authority(LoopClock()), path).start()

        asyncio.run(main())
        assert path.exists()
    finally:
        foreign.close()


def test_a_stale_socket_file_is_replaced_and_other_files_are_not(sock_dir: Path) -> None:
    path = sock_dir / "acd.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))  # a server that died: the file stays, nobody listens
    dead.close()

    async def scenario(service: AcdService, path: Path) -> None:
        peer = await Client.open(path)
        await peer.send("status")
        await peer.expect("status")
        await peer.close()

    serve(sock_dir, scenario)
    path.write_text("precious")

    async def main() -> None:
        with pytest.raises(ServiceError, match="not a socket"):
            await AcdService(make_authority(LoopClock()), path).start()
        with pytest.raises(ServiceError, match="too long"):
            await AcdService(make_authority(LoopClock()), sock_dir / ("x" * 120)).start()

    asyncio.run(main())
    assert path.read_text() == "precious"


def test_the_service_thread_serves_a_synchronous_owner(sock_dir: Path) -> None:
    path = sock_dir / "var" / "acd.sock"  # the folder is made

    def build(clock: LoopClock) -> QueueAuthority:
        return QueueAuthority([ANN, BOB, GINA], [GENERAL], clock)

    thread = ServiceThread(build, path)
    thread.start()
    try:
        answer = wire.request(path, wire.message("agents", action="login", agent="ann"))
        assert answer["agent"]["state"] == "available" and answer["changed"]
        assert thread.call(lambda s: s.authority.agents["ann"].state) == AgentState.AVAILABLE
        second = ServiceThread(build, path)
        with pytest.raises(ServiceError):
            second.start()
    finally:
        thread.stop()
    assert not path.exists()
    with pytest.raises(wire.NotListening):
        wire.request(path, wire.message("status"))


async def keep_place(worker: Client, call_id: str, number: str = "+8613800000009") -> None:
    """The caller on ``worker`` joins, then chooses a callback and hangs up."""
    await join(worker, call_id)
    assert (await worker.expect("joined"))["exit"] is None
    await worker.send("callback", call_id=call_id, number=number)


def test_a_dead_worker_s_callback_goes_to_a_live_worker_and_keeps_its_place(
        sock_dir: Path) -> None:  # fmt: skip
    """A callback ticket is a promise, not a call of the worker: when its worker dies it moves to
    a live one (the next to connect when none is left); its offer carries the whole ticket."""

    async def scenario(service: AcdService, path: Path) -> None:
        control, w1, w2 = [await Client.open(path) for _ in range(3)]
        await w1.hello(1)
        await w2.hello(2)
        await ready(control, w1, "ann")
        await control.send("agents", action="pause", agent="ann", reason="lunch")
        await control.expect("agents")
        await join(w2, "first")  # waits ahead, on the worker that lives
        await w2.expect("joined")
        await keep_place(w1, "cb")
        await join(w1, "on-line")  # a caller on the line: leaves with their worker
        await w1.expect("joined")
        await settle()
        auth = service.authority
        assert auth.waiting["cb"].ticket.callback == "+8613800000009"
        assert auth.waiting["cb"].max_wait_timer is None  # nobody on the line to leave
        await w1.close()  # worker 1 dies
        await settle()
        assert set(auth.waiting) == {"first", "cb"}
        assert auth.waiting["cb"].ticket.worker == 2 and auth.position("cb") == 2
        await w2.send("leave", call_id="first")
        await control.send("agents", action="resume", agent="ann")
        await control.expect("agents")
        offer = await w2.expect("offer")  # the callback, on the live worker
        assert (offer["call_id"], offer["agent"], offer["callback"]) == \
            ("cb", "ann", "+8613800000009")  # fmt: skip
        assert (offer["queue"], offer["priority"], offer["skills"], offer["tier"],
                offer["language"]) == ("general", 5, ["accounts"], "general", "en")  # fmt: skip
        assert offer["waited"] > 0
        await w2.send("result", offer_id=offer["id"], outcome="answered")
        await w2.send("ended", agent="ann")  # the callback call is over (nobody answered)
        # tried again: a new ticket, a callback from the start, at the end of the line
        await w2.send("join", call_id="cb~1", queue="general", priority=5,
                      skills=["accounts"], tier="general", language="en",
                      callback="+8613800000009")  # fmt: skip
        assert (await w2.expect("joined"))["exit"] is None
        assert auth.waiting["cb~1"].ticket.callback == "+8613800000009"
        await control.send("agents", action="pause", agent="ann", reason="lunch")
        await control.expect("agents")
        await w2.close()  # the last worker dies: the callback waits out of line
        await settle()
        assert not auth.waiting and [t.call_id for t in auth.orphans] == ["cb~1"]
        w3 = await Client.open(path)
        await w3.hello(3)  # a restarted worker takes it
        assert auth.waiting["cb~1"].ticket.worker == 3 and not auth.orphans
        await control.send("agents", action="resume", agent="ann")
        await control.expect("agents")
        assert (await w3.expect("offer"))["call_id"] == "cb~1"
        for client in (control, w3):
            await client.close()

    serve(sock_dir, scenario)


def test_bad_callbacks_are_answered_with_errors_and_change_nothing(sock_dir: Path) -> None:
    async def scenario(service: AcdService, path: Path) -> None:
        control, w1, w2 = [await Client.open(path) for _ in range(3)]
        await w1.hello(1)
        await w2.hello(2)
        await ready(control, w1, "ann")
        await control.send("agents", action="pause", agent="ann")
        await control.expect("agents")
        await join(w1, "c")
        await w1.expect("joined")
        for number in ("", "9" * (wire.MAX_NUMBER + 1)):
            await w1.send("callback", call_id="c", number=number)
            assert "number to call back" in (await w1.expect("error"))["error"]
        await w1.send("callback", call_id="c", number=8613800000009)
        assert (await w1.expect("error"))["error"] == "callback: number must be str"
        await w1.send("callback", call_id="c")
        assert (await w1.expect("error"))["error"] == "callback: number is missing"
        await w2.send("callback", call_id="c", number="+86138")  # another worker's caller
        assert (await w2.expect("error"))["code"] == "refused"
        await w1.send("callback", call_id="gone", number="+86138")
        assert (await w1.expect("error"))["code"] == "refused"
        await w1.send("join", call_id="d", queue="general", priority=5, skills=[],
                      tier="general", language="en", callback=["+86138"])  # fmt: skip
        assert (await w1.expect("error"))["error"] == "join: callback must be str?"
        await settle()
        assert set(service.authority.waiting) == {"c"}
        assert service.authority.waiting["c"].ticket.callback is None
        await w1.send("callback", call_id="c", number="+86138")
        await w1.send("callback", call_id="c", number="+86139")  # twice: the first stands
        assert "already" in (await w1.expect("error"))["error"]
        assert service.authority.waiting["c"].ticket.callback == "+86138"
        for client in (control, w1, w2):
            await client.close()

    serve(sock_dir, scenario)
