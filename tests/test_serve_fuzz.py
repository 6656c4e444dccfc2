"""Mutated INVITEs with SDP, and in-dialog requests, at a running ``ivr serve`` (issue 13).

Hypothesis draws calls from hostile pieces: Call-IDs that are paths or long, ``c=`` lines that are
host names, multicast, broadcast, IPv6 or somebody else, odd ports, Via ``maddr``/``received``,
stray bytes anywhere in the INVITE; then an ACK or none, re-INVITEs, forged BYEs, INFO, OPTIONS,
a BYE or none. After the examples, for a bounded time: every answered call has ended within its
timers with a complete record (an outcome), no file was written outside the recordings folder,
nothing reached the third-party address the messages named, and the server answers OPTIONS.

Derandomized, with few examples, so CI always runs the same cases in well under a minute; run
with more ``max_examples`` and ``derandomize=False`` by hand to search further.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import ServerThread, calls, record_ids, wait_for
from sip_phone import FAST, Leg, Phone, run
from test_serve_hardening import MEDIA_TIMEOUT, sdp, server_for

from ivr.sip.admission import SourceLimits
from ivr.sip.ids import IdGenerator
from ivr.sip.message import Response

pytestmark = pytest.mark.timeout(180)

CALLER = "127.0.0.50"
STRANGER = "127.0.0.51"  # sends forged in-dialog requests
VICTIM = "127.0.0.52"  # the third party messages point at: must never hear from us
MARK = "fuzzmark"  # in every hostile Call-ID: a file named after one would be found
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
NASTY = [b":", b";", b"\r\n", b"\r\n\r\n", b"\x00", b"\xff", b"/", b"../", b" ", b"%00",
         b"\xc3\xa9"]  # fmt: skip

CALL_IDS = st.one_of(
    st.sampled_from([f"../../../{MARK}", f"/tmp/{MARK}", f"..\\..\\{MARK}", f"{MARK}%2e%2e%2f",
                     f"{MARK}" + "x" * 900, f"{MARK}@../../etc", f"{MARK}"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789.-_~/", min_size=1, max_size=40).map(
        lambda s: f"{MARK}-{s}"),
)  # fmt: skip
# Usable pieces are repeated: most examples should be answered, so what follows the answer
# (ACK or none, in-dialog requests, timers) is exercised too.
USABLE = 30
CONNECTIONS = st.sampled_from([
    *[f"IN IP4 {CALLER}"] * USABLE, "IN IP4 0.0.0.0", f"IN IP4 {VICTIM}", "IN IP4 224.0.0.1",
    "IN IP4 255.255.255.255", "IN IP4 239.1.1.1/16", "IN IP6 ::1", "IN IP6 ff02::1",
    "IN IP4 media.example.com", "IN IP4 240.0.0.9", "IN IP4 127.0.0.1", "IN IP4 ", "XX YY ZZ",
])  # fmt: skip
PORTS = st.sampled_from([*[40000] * USABLE, 0, 7, 53, 65535, 70000, 1023])
VIAS = st.sampled_from(["", f";maddr={VICTIM}", f";received={VICTIM}", ";maddr=evil.example"])
ACTIONS = st.lists(st.sampled_from(["reinvite", "reinvite_bad", "forged_bye", "info",
                                    "options", "bye"]), max_size=3)  # fmt: skip


@dataclass(frozen=True)
class Case:
    number: str
    call_id: str
    connection: str
    port: int
    via: str
    mutation: tuple[int, bytes] | None
    ack: bool
    actions: tuple[str, ...]


CASES = st.builds(
    Case,
    number=st.sampled_from(["7001", "7003", "7004", "99999"]),
    call_id=CALL_IDS,
    connection=CONNECTIONS,
    port=PORTS,
    via=VIAS,
    mutation=st.sampled_from([False] * 3 + [True]).flatmap(
        lambda mutate: st.tuples(st.integers(0, 2000), st.sampled_from(NASTY)) if mutate
        else st.none()),
    ack=st.booleans(),
    actions=ACTIONS.map(tuple),
)


class Tally:
    """What the examples saw: the answered calls (Call-ID -> how many 200s with new To tags)."""

    def __init__(self) -> None:
        self.answered: dict[str, set[str]] = {}
        self.examples = 0


async def exercise(server: ServerThread, case: Case, tally: Tally, seed: int) -> None:
    """One hostile call; never waits for its end (the timers are checked after all of them)."""
    phone = await Phone.open(CALLER)
    stranger = await Phone.open(STRANGER)
    phone.ids = stranger.ids = IdGenerator(seed=f"fuzz-{seed}")
    try:
        leg = phone.leg(server.address, user=case.number)
        leg.call_id = case.call_id
        invite = leg.invite(sdp(case.connection, case.port))
        invite.headers.set("Via", phone.via() + case.via)
        data = bytes(invite)
        if case.mutation is not None:
            at, junk = case.mutation
            at %= len(data)
            data = data[:at] + junk + data[at:]
        phone.send(data, server.address)
        final = await _final(phone, "INVITE", 2.0)
        if final is None or final.status != 200:
            if final is not None:
                phone.send(leg.ack(final), server.address)
            return
        tally.answered.setdefault(final.call_id(), set()).add(final.to_addr().tag or "")
        if not case.ack:
            return
        phone.send(leg.ack(final), server.address)
        for action in case.actions:
            await _act(server, phone, stranger, leg, action)
    finally:
        phone.close()
        stranger.close()


async def _act(server: ServerThread, phone: Phone, stranger: Phone, leg: Leg,
               action: str) -> None:  # fmt: skip
    if action in ("reinvite", "reinvite_bad"):
        where = f"IN IP4 {CALLER}" if action == "reinvite" else f"IN IP4 {VICTIM}"
        bad = "IN IP4 224.0.0.2" if action == "reinvite_bad" else where
        phone.send(leg.request("INVITE", sdp(bad), "application/sdp"), server.address)
        final = await _final(phone, "INVITE", 1.0)
        if final is not None:
            phone.send(leg.ack(final), server.address)
    elif action == "forged_bye":
        forged = leg.request("BYE")
        forged.headers.set("Via", stranger.via())
        stranger.send(forged, server.address)
        got = await _final(stranger, "BYE", 1.0)
        assert got is None or got.status != 200, "a BYE from a stranger ended the call"
    elif action == "info":
        body = b"Signal=../../" + MARK.encode() + b"\r\nDuration=100\r\n"
        phone.send(leg.request("INFO", body, "application/dtmf-relay"), server.address)
        await _final(phone, "INFO", 1.0)
    else:
        phone.send(leg.request("OPTIONS" if action == "options" else "BYE"), server.address)
        await _final(phone, "OPTIONS" if action == "options" else "BYE", 1.0)


async def _final(phone: Phone, method: str, timeout: float) -> Response | None:
    try:
        message = await phone.recv(timeout, method=method,
                                   match=lambda m: isinstance(m, Response) and m.status >= 200)
    except TimeoutError:
        return None
    return message if isinstance(message, Response) else None


def _files_named_after_call_ids(root: Path) -> list[Path]:
    """Files anywhere near the server's folder whose name carries a hostile Call-ID."""
    found: list[Path] = []
    for folder in [root, *list(root.parents)[:3]]:
        found += [p for p in folder.glob(f"*{MARK}*")]
    found += [p for p in root.rglob(f"*{MARK}*")]
    return found


def test_mutated_invites_and_in_dialog_requests_leave_every_answered_call_ended_and_recorded(
    tmp_path: Path,
) -> None:
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind((VICTIM, 40000))  # where c= and maddr point; RTP port and SIP responses alike
    victim.setblocking(False)
    server = server_for(tmp_path, per_source=SourceLimits(0, 0, 0.0, 1))
    tally = Tally()
    started = time.monotonic()

    @FUZZ
    @given(case=CASES)
    def one(case: Case) -> None:
        tally.examples += 1
        if time.monotonic() - started > 40:  # the bound: CI time, whatever the machine's load
            return
        run(exercise(server, case, tally, tally.examples), 20)

    try:
        one()
        assert tally.answered, "no example was answered: the fuzz tested nothing"
        # Every answered call ends within its timers: 64*T1 without an ACK, the media timeout
        # without RTP (none of ours sends any), and a BYE nobody answers gives up in 64*T1.
        limit = MEDIA_TIMEOUT + 3 * FAST.timeout + 5
        wait_for(lambda: server.read(lambda s: len(s.ua.calls)) == 0, limit)
        db = server.db

        def ended() -> bool:
            rows = {c["call_id"]: c for c in calls(db)}
            return all(
                len([k for k in record_ids(db, call_id) if rows.get(k, {}).get("outcome")])
                >= len(tags) for call_id, tags in tally.answered.items())  # fmt: skip

        wait_for(ended, 10)
        assert server.read(lambda s: (len(s._streams), len(s._unstarted))) == (0, 0)
        assert _files_named_after_call_ids(tmp_path) == []
        recordings = tmp_path / "var" / "recordings"
        assert all(p.parent == recordings for p in recordings.rglob("*"))
        heard = []
        while True:
            try:
                heard.append(victim.recvfrom(4096))
            except BlockingIOError:
                break
        assert heard == [], heard[:3]

        async def options() -> int:
            phone = await Phone.open(CALLER)
            leg = phone.leg(server.address)
            phone.send(leg.request("OPTIONS"), server.address)
            response = await phone.response(200, "OPTIONS")
            phone.close()
            return response.status

        assert run(options(), 10) == 200
    finally:
        victim.close()
        server.stop()
