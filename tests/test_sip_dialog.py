"""Dialogs: state from the creating request/response, in-dialog requests, route sets."""

from __future__ import annotations

import asyncio

from sip_phone import Phone, run, start_ua

from ivr.sip.call import SipCall
from ivr.sip.dialog import Dialog, dialog_id_of
from ivr.sip.message import Request, Response, parse_message
from ivr.sip.uri import SipUri

INVITE = (
    b"INVITE sip:95588@10.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKp1;rport=5070\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.3:5062;branch=z9hG4bKc1\r\n"
    b"Record-Route: <sip:127.0.0.1:5070;lr;ftag=abc>\r\n"
    b"Record-Route: <sip:edge.example;lr>\r\n"
    b"From: \"Alice\" <sip:1001@pbx.example>;tag=caller1\r\n"
    b"To: <sip:95588@pbx.example>\r\n"
    b"Call-ID: d1@127.0.0.3\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Contact: <sip:1001@127.0.0.3:5062;transport=udp>\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _invite() -> Request:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    return message


def test_uas_dialog_takes_route_set_target_and_cseq_from_the_invite() -> None:
    dialog = Dialog.as_uas(_invite(), "ours", "<sip:ivr@127.0.0.1:5060>")
    assert dialog.id == ("d1@127.0.0.3", "ours", "caller1")
    assert dialog.route_set == ["<sip:127.0.0.1:5070;lr;ftag=abc>", "<sip:edge.example;lr>"]
    assert dialog.remote_target == "sip:1001@127.0.0.3:5062;transport=udp"
    assert dialog.remote_seq == 7


def test_bye_with_loose_route_set_goes_to_the_proxy_with_route_headers() -> None:
    dialog = Dialog.as_uas(_invite(), "ours", "<sip:ivr@127.0.0.1:5060>", local_seq=100)
    bye = dialog.create_request("BYE", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx")
    assert bye.uri == "sip:1001@127.0.0.3:5062;transport=udp"  # loose routing: the target
    assert bye.headers.get_all("Route") == dialog.route_set
    assert bye.from_addr().tag == "ours" and bye.to_addr().tag == "caller1"
    assert bye.to_addr().display == "Alice"  # the peer's From, as it wrote it
    assert str(bye.cseq()) == "101 BYE"
    assert "Contact" not in bye.headers  # BYE is not a target refresh
    hop = dialog.next_hop()
    assert isinstance(hop, SipUri) and hop.host_port() == ("127.0.0.1", 5070)
    refer = dialog.create_request("REFER", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKy")
    assert refer.headers.get("Contact") == "<sip:ivr@127.0.0.1:5060>"  # RFC 3515 wants one
    assert refer.cseq().number == 102


def test_strict_router_gets_the_request_uri_and_the_target_goes_last() -> None:
    invite = _invite()
    invite.headers.set("Record-Route", "<sip:127.0.0.1:5070;maddr=127.0.0.1>")
    dialog = Dialog.as_uas(invite, "ours", "<sip:ivr@127.0.0.1:5060>")
    bye = dialog.create_request("BYE", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx")
    assert bye.uri == "sip:127.0.0.1:5070"
    assert bye.headers.get_all("Route") == ["<sip:1001@127.0.0.3:5062;transport=udp>"]


def test_uac_dialog_reverses_the_record_route_of_the_response() -> None:
    request = _invite()
    request.headers.set("From", "<sip:ivr@127.0.0.1>;tag=me")
    response = Response(200, "OK", request.headers.copy())
    response.headers.set("To", "<sip:95588@pbx.example>;tag=them")
    response.headers.set("Contact", "<sip:agent@127.0.0.9:5090>")
    dialog = Dialog.as_uac(request, response)
    assert dialog.route_set == ["<sip:edge.example;lr>", "<sip:127.0.0.1:5070;lr;ftag=abc>"]
    assert dialog.remote_target == "sip:agent@127.0.0.9:5090"
    assert dialog.id == ("d1@127.0.0.3", "me", "them")


def test_remote_cseq_must_grow() -> None:
    dialog = Dialog.as_uas(_invite(), "ours", "<sip:ivr@127.0.0.1:5060>")
    info = _invite()
    info.method = "INFO"
    info.headers.set("CSeq", "8 INFO")
    assert dialog.accept_remote_cseq(info)
    assert not dialog.accept_remote_cseq(info)  # the same number again: 500
    info.headers.set("CSeq", "3 INFO")
    assert not dialog.accept_remote_cseq(info)
    assert dialog.remote_seq == 8


def test_dialog_id_of_an_incoming_request_is_to_tag_first() -> None:
    info = _invite()
    info.headers.set("To", "<sip:95588@pbx.example>;tag=ours")
    assert dialog_id_of(info) == ("d1@127.0.0.3", "ours", "caller1")


def test_bye_from_us_goes_through_the_record_routing_proxy() -> None:
    """A Kamailio-like proxy record-routes; our BYE must go to it, with Route, not to the
    caller's Contact directly."""

    async def scenario() -> None:
        calls: list[SipCall] = []

        def accept(call: SipCall) -> None:
            calls.append(call)
            call.accept()

        ua = await start_ua(on_incoming=accept)
        phone = await Phone.open()
        proxy = await Phone.open()
        route = f"<sip:{proxy.address[0]}:{proxy.address[1]};lr;ftag=x>"
        leg = phone.leg(ua.address)
        ok = await asyncio.wait_for(
            _establish_with(leg, [("Record-Route", route)]), 5
        )
        assert ok.headers.get_all("Record-Route") == [route]  # copied into the 200 (§12.1.1)
        await asyncio.wait_for(calls[0].wait_established(), 2)
        calls[0].hangup()
        bye = await proxy.request("BYE")
        assert bye.headers.get_all("Route") == [route]
        assert bye.uri == f"sip:{leg.caller}@{phone.address[0]}:{phone.address[1]}"
        proxy.reply(bye, 200)
        await asyncio.wait_for(calls[0].wait_ended(), 2)
        assert await phone.quiet(0.2, method="BYE") == []  # nothing went around the proxy
        for p in (phone, proxy):
            p.close()
        await ua.close()

    run(scenario())


async def _establish_with(leg: object, headers: list[tuple[str, str]]) -> Response:
    from sip_phone import Leg

    assert isinstance(leg, Leg)
    leg.phone.send(leg.invite(headers=headers), leg.ua)
    ok = await leg.phone.response(200, "INVITE")
    leg.phone.send(leg.ack(ok), leg.ua)
    return ok
