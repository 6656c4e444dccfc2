"""The calling user agent (ivr.sip.uac) against our answering one, over loopback UDP."""

from __future__ import annotations

import asyncio

from sip_phone import FAST, App, Phone, run, start_ua

from ivr.sip.dialog import Dialog
from ivr.sip.headers import Headers
from ivr.sip.ids import IdGenerator
from ivr.sip.message import Request, Response
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.ua import UserAgent
from ivr.sip.uac import OutgoingCall, SipClient
from ivr.sip.uac_dialog import ack_for_2xx, cancel_for, refer_to, sipfrag


async def client_and_ua(
    app: App | None = None, **ua_kwargs: object
) -> tuple[SipClient, UserAgent, App]:
    app = app or App()
    ua = await start_ua(on_incoming=app, **ua_kwargs)
    client = SipClient(timers=FAST, ids=IdGenerator(seed="uac"))
    await client.start()
    return client, ua, app


def place(client: SipClient, ua: UserAgent, **kwargs: object) -> OutgoingCall:
    host, port = ua.address
    return client.call(f"sip:5000@{host}:{port}", LocalMedia("127.0.0.1", 41000), **kwargs)  # type: ignore[arg-type]


async def close(client: SipClient, ua: UserAgent) -> None:
    await client.close()
    await ua.close()


def test_answered_call_has_media_and_our_bye_ends_it() -> None:
    async def scenario() -> None:
        client, ua, app = await client_and_ua()
        call = place(client, ua, caller="+8613800000001", headers=[("X-Test", "1")])
        assert await call.wait_answered(5) == 200
        assert [status for _, status, _ in call.progress] == [100, 180, 200]
        assert call.media is not None and call.media.encoding == "PCMU"
        assert call.media.dtmf_payload_type == 101 and call.media.remote_port == 30000
        server = app.calls[0]
        await asyncio.wait_for(server.wait_established(), 2)
        assert server.caller == "+8613800000001" and server.called == "5000"
        assert server.invite.headers.get("X-Test") == "1"
        call.hangup()
        await call.wait_ended(5)
        assert call.end_reason == "local bye"
        assert ("hangup", server.call_id) in app.events
        await close(client, ua)

    run(scenario())


def test_the_callees_bye_is_answered_and_reported() -> None:
    async def scenario() -> None:
        client, ua, app = await client_and_ua()
        call = place(client, ua)
        hung_up: list[bool] = []
        call.on_hangup = lambda: hung_up.append(True)
        assert await call.wait_answered(5) == 200
        await asyncio.wait_for(app.calls[0].wait_established(), 2)
        app.calls[0].hangup()
        await call.wait_ended(5)
        assert call.end_reason == "remote bye" and hung_up == [True]
        await asyncio.wait_for(app.calls[0].wait_ended(), 5)
        assert app.calls[0].end_reason == "local bye"  # our 200 to its BYE arrived
        await close(client, ua)

    run(scenario())


def test_rejections_end_the_attempt_with_their_status_and_retry_after() -> None:
    async def scenario() -> None:
        client, ua, _app = await client_and_ua(App(reject=486))
        call = place(client, ua)
        assert await call.wait_answered(5) == 486
        assert call.ended and not call.answered and call.end_reason == "rejected 486"
        await ua.close()
        busy = await start_ua(max_calls=0)
        call = place(client, busy)
        assert await call.wait_answered(5) == 503
        assert call.retry_after == 30
        await close(client, busy)

    run(scenario())


def test_hangup_while_ringing_sends_cancel() -> None:
    async def scenario() -> None:
        client, ua, app = await client_and_ua(App(accept=False))
        call = place(client, ua)
        while not call.progress or call.progress[-1][1] != 180:
            await asyncio.sleep(0.01)
        call.hangup()
        assert await call.wait_answered(5) == 487
        assert app.calls[0].end_reason == "cancelled"
        await close(client, ua)

    run(scenario())


def test_a_refer_is_accepted_recorded_and_reported_by_notify() -> None:
    async def scenario(status: int) -> tuple[list[str], list[tuple[str, str]]]:
        client, ua, app = await client_and_ua()
        client.transfer_status = lambda target: status
        call = place(client, ua)
        assert await call.wait_answered(5) == 200
        server = app.calls[0]
        await asyncio.wait_for(server.wait_established(), 2)
        server.transfer("sip:agent@agents.example")
        for _ in range(200):
            if any(kind == "transfer" for kind, _ in app.events):
                break
            await asyncio.sleep(0.01)
        refers = list(call.refers)
        await close(client, ua)
        return refers, [e for e in app.events if e[0] == "transfer"]

    refers, results = run(scenario(200))
    assert refers == ["sip:agent@agents.example"]
    assert results == [("transfer", "True NOTIFY 200 OK")]
    _refers, results = run(scenario(503))
    assert results == [("transfer", "False NOTIFY 503 Service Unavailable")]


def test_info_dtmf_reaches_the_callee() -> None:
    async def scenario() -> None:
        client, ua, app = await client_and_ua()
        call = place(client, ua)
        assert await call.wait_answered(5) == 200
        await asyncio.wait_for(app.calls[0].wait_established(), 2)
        assert await call.send_info("5#") == [200, 200]
        assert [e for e in app.events if e[0] == "dtmf"] == [("dtmf", "5"), ("dtmf", "#")]
        await close(client, ua)

    run(scenario())


def test_options_answered_and_incoming_invites_declined() -> None:
    async def scenario() -> None:
        client = SipClient(timers=FAST)
        await client.start()
        phone = await Phone.open()
        leg = phone.leg(client.address)
        phone.send(leg.request("OPTIONS"), client.address)
        ok = await phone.response(200, "OPTIONS")
        assert "INVITE" in (ok.headers.get("Allow") or "")
        phone.send(leg.invite(), client.address)
        await phone.response(603, "INVITE")
        phone.close()
        await client.close()

    run(scenario())


def test_nobody_answering_gives_a_local_408() -> None:
    async def scenario() -> None:
        client = SipClient(timers=FAST)
        await client.start()
        silent = await Phone.open()  # takes the INVITE, never answers
        host, port = silent.address
        call = client.call(f"sip:1@{host}:{port}", LocalMedia("127.0.0.1", 41000))
        assert await call.wait_answered(10) == 408
        assert call.ended
        silent.close()
        await client.close()

    run(scenario())


def test_bad_target_is_refused() -> None:
    async def scenario() -> None:
        client = SipClient()
        await client.start()
        for target in ("tel:+8610", "not a uri"):
            try:
                client.call(target, LocalMedia("127.0.0.1", 41000))
            except ValueError as exc:
                assert "not a SIP URI" in str(exc)
            else:
                raise AssertionError(target)
        await client.close()

    run(scenario())


def _invite() -> Request:
    headers = Headers([
        ("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport"), ("Max-Forwards", "70"),
        ("From", "<sip:caller@127.0.0.1:5070>;tag=ours"), ("To", "<sip:95588@127.0.0.1>"),
        ("Call-ID", "c1"), ("CSeq", "7 INVITE"), ("Contact", "<sip:caller@127.0.0.1:5070>"),
        ("Route", "<sip:proxy.example;lr>"),
    ])  # fmt: skip
    return Request("INVITE", "sip:95588@127.0.0.1", headers)


def test_ack_for_2xx_keeps_the_invites_cseq_and_cancel_matches_the_invite() -> None:
    invite = _invite()
    ok = Response(200, "OK", Headers([
        ("Via", invite.headers.get("Via") or ""), ("From", invite.headers.get("From") or ""),
        ("To", "<sip:95588@127.0.0.1>;tag=theirs"), ("Call-ID", "c1"), ("CSeq", "7 INVITE"),
        ("Contact", "<sip:ivr@127.0.0.1:5060>"), ("Record-Route", "<sip:proxy.example;lr>"),
    ]))  # fmt: skip
    dialog = Dialog.as_uac(invite, ok)
    ack = ack_for_2xx(dialog, "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKnew")
    assert ack.method == "ACK" and ack.uri == "sip:ivr@127.0.0.1:5060"
    assert ack.headers.get("CSeq") == "7 ACK" and dialog.local_seq == 7
    assert ack.headers.get("Route") == "<sip:proxy.example;lr>"
    assert ack.to_addr().tag == "theirs"
    bye = dialog.create_request("BYE", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKbye")
    assert bye.headers.get("CSeq") == "8 BYE"
    cancel = cancel_for(invite)
    assert cancel.uri == invite.uri and cancel.headers.get("CSeq") == "7 CANCEL"
    assert cancel.top_via().branch == "z9hG4bKabc" and cancel.headers.get("Route")


def test_sipfrag_and_refer_to() -> None:
    assert sipfrag(200) == b"SIP/2.0 200 OK\r\n"
    assert sipfrag(503) == b"SIP/2.0 503 Service Unavailable\r\n"
    refer = Request("REFER", "sip:a@b", Headers([("Refer-To", "<sip:7001@127.0.0.1:5060>")]))
    assert refer_to(refer) == "sip:7001@127.0.0.1:5060"
    assert refer_to(Request("REFER", "sip:a@b", Headers())) is None
