"""Calls we place: the INVITE to its dialog, CANCEL, the ring timeout, the ACK for a 2xx.

Both user agents place calls through this module: :class:`ivr.sip.uac.SipClient` (``ivr call``,
live tests) and :class:`ivr.sip.ua.UserAgent` (the server calling an agent from its own socket,
so the agent sees the call come from the address it registered to). A :class:`Dialer` builds the
INVITE, keeps the calls in progress and ACKs a 2xx that comes again after its transaction
ended; an :class:`OutgoingCall` follows one INVITE:

* the INVITE goes out through the transaction layer (retransmitted; Timer B: a local 408);
* 1xx responses are recorded (``progress``; ``ringing`` once a 180/183 came);
* a non-2xx final response is ACKed by the transaction and ends the attempt;
* a 2xx creates the dialog (RFC 3261 §12.1.2) and a :class:`~ivr.sip.call.SipCall` in the user
  agent's calls table, which we ACK, again for each retransmitted 2xx (§13.2.2.4); from then on
  the dialog code of the user agent handles it (BYE both ways, re-INVITE, INFO, OPTIONS).

Ending a call before it is answered: :meth:`OutgoingCall.hangup` sends CANCEL (§9.1: only once
a provisional response came; until then it is sent when the first one comes). A ring timeout
does the same and reports ``end_reason`` "no answer". A 2xx that crosses our CANCEL still makes
a dialog: it is ACKed and ended with BYE at once, and the call never counts as answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from ivr.core.clock import TimerHandle
from ivr.sip.call import CallControl, CallState, SipCall
from ivr.sip.client_tx import InviteClientTransaction
from ivr.sip.dialog import Dialog
from ivr.sip.dtmf_info import DTMF_RELAY
from ivr.sip.errors import SipParseError
from ivr.sip.headers import Headers
from ivr.sip.message import Request, Response
from ivr.sip.offer_answer import (
    LocalMedia,
    MediaPlan,
    NegotiationError,
    accept_answer,
    make_offer,
)
from ivr.sip.sdp import SdpError, SessionDescription
from ivr.sip.transport import Address
from ivr.sip.ua_base import RouteError, UaBase
from ivr.sip.uac_dialog import ack_for_2xx, cancel_for
from ivr.sip.uri import SipUri, parse_uri
from ivr.sip.validate import ALLOW, SDP

log = logging.getLogger("ivr.sip")

NO_ANSWER = 408  # the status a ring timeout settles with when nothing could be cancelled yet


class OutgoingCall:
    """One call we placed (made by :meth:`Dialer.call`).

    Attributes:
        call_id: The Call-ID (the key of the callee's call record, for an ``ivr serve``).
        target: The Request-URI.
        caller: The From user.
        called: The Request-URI user.
        progress: Every response to the INVITE: ``(loop time, status, reason)``.
        status: The final status (0 while none came; 408 when nobody answered in time).
        reason: Its reason phrase.
        retry_after: The Retry-After of a final response (503 busy), or None.
        media: The negotiated media plan once answered.
        refers: Refer-To URIs of the REFERs the callee sent us (a transfer), in order.
        answered_at: Loop time of the 2xx, or None.
        timed_out: The ring timeout passed before a final response.
        sip: The dialog's :class:`SipCall` once a 2xx came (None before and when rejected).
        on_hangup: The callee ended the call (BYE) or it was lost.
        on_refer: A REFER came (its Refer-To).
        transfer_status: ``(refer_to) -> status`` our NOTIFY reports for this call (default:
            the client's).
    """

    def __init__(self, ua: UaBase, control: CallControl, invite: Request,
                 offer: SessionDescription, local: LocalMedia, caller: str,
                 called: str) -> None:  # fmt: skip
        self.client = ua
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
        self.timed_out = False
        self.sip: SipCall | None = None
        self.on_hangup: Callable[[], None] | None = None
        self.on_refer: Callable[[str], None] | None = None
        self.transfer_status: Callable[[str], int] | None = None
        self.tx: InviteClientTransaction | None = None
        self._early_answer: SessionDescription | None = None
        self._ack: tuple[Request, Address] | None = None
        self._cancel_wanted = False
        self._cancel_sent = False
        self._ring_timer: TimerHandle | None = None
        self._final = asyncio.get_running_loop().create_future()
        self._ended = asyncio.Event()

    def __repr__(self) -> str:
        return f"<OutgoingCall {self.call_id} {self.status or 'trying'}>"

    # --- what the application asks ---------------------------------------------------------

    @property
    def ringing(self) -> bool:
        """True from the first 180/183 (or other 1xx but 100) until the final response."""
        return not self._final.done() and any(101 <= s < 200 for _, s, _ in self.progress)

    @property
    def cancelled(self) -> bool:
        """True when we ended the call before it was answered (hangup or ring timeout)."""
        return self._cancel_wanted

    @property
    def answered(self) -> bool:
        """True once a 2xx created the dialog, unless we had cancelled (a 2xx crossing our
        CANCEL is ACKed and ended at once: not an answer)."""
        return self.sip is not None and not self._cancel_wanted

    @property
    def connected(self) -> bool:
        """Answered, media agreed and not over: the call can carry audio now."""
        sip = self.sip
        return (self.answered and self.media is not None and sip is not None
                and sip.state == CallState.ESTABLISHED)  # fmt: skip

    @property
    def ended(self) -> bool:
        """True once the call is over (rejected, cancelled, or ended after the answer)."""
        return self._ended.is_set()

    @property
    def end_reason(self) -> str:
        """Why the call ended: "remote bye", "local bye", "rejected 486", "cancelled",
        "no answer" (the ring timeout) ...; "" while it goes on."""
        if self._cancel_wanted and (self.ended or self._final.done()):
            return "no answer" if self.timed_out else "cancelled"
        if self.sip is not None:
            return self.sip.end_reason
        return f"rejected {self.status}" if self.status >= 300 else ""

    async def wait_answered(self, timeout: float | None = None) -> int:
        """The final status of the INVITE (200 when answered), waiting up to ``timeout``.

        With a ring timeout (see :meth:`Dialer.call`) this returns by then: the callee's 487
        to our CANCEL, or 408 when nothing came that a CANCEL could follow.

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
        self._stop_ring_timer()
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

    def ring_for(self, seconds: float) -> None:
        """Cancel the call if no final response came within ``seconds`` (the ring timeout)."""
        self._stop_ring_timer()
        self._ring_timer = self.client.clock.call_later(seconds, self._ring_timeout)

    async def run(self, uri: SipUri) -> None:
        """Send the INVITE and follow it to its final response (the dialer spawns this)."""
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

    def _ring_timeout(self) -> None:
        self._ring_timer = None
        if self._final.done() or self.sip is not None:
            return  # answered (or over) in time; a 2xx being ACKed is an answer
        log.info("call %s: no answer in time: cancelling", self.call_id)
        self.timed_out = True
        self.hangup()
        if not self._cancel_sent:
            # Nothing came that a CANCEL may follow (§9.1): the application hears "no answer"
            # now; the CANCEL goes out if a 1xx still comes, a late 2xx is ACKed and ended.
            self._finish_attempt(NO_ANSWER, "No Answer")

    def _stop_ring_timer(self) -> None:
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None

    def _send_cancel(self) -> None:
        if self._cancel_sent or self.tx is None:
            return
        self._cancel_sent = True
        log.info("call %s: CANCEL", self.call_id)
        self.client.transactions.create_client(cancel_for(self.invite), self.tx.destination)

    def _settle(self, status: int, reason: str) -> None:
        """The application's final status: the first one settled stays."""
        if self._final.done():
            return
        self._stop_ring_timer()
        self.status, self.reason = status, reason
        self._final.set_result(status)

    def _finish_attempt(self, status: int, reason: str) -> None:
        """The INVITE failed (or was never sent): the call is over without a dialog."""
        self._settle(status, reason)
        self._ended.set()

    def abandon(self) -> None:
        """Give up a call still trying (the user agent is closing): CANCEL if it rings, and it
        ends with 487."""
        if not self.ended and self.sip is None:
            self.hangup()
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
        call.outgoing = True
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


class Dialer:
    """Places calls for a user agent and keeps them until they are over.

    Args:
        ua: The user agent whose socket, transactions and calls table the calls use.
        control: What an answered call's :class:`SipCall` asks to hang up (the user agent).
    """

    def __init__(self, ua: UaBase, control: CallControl) -> None:
        self.ua = ua
        self.control = control
        self.calls: dict[str, OutgoingCall] = {}  # by Call-ID, until the call is over

    def call(
        self,
        target: str,
        local: LocalMedia,
        *,
        caller: str | None = None,
        display: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        timeout: float | None = None,
    ) -> OutgoingCall:
        """Send an INVITE with our SDP offer to ``target`` (a sip: URI); returns at once.

        Args:
            target: The Request-URI, e.g. ``sip:1001@192.0.2.7:5062``.
            local: Where we receive RTP and what we offer (codecs, telephone-event or not).
            caller: The From user (default: the user agent's Contact user).
            display: A display name for From.
            headers: More header fields for the INVITE.
            timeout: Seconds to ring before cancelling (None: until Timer B's 408).

        Raises:
            ValueError: ``target`` is not a sip: URI.
            RuntimeError: The user agent is not started.
        """
        try:
            uri = parse_uri(target)
        except SipParseError as exc:
            raise ValueError(f"not a SIP URI: {target!r}") from exc
        if not isinstance(uri, SipUri):
            raise ValueError(f"not a SIP URI: {target!r}")
        ua = self.ua
        if local.session_id == 0:
            local = replace(local, session_id=ua.ids.session_id())
        offer = make_offer(local)
        user = caller or ua.user
        invite = self._invite(uri, user, display, offer, headers or [])
        outgoing = OutgoingCall(ua, self.control, invite, offer, local, user, uri.user or "")
        self.calls[outgoing.call_id] = outgoing
        if timeout is not None:
            outgoing.ring_for(timeout)
        ua.spawn(self._run(outgoing, uri), outgoing.call_id)
        return outgoing

    def stray_response(self, response: Response) -> bool:
        """A response no transaction took: ACK it again if it is a 2xx to one of our INVITEs
        (retransmitted after the transaction ended). True when it was ours."""
        outgoing = self.calls.get(response.headers.get("Call-ID") or "")
        if outgoing is None or not 200 <= response.status < 300 or not _for_invite(response):
            return False
        outgoing.resend_ack()
        return True

    def close(self) -> None:
        """Give up the calls still trying (the user agent is closing)."""
        for outgoing in list(self.calls.values()):
            outgoing.abandon()

    async def _run(self, outgoing: OutgoingCall, uri: SipUri) -> None:
        def forget(_call: SipCall | None = None) -> None:
            self.calls.pop(outgoing.call_id, None)

        try:
            await outgoing.run(uri)
        finally:
            # Kept while the INVITE transaction lives (a late 1xx is still cancelled), and
            # while its dialog does (REFERs find their call, a stray 2xx its ACK).
            if outgoing.sip is None:
                forget()
            else:
                outgoing.sip.add_done_callback(forget)

    def _invite(self, uri: SipUri, user: str, display: str | None, offer: SessionDescription,
                extra: list[tuple[str, str]]) -> Request:  # fmt: skip
        ua = self.ua
        host, port = ua.address
        from_uri = SipUri(host, user=user, port=port)
        name = f'"{display}" ' if display else ""
        headers = Headers([("Via", ua.new_via()), ("Max-Forwards", "70")])
        headers.add("From", f"{name}<{from_uri}>;tag={ua.ids.tag()}")
        headers.add("To", f"<{uri}>")
        headers.add("Call-ID", ua.ids.call_id(host))
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", f"<{from_uri}>")
        headers.add("Allow", ", ".join(ALLOW))
        for name_, value in extra:
            headers.add(name_, value)
        headers.add("Content-Type", SDP)
        return Request("INVITE", str(uri), headers, bytes(offer))


def _for_invite(response: Response) -> bool:
    try:
        return response.cseq().method == "INVITE"
    except SipParseError:
        return False


def _retry_after(response: Response) -> int | None:
    value = (response.headers.get("Retry-After") or "").split(";")[0].split("(")[0].strip()
    return int(value) if value.isdigit() else None
