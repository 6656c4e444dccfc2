"""The caller's side of a call: the INVITE to its dialog, the ACK for a 2xx, CANCEL, and being
transferred (REFER in).

:class:`OutgoingCall` follows our INVITE (1xx recorded, a non-2xx final response ends the attempt,
a 2xx makes the dialog and a :class:`~ivr.sip.call.SipCall`, which it ACKs, again for each
retransmitted 2xx: RFC 3261 §13.2.2.4).

What :class:`~ivr.sip.ua_dialog.DialogHandler` does for the user agent that takes calls (BYE,
INFO, re-INVITE, OPTIONS, NOTIFY inside a call) is the same for a caller; only REFER differs: a
caller is the *transferee*. :class:`CallerDialogHandler` accepts a REFER with 202, reports the
Refer-To to the application and concludes the implicit subscription with one NOTIFY whose
message/sipfrag body is the status the application chose (RFC 3515 §2.4.4-2.4.5; RFC 3420).
We never place the call the REFER asks for: the caller is a test tool, and what matters to a
test is that the transfer was asked for, and where to.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ivr.sip.call import CallControl, CallState, SipCall
from ivr.sip.client_tx import InviteClientTransaction
from ivr.sip.dialog import Dialog
from ivr.sip.dtmf_info import DTMF_RELAY
from ivr.sip.errors import SipParseError
from ivr.sip.headers import Headers
from ivr.sip.message import REASON_PHRASES, Request, Response
from ivr.sip.offer_answer import LocalMedia, MediaPlan, NegotiationError, accept_answer
from ivr.sip.sdp import SdpError, SessionDescription
from ivr.sip.transaction import ServerTransaction
from ivr.sip.transfer import SIPFRAG
from ivr.sip.transport import Address
from ivr.sip.ua_base import RouteError, UaBase
from ivr.sip.ua_dialog import DialogHandler
from ivr.sip.uri import NameAddr, SipUri

log = logging.getLogger("ivr.sip")

# ``(call, refer_to) -> status`` reported in the NOTIFY: 200 "transferred", 486, 503 ...
ReferHandler = Callable[[SipCall, str], int]


def ack_for_2xx(dialog: Dialog, via: str, body: bytes = b"", content_type: str | None = None
                ) -> Request:  # fmt: skip
    """The ACK for a 2xx to our INVITE: inside the new dialog, with the INVITE's CSeq number
    and a new branch (RFC 3261 §13.2.2.4); Route and Request-URI as for any in-dialog request.

    Raises:
        SipParseError: The route set does not parse.
    """
    number = dialog.local_seq
    request = dialog.create_request("ACK", via, body=body, content_type=content_type)
    dialog.local_seq = number  # an ACK does not use up a CSeq number
    request.headers.set("CSeq", f"{number} ACK")
    return request


def cancel_for(invite: Request) -> Request:
    """The CANCEL for our pending ``invite`` (RFC 3261 §9.1): same Request-URI, Call-ID, From,
    To, CSeq number and top Via (so it matches the INVITE's server transaction), same Route."""
    src = invite.headers
    headers = Headers()
    for name in ("Via", "Max-Forwards", "From", "To", "Call-ID"):
        value = src.get(name)
        if value is not None:
            headers.add(name, value)
    headers.add("CSeq", f"{invite.cseq().number} CANCEL")
    for route in src.get_all("Route"):
        headers.add("Route", route)
    return Request("CANCEL", invite.uri, headers)


def sipfrag(status: int) -> bytes:
    """A message/sipfrag body holding a status line only."""
    reason = REASON_PHRASES.get(status, "")
    return f"SIP/2.0 {status} {reason}".rstrip().encode() + b"\r\n"


def refer_to(request: Request) -> str | None:
    """The URI of a REFER's Refer-To (its header parameters dropped), or None."""
    value = request.headers.get("Refer-To")
    if not value:
        return None
    try:
        return str(NameAddr.parse(value).uri)
    except SipParseError:
        return value.strip().strip("<>")


class CallerDialogHandler(DialogHandler):
    """:class:`DialogHandler` for calls we placed: REFER is accepted (we are transferred).

    Args:
        ua: The user agent.
        on_notify: Handles a NOTIFY in a call (after the CSeq check).
        on_bye: Told when the peer's BYE ends a call.
        on_refer: ``(call, target) -> status``: the status our NOTIFY reports (default 200).
    """

    def __init__(
        self,
        ua: UaBase,
        on_notify: Callable[[SipCall, ServerTransaction], None],
        on_bye: Callable[[SipCall], None],
        on_refer: ReferHandler | None = None,
    ) -> None:
        super().__init__(ua, on_notify, on_bye)
        self.on_refer = on_refer

    def on_request(self, call: SipCall, request: Request, source: Address) -> None:
        if request.method != "REFER":
            super().on_request(call, request, source)
            return
        ua = self.ua
        tx = ua.transactions.create_server(request, source)
        if not call.dialog.accept_remote_cseq(request):
            ua.respond(tx, 500, "CSeq Out Of Order")
            return
        target = refer_to(request)
        if target is None:
            ua.respond(tx, 400, "Missing Refer-To")
            return
        if call.state != CallState.ESTABLISHED:
            ua.respond(tx, 481)
            return
        ua.respond(tx, 202)
        log.info("call %s: REFER to %s accepted", call.call_id, target)
        status = 200 if self.on_refer is None else self.on_refer(call, target)
        ua.spawn(self._notify(call, status), call.call_id)

    async def _notify(self, call: SipCall, status: int) -> None:
        """The one NOTIFY that ends the implicit subscription with the transfer's result."""
        headers = [("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")]
        try:
            tx = await self.ua.send_in_dialog(call, "NOTIFY", body=sipfrag(status),
                                              content_type=SIPFRAG, headers=headers)  # fmt: skip
        except RouteError as exc:
            log.warning("call %s: NOTIFY not sent: %s", call.call_id, exc)
            return
        response = await tx.result
        log.info("call %s: NOTIFY (%d) answered %d", call.call_id, status, response.status)


class OutgoingCall:
    """One call we placed (made by :meth:`ivr.sip.uac.SipClient.call`).

    Attributes:
        call_id: The Call-ID (the key of the callee's call record, for an ``ivr serve``).
        target: The Request-URI.
        progress: Every response to the INVITE: ``(loop time, status, reason)``.
        status: The final status (0 while none came; 408 when nobody answered).
        reason: Its reason phrase.
        retry_after: The Retry-After of a final response (503 busy), or None.
        media: The negotiated media plan once answered.
        refers: Refer-To URIs of the REFERs the callee sent us (a transfer), in order.
        answered_at: Loop time of the 2xx, or None.
        sip: The dialog's :class:`SipCall` once answered (None before and when rejected).
        on_hangup: The callee ended the call (BYE) or it was lost.
        on_refer: A REFER came (its Refer-To).
        transfer_status: ``(refer_to) -> status`` our NOTIFY reports for this call (default:
            the client's).
    """

    def __init__(self, client: UaBase, control: CallControl, invite: Request,
                 offer: SessionDescription, local: LocalMedia, caller: str,
                 called: str) -> None:  # fmt: skip
        self.client = client
        self.control = control
        self.invite = invite
        self.offer = offer
        self.local = local
        self.caller = caller
        self.called = called
        self.call_id = invite.call_id()
        self.target = invite.uri
        self.progress: list[tuple[float, int, str]] = []
        self.status = 0
        self.reason = ""
        self.retry_after: int | None = None
        self.media: MediaPlan | None = None
        self.refers: list[str] = []
        self.answered_at: float | None = None
        self.sip: SipCall | None = None
        self.on_hangup: Callable[[], None] | None = None
        self.on_refer: Callable[[str], None] | None = None
        self.transfer_status: Callable[[str], int] | None = None
        self.tx: InviteClientTransaction | None = None
        self._early_answer: SessionDescription | None = None
        self._ack: tuple[Request, Address] | None = None
        self._cancel_wanted = False
        self._cancel_sent = False
        self._final = asyncio.get_running_loop().create_future()
        self._ended = asyncio.Event()

    def __repr__(self) -> str:
        return f"<OutgoingCall {self.call_id} {self.status or 'trying'}>"

    # --- what the application asks ---------------------------------------------------------

    @property
    def answered(self) -> bool:
        """True once a 2xx created the dialog."""
        return self.sip is not None

    @property
    def ended(self) -> bool:
        """True once the call is over (rejected, cancelled, or ended after the answer)."""
        return self._ended.is_set()

    @property
    def end_reason(self) -> str:
        """Why the call ended: "remote bye", "local bye", "rejected 503", "cancelled" ..."""
        if self.sip is not None:
            return self.sip.end_reason
        return f"rejected {self.status}" if self.status >= 300 else ""

    async def wait_answered(self, timeout: float | None = None) -> int:
        """The final status of the INVITE (200 when answered), waiting up to ``timeout``.

        Raises:
            TimeoutError: No final response within ``timeout`` (the INVITE goes on).
        """
        return await asyncio.wait_for(asyncio.shield(self._final), timeout)

    async def wait_ended(self, timeout: float | None = None) -> None:
        """Return when the call is over.

        Raises:
            TimeoutError: It is not over after ``timeout`` seconds.
        """
        await asyncio.wait_for(self._ended.wait(), timeout)

    def hangup(self) -> None:
        """End the call: BYE when answered, CANCEL while it rings (once a 1xx came)."""
        if self.sip is not None:
            self.sip.hangup()
            return
        if self._final.done():
            return
        self._cancel_wanted = True
        if self.progress:
            self._send_cancel()

    async def send_info(self, digits: str, duration_ms: int = 100) -> list[int]:
        """Send each key as a SIP INFO (``application/dtmf-relay``); the status of each answer.

        Raises:
            RuntimeError: The call is not established.
        """
        statuses = []
        for digit in digits:
            call = self.sip
            if call is None or call.state != CallState.ESTABLISHED:
                raise RuntimeError(f"call {self.call_id} is not established")
            body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
            try:
                tx = await self.client.send_in_dialog(call, "INFO", body=body,
                                                      content_type=DTMF_RELAY)  # fmt: skip
            except RouteError as exc:
                raise RuntimeError(f"INFO not sent: {exc}") from exc
            statuses.append((await tx.result).status)
        return statuses

    # --- the INVITE transaction ------------------------------------------------------------

    async def run(self, uri: SipUri) -> None:
        """Send the INVITE and follow it to its final response (the client spawns this)."""
        try:
            tx = await self.client.send_request(self.invite, uri)
        except RouteError as exc:
            log.warning("call %s: INVITE not sent: %s", self.call_id, exc)
            self._finish_attempt(503, f"not sent: {exc}")
            return
        assert isinstance(tx, InviteClientTransaction)
        self.tx = tx
        tx.on_provisional = self._provisional
        tx.on_2xx_retransmission = lambda _response: self.resend_ack()
        response = await tx.result
        self._note(response)
        if 200 <= response.status < 300:
            self._answered(response, tx)
        else:
            self.retry_after = _retry_after(response)
            self._finish_attempt(response.status, response.reason)

    def _note(self, response: Response) -> None:
        loop = asyncio.get_running_loop()
        self.progress.append((loop.time(), response.status, response.reason))
        log.info("call %s: %d %s", self.call_id, response.status, response.reason)

    def _provisional(self, response: Response) -> None:
        self._note(response)
        if response.status == 183 and response.body and self._early_answer is None:
            try:
                self._early_answer = SessionDescription.parse(response.body)
            except SdpError as exc:
                log.info("call %s: unreadable SDP in 183: %s", self.call_id, exc)
        if self._cancel_wanted:
            self._send_cancel()

    def _send_cancel(self) -> None:
        if self._cancel_sent or self.tx is None:
            return
        self._cancel_sent = True
        log.info("call %s: CANCEL", self.call_id)
        self.client.transactions.create_client(cancel_for(self.invite), self.tx.destination)

    def _settle(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason
        if not self._final.done():
            self._final.set_result(status)

    def _finish_attempt(self, status: int, reason: str) -> None:
        """The INVITE failed (or was never sent): the call is over without a dialog."""
        self._settle(status, reason)
        self._ended.set()

    def abandon(self) -> None:
        """Forget a call still trying (the client is closing): it ends with 487."""
        if not self.ended and self.sip is None:
            self._finish_attempt(self.status or 487, "client closed")

    # --- the 2xx ---------------------------------------------------------------------------

    def _answered(self, response: Response, tx: InviteClientTransaction) -> None:
        client = self.client
        try:
            dialog = Dialog.as_uac(self.invite, response)
        except SipParseError as exc:
            log.warning("call %s: unusable 2xx (%s)", self.call_id, exc.reason)
            self._finish_attempt(502, "unusable 2xx")
            return
        call = SipCall(self.control, self.invite, tx.destination, dialog, self.caller,
                       self.called)  # fmt: skip
        call.local_media, call.local_sdp = self.local, self.offer
        call.state = CallState.ANSWERED
        call.on_hangup = self._remote_hangup
        call.add_done_callback(lambda _call: self._ended.set())
        self.sip = call
        self.answered_at = asyncio.get_running_loop().time()
        client.add_call(call)
        client.spawn(self._ack_and_confirm(call, response), self.call_id)

    async def _ack_and_confirm(self, call: SipCall, response: Response) -> None:
        client = self.client
        try:
            ack = ack_for_2xx(call.dialog, client.new_via())
            destination = await client.resolve(call.dialog.next_hop())
        except (SipParseError, RouteError) as exc:
            log.warning("call %s: cannot ACK the 2xx: %s", self.call_id, exc)
            self._settle(response.status, response.reason)
            client.end_call(call, "no route for the ACK", remote=True)
            return
        ack.headers.add("User-Agent", client.product)
        self._ack = (ack, destination)
        client.transport.send(ack, destination)
        call.mark_established()
        self.media = self._negotiate(call, response)
        self._settle(response.status, response.reason)
        if self.media is None or self._cancel_wanted or call.hangup_requested:
            # §13.2.2.4: a 2xx we cannot use (or no longer want) is ACKed, then ended by BYE.
            call.hangup()

    def _negotiate(self, call: SipCall, response: Response) -> MediaPlan | None:
        try:
            answer = (SessionDescription.parse(response.body) if response.body
                      else self._early_answer)  # fmt: skip
            if answer is None:
                raise NegotiationError("no SDP answer in the 2xx or a 183")
            plan = accept_answer(self.offer, answer)
        except (SdpError, NegotiationError) as exc:
            log.warning("call %s: no usable SDP answer (%s): hanging up", self.call_id, exc)
            return None
        call.remote_sdp, call.media = answer, plan
        return plan

    def resend_ack(self) -> None:
        """Send our ACK again (the callee retransmitted its 2xx: the ACK was lost)."""
        if self._ack is not None:
            self.client.transport.send(*self._ack)

    def _remote_hangup(self) -> None:
        if self.on_hangup is not None:
            self.on_hangup()

    def refer_received(self, target: str) -> None:
        """Record a REFER's Refer-To (the dialog handler calls this)."""
        self.refers.append(target)
        if self.on_refer is not None:
            self.on_refer(target)


def _retry_after(response: Response) -> int | None:
    value = (response.headers.get("Retry-After") or "").split(";")[0].split("(")[0].strip()
    return int(value) if value.isdigit() else None
