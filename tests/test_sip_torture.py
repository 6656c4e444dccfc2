"""Every RFC 4475 torture message, sent over UDP to a running user agent.

The messages are mapped to loopback first, as tests/data/README.md says: ``192.0.2.``
becomes ``127.0.0.`` everywhere (same length: Content-Length stays true), and in the header
part 135.180.130.133 and 192.168.255.111 become loopback addresses. They are sent from a
loopback address other than the user agent's (127.0.0.2 when it can be bound), from port 5060,
because the answers go to the ``received`` address at the Via port (5060 when absent).
The answer (or silence) must be what INDEX.tsv says a UAS does, and a normal call must work
afterwards.
"""

from __future__ import annotations

import asyncio
import csv
import re
import socket
from pathlib import Path

import pytest
from sip_phone import Phone, run, start_ua

from ivr.sip.call import SipCall
from ivr.sip.message import Request, Response, parse_message
from ivr.sip.ua_base import RouteError

TORTURE = Path(__file__).parent / "data" / "rfc4475"

# The final status our user agent sends for each message (None: silence, as for responses).
# INVITEs that are well formed are answered 200 (this test's application accepts every call),
# except wsinv.dat: its To has a tag, so it is a re-INVITE for a dialog we do not have, and
# processing it normally means 481 (RFC 3261 §12.2.2). REGISTER and MESSAGE are known methods
# we do not take: 405 with Allow.
EXPECTED: dict[str, int | None] = {
    "wsinv.dat": 481, "intmeth.dat": 501, "esc01.dat": 200, "escnull.dat": 405,
    "esc02.dat": 501, "lwsdisp.dat": 200, "longreq.dat": 200, "dblreq.dat": 405,
    "semiuri.dat": 200, "transports.dat": 200, "mpart01.dat": 405, "unreason.dat": None,
    "noreason.dat": None, "badinv01.dat": 400, "clerr.dat": 400, "ncl.dat": 400,
    "scalar02.dat": 400, "scalarlg.dat": None, "quotbal.dat": 400, "ltgtruri.dat": 400,
    "lwsruri.dat": 400, "lwsstart.dat": 400, "trws.dat": 400, "escruri.dat": 400,
    "baddate.dat": 200, "regbadct.dat": 400, "badaspec.dat": 400, "baddn.dat": 400,
    "badvers.dat": 505, "mismatch01.dat": 400, "mismatch02.dat": 501, "bigcode.dat": None,
    "badbranch.dat": 200, "insuf.dat": 400, "unkscm.dat": 416, "novelsc.dat": 416,
    "unksm2.dat": 405, "bext01.dat": 420, "invut.dat": 415, "regaut01.dat": 405,
    "multi01.dat": 400, "mcl01.dat": 400, "bcast.dat": None, "zeromf.dat": 200,
    "cparam01.dat": 405, "cparam02.dat": 405, "regescrt.dat": 405, "sdp01.dat": 406,
    "inv2543.dat": 200,
}  # fmt: skip
# What INDEX.tsv's verdict text allows for each of our answers (checked against the file).
_INDEX_WORDS = {400: "400", 501: "501", 505: "505", 415: "415", 416: "416", 420: "420",
                406: "406"}  # fmt: skip
_CALL_ID = re.compile(rb"^(?:Call-ID|i)[ \t]*:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)
_TOP_VIA = re.compile(rb"^(?:Via|v)[ \t]*:[ \t]*SIP[ \t]*/[ \t]*2\.0[ \t]*/[ \t]*UDP[ \t]+"
                      rb"([^;:\s]+)(?:[ \t]*:[ \t]*(\d+))?([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


def to_loopback(data: bytes) -> bytes:
    """The README's mapping: documentation and foreign addresses become loopback ones."""
    data = data.replace(b"192.0.2.", b"127.0.0.")
    head, sep, body = data.partition(b"\r\n\r\n")
    head = head.replace(b"135.180.130.133", b"127.0.0.133").replace(b"192.168.255.111",
                                                                    b"127.0.0.111")
    return head + sep + body


def _index() -> dict[str, list[str]]:
    with open(TORTURE / "INDEX.tsv", newline="") as f:
        return {row[0]: row for row in csv.reader(f, delimiter="\t") if row[0].endswith(".dat")}


def _reply_port(data: bytes) -> int:
    """The port answers come back to: rport means ours (5060), else the Via port or 5060."""
    m = _TOP_VIA.search(data)
    if m is None or b"rport" in m.group(3):
        return 5060
    return int(m.group(2)) if m.group(2) else 5060


def _bind_sender(ports: set[int]) -> tuple[str, dict[int, socket.socket]]:
    for last in range(2, 40):
        host = f"127.0.0.{last}"
        socks: dict[int, socket.socket] = {}
        try:
            for port in sorted(ports):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks[port] = sock
                sock.bind((host, port))
                sock.setblocking(False)
            return host, socks
        except OSError:
            for sock in socks.values():
                sock.close()
    pytest.fail("no loopback address 127.0.0.2-39 with both ports 5050 and 5060 free to send "
                "from: something else holds them all", pytrace=False)  # fmt: skip


async def _refuse_names(host: str, port: int) -> tuple[str, int]:
    # The torture messages name hosts such as example.com: never look them up, never send
    # anything off this machine.
    raise RouteError(f"test: {host} is not resolved")


def test_index_and_expectations_cover_the_same_files() -> None:
    index = _index()
    assert sorted(index) == sorted(EXPECTED) == sorted(p.name for p in TORTURE.glob("*.dat"))
    for name, status in EXPECTED.items():
        row = index[name]
        if status in _INDEX_WORDS:
            assert _INDEX_WORDS[status] in row[5] or "respond with an error" in row[5], name
        if status is None:
            assert row[3] == "response", name


def test_every_torture_message_gets_the_indexed_answer_and_calls_still_work() -> None:
    files = sorted(TORTURE.glob("*.dat"))
    messages = {path.name: to_loopback(path.read_bytes()) for path in files}
    host, socks = _bind_sender({_reply_port(data) for data in messages.values()})

    async def scenario() -> dict[str, int | None]:
        calls: list[SipCall] = []

        def accept(call: SipCall) -> None:
            calls.append(call)
            call.accept()

        ua = await start_ua(on_incoming=accept, resolver=_refuse_names)
        loop = asyncio.get_running_loop()
        got: dict[str, int | None] = {}
        for name, data in messages.items():
            sock = socks[_reply_port(data)]
            await loop.sock_sendto(socks[5060], data, ua.address)
            got[name] = await _final_status(sock, data, EXPECTED[name] is None)
        assert not any(c.call_id.startswith("dblreq") for c in calls)  # trailing INVITE ignored
        # And a plain call works after all that.
        phone = await Phone.open()
        leg = phone.leg(ua.address)
        await leg.establish()
        phone.send(leg.request("BYE"), ua.address)
        await phone.response(200, "BYE")
        phone.close()
        await ua.close()
        return got

    try:
        got = run(scenario(), timeout=120)
    finally:
        for sock in socks.values():
            sock.close()
    assert host.startswith("127.")
    assert got == EXPECTED


async def _final_status(sock: socket.socket, sent: bytes, silence: bool) -> int | None:
    """The first final response with the message's Call-ID (None after a quiet spell)."""
    loop = asyncio.get_running_loop()
    m = _CALL_ID.search(sent.partition(b"\r\n\r\n")[0])
    call_id = m.group(1).decode() if m else None
    deadline = loop.time() + (0.3 if silence else 3.0)
    while (left := deadline - loop.time()) > 0:
        try:
            data = await asyncio.wait_for(loop.sock_recv(sock, 65536), left)
        except TimeoutError:
            break
        message = parse_message(data)
        if isinstance(message, Request):
            continue  # a BYE for an earlier INVITE that was never ACKed
        assert isinstance(message, Response)
        if message.headers.get("Call-ID") == call_id and message.status >= 200:
            return message.status
    return None
