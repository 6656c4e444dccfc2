"""Requests inside an established call, and our BYE (RFC 3261 §12.2, §14, §15).

BYE ends the call (200, then ``on_hangup``); a re-INVITE (hold, unhold, session refresh) is
answered from the call's current local media with the direction its offer asks for (or gets our
offer when it has no SDP); INFO carries DTMF (``application/dtmf-relay`` or
``application/dtmf``; an empty INFO is a keep-alive); NOTIFY reports a transfer; OPTIONS is
answered; other methods we know get 405 with Allow.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import replace

from ivr.sip.call import CallState, SipCall
from ivr.sip.dtmf_info import INFO_TYPES, DtmfBodyError, parse_dtmf_body
from ivr.sip.message import Request
from ivr.sip.offer_answer import LocalMedia, MediaPlan, NegotiationError, answer_offer, make_offer
from ivr.sip.sdp import SdpError, SessionDescription
from ivr.sip.transaction import InviteServerTransaction, ServerTransaction
from ivr.sip.transport import Address
from ivr.sip.ua_base import RouteError, UaBase
from ivr.sip.ua_invite import PendingAnswer, warning
from ivr.sip.validate import ALLOW, SDP

log = logging.getLogger("ivr.sip")

# Methods we recognise but do not take (RFC 3261 §8.2.1: 405 with Allow).
NOT_ALLOWED = frozenset({"REGISTER", "SUBSCRIBE", "MESSAGE", "PRACK", "UPDATE", "PUBLISH"})


class DialogHandler:
    """In-dialog requests from the peer, and hanging up from our side.

    Args:
        ua: The user agent.
        on_notify: Handles a NOTIFY (transfer progress) after the CSeq check.
        on_bye: Told when the peer's BYE ends a call (a transfer may be waiting for it).
    """

    def __init__(
        self,
        ua: UaBase,
        on_notify: Callable[[SipCall, ServerTransaction], None],
        on_bye: Callable[[SipCall], None],
    ) -> None:
        self.ua = ua
        self.on_notify = on_notify
        self.on_bye = on_bye
        self._reinvites: weakref.WeakKeyDictionary[SipCall, InviteServerTransaction] = (
            weakref.WeakKeyDictionary()
        )

    def on_request(self, call: SipCall, request: Request, source: Address) -> None:
        """A request whose dialog id matched ``call``."""
        ua = self.ua
        tx = ua.transactions.create_server(request, source)
        method = request.method
        if method == "INVITE":
            assert isinstance(tx, InviteServerTransaction)
            self._reinvite(call, tx)
            return
        if not call.dialog.accept_remote_cseq(request):
            ua.respond(tx, 500, "CSeq Out Of Order")
            return
        if method == "BYE":
            self._bye(call, tx)
        elif method == "INFO":
            self._info(call, tx)
        elif method == "NOTIFY":
            self.on_notify(call, tx)
        elif method == "OPTIONS":
            ua.respond(tx, 200, headers=ua.capability_headers())
        elif method == "REFER":
            ua.respond(tx, 403, "Transfers Not Accepted Here")
        elif method in NOT_ALLOWED:
            ua.respond(tx, 405, headers=[("Allow", ", ".join(ALLOW))])
        else:  # validate.check_request answered unknown methods already
            ua.respond(tx, 501, headers=[("Allow", ", ".join(ALLOW))])

    # BYE ------------------------------------------------------------------------------------

    def _bye(self, call: SipCall, tx: ServerTransaction) -> None:
        ua = self.ua
        ua.respond(tx, 200)
        if call.state == CallState.ENDING:
            return  # BYEs crossed: ours ends the call when it completes
        for invite_tx in (call.invite_tx, self._reinvites.get(call)):
            if invite_tx is not None and not invite_tx.final_sent:
                ua.respond(invite_tx, 487)  # §15.1.2: pending INVITEs are answered 487
        self._stop_pending(call)
        self.on_bye(call)
        ua.end_call(call, "remote bye", remote=True)

    def _stop_pending(self, call: SipCall) -> None:
        if call.pending is not None:
            call.pending.stop()
            call.pending = None
        self._reinvites.pop(call, None)

    def hangup(self, call: SipCall) -> None:
        """Our side ends the call (BYE once established; see :meth:`SipCall.hangup`)."""
        if call.state == CallState.ANSWERED:
            call.hangup_requested = True  # §15: no BYE before the ACK (or its timeout)
        elif call.state == CallState.ESTABLISHED:
            self.send_bye(call, "local bye")

    def send_bye(self, call: SipCall, reason: str, *, remote: bool = False) -> None:
        """Send BYE (retransmitted by its client transaction); the call ends when it completes.

        Args:
            call: The call.
            reason: The end reason recorded.
            remote: Report the end through ``on_hangup`` (the call was lost, not ended by us).
        """
        if call.state in (CallState.ENDING, CallState.ENDED):
            return
        call.state = CallState.ENDING
        self._stop_pending(call)
        if remote:
            call.report_hangup()  # the call is lost now; the BYE may take 64*T1 to give up
        self.ua.spawn(self._bye_task(call, reason, remote), call.call_id)

    async def _bye_task(self, call: SipCall, reason: str, remote: bool) -> None:
        try:
            tx = await self.ua.send_in_dialog(call, "BYE")
            response = await tx.result
            log.info("call %s: BYE answered %d", call.call_id, response.status)
        except RouteError as exc:
            log.warning("call %s: BYE not sent: %s", call.call_id, exc)
        finally:
            self.ua.end_call(call, reason, remote=remote)

    # re-INVITE ------------------------------------------------------------------------------

    def _reinvite(self, call: SipCall, tx: InviteServerTransaction) -> None:
        ua = self.ua
        request = tx.request
        busy = self._reinvites.get(call)
        if call.state != CallState.ESTABLISHED or call.pending is not None or (
            busy is not None and not busy.final_sent
        ):
            # §14.2: an INVITE while another is in progress gets 500 with Retry-After 0-10 s.
            retry = str(int(ua.ids.uniform(0, 10)))
            ua.respond(tx, 500, "Server Internal Error", headers=[("Retry-After", retry)])
            return
        if not call.dialog.accept_remote_cseq(request):
            ua.respond(tx, 500, "CSeq Out Of Order")
            return
        call.dialog.refresh_target(request)
        self._reinvites[call] = tx
        plan: MediaPlan | None = None
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
                answer, plan = self._versioned_answer(call, offer)
            except (SdpError, NegotiationError) as exc:
                log.info("call %s: re-INVITE 488, %s", call.call_id, exc)
                ua.respond(tx, 488, headers=[warning(ua.address[0], 304, str(exc))])
                return  # the call goes on with the media it had (RFC 3264 §8)
            call.remote_sdp, sdp = offer, answer
        else:
            sdp = call.offer_sent = self._versioned(call, make_offer)
        call.local_sdp = sdp
        headers = [("Contact", ua.contact), *ua.capability_headers()]
        response = ua.respond(tx, 200, headers=headers, body=bytes(sdp), content_type=SDP)
        call.pending = PendingAnswer(ua, tx, response, lambda: self._no_ack(call), reinvite=True)
        if plan is not None:
            call.media_updated(plan)

    def _versioned(
        self, call: SipCall, build: Callable[[LocalMedia], SessionDescription]
    ) -> SessionDescription:
        """Our SDP from ``build``; o= version goes up only when the description changed."""
        local = call.local_media
        assert local is not None
        sdp = build(local)
        if call.local_sdp is not None and str(sdp) != str(call.local_sdp):
            local = replace(local, session_version=local.session_version + 1)
            call.local_media = local
            sdp = build(local)
        return sdp

    def _versioned_answer(
        self, call: SipCall, offer: SessionDescription
    ) -> tuple[SessionDescription, MediaPlan]:
        plans: list[MediaPlan] = []

        def build(local: LocalMedia) -> SessionDescription:
            answer, plan = answer_offer(offer, local)
            plans.append(plan)
            return answer

        return self._versioned(call, build), plans[-1]

    def _no_ack(self, call: SipCall) -> None:
        """No ACK for the 2xx of a re-INVITE in 64*T1: end the session (§13.3.1.4)."""
        call.pending = None
        log.warning("call %s: no ACK for the re-INVITE's 2xx", call.call_id)
        self.send_bye(call, "no ack", remote=True)

    # INFO -----------------------------------------------------------------------------------

    def _info(self, call: SipCall, tx: ServerTransaction) -> None:
        ua = self.ua
        request = tx.request
        content_type = request.content_type()
        if not request.body:
            ua.respond(tx, 200)  # keep-alive INFO
            return
        if content_type not in INFO_TYPES:
            ua.respond(tx, 415, headers=[("Accept", ", ".join(INFO_TYPES))])
            return
        try:
            digit = parse_dtmf_body(content_type, request.body)
        except DtmfBodyError as exc:
            ua.respond(tx, 400, "No DTMF Key In Body")
            log.info("call %s: INFO 400, %s", call.call_id, exc)
            return
        ua.respond(tx, 200)
        log.info("call %s: DTMF key received (INFO)", call.call_id)  # never the key: PINs
        call.dtmf(digit)
