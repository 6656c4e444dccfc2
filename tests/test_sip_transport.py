"""The UDP transport: response addressing (RFC 3261 §18.2.2, RFC 3581), Via stamping, what it
answers or drops by itself, and that no datagram can break it."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from sip_phone import Phone, run, sdp_offer, start_ua

from ivr.sip.call import SipCall
from ivr.sip.fields import Via
from ivr.sip.message import Request, Response
from ivr.sip.transport import Address, UdpTransport, response_address, stamp_via

SOURCE: Address = ("127.0.0.7", 40123)


def test_response_goes_to_the_source_address_at_the_via_port() -> None:
    assert response_address(Via.parse("SIP/2.0/UDP pc33.example.com:5070;branch=z9hG4bKa"),
                            SOURCE) == ("127.0.0.7", 5070)  # fmt: skip
    assert response_address(Via.parse("SIP/2.0/UDP pc33.example.com;branch=z9hG4bKa"),
                            SOURCE) == ("127.0.0.7", 5060)  # fmt: skip


def test_rport_sends_the_response_back_to_the_source_port() -> None:
    asked = Via.parse("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;rport")
    assert response_address(asked, SOURCE) == ("127.0.0.7", 40123)
    filled = Via.parse("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;received=127.0.0.7;rport=999")
    assert response_address(filled, SOURCE) == ("127.0.0.7", 999)


def test_maddr_and_a_received_the_sender_wrote_never_aim_responses_elsewhere() -> None:
    """Reflection: a Via maddr (or a received the sender put in itself) naming a third party
    must not receive our responses: they go back to where the request came from."""
    via = Via.parse("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa;maddr=127.0.0.9")
    assert response_address(via, SOURCE) == ("127.0.0.7", 5062)
    named = Via.parse("SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bKa;maddr=mcast.example")
    assert response_address(named, SOURCE) == ("127.0.0.7", 5062)
    forged = Via.parse("SIP/2.0/UDP 127.0.0.7:5062;branch=z9hG4bKa;received=127.0.0.9")
    assert response_address(forged, SOURCE) == ("127.0.0.7", 5062)


def test_stamp_via_adds_received_and_rport_to_the_top_value_only() -> None:
    request = Request("OPTIONS", "sip:ivr@127.0.0.1")
    request.headers.add("Via", "SIP/2.0/UDP host.example:5060;branch=z9hG4bKa;rport, "
                               "SIP/2.0/UDP 127.0.0.3;branch=z9hG4bKb")  # fmt: skip
    request.headers.add("v", "SIP/2.0/UDP 127.0.0.4;branch=z9hG4bKc")
    stamp_via(request, SOURCE)
    vias = request.vias()
    assert vias[0].received == "127.0.0.7" and vias[0].rport == 40123
    assert [v.host for v in vias] == ["host.example", "127.0.0.3", "127.0.0.4"]
    assert "received" not in vias[1].params
    same = Request("OPTIONS", "sip:ivr@127.0.0.1")
    same.headers.add("Via", "SIP/2.0/UDP 127.0.0.7:40123;branch=z9hG4bKa")
    stamp_via(same, SOURCE)
    assert same.headers.get("Via") == "SIP/2.0/UDP 127.0.0.7:40123;branch=z9hG4bKa"


def test_transport_answers_bad_requests_and_drops_the_rest() -> None:
    async def scenario() -> None:
        requests: list[Request] = []
        responses: list[Response] = []
        transport = await UdpTransport.open(
            "127.0.0.1", 0, on_request=lambda r, a: requests.append(r),
            on_response=lambda r, a: responses.append(r), make_tag=lambda: "tt",
        )  # fmt: skip
        phone = await Phone.open()
        host, port = phone.address
        via = f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bKx1\r\n"
        phone.send(b"\r\n\r\n", transport.local)  # keep-alive
        phone.send(b"\x00\xff garbage", transport.local)  # nothing readable: dropped
        bad = (f"OPTIONS sip:a@b SIP/2.0\r\n{via}Call-ID: c1\r\nCSeq: x OPTIONS\r\n"
               "From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n\r\n")  # fmt: skip
        phone.send(bad.encode(), transport.local)
        answer = await phone.response(400, "OPTIONS")
        assert answer.to_addr().tag == "tt"
        answer_via = answer.top_via()
        assert answer_via.received is None and answer_via.branch == "z9hG4bKx1"
        version = bad.replace("SIP/2.0\r\n", "SIP/3.0\r\n", 1).replace("CSeq: x", "CSeq: 1")
        phone.send(version.encode(), transport.local)
        await phone.response(505, "OPTIONS")
        good = bad.replace("CSeq: x", "CSeq: 1")
        phone.send(good.encode(), transport.local)
        phone.send(f"SIP/2.0 200 OK\r\n{via}CSeq: 1 OPTIONS\r\n\r\n".encode(), transport.local)
        await asyncio.sleep(0.1)
        assert [r.method for r in requests] == ["OPTIONS"]  # only the good one went up
        assert responses == []  # the response lacked Call-ID/From/To: dropped
        assert await phone.quiet(0.1) == []
        phone.close()
        transport.close()

    run(scenario())


def test_no_datagram_breaks_the_user_agent(caplog: pytest.LogCaptureFixture) -> None:
    """Thousands of mutated INVITEs and random bytes; afterwards a normal call still works and
    nothing was logged as an error."""
    caplog.set_level(logging.WARNING, logger="ivr")

    async def scenario() -> None:
        def decline(call: SipCall) -> None:
            call.reject(486)

        ua = await start_ua(on_incoming=decline, max_calls=10_000)
        phone = await Phone.open()
        leg = phone.leg(ua.address)
        valid = bytes(leg.invite(sdp_offer()))
        rng = random.Random(4475)
        for i in range(2000):
            data = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if i % 10 == 0:
                data = bytearray(rng.randbytes(rng.randint(0, 300)))
            phone.send(bytes(data), ua.address)
            # asyncio reads one datagram per loop pass: pace so the socket buffer never
            # overflows and every message really reaches the user agent.
            await asyncio.sleep(0.001 if i % 20 == 0 else 0)
        await asyncio.sleep(0.3)
        stats = ua.transport.stats
        assert stats["received"] == 2000
        assert stats["rejected"] > 100 and stats["dropped"] > 100
        fresh = phone.leg(ua.address)
        phone.send(fresh.invite(), ua.address)
        busy = await phone.recv(status=486, match=lambda m: m.call_id() == fresh.call_id)
        assert isinstance(busy, Response)
        phone.close()
        await ua.close()

    run(scenario())
    errors = [r for r in caplog.records if r.name.startswith("ivr") and r.levelno >= logging.ERROR]
    assert errors == []
