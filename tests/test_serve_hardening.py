"""``ivr serve`` against hostile callers (issue 13): every answered call ends and is recorded,
nothing is reflected at third parties, no file lands outside the recordings folder.

One finding, one test; each failed on the code before the hardening. Peers are real UDP sockets
on loopback addresses of their own (127.0.0.x), so the per-source limits of one test do not
touch another's calls.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from serve_helpers import (
    MENU_FLOW,
    ServerThread,
    async_wait_for,
    calls,
    ended_call,
    events,
    free_port,
    record_ids,
    wait_for,
    write_config,
)
from sip_phone import FAST, Leg, Phone, run, sdp_offer

from ivr.console.source import ConsoleSource, ServerState
from ivr.core.events import Event
from ivr.rtp.packet import RtpPacket
from ivr.serve.server import ServeOptions
from ivr.sip.admission import SourceLimits
from ivr.sip.ids import IdGenerator
from ivr.sip.message import Response
from ivr.store.db import CallStore

pytestmark = pytest.mark.timeout(120)

WAIT_FLOW = """\
flow: e2e-wait
languages: [en]
start: menu
nodes:
  menu:
    menu:
      prompt: "Press 1."
      choices:
        "1": bye
      timeout: 60
      no_input: {after: 1, goto: bye}
      no_match: {goto: bye}
  bye:
    hangup: {prompt: "Goodbye."}
"""

RECORD_FLOW = """\
flow: e2e-record
languages: [en]
start: message
nodes:
  message:
    record:
      prompt: "Speak."
      into: message
      max_seconds: 1
      beep: false
      next: bye
  bye:
    hangup: {prompt: "Thanks."}
"""

NUMBERS = {"7001": "e2e-menu", "7003": "e2e-wait", "7004": "e2e-record", "default": "e2e-menu"}
LIMITS = SourceLimits(max_calls=0, max_unconfirmed=3, rate=50.0, burst=50)
MEDIA_TIMEOUT = 3.0


def server_for(root: Path, **options: object) -> ServerThread:
    """A server with the three small flows, fast SIP timers and a short media timeout."""
    flows = root / "flows"
    flows.mkdir(parents=True)
    for name, text in (("e2e-menu", MENU_FLOW), ("e2e-wait", WAIT_FLOW),
                       ("e2e-record", RECORD_FLOW)):  # fmt: skip
        (flows / f"{name}.yaml").write_text(text, encoding="utf-8")
    port = free_port()
    config = write_config(root, flows, root / "prompts", port=port, numbers=NUMBERS)
    opts = ServeOptions(port=port, rtp_ports=(27000, 27999), drain_timeout=2, sip_timers=FAST,
                        media_timeout=MEDIA_TIMEOUT, per_source=LIMITS)  # fmt: skip
    for key, value in options.items():
        setattr(opts, key, value)
    return ServerThread(config, opts).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    thread = server_for(tmp_path_factory.mktemp("hard"))
    try:
        yield thread
    finally:
        thread.stop()


def sdp(connection: str, port: int = 40000) -> bytes:
    """A PCMU offer whose c= line is ``connection`` (``IN IP4 1.2.3.4``, ``IN IP6 ::1`` ...)."""
    lines = ["v=0", "o=phone 1 1 IN IP4 127.0.0.1", "s=-", f"c={connection}", "t=0 0",
             f"m=audio {port} RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000",
             "a=rtpmap:101 telephone-event/8000", "a=sendrecv"]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n").encode()


def rtp_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def drain(sock: socket.socket) -> list[tuple[bytes, tuple[str, int]]]:
    got = []
    while True:
        try:
            got.append(sock.recvfrom(2048))
        except BlockingIOError:
            return got


def rtp_to(answer: Response) -> tuple[str, int]:
    """The server's RTP address from its SDP answer."""
    text = answer.body.decode()
    host = next(line[9:].strip() for line in text.splitlines() if line.startswith("c=IN IP4"))
    port = next(int(line.split()[1]) for line in text.splitlines() if line.startswith("m=audio"))
    return host, port


def silence(seq: int) -> bytes:
    return bytes(RtpPacket(payload_type=0, sequence_number=seq, timestamp=seq * 160, ssrc=7,
                           payload=b"\xff" * 160))  # fmt: skip


async def open_phone(host: str) -> Phone:
    """A phone on ``host`` with Call-IDs and tags of its own (every Phone is seeded alike)."""
    phone = await Phone.open(host)
    phone.ids = IdGenerator(seed=f"phone-{host}")
    return phone


def active(server: ServerThread) -> int:
    return server.read(lambda s: len(s.ua.calls))


# --- SDP -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("connection", ["IN IP4 media.example.com", "IN IP6 2001:db8::1",
                                        "IN IP4 255.255.255.255", "IN IP4 224.0.0.7",
                                        "IN IP4 240.0.0.1"])  # fmt: skip
def test_an_unusable_c_line_gets_488_before_anything_is_answered(
    server: ServerThread, connection: str
) -> None:
    """Host names, IPv6 on an IPv4 server, broadcast, multicast: refused, never answered and
    then failed (those calls used to stay up for good, with no record)."""

    async def scenario() -> None:
        phone = await open_phone("127.0.0.21")
        leg = phone.leg(server.address, user="7001")
        phone.send(leg.invite(sdp(connection)), server.address)
        final = await phone.recv(5, match=lambda m: isinstance(m, Response) and m.status >= 200)
        assert isinstance(final, Response) and final.status == 488
        assert "Warning" in final.headers
        phone.send(leg.ack(final), server.address)
        phone.close()

    run(scenario(), 30)
    assert active(server) == 0


def test_a_reinvite_with_an_unusable_c_line_gets_488_and_the_call_goes_on(
    server: ServerThread,
) -> None:
    async def scenario() -> None:
        phone = await open_phone("127.0.0.22")
        leg = phone.leg(server.address, user="7003")
        await leg.establish(sdp_offer(address="127.0.0.22"))
        phone.send(leg.request("INVITE", sdp("IN IP4 224.0.0.9"), "application/sdp"),
                   server.address)  # fmt: skip
        refused = await phone.response(488, "INVITE")
        phone.send(leg.ack(refused), server.address)
        phone.send(leg.request("OPTIONS"), server.address)
        await phone.response(200, "OPTIONS")  # the dialog is still there
        phone.send(leg.request("BYE"), server.address)
        await phone.response(200, "BYE")
        phone.close()

    run(scenario(), 30)


# --- call ids and files --------------------------------------------------------------------------


def test_a_call_id_with_a_path_never_names_a_file_and_reused_call_ids_keep_two_records(
    server: ServerThread,
) -> None:
    """Call-ID ``../../../x`` used to write the voicemail outside the recordings folder; a second
    INVITE with the first's Call-ID (another From tag) used to overwrite its record."""
    root = server.config.root
    hostile = "../../../escaped-voicemail"

    async def talk(sock: socket.socket, target: tuple[str, int]) -> None:
        for seq in range(1000):
            sock.sendto(silence(seq), target)
            await asyncio.sleep(0.02)

    async def one_call(leg: Leg, phone: Phone) -> None:
        sock = rtp_socket("127.0.0.23")
        ok = await leg.establish(sdp_offer(address="127.0.0.23", port=sock.getsockname()[1]))
        sender = asyncio.ensure_future(talk(sock, rtp_to(ok)))
        try:  # prompt, 1 s of message, "Thanks.", then the flow hangs up
            bye = await phone.request("BYE", timeout=15)
            phone.reply(bye, 200)
        finally:
            sender.cancel()
            sock.close()

    async def scenario() -> None:
        phone = await open_phone("127.0.0.23")
        first = phone.leg(server.address, user="7004", caller="1111")
        first.call_id = hostile
        second = phone.leg(server.address, user="7004", caller="2222")
        second.call_id = hostile
        await one_call(first, phone)
        await one_call(second, phone)
        phone.close()

    run(scenario(), 60)
    keys = wait_for(lambda: len(record_ids(server.db, hostile)) == 2 and
                    record_ids(server.db, hostile), 20)  # fmt: skip
    rows = [wait_for(lambda k=key: ended_call(server.db, k), 20) for key in keys]
    assert sorted(row["caller"] for row in rows) == ["1111", "2222"]
    recordings = (root / "var" / "recordings").resolve()
    for key in keys:
        paths = [data["path"] for kind, _, data in events(server.db, key) if kind == "recording"]
        assert paths and all(Path(p).resolve().parent == recordings for p in paths)
    for folder in [recordings, *list(recordings.parents)[:4]]:
        assert list(folder.glob("escaped-voicemail*")) == []


# --- timers --------------------------------------------------------------------------------------


def test_an_answered_call_never_acked_is_torn_down_and_recorded(server: ServerThread) -> None:
    async def scenario() -> str:
        phone = await open_phone("127.0.0.24")
        leg = phone.leg(server.address, user="7003")
        phone.send(leg.invite(sdp_offer(address="127.0.0.24")), server.address)
        await phone.response(200, "INVITE")
        bye = await phone.request("BYE", timeout=15)  # after 64*T1 without our ACK
        phone.reply(bye, 200)
        phone.close()
        return leg.call_id

    call_id = run(scenario(), 30)
    row = wait_for(lambda: ended_call(server.db, call_id), 10)
    assert row["outcome"] == "no_ack" and row["flow"] == "e2e-wait", events(server.db, call_id)


def test_a_call_whose_media_never_comes_is_hung_up_and_recorded(server: ServerThread) -> None:
    async def scenario() -> str:
        phone = await open_phone("127.0.0.25")
        leg = phone.leg(server.address, user="7003")  # the menu would wait 60 s
        await leg.establish(sdp_offer(address="127.0.0.25"))
        bye = await phone.request("BYE", timeout=MEDIA_TIMEOUT + 10)
        phone.reply(bye, 200)
        phone.close()
        return leg.call_id

    call_id = run(scenario(), 30)
    row = wait_for(lambda: ended_call(server.db, call_id), 10)
    assert row["outcome"] is not None and row["ended_at"] is not None


# --- admission -----------------------------------------------------------------------------------


def test_one_source_cannot_hold_every_slot_with_unconfirmed_calls(server: ServerThread) -> None:
    """INVITEs never ACKed from one address: beyond ``max_unconfirmed`` they get 503, and a
    caller from elsewhere is still answered."""

    async def scenario() -> None:
        flood = await open_phone("127.0.0.26")
        statuses = []
        for _ in range(LIMITS.max_unconfirmed + 2):
            leg = flood.leg(server.address, user="7003")
            flood.send(leg.invite(sdp_offer(address="127.0.0.26")), server.address)
            final = await flood.recv(5, match=lambda m, c=leg.call_id: isinstance(m, Response)
                                     and m.status >= 200 and m.call_id() == c)  # fmt: skip
            assert isinstance(final, Response)
            seen.append(final)
            statuses.append(final.status)
        assert statuses.count(200) == LIMITS.max_unconfirmed
        assert statuses.count(503) == 2
        assert all("Retry-After" in m.headers for m in seen if m.status == 503)
        other = await open_phone("127.0.0.27")
        leg = other.leg(server.address, user="7001")
        await leg.establish(sdp_offer(address="127.0.0.27"))
        other.send(leg.request("BYE"), server.address)
        await other.response(200, "BYE")
        other.close()
        flood.close()

    seen: list[Response] = []
    run(scenario(), 30)


# --- reflection ----------------------------------------------------------------------------------


def test_rtp_goes_where_the_callers_rtp_comes_from_never_to_a_third_party_in_the_sdp(
    server: ServerThread,
) -> None:
    victim = rtp_socket("127.0.0.29")
    caller_rtp = rtp_socket("127.0.0.28")

    async def scenario() -> None:
        phone = await open_phone("127.0.0.28")
        leg = phone.leg(server.address, user="7003")
        host, port = victim.getsockname()
        ok = await leg.establish(sdp_offer(address=host, port=port))
        await asyncio.sleep(1.0)
        assert drain(victim) == []  # nothing reflected at the address the SDP named
        target = rtp_to(ok)
        for seq in range(25):
            caller_rtp.sendto(silence(seq), target)
            await asyncio.sleep(0.02)
        got = await async_wait_for(lambda: drain(caller_rtp), 5)
        assert all(source == target for _, source in got)
        await asyncio.sleep(0.3)
        assert drain(victim) == []
        phone.send(leg.request("BYE"), server.address)
        await phone.response(200, "BYE")
        phone.close()

    try:
        run(scenario(), 30)
    finally:
        victim.close()
        caller_rtp.close()


def test_a_via_maddr_never_aims_responses_at_a_third_party(server: ServerThread) -> None:
    async def scenario() -> list[bytes]:
        phone = await open_phone("127.0.0.30")
        # The third party listens on the port the Via names, at the maddr's address.
        victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        victim.bind(("127.0.0.31", phone.address[1]))
        victim.setblocking(False)
        try:
            leg = phone.leg(server.address, user="7001")
            request = leg.request("OPTIONS")
            request.headers.set("Via", f"SIP/2.0/UDP 127.0.0.30:{phone.address[1]};"
                                       f"branch=z9hG4bKmaddr1;maddr=127.0.0.31")  # fmt: skip
            phone.send(request, server.address)
            await phone.response(200, "OPTIONS")  # back to where it came from
            await asyncio.sleep(0.3)
            return [data for data, _ in drain(victim)]
        finally:
            victim.close()
            phone.close()

    assert run(scenario(), 20) == []


def test_a_bye_from_another_address_does_not_end_the_call(server: ServerThread) -> None:
    async def scenario() -> None:
        phone = await open_phone("127.0.0.32")
        spoofer = await open_phone("127.0.0.33")
        leg = phone.leg(server.address, user="7003")
        await leg.establish(sdp_offer(address="127.0.0.32"))
        forged = leg.request("BYE")
        forged.headers.set("Via", spoofer.via())
        spoofer.send(forged, server.address)
        await spoofer.response(403, "BYE")
        phone.send(leg.request("OPTIONS"), server.address)
        await phone.response(200, "OPTIONS")  # still in the dialog
        phone.send(leg.request("BYE"), server.address)
        await phone.response(200, "BYE")
        phone.close()
        spoofer.close()

    run(scenario(), 30)


# --- crash and store failures --------------------------------------------------------------------


def test_calls_left_open_by_a_crash_are_closed_as_interrupted_at_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "calls.db"


    with CallStore(db, threaded=False) as store:  # what a killed server leaves behind
        store.sink(Event("open1", 1, 0.0, "call_start", None,
                         {"caller": "1", "called": "7003", "flow": "e2e-wait", "wall": 1.0}))
        store.sink(Event("open1", 2, 0.5, "node_enter", "menu", {"flow": "e2e-wait"}))
    server = server_for(tmp_path)
    try:
        row = next(c for c in calls(db) if c["call_id"] == "open1")
        assert row["outcome"] == "interrupted"
        assert row["last_node"] == "menu" and row["ended_at"] is not None
    finally:
        server.stop()


def test_with_the_store_refusing_writes_calls_get_503_and_it_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = server_for(tmp_path)
    try:
        with sqlite3.connect(server.db) as conn:  # the disk "fails" for every record from now on
            for table in ("events", "refused"):
                conn.execute(f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table} "
                             "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END")  # fmt: skip
        caplog.set_level(logging.ERROR, logger="ivr.store")

        async def scenario() -> list[int]:
            phone = await open_phone("127.0.0.34")
            statuses = []
            for _ in range(2):
                leg = phone.leg(server.address, user="7001")
                phone.send(leg.invite(sdp_offer(address="127.0.0.34")), server.address)
                final = await phone.recv(5, method="INVITE", match=lambda m, c=leg.call_id:
                                         isinstance(m, Response) and m.status >= 200
                                         and m.call_id() == c)  # fmt: skip
                assert isinstance(final, Response)
                statuses.append(final.status)
                if final.status == 200:
                    phone.send(leg.ack(final), server.address)
                    await async_wait_for(lambda: server.read(lambda s: s.host.store.failing), 10)
                    phone.send(leg.request("BYE"), server.address)
                else:
                    phone.send(leg.ack(final), server.address)
            phone.close()
            return statuses

        assert run(scenario(), 30) == [200, 503]
        assert server.read(lambda s: s.host.store.failed_writes) > 0
        assert any("could not be written" in r.getMessage() for r in caplog.records)
        # exposed: /healthz says not ready (store_writable false), /metrics counts the losses
        console = ConsoleSource(server.config, ServerState(True, True, True),
                                server.read(lambda s: s.host.metrics.registry))  # fmt: skip
        ready, health = console.health()
        assert (ready, health["store_writable"]) == (False, False)
        text = generate_latest(console.registry).decode()
        assert "ivr_store_failing 1.0" in text
        assert re.search(r"^ivr_store_write_failures_total [1-9]", text, re.M)
        with sqlite3.connect(server.db) as conn:
            conn.execute("DROP TRIGGER fail_events")
            conn.execute("DROP TRIGGER fail_refused")
        server.read(lambda s: s.host.store.sink(Event("probe", 1, 0.0, "node_enter", "menu", {})))
        wait_for(lambda: console.health()[0], 10)  # a write went through: ready again
        assert "ivr_store_failing 0.0" in generate_latest(console.registry).decode()
    finally:
        with sqlite3.connect(server.db) as conn:
            conn.execute("DROP TRIGGER IF EXISTS fail_events")
            conn.execute("DROP TRIGGER IF EXISTS fail_refused")
        server.stop()

