"""The Kamailio front docs/SECURITY.md recommends for public lines, run as written there.

The configuration is read from the document itself (so the document cannot drift from what
works), pointed at an ``ivr serve`` on loopback, and started as Debian's real kamailio. A call
through it is answered, record-routed and recorded; a flood of requests from one address is
cut off by ``pike`` while the server behind it stays untouched.
"""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kamailio_peer import free_udp_port, options_ping
from serve_helpers import REPO, ServerThread, ended_call, wait_for
from sip_phone import Phone, run, sdp_offer
from test_serve_hardening import server_for

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("kamailio_program")]

DOC = REPO / "docs" / "SECURITY.md"
FLOOD = 60  # requests in a row from one address: pike's limit is 30 in 2 s


def front_config(server_port: int) -> str:
    """The document's Kamailio configuration, forwarding to ``ivr serve`` on ``server_port``."""
    text = DOC.read_text(encoding="utf-8")
    block = "loadmodule" + text.split("```\nloadmodule", 1)[1].split("```", 1)[0]
    assert '$du = "sip:127.0.0.1:5060";' in block
    return "#!KAMAILIO\n" + block.replace("127.0.0.1:5060", f"127.0.0.1:{server_port}")


@pytest.fixture
def front(tmp_path: Path) -> Iterator[tuple[ServerThread, tuple[str, int]]]:
    server = server_for(tmp_path / "serve")
    cfg = tmp_path / "front.cfg"
    cfg.write_text(front_config(server.address[1]), encoding="utf-8")
    port = free_udp_port()
    log = (tmp_path / "kamailio.log").open("wb")
    proc = subprocess.Popen(
        ["kamailio", "-f", str(cfg), "-DD", "-E", "-m", "64", "-M", "8", "-n", "2",
         "-l", f"udp:127.0.0.1:{port}", "-w", str(tmp_path), "-Y", str(tmp_path)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=tmp_path)  # fmt: skip
    log.close()
    try:
        wait_for(lambda: proc.poll() is not None or options_ping(port) == 200, 10)
        assert proc.poll() is None, (tmp_path / "kamailio.log").read_text(errors="replace")
        yield server, ("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        server.stop()


def test_a_call_through_the_documented_front_is_answered_and_recorded(
    front: tuple[ServerThread, tuple[str, int]],
) -> None:
    server, address = front
    time.sleep(2.5)  # pike's window of the start-up OPTIONS pings is over

    async def scenario() -> str:
        phone = await Phone.open("127.0.0.40")
        leg = phone.leg(address, user="7001")
        ok = await leg.establish(sdp_offer(address="127.0.0.40"))
        assert "Record-Route" in ok.headers  # in-dialog requests come back through the front
        phone.send(leg.request("BYE"), address)
        await phone.response(200, "BYE")
        phone.close()
        return leg.call_id

    call_id = run(scenario(), 30)
    assert wait_for(lambda: ended_call(server.db, call_id), 10)["outcome"] is not None


def test_the_front_cuts_off_a_flood_from_one_address(
    front: tuple[ServerThread, tuple[str, int]],
) -> None:
    server, address = front
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.41", 0))
    sock.settimeout(0.3)
    me = sock.getsockname()[1]
    answered = 0
    for n in range(FLOOD):
        request = (f"OPTIONS sip:127.0.0.1:{address[1]} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.41:{me};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:flood@127.0.0.41>;tag=f\r\n"
                   f"To: <sip:127.0.0.1:{address[1]}>\r\nCall-ID: flood-{n}\r\n"
                   "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")  # fmt: skip
        sock.sendto(request.encode(), address)
        try:
            if b"SIP/2.0 200" in sock.recv(4096):
                answered += 1
        except TimeoutError:
            pass
    sock.close()
    assert 0 < answered < FLOOD  # the first ones through, then pike blocks the address

    async def other() -> int:  # the server behind the front is untouched
        phone = await Phone.open("127.0.0.42")
        leg = phone.leg(server.address)
        phone.send(leg.request("OPTIONS"), server.address)
        response = await phone.response(200, "OPTIONS")
        phone.close()
        return response.status

    assert run(other(), 10) == 200
