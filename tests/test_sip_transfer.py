"""Blind transfer with REFER and NOTIFY/sipfrag, against the scripted phone."""

from __future__ import annotations

import asyncio

from sip_phone import Leg, Phone, run, start_ua

from ivr.sip.call import CallState, SipCall
from ivr.sip.message import Request
from ivr.sip.transfer import sipfrag_status
from ivr.sip.ua import TransferOptions, UserAgent

SIPFRAG = "message/sipfrag"


class Recorder:
    def __init__(self) -> None:
        self.calls: list[SipCall] = []
        self.results: list[tuple[bool, str]] = []
        self.hangups = 0

    def __call__(self, call: SipCall) -> None:
        self.calls.append(call)
        call.on_transfer_result = lambda ok, why: self.results.append((ok, why))
        call.on_hangup = self._hangup
        call.accept()

    def _hangup(self) -> None:
        self.hangups += 1


async def _call(**kwargs: object) -> tuple[UserAgent, Phone, Leg, SipCall, Recorder]:
    app = Recorder()
    options = TransferOptions(notify_timeout=0.5, bye_after=0.3)
    kwargs.setdefault("transfer", options)
    ua = await start_ua(on_incoming=app, **kwargs)
    phone = await Phone.open()
    leg = phone.leg(ua.address)
    await leg.establish()
    call = app.calls[0]
    await asyncio.wait_for(call.wait_established(), 2)
    return ua, phone, leg, call, app


def _notify(leg: Leg, frag: bytes, state: str = "active;expires=60") -> Request:
    return leg.request("NOTIFY", frag, SIPFRAG,
                       headers=[("Event", "refer"), ("Subscription-State", state)])  # fmt: skip


async def _wait_result(app: Recorder) -> tuple[bool, str]:
    for _ in range(200):
        if app.results:
            return app.results[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no transfer result")


def test_refer_then_notify_200_is_success_and_the_peer_ends_the_call() -> None:
    async def scenario() -> None:
        ua, phone, leg, call, app = await _call()
        call.transfer("sip:agent7@127.0.0.1:5099")
        refer = await phone.request("REFER")
        assert refer.headers.get("Refer-To") == "<sip:agent7@127.0.0.1:5099>"
        assert (refer.headers.get("Referred-By") or "").startswith("<sip:")
        assert refer.headers.get("Contact")
        assert refer.to_addr().tag == leg.from_tag
        phone.reply(refer, 202)
        phone.send(_notify(leg, b"SIP/2.0 100 Trying\r\n"), ua.address)
        await phone.response(200, "NOTIFY")
        assert app.results == []  # 1xx is progress, not the result
        phone.send(_notify(leg, b"SIP/2.0 200 OK\r\n", "terminated;reason=noresource"),
                   ua.address)  # fmt: skip
        await phone.response(200, "NOTIFY")
        assert await _wait_result(app) == (True, "NOTIFY 200 OK")
        phone.send(leg.request("BYE"), ua.address)  # the PBX hangs up on us, as usual
        await phone.response(200, "BYE")
        await asyncio.wait_for(call.wait_ended(), 2)
        assert await phone.quiet(0.5, method="BYE") == []  # and we sent no BYE of our own
        phone.close()
        await ua.close()

    run(scenario())


def test_after_success_we_send_bye_when_the_peer_does_not() -> None:
    async def scenario() -> None:
        ua, phone, leg, call, app = await _call()
        call.transfer("2001")
        refer = await phone.request("REFER")
        assert refer.headers.get("Refer-To") == f"<sip:2001@{phone.address[0]}:{phone.address[1]}>"
        phone.reply(refer, 202)
        phone.send(_notify(leg, b"SIP/2.0 200 OK", "terminated"), ua.address)
        bye = await phone.request("BYE")
        phone.reply(bye, 200)
        await asyncio.wait_for(call.wait_ended(), 2)
        assert call.end_reason == "transferred"
        assert app.results == [(True, "NOTIFY 200 OK")]
        phone.close()
        await ua.close()

    run(scenario())


def test_refer_rejected_is_a_failure_and_the_call_goes_on() -> None:
    async def scenario() -> None:
        ua, phone, _, call, app = await _call()
        call.transfer("sip:nobody@127.0.0.1")
        phone.reply(await phone.request("REFER"), 403)
        ok, why = await _wait_result(app)
        assert not ok and "403" in why
        assert call.state == CallState.ESTABLISHED
        phone.close()
        await ua.close()

    run(scenario())


def test_final_notify_with_an_error_is_a_failure() -> None:
    async def scenario() -> None:
        ua, phone, leg, call, app = await _call()
        call.transfer("sip:busy@127.0.0.1")
        phone.reply(await phone.request("REFER"), 202)
        phone.send(_notify(leg, b"SIP/2.0 486 Busy Here\r\n", "terminated"), ua.address)
        await phone.response(200, "NOTIFY")
        assert await _wait_result(app) == (False, "NOTIFY 486 Busy Here")
        await asyncio.sleep(0.4)
        assert call.state == CallState.ESTABLISHED  # the caller stays with the IVR
        phone.close()
        await ua.close()

    run(scenario())


def test_no_notify_after_202_counts_as_success_by_default() -> None:
    async def scenario() -> None:
        ua, phone, _, call, app = await _call()
        call.transfer("sip:agent@127.0.0.1")
        phone.reply(await phone.request("REFER"), 202)
        ok, why = await _wait_result(app)
        assert ok and "no final NOTIFY" in why
        phone.reply(await phone.request("BYE"), 200)
        phone.close()
        await ua.close()

    run(scenario())


def test_no_notify_is_a_failure_when_so_configured() -> None:
    async def scenario() -> None:
        options = TransferOptions(notify_timeout=0.3, success_without_notify=False)
        ua, phone, _, call, app = await _call(transfer=options)
        call.transfer("sip:agent@127.0.0.1")
        phone.reply(await phone.request("REFER"), 202)
        ok, _ = await _wait_result(app)
        assert not ok
        assert call.state == CallState.ESTABLISHED
        phone.close()
        await ua.close()

    run(scenario())


def test_notify_of_another_event_gets_489_and_second_transfer_is_refused() -> None:
    async def scenario() -> None:
        ua, phone, leg, call, app = await _call()
        call.transfer("sip:agent@127.0.0.1")
        call.transfer("sip:other@127.0.0.1")
        assert app.results == [(False, "a transfer is already in progress")]
        refer = await phone.request("REFER")
        notify = leg.request("NOTIFY", b"", None, headers=[("Event", "dialog")])
        phone.send(notify, ua.address)
        await phone.response(489, "NOTIFY")
        phone.reply(refer, 202)
        phone.close()
        await ua.close()

    run(scenario())


def test_sipfrag_status_line() -> None:
    assert sipfrag_status(b"SIP/2.0 200 OK\r\nContact: <sip:x@y>\r\n") == (200, "OK")
    assert sipfrag_status(b"SIP/2.0 503 Service Unavailable") == (503, "Service Unavailable")
    assert sipfrag_status(b"SIP/2.0 180\r\n") == (180, "")
    assert sipfrag_status(b"INVITE sip:x@y SIP/2.0\r\n") is None
    assert sipfrag_status(b"") is None
