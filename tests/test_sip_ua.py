"""The user agent against a scripted phone over loopback UDP: calls in, answered, ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sip_phone import App, MediaPorts, established, run, sdp_offer, setup

from ivr.sip.call import CallState
from ivr.sip.message import Response
from ivr.sip.sdp import SessionDescription
from ivr.sip.timers import Timers

DATA = Path(__file__).parent / "sip_data" / "messages"


def test_call_answered_with_sdp_and_ended_by_caller_bye() -> None:
    async def scenario() -> None:
        media = MediaPorts()
        ua, phone, app = await setup(local_media_factory=media)
        leg = phone.leg(ua.address, user="95588", caller="+8613800000001")
        phone.send(leg.invite(sdp_offer(port=40000, formats="8 0 101")), ua.address)
        trying = await phone.response(100, "INVITE")
        ringing = await phone.response(180, "INVITE")
        ok = await phone.response(200, "INVITE")
        assert "tag=" not in (trying.headers.get("To") or "")
        assert ringing.to_addr().tag == ok.to_addr().tag is not None
        assert ok.headers.get("Content-Type") == "application/sdp"
        answer = SessionDescription.parse(ok.body)
        assert answer.media[0].port == media.reserved[leg.call_id]
        assert answer.media[0].formats == ["8", "101"]  # the caller's first choice, and DTMF
        assert ok.contacts()[0].uri.port == ua.address[1]  # type: ignore[union-attr]
        phone.send(leg.ack(ok), ua.address)
        call = app.calls[0]
        await asyncio.wait_for(call.wait_established(), 2)
        assert call.caller == "+8613800000001" and call.called == "95588"
        assert call.media is not None
        assert (call.media.payload_type, call.media.dtmf_payload_type) == (8, 101)
        assert (call.media.remote_address, call.media.remote_port) == ("127.0.0.1", 40000)
        assert call.info().transport == "sip"
        phone.send(leg.request("BYE"), ua.address)
        await phone.response(200, "BYE")
        await asyncio.wait_for(call.wait_ended(), 2)
        assert call.end_reason == "remote bye"
        assert app.events == [("established", leg.call_id), ("hangup", leg.call_id)]
        assert media.released == [leg.call_id]
        assert ua.active_calls == 0
        phone.close()
        await ua.close()

    run(scenario())


def test_200_is_retransmitted_until_ack_and_bye_sent_without_ack() -> None:
    async def scenario() -> None:
        ua, phone, app = await setup(timers=Timers(t1=0.02, t2=0.16, t4=0.2))
        leg = phone.leg(ua.address)
        phone.send(leg.invite(), ua.address)
        first = await phone.response(200, "INVITE")
        again = await phone.response(200, "INVITE", timeout=1)
        assert bytes(again) == bytes(first)  # the same 2xx, resent (T1, 2T1, ...)
        leg.confirm(first)
        bye = await phone.request("BYE", timeout=ua.timers.timeout + 2)  # no ACK: 64*T1, BYE
        assert bye.uri == f"sip:{leg.caller}@{phone.address[0]}:{phone.address[1]}"
        assert bye.to_addr().tag == leg.from_tag
        assert bye.from_addr().tag == first.to_addr().tag
        # The call is lost: the application hears of it now, not when the BYE completes.
        assert ("hangup", leg.call_id) in app.events
        phone.reply(bye, 200)
        call = app.calls[0]
        await asyncio.wait_for(call.wait_ended(), 2)
        assert call.end_reason == "no ack"
        assert app.events.count(("hangup", leg.call_id)) == 1
        phone.close()
        await ua.close()

    run(scenario())


def test_ack_stops_retransmissions() -> None:
    async def scenario() -> None:
        ua, phone, _ = await setup()
        leg = phone.leg(ua.address)
        await leg.establish()
        extra = await phone.quiet(ua.timers.t1 * 8, status=200, method="INVITE")
        # At most one 2xx can cross the ACK in flight; after that, silence.
        assert len(extra) <= 1
        phone.close()
        await ua.close()

    run(scenario())


def test_invite_retransmission_absorbed_after_200() -> None:
    async def scenario() -> None:
        ua, phone, app = await setup()
        leg = phone.leg(ua.address)
        invite = leg.invite()
        phone.send(invite, ua.address)
        ok = await phone.response(200, "INVITE")
        phone.send(invite, ua.address)  # a late retransmission of the same INVITE
        phone.send(leg.ack(ok), ua.address)
        await asyncio.sleep(ua.timers.t1 * 4)
        assert len(app.calls) == 1  # no second call
        phone.close()
        await ua.close()

    run(scenario())


def test_invite_without_sdp_gets_offer_and_answer_comes_in_ack() -> None:
    async def scenario() -> None:
        ua, phone, app = await setup()
        leg = phone.leg(ua.address)
        phone.send(leg.invite(b""), ua.address)
        ok = await phone.response(200, "INVITE")
        offer = SessionDescription.parse(ok.body)
        assert offer.media[0].formats == ["0", "8", "101"]
        call = app.calls[0]
        assert call.media is None
        phone.send(leg.ack(ok, body=sdp_offer(port=41000, formats="0")), ua.address)
        await asyncio.wait_for(call.wait_established(), 2)
        assert call.media is not None
        assert (call.media.payload_type, call.media.remote_port) == (0, 41000)
        phone.close()
        await ua.close()

    run(scenario())


def test_unacceptable_offer_gets_488_with_warning() -> None:
    async def scenario() -> None:
        media = MediaPorts()
        refused: list[tuple[str, str, str, int, str]] = []
        ua, phone, app = await setup(
            local_media_factory=media,
            on_refused=lambda invite, caller, called, status, reason: refused.append(
                (invite.call_id(), caller, called, status, reason)))
        leg = phone.leg(ua.address)
        body = sdp_offer(formats="18").replace(b"a=rtpmap:0 PCMU/8000\r\n", b"")
        phone.send(leg.invite(body), ua.address)
        reject = await phone.response(488, "INVITE")
        assert (reject.headers.get("Warning") or "").startswith("304 ")
        phone.send(leg.ack(reject), ua.address)
        assert app.calls == []  # never offered to the application
        assert media.released == [leg.call_id]  # the reserved port went back
        # Told to the application, whose reports count offered calls.
        assert [(r[0], r[3], r[4]) for r in refused] == [
            (leg.call_id, 488, "offer not acceptable")]
        phone.close()
        await ua.close()

    run(scenario())


def test_rejected_call_gets_final_response_retransmitted_until_ack() -> None:
    async def scenario() -> None:
        ua, phone, _ = await setup(App(reject=486))
        leg = phone.leg(ua.address)
        phone.send(leg.invite(), ua.address)
        busy = await phone.response(486, "INVITE")
        again = await phone.response(486, "INVITE", timeout=1)  # Timer G
        assert bytes(again) == bytes(busy)
        phone.send(leg.ack(busy), ua.address)
        late = await phone.quiet(ua.timers.t1 * 6, status=486)
        assert len(late) <= 1
        assert ua.active_calls == 0
        phone.close()
        await ua.close()

    run(scenario())


def test_cancel_before_answer_gets_200_and_487() -> None:
    async def scenario() -> None:
        ua, phone, app = await setup(App(accept=False))
        leg = phone.leg(ua.address)
        phone.send(leg.invite(), ua.address)
        await phone.response(180, "INVITE")
        phone.send(leg.cancel(), ua.address)
        await phone.response(200, "CANCEL")
        terminated = await phone.response(487, "INVITE")
        phone.send(leg.ack(terminated), ua.address)
        call = app.calls[0]
        await asyncio.wait_for(call.wait_ended(), 2)
        assert call.end_reason == "cancelled"
        assert ("hangup", leg.call_id) in app.events
        call.accept()  # too late: nothing happens
        assert await phone.quiet(ua.timers.t1 * 4, status=200, method="INVITE") == []
        phone.close()
        await ua.close()

    run(scenario())


def test_cancel_for_unknown_transaction_gets_481() -> None:
    async def scenario() -> None:
        ua, phone, _ = await setup()
        leg = phone.leg(ua.address)
        leg.invite()
        phone.send(leg.cancel(), ua.address)
        await phone.response(481, "CANCEL")
        phone.close()
        await ua.close()

    run(scenario())


def test_183_ringing_carries_early_sdp() -> None:
    async def scenario() -> None:
        ua, phone, _ = await setup(App(accept=False), ringing=("183",))
        leg = phone.leg(ua.address)
        phone.send(leg.invite(), ua.address)
        progress = await phone.response(183, "INVITE")
        assert SessionDescription.parse(progress.body).media[0].port > 0
        assert [m for m in phone.skipped if isinstance(m, Response) and m.status == 180] == []
        phone.close()
        await ua.close()

    run(scenario())


def test_max_calls_flood_gets_503_with_retry_after_and_calls_stay_up() -> None:
    async def scenario() -> None:
        max_calls = 20
        ua, phone, app = await setup(max_calls=max_calls, retry_after=17)
        legs = [phone.leg(ua.address) for _ in range(max_calls * 3 // 2)]
        for leg in legs:
            phone.send(leg.invite(), ua.address)
        finals: dict[str, Response] = {}
        while len(finals) < len(legs):
            message = await phone.recv(match=lambda m: isinstance(m, Response) and m.status >= 200)
            assert isinstance(message, Response)
            finals.setdefault(message.call_id(), message)
        statuses = sorted(r.status for r in finals.values())
        assert statuses == [200] * max_calls + [503] * (len(legs) - max_calls)
        assert ua.invites.refused == len(legs) - max_calls
        for leg in legs:
            response = finals[leg.call_id]
            phone.send(leg.ack(response), ua.address)
            if response.status == 503:
                assert response.headers.get("Retry-After") == "17"
        await asyncio.sleep(ua.timers.t1 * 4)
        assert ua.active_calls == max_calls
        assert all(call.state == CallState.ESTABLISHED for call in app.calls)
        # The established calls still work: one hangs up normally.
        up = next(leg for leg in legs if finals[leg.call_id].status == 200)
        phone.send(up.request("BYE"), ua.address)
        await phone.response(200, "BYE")
        assert ua.active_calls == max_calls - 1
        phone.close()
        await ua.close()

    run(scenario())


def test_drain_refuses_new_calls_and_hangs_up_the_rest_after_the_timeout() -> None:
    async def scenario() -> None:
        ua, phone, _, _, call = await established()
        drained = asyncio.create_task(ua.drain(timeout=0.3))
        await asyncio.sleep(0.05)
        late = phone.leg(ua.address)
        phone.send(late.invite(), ua.address)
        assert (await phone.response(503, "INVITE")).headers.get("Retry-After")
        probe = phone.leg(ua.address).request("OPTIONS")  # a load balancer's health check
        phone.send(probe, ua.address)
        assert (await phone.response(503, "OPTIONS")).headers.get("Retry-After")
        bye = await phone.request("BYE")
        phone.reply(bye, 200)
        await asyncio.wait_for(drained, 5)
        assert call.end_reason == "local bye"
        phone.close()

    run(scenario())


def test_captured_asterisk_invite_is_answered() -> None:
    """Asterisk 18's INVITE (Supported: 100rel, timer ...; Session-Expires), addresses mapped
    to loopback: answered, caller and called read, no header we send is empty (pyVoIP)."""

    async def scenario() -> None:
        ua, phone, app = await setup()
        data = (DATA / "asterisk_invite.sip").read_bytes().replace(b"192.0.2.", b"127.0.0.")
        phone.send(data, ua.address)
        ok = await phone.response(200, "INVITE")
        assert all(value.strip() for _, value in ok.headers)
        assert ok.call_id() == "0b8e2f61-7c3a-4d9e-b5a1-6f4c2e8d9a70"
        call = app.calls[0]
        assert (call.caller, call.called) == ("6001", "8000")
        assert call.media is not None and call.media.remote_address.startswith("127.0.0.")
        phone.close()
        await ua.close()

    run(scenario())


def test_same_invite_by_another_branch_gets_482_and_no_second_call() -> None:
    async def scenario() -> None:
        ua, phone, app = await setup(App(accept=False))
        leg = phone.leg(ua.address)
        invite = leg.invite()
        phone.send(invite, ua.address)
        await phone.response(180, "INVITE")
        forked = invite.headers.copy()
        forked.set("Via", phone.via())  # the same request, arriving by another path
        phone.send(type(invite)("INVITE", invite.uri, forked, invite.body), ua.address)
        await phone.response(482, "INVITE")
        assert len(app.calls) == 1 and ua.active_calls == 1
        phone.close()
        await ua.close()

    run(scenario())
