"""Requests inside an established call (re-INVITE, INFO, OPTIONS, BYE both ways), against the
scripted phone over loopback UDP."""

from __future__ import annotations

import asyncio

from sip_phone import established, run, sdp_offer, setup

from ivr.sip.call import CallState
from ivr.sip.sdp import SessionDescription


def test_hangup_from_our_side_sends_bye_with_dialog_fields() -> None:
    async def scenario() -> None:
        ua, phone, app = await setup()
        leg = phone.leg(ua.address)
        ok = await leg.establish()
        call = app.calls[0]
        await asyncio.wait_for(call.wait_established(), 2)
        call.hangup()
        assert call.state == CallState.ENDING
        bye = await phone.request("BYE")
        again = await phone.request("BYE", timeout=1)  # retransmitted until answered
        assert bytes(again) == bytes(bye)
        assert bye.cseq().number >= 1 and bye.call_id() == leg.call_id
        assert bye.from_addr().tag == ok.to_addr().tag
        phone.reply(bye, 200)
        await asyncio.wait_for(call.wait_ended(), 2)
        assert call.end_reason == "local bye"
        assert ("hangup", leg.call_id) not in app.events  # we hung up: no on_hangup
        phone.close()
        await ua.close()

    run(scenario())


def test_hangup_before_ack_waits_for_the_ack() -> None:
    async def scenario() -> None:
        ua, phone, app = await setup()
        leg = phone.leg(ua.address)
        phone.send(leg.invite(), ua.address)
        ok = await phone.response(200, "INVITE")
        app.calls[0].hangup()
        assert await phone.quiet(ua.timers.t1 * 3, method="BYE") == []  # §15: not before ACK
        phone.send(leg.ack(ok), ua.address)
        bye = await phone.request("BYE")
        phone.reply(bye, 200)
        phone.close()
        await ua.close()

    run(scenario())


def test_reinvite_hold_and_unhold_answered_from_current_media() -> None:
    async def scenario() -> None:
        ua, phone, app, leg, call = await established()
        first_sdp = SessionDescription.parse(bytes(call.local_sdp))  # type: ignore[arg-type]
        phone.send(leg.request("INVITE", sdp_offer(direction="sendonly", version=2),
                               "application/sdp"), ua.address)  # fmt: skip
        held = await phone.response(200, "INVITE")
        answer = SessionDescription.parse(held.body)
        assert answer.media[0].direction == "recvonly"
        assert answer.media[0].port == first_sdp.media[0].port  # same local media
        assert answer.origin.session_id == first_sdp.origin.session_id
        assert answer.origin.session_version == first_sdp.origin.session_version + 1
        phone.send(leg.ack(held), ua.address)
        assert call.media is not None and call.media.direction == "recvonly"
        phone.send(leg.request("INVITE", sdp_offer(version=3), "application/sdp"), ua.address)
        resumed = await phone.response(200, "INVITE")
        phone.send(leg.ack(resumed), ua.address)
        assert SessionDescription.parse(resumed.body).media[0].direction == "sendrecv"
        # A session refresh with the same offer: the same answer, o= version unchanged.
        phone.send(leg.request("INVITE", sdp_offer(version=3), "application/sdp"), ua.address)
        refresh = await phone.response(200, "INVITE")
        phone.send(leg.ack(refresh), ua.address)
        assert refresh.body == resumed.body
        assert [e for e in app.events if e[0] == "media"] == [
            ("media", "recvonly"), ("media", "sendrecv"), ("media", "sendrecv")]
        assert call.state == CallState.ESTABLISHED
        phone.close()
        await ua.close()

    run(scenario())


def test_reinvite_without_sdp_gets_an_offer_and_answer_in_ack() -> None:
    async def scenario() -> None:
        ua, phone, app, leg, call = await established()
        phone.send(leg.request("INVITE"), ua.address)
        ok = await phone.response(200, "INVITE")
        assert SessionDescription.parse(ok.body).media[0].direction == "sendrecv"
        phone.send(leg.ack(ok, body=sdp_offer(port=42000, formats="8")), ua.address)
        await asyncio.sleep(0.1)
        assert call.media is not None and call.media.remote_port == 42000
        assert ("media", "sendrecv") in app.events
        phone.close()
        await ua.close()

    run(scenario())


def test_reinvite_with_unusable_offer_gets_488_and_the_call_goes_on() -> None:
    async def scenario() -> None:
        ua, phone, _, leg, call = await established()
        before = call.media
        body = sdp_offer(formats="18").replace(b"a=rtpmap:0 PCMU/8000\r\n", b"")
        phone.send(leg.request("INVITE", body, "application/sdp"), ua.address)
        await phone.response(488, "INVITE")
        assert call.media == before and call.state == CallState.ESTABLISHED
        phone.close()
        await ua.close()

    run(scenario())


def test_info_dtmf_relay_and_dtmf_bodies_reach_on_dtmf() -> None:
    async def scenario() -> None:
        ua, phone, app, leg, _ = await established()
        bodies = [
            ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            ("application/dtmf-relay", b"Signal= #\r\nDuration= 250\r\n"),
            ("application/dtmf", b"9"),
            ("application/dtmf-relay", b"Signal=10\r\nDuration=160\r\n"),
        ]
        for content_type, body in bodies:
            phone.send(leg.request("INFO", body, content_type), ua.address)
            await phone.response(200, "INFO")
        assert [e[1] for e in app.events if e[0] == "dtmf"] == ["5", "#", "9", "*"]
        phone.send(leg.request("INFO", b"<xml/>", "application/media_control+xml"), ua.address)
        unsupported = await phone.response(415, "INFO")
        assert "application/dtmf-relay" in (unsupported.headers.get("Accept") or "")
        phone.send(leg.request("INFO"), ua.address)  # empty INFO: a keep-alive
        await phone.response(200, "INFO")
        assert len([e for e in app.events if e[0] == "dtmf"]) == 4
        phone.close()
        await ua.close()

    run(scenario())


def test_info_retransmission_gets_the_same_answer_and_one_digit() -> None:
    async def scenario() -> None:
        ua, phone, app, leg, _ = await established()
        info = leg.request("INFO", b"Signal=7\r\nDuration=160\r\n", "application/dtmf-relay")
        phone.send(info, ua.address)
        first = await phone.response(200, "INFO")
        phone.send(info, ua.address)
        second = await phone.response(200, "INFO")
        assert bytes(first) == bytes(second)
        assert [e for e in app.events if e[0] == "dtmf"] == [("dtmf", "7")]
        phone.close()
        await ua.close()

    run(scenario())


def test_options_answered_in_and_out_of_dialog() -> None:
    async def scenario() -> None:
        ua, phone, _, leg, _ = await established()
        phone.send(leg.request("OPTIONS"), ua.address)
        inside = await phone.response(200, "OPTIONS")
        other = phone.leg(ua.address, user="anything-at-all")
        options = other.invite(b"")
        options.method = "OPTIONS"
        options.headers.set("CSeq", "1 OPTIONS")
        phone.send(options, ua.address)
        outside = await phone.response(200, "OPTIONS")
        for response in (inside, outside):
            allow = response.headers.get("Allow") or ""
            assert {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "REFER"} <= {
                m.strip() for m in allow.split(",")}
            assert response.headers.get("Accept") == "application/sdp"
            assert all(value.strip() for _, value in response.headers)  # no empty header
        assert outside.to_addr().tag is not None
        phone.close()
        await ua.close()

    run(scenario())


def test_requests_for_unknown_dialogs_and_methods() -> None:
    async def scenario() -> None:
        ua, phone, _, leg, _ = await established()
        stranger = phone.leg(ua.address)
        stranger.to = f"<{stranger.uri}>;tag=nosuchdialog"
        for method in ("BYE", "INFO", "INVITE"):
            phone.send(stranger.request(method), ua.address)
            await phone.response(481, method)
        outside = phone.leg(ua.address)
        phone.send(outside.request("BYE"), ua.address)  # no To tag, no dialog
        await phone.response(481, "BYE")
        phone.send(outside.request("REGISTER"), ua.address)
        assert "INVITE" in ((await phone.response(405, "REGISTER")).headers.get("Allow") or "")
        phone.send(leg.request("MESSAGE", b"hi", "text/plain"), ua.address)
        await phone.response(405, "MESSAGE")
        phone.send(leg.request("FROBNICATE"), ua.address)
        await phone.response(501, "FROBNICATE")
        stale = leg.request("INFO")
        stale.headers.set("CSeq", "1 INFO")  # lower than the INVITE's: out of order
        phone.send(stale, ua.address)
        await phone.response(500, "INFO")
        phone.close()
        await ua.close()

    run(scenario())
