"""Incoming calls: the initial INVITE, CANCEL, the 2xx and its ACK (RFC 3261 §13.3, §9.2).

An INVITE beyond ``max_calls`` incoming calls (or while draining), or beyond what its source
address may take (``per_source``, :mod:`ivr.sip.admission`), gets 503 with Retry-After and
changes nothing else; calls we placed (:mod:`ivr.sip.outgoing`) do not count. ACK, CANCEL and
in-dialog requests are taken only from the address the INVITE came from (:func:`from_peer`).
Otherwise the media layer reserves local media, the SDP offer is answered (488 with a Warning
when nothing fits or its address is unusable), the configured provisional responses go out
(180, or 183 with the SDP answer for early media) and the application decides through
``on_incoming``. The 2xx is retransmitted (T1 doubling to T2) until the ACK; without an ACK
in 64*T1 the call is ended with a BYE. An INVITE without SDP gets our offer in the 200 and the
answer is taken from the ACK. Every refusal before an answer (503, 404, 488, 480 ...; not a
CANCEL's 487) is told to ``on_refused``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Collection
from dataclasses import replace

from ivr.core.clock import TimerHandle
from ivr.core.textsafe import printable
from ivr.sip.admission import NO_SOURCE_LIMITS, SourceAdmission, SourceLimits
from ivr.sip.call import CallControl, CallState, SipCall
from ivr.sip.dialog import Dialog, dialog_id_of
from ivr.sip.errors import SipParseError
from ivr.sip.message import Request, Response
from ivr.sip.offer_answer import NegotiationError, accept_answer, answer_offer, make_offer
from ivr.sip.sdp import SdpError, SessionDescription
from ivr.sip.timers import Retransmitter
from ivr.sip.transaction import InviteServerTransaction
from ivr.sip.transport import Address
from ivr.sip.ua_base import IncomingHandler, LocalMediaFactory, UaBase
from ivr.sip.uri import AbsoluteUri, SipUri
from ivr.sip.validate import SDP

log = logging.getLogger("ivr.sip")

# ``(invite, caller, called, status, reason)``: an INVITE refused before an answer.
RefusalHandler = Callable[[Request, str, str, int, str], None]


class PendingAnswer:
    """A 2xx to an INVITE, retransmitted until its ACK comes (RFC 3261 §13.3.1.4).

    Args:
        ua: The user agent (clock, timers).
        tx: The INVITE server transaction (in Accepted: it only forwards resends).
        response: The 2xx.
        on_timeout: Called when 64*T1 pass without an ACK.
        reinvite: True for the answer to a re-INVITE.
    """

    def __init__(
        self,
        ua: UaBase,
        tx: InviteServerTransaction,
        response: Response,
        on_timeout: Callable[[], None],
        *,
        reinvite: bool = False,
    ) -> None:
        self.cseq = tx.request.cseq().number
        self.reinvite = reinvite
        timers = ua.timers
        self._resend = Retransmitter(ua.clock, timers.t1, timers.t2,
                                     lambda: tx.send_again(response))  # fmt: skip
        self._resend.start()
        self._deadline: TimerHandle = ua.clock.call_later(timers.timeout, on_timeout)

    def stop(self) -> None:
        """Stop retransmitting and waiting."""
        self._resend.stop()
        self._deadline.cancel()


def caller_of(request: Request) -> str:
    """The calling user or number: From URI user, else the tel: number, else the host."""
    try:
        return _user(request.from_addr().uri)
    except SipParseError:
        return ""


def called_of(request: Request, own_users: Collection[str]) -> str:
    """The called user: the Request-URI user, or the To user when the Request-URI is one of
    our Contacts (a registrar or proxy sent it: the user is ours, not the number dialled)."""
    try:
        uri_user = _user(request.request_uri())
        if uri_user and uri_user not in own_users:
            return uri_user
        to_user = _user(request.to_addr().uri)
    except SipParseError:
        return ""
    return to_user or uri_user


def _user(uri: SipUri | AbsoluteUri) -> str:
    if isinstance(uri, SipUri):
        return uri.user if uri.user is not None else uri.host
    return uri.opaque.partition(";")[0]  # tel:+8610...;phone-context=... -> the number


def from_peer(call: SipCall, source: Address) -> bool:
    """True when ``source`` may act in ``call``'s dialog: for a call that came in, only the
    address its INVITE came from (the caller, or the proxy that record-routes it); a call we
    placed takes requests from wherever its callee's answers come."""
    return call.outgoing or source[0] == call.source[0]


def warning(host: str, code: int, text: str) -> tuple[str, str]:
    """A Warning header (RFC 3261 §20.43) with a quoted text we made safe to quote."""
    safe = text.replace("\\", "/").replace('"', "'")[:120]
    return ("Warning", f'{code} {host} "{safe}"')


class InviteHandler:
    """New calls from initial INVITEs, their CANCELs and the ACKs of our 2xx responses."""

    def __init__(
        self,
        ua: UaBase,
        control: CallControl,
        *,
        local_media_factory: LocalMediaFactory,
        on_incoming: IncomingHandler | None,
        max_calls: int,
        retry_after: int,
        ringing: tuple[int, ...],
        on_no_ack: Callable[[SipCall], None],
        on_refused: RefusalHandler | None = None,
        per_source: SourceLimits | None = None,
    ) -> None:
        self.ua = ua
        self.control = control
        self.factory = local_media_factory
        self.on_incoming = on_incoming
        self.max_calls = max_calls
        self.retry_after = retry_after
        self.ringing = ringing
        self.on_no_ack = on_no_ack
        self.on_refused = on_refused
        self.draining = False
        self.refused = 0  # INVITEs answered 503
        self.sources = SourceAdmission(per_source or NO_SOURCE_LIMITS, ua.clock.now)
        self._last_busy_warning = float("-inf")
        self._by_invite: dict[tuple[str, ...], SipCall] = {}  # INVITE tx key -> call
        self._by_origin: dict[tuple[str, str], SipCall] = {}  # (Call-ID, From tag) -> call

    # INVITE ---------------------------------------------------------------------------------

    def on_invite(self, request: Request, source: Address) -> None:
        """An INVITE outside any dialog."""
        ua = self.ua
        tx = ua.transactions.create_server(request, source)
        assert isinstance(tx, InviteServerTransaction)
        call_id = request.call_id()
        if self.draining or ua.incoming_calls >= self.max_calls:
            self._busy(call_id)
            ua.respond(tx, 503, headers=[("Retry-After", str(self.retry_after))])
            self._report_refused(request, caller_of(request), called_of(request, ua.own_users),
                                 503, "draining" if self.draining else "full")  # fmt: skip
            return
        too_much = self.sources.refuse(source[0])
        if too_much is not None:
            self._busy(call_id, too_much)
            ua.respond(tx, 503, headers=[("Retry-After", str(self.retry_after))])
            self._report_refused(request, caller_of(request), called_of(request, ua.own_users),
                                 503, too_much)  # fmt: skip
            return
        dialog = Dialog.as_uas(request, ua.ids.tag(), ua.contact)
        origin = (dialog.call_id, dialog.remote_tag)
        if origin in self._by_origin:
            # §8.2.2.2: the same request again by another path (or so late that its
            # transaction is gone): never a second call.
            ua.respond(tx, 482, "Loop Detected")
            return
        call = SipCall(self.control, request, source, dialog, caller_of(request),
                       called_of(request, ua.own_users), ref=ua.ids.token(20))  # fmt: skip
        call.invite_tx = tx
        self.sources.opened(call.ref, source[0])
        call.add_done_callback(lambda done: self.sources.closed(done.ref))
        ua.add_call(call)
        self._by_invite[tx.key] = call
        self._by_origin[origin] = call
        call.add_done_callback(lambda _call: self._forget(tx.key, origin))
        # The caller chose both (a decoded %0a would forge a log line): printable text only.
        log.info("call %s: INVITE from %s to %s via %s:%d (record %s)", call_id,
                 printable(call.caller), printable(call.called), *source, call.ref)  # fmt: skip
        ua.spawn(self._offer(call), call_id)

    def _busy(self, call_id: str, why: str | None = None) -> None:
        """Count a 503; warn at most once a second so an overload does not flood the log."""
        self.refused += 1
        if why is None:
            why = "draining" if self.draining else f"{self.ua.incoming_calls} calls active"
        log.debug("call %s: 503, %s", call_id, why)
        now = self.ua.clock.now()
        if now - self._last_busy_warning >= 1.0:
            self._last_busy_warning = now
            log.warning("call %s: 503, %s (%d refused so far)", call_id, why, self.refused)

    def _forget(self, key: tuple[str, ...], origin: tuple[str, str]) -> None:
        self._by_invite.pop(key, None)
        self._by_origin.pop(origin, None)

    async def _offer(self, call: SipCall) -> None:
        try:
            local = await self.factory(call)
        except Exception:
            log.exception("call %s: no local media", call.call_id)
            self.final(call, 503, "media unavailable", [("Retry-After", str(self.retry_after))])
            return
        if call.state != CallState.OFFERED:
            return  # cancelled while the media layer worked; done callbacks release it
        if local.session_id == 0:
            local = replace(local, session_id=self.ua.ids.session_id())
        call.local_media = local
        if call.invite.body and not self._answer_initial_offer(call):
            return
        self._send_ringing(call)
        if self.on_incoming is None:
            self.accept(call)
            return
        try:
            result = self.on_incoming(call)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("call %s: on_incoming failed", call.call_id)
            self.final(call, 500, "application error")

    def _answer_initial_offer(self, call: SipCall) -> bool:
        assert call.local_media is not None
        try:
            offer = SessionDescription.parse(call.invite.body)
            answer, plan = answer_offer(offer, call.local_media)
        except (SdpError, NegotiationError) as exc:
            code = 304 if isinstance(exc, NegotiationError) else 399
            log.info("call %s: 488, %s", call.call_id, exc)
            self.final(call, 488, "offer not acceptable",
                       [warning(self.ua.address[0], code, str(exc))])  # fmt: skip
            return False
        call.remote_sdp, call.local_sdp, call.media = offer, answer, plan
        return True

    def _send_ringing(self, call: SipCall) -> None:
        tx = call.invite_tx
        assert tx is not None
        for status in self.ringing:
            early = status == 183 and call.local_sdp is not None
            self.ua.respond(
                tx, status, to_tag=call.dialog.local_tag, headers=[("Contact", self.ua.contact)],
                body=bytes(call.local_sdp) if early and call.local_sdp else b"",
                content_type=SDP if early else None,
            )  # fmt: skip

    # the application's answer -------------------------------------------------------------

    def accept(self, call: SipCall) -> None:
        """Send the 200 with our SDP and retransmit it until the ACK."""
        tx = call.invite_tx
        if call.state != CallState.OFFERED or tx is None or tx.final_sent:
            log.debug("call %s: accept ignored in state %s", call.call_id, call.state)
            return
        if call.local_media is None:
            log.warning("call %s: accept before local media was ready: ignored", call.call_id)
            return
        if call.local_sdp is None:
            call.local_sdp = call.offer_sent = make_offer(call.local_media)
        ua = self.ua
        headers = [("Contact", ua.contact), *ua.capability_headers()]
        response = ua.respond(tx, 200, to_tag=call.dialog.local_tag, headers=headers,
                              body=bytes(call.local_sdp), content_type=SDP)  # fmt: skip
        call.state = CallState.ANSWERED
        call.pending = PendingAnswer(ua, tx, response, lambda: self._no_ack(call))
        log.info("call %s: answered", call.call_id)

    def final(
        self,
        call: SipCall,
        status: int,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Turn the call down with ``status`` (300-699) while it is still offered."""
        tx = call.invite_tx
        if call.state != CallState.OFFERED or tx is None or tx.final_sent:
            return
        status = status if 300 <= status <= 699 else 480
        self.ua.respond(tx, status, reason, to_tag=call.dialog.local_tag, headers=headers or ())
        self.ua.end_call(call, f"rejected {status}", remote=False)
        self._report_refused(call.invite, call.caller, call.called, status, reason or "")

    def _report_refused(self, request: Request, caller: str, called: str, status: int,
                        reason: str) -> None:  # fmt: skip
        """Tell the application of an INVITE turned down before an answer (its reports count
        offered calls); a failing handler never stops the refusal."""
        if self.on_refused is None:
            return
        try:
            self.on_refused(request, caller, called, status, reason)
        except Exception:
            log.exception("call %s: on_refused failed", request.call_id())

    # CANCEL and ACK -------------------------------------------------------------------------

    def on_cancel(self, request: Request, source: Address) -> None:
        """CANCEL: 200 to it and 487 to the INVITE when no final response went out yet."""
        ua = self.ua
        cancel_tx = ua.transactions.create_server(request, source)
        invite_tx = ua.transactions.find_invite(request)
        call = self._by_invite.get(invite_tx.key) if invite_tx is not None else None
        if invite_tx is None or (call is not None and not from_peer(call, source)):
            ua.respond(cancel_tx, 481)  # none, or not the caller's: only the caller may cancel
            return
        ua.respond(cancel_tx, 200)
        if invite_tx.final_sent:
            return  # too late: the 2xx/ACK/BYE path ends the call (§9.2)
        tag = call.dialog.local_tag if call is not None else None
        ua.respond(invite_tx, 487, to_tag=tag)
        if call is not None:
            ua.end_call(call, "cancelled", remote=True)

    def on_ack(self, request: Request, source: Address) -> None:
        """An ACK that no server transaction took: the ACK for one of our 2xx responses."""
        try:
            call = self.ua.calls.get(dialog_id_of(request))
            cseq = request.cseq().number
        except SipParseError:
            return
        if call is not None and not from_peer(call, source):
            log.warning("call %s: ACK from %s, not the dialog's peer: ignored", call.call_id,
                        source[0])  # fmt: skip
            return
        pending = call.pending if call is not None else None
        if call is None or pending is None or pending.cseq != cseq:
            log.debug("call %s: x ACK with no 2xx waiting for it", request.headers.get("Call-ID"))
            return
        pending.stop()
        call.pending = None
        if call.offer_sent is not None and not self._answer_in_ack(call, request, pending.reinvite):
            return
        if call.state == CallState.ANSWERED:
            self.sources.confirmed(call.ref)
            call.mark_established()
            log.info("call %s: established", call.call_id)
        if call.hangup_requested:
            call.hangup()

    def _answer_in_ack(self, call: SipCall, ack: Request, reinvite: bool) -> bool:
        offer, call.offer_sent = call.offer_sent, None
        assert offer is not None
        try:
            answer = SessionDescription.parse(ack.body)
            plan = accept_answer(offer, answer)
        except (SdpError, NegotiationError) as exc:
            log.warning("call %s: no usable answer in the ACK (%s): hanging up", call.call_id, exc)
            call.mark_established()
            self.control.hangup_call(call)
            return False
        call.remote_sdp = answer
        if reinvite:
            call.media_updated(plan)
        else:
            call.media = plan
        return True

    def _no_ack(self, call: SipCall) -> None:
        if call.pending is None:
            return
        call.pending.stop()
        call.pending = None
        log.warning("call %s: no ACK for our 2xx in %.1fs", call.call_id, self.ua.timers.timeout)
        self.on_no_ack(call)

