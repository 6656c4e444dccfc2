"""The AMI client against a real TCP peer replaying recorded Asterisk traffic (tests/ami_replay.py):
logins (plain, MD5 challenge, refused), replies matched by ActionID with events in between,
CRLF and LF, a dropped connection and the reconnection, hostile input."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

import pytest
from ami_replay import SECRET, AmiReplay, blocks

from ivr.ami.client import AmiClient, AmiLoginError, AmiNotConnected, AmiSettings
from ivr.ami.wire import AmiMessage

USER = "nnnnnnnnn"  # the user of the recorded logins
# A recorded event of another kind, sent between the blocks of every reply.
PEER_STATUS = next(b for b in blocks("agent_loggued_in")[2] if b.startswith("Event: PeerStatus"))


def settings(port: int, auth: str = "md5", secret: str = SECRET) -> AmiSettings:
    return AmiSettings("127.0.0.1", port, USER, secret, auth, timeout=5.0, backoff_min=0.05,
                       backoff_max=0.2)  # fmt: skip


def run(scenario: Callable[[AmiReplay, int], Awaitable[None]], **peer: object) -> AmiReplay:
    async def main() -> AmiReplay:
        replay = AmiReplay(**peer)  # type: ignore[arg-type]
        port = await replay.start()
        try:
            await scenario(replay, port)
        finally:
            await replay.close()
        return replay

    return asyncio.run(main())


@pytest.mark.parametrize(("auth", "line_end"), [("plain", "\r\n"), ("md5", "\r\n"),
                                                ("plain", "\n"), ("md5", "\n")])  # fmt: skip
def test_login_and_ping(auth: str, line_end: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(replay: AmiReplay, port: int) -> None:
        client = AmiClient(settings(port, auth))
        client.start()
        await client.wait_connected(5)
        pong = await client.action("Ping")
        assert pong.ok and pong.get("Ping") == "Pong"
        assert pong.get("Timestamp") == "1409169929.412068"  # the recorded reply
        assert client.version == "7.0.3"
        await client.close()

    replay = run(scenario, line_end=line_end)
    assert replay.logins == 1
    login = next(a for a in replay.actions if a["action"] == "Login")
    if auth == "md5":
        assert login["authtype"] == "MD5" and "secret" not in login
        assert SECRET.encode() not in replay.raw  # the secret never crosses the wire
    else:
        assert login["secret"] == SECRET
    assert replay.actions[-1]["action"] == "Logoff"
    assert SECRET not in caplog.text


def test_a_refused_login_says_so_without_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(replay: AmiReplay, port: int) -> None:
        client = AmiClient(settings(port, "plain", secret="wrong-secret-value"))
        client.start()
        with pytest.raises(AmiLoginError, match="refused the login of user 'nnnnnnnnn'"):
            await client.wait_connected(2)
        assert not client.connected
        with pytest.raises(AmiNotConnected):
            await client.action("Ping")
        await client.close()

    replay = run(scenario)
    assert replay.logins == 0
    assert "Authentication failed" in caplog.text
    assert "wrong-secret-value" not in caplog.text


def test_a_list_reply_with_events_in_between() -> None:
    seen: list[AmiMessage] = []

    async def scenario(replay: AmiReplay, port: int) -> None:
        client = AmiClient(settings(port), on_event=seen.append)
        client.start()
        await client.wait_connected(5)
        response, events = await client.listing("QueueStatus", {"Queue": "support"})
        assert response.ok and response.get("Message") == "Queue status will follow"
        assert [e.name for e in events] == ["QueueParams"] + ["QueueMember"] * 6
        assert events[0].get("Holdtime") == "3" and events[1].get("Name") == "Agent/220"
        summary, rows = await client.listing("QueueSummary", {"Queue": "support"})
        assert summary.ok and rows[0].get("Available") == "1"
        await client.close()

    run(scenario, interleave=(PEER_STATUS,), line_end="\n")
    # The events between the blocks of a reply went to the event handler, not into the reply.
    assert [e.name for e in seen].count("PeerStatus") >= 9
    assert any(e.name == "FullyBooted" for e in seen)


def test_a_dropped_connection_is_made_again() -> None:
    async def scenario(replay: AmiReplay, port: int) -> None:
        client = AmiClient(settings(port))
        client.start()
        await client.wait_connected(5)
        replay.drop()
        for _ in range(200):  # the client notices, backs off and logs in again
            if client.logins == 2 and client.connected:
                break
            await asyncio.sleep(0.02)
        assert client.logins == 2
        assert (await client.action("Ping")).ok
        await client.close()

    replay = run(scenario)
    assert replay.connections == 2 and replay.logins == 2


def test_an_action_waiting_when_the_connection_drops_fails() -> None:
    async def scenario(replay: AmiReplay, port: int) -> None:
        client = AmiClient(settings(port))
        client.start()
        await client.wait_connected(5)
        replay.replies["ping"] = lambda action: []  # never answered
        waiting = asyncio.ensure_future(client.action("Ping"))
        await asyncio.sleep(0.05)
        replay.drop()
        with pytest.raises(AmiNotConnected):
            await waiting
        await client.close()

    run(scenario)


def test_a_message_without_end_drops_the_connection() -> None:
    async def scenario(replay: AmiReplay, port: int) -> None:
        client = AmiClient(settings(port))
        client.start()
        await client.wait_connected(5)
        replay.send(["Event: Flood\nData: " + "x" * 300_000])  # no empty line within the limit
        for _ in range(200):
            if client.logins == 2:
                break
            await asyncio.sleep(0.02)
        assert client.logins == 2  # dropped and made again, nothing buffered without end
        assert "longer than" in str(client.last_error)
        await client.close()

    run(scenario)


@pytest.mark.parametrize("banner", [b"SSH-2.0-OpenSSH_9.2\r\n", b"A" * 100_000,
                                    b"Asterisk Call Manager/" + b"1" * 300 + b"\r\n"])  # fmt: skip
def test_not_an_ami_server(banner: bytes) -> None:
    async def main() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(banner)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = AmiClient(settings(port))
        client.start()
        with pytest.raises(AmiNotConnected, match=r"not an AMI server|no AMI banner"):
            await client.wait_connected(0.5)
        await client.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_the_back_off_doubles_up_to_its_maximum(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.ami")

    async def main() -> None:
        with socket.socket() as closed:  # a port nobody listens on
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
        client = AmiClient(settings(port))
        client.start()
        for _ in range(300):
            if caplog.text.count("connecting again") >= 5:
                break
            await asyncio.sleep(0.02)
        await client.close()

    asyncio.run(main())
    delays = [line.rsplit(" in ", 1)[1] for line in caplog.messages if "connecting again" in line]
    assert delays[:5] == ["0.05 s", "0.10 s", "0.20 s", "0.20 s", "0.20 s"]
