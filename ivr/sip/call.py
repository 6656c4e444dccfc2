"""One SIP call as the application and the media layer see it.

The user agent creates a :class:`SipCall` for each incoming INVITE it can take and hands it to
``on_incoming``. The application answers it (:meth:`SipCall.accept`) or turns it down
(:meth:`SipCall.reject`), later hangs up or transfers it; the user agent reports what the peer
does through the callbacks. The media layer reads :attr:`SipCall.media` (the negotiated
:class:`~ivr.sip.offer_answer.MediaPlan`: codec, telephone-event payload type, remote RTP
address and port, direction) and :attr:`SipCall.local_media` (what it reserved).

Every callback runs on the user agent's event loop; an exception in one is logged, never
passed back into the SIP stack.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Callable
from typing import Protocol

from ivr.core.callinfo import CallInfo
from ivr.sip.dialog import Dialog
from ivr.sip.message import Request
from ivr.sip.offer_answer import LocalMedia, MediaPlan
from ivr.sip.sdp import SessionDescription
from ivr.sip.transaction import InviteServerTransaction
from ivr.sip.transport import Address

MAX_X_HEADERS = 16  # X- headers of an INVITE the engine hears of (CallInfo.x_headers)
MAX_X_VALUE = 256  # characters of each

log = logging.getLogger("ivr.sip.call")


class CallState(enum.StrEnum):
    """Where a call is."""

    OFFERED = "offered"  # INVITE received, ringing, the application deciding
    ANSWERED = "answered"  # 200 sent, waiting for the ACK
    ESTABLISHED = "established"  # ACK received
    ENDING = "ending"  # our BYE sent
    ENDED = "ended"


class PendingAck(Protocol):
    """A 2xx retransmitted until its ACK comes (see :mod:`ivr.sip.ua_invite`)."""

    cseq: int
    reinvite: bool

    def stop(self) -> None: ...


class CallControl(Protocol):
    """What a call asks of its user agent (implemented by :class:`ivr.sip.ua.UserAgent`)."""

    def accept_call(self, call: SipCall) -> None: ...

    def reject_call(self, call: SipCall, status: int, reason: str | None) -> None: ...

    def hangup_call(self, call: SipCall) -> None: ...

    def transfer_call(self, call: SipCall, target: str) -> None: ...


class SipCall:
    """A call: one that came in, or the dialog of one we placed (``outgoing``).

    Attributes:
        call_id: The Call-ID (the peer's string: for SIP and logs, never a file name or key).
        ref: Our own id of the call (letters and digits), the key of its records and files;
            the Call-ID for a call we placed (we made that one).
        caller: The calling number or user (From URI user, or the tel: number).
        called: The called number or user (Request-URI user; the To user when the
            Request-URI is our registered Contact).
        invite: The INVITE that started the call.
        source: Where the INVITE came from.
        dialog: The dialog (our tag is chosen when the INVITE arrives).
        remote_sdp: The peer's latest session description (offer or answer), or None.
        local_sdp: Ours, or None.
        local_media: What the media layer reserved for the call (set before ``on_incoming``).
        media: The negotiated media plan; None until an offer/answer exchange completed (for
            an INVITE without SDP: until the ACK brings the answer).
        state: A :class:`CallState`.
        qa: A QA call (the server trusted the caller's ``X-Ivr-Qa`` header): its record is
            marked and left out of reports.
        outgoing: True for a call we placed (:mod:`ivr.sip.outgoing`); those never count
            against the user agent's ``max_calls``.
        end_reason: Why the call ended ("remote bye", "local bye", "cancelled", "no ack",
            "rejected 486", "transferred" ...), "" while it lasts.
        on_hangup: The peer ended the call (BYE, CANCEL) or it was lost.
        on_dtmf: A key pressed, from SIP INFO.
        on_transfer_result: ``(ok, reason)`` after :meth:`transfer`.
        on_established: The ACK for our 200 arrived (media flows both ways now).
        on_media_update: A re-INVITE changed the media plan (hold, unhold, new address).
    """

    def __init__(
        self,
        control: CallControl,
        invite: Request,
        source: Address,
        dialog: Dialog,
        caller: str,
        called: str,
        ref: str = "",
    ) -> None:
        self._control = control
        self.call_id = dialog.call_id
        self.ref = ref or dialog.call_id
        self.invite = invite
        self.source = source
        self.dialog = dialog
        self.caller = caller
        self.called = called
        self.remote_sdp: SessionDescription | None = None
        self.local_sdp: SessionDescription | None = None
        self.local_media: LocalMedia | None = None
        self.media: MediaPlan | None = None
        self.state = CallState.OFFERED
        self.outgoing = False
        self.qa = False
        self.end_reason = ""
        self.on_hangup: Callable[[], None] | None = None
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_transfer_result: Callable[[bool, str], None] | None = None
        self.on_established: Callable[[], None] | None = None
        self.on_media_update: Callable[[MediaPlan], None] | None = None
        # The user agent's bookkeeping (not for applications).
        self.invite_tx: InviteServerTransaction | None = None  # the INVITE being answered
        self.pending: PendingAck | None = None  # our 2xx waiting for its ACK
        self.offer_sent: SessionDescription | None = None  # our offer in a 2xx, answer due
        self.hangup_requested = False  # hang up as soon as the ACK comes
        self._hangup_reported = False
        self._done_callbacks: list[Callable[[SipCall], None]] = []
        self._ended = asyncio.Event()
        self._established = asyncio.Event()

    def __repr__(self) -> str:
        return f"<SipCall {self.call_id} {self.caller}->{self.called} {self.state}>"

    # application side -----------------------------------------------------------------------

    def accept(self) -> None:
        """Answer: 200 OK with our SDP (retransmitted until the ACK comes)."""
        self._control.accept_call(self)

    def reject(self, status: int = 486, reason: str | None = None) -> None:
        """Turn the call down with a final response (486 Busy Here by default)."""
        self._control.reject_call(self, status, reason)

    def hangup(self) -> None:
        """End the call: BYE once established (after the ACK), 480 while still ringing."""
        self._control.hangup_call(self)

    def transfer(self, target: str) -> None:
        """Blind transfer with REFER; the outcome comes to ``on_transfer_result``.

        Args:
            target: A SIP or tel URI, or a bare number/user (made ``sip:target@peer-domain``).
        """
        self._control.transfer_call(self, target)

    def info(self) -> CallInfo:
        """Who calls whom, for the engine's Channel."""
        return CallInfo(call_id=self.ref, caller=self.caller, called=self.called,
                        transport="sip", qa=self.qa, x_headers=self._x_headers(),
                        sip_call_id=self.call_id)  # fmt: skip

    def _x_headers(self) -> tuple[tuple[str, str], ...]:
        """The INVITE's X- headers, at most :data:`MAX_X_HEADERS`, each value cut short."""
        found = [(name, value[:MAX_X_VALUE]) for name, value in self.invite.headers
                 if name.lower().startswith("x-")]  # fmt: skip
        return tuple(found[:MAX_X_HEADERS])

    def add_done_callback(self, callback: Callable[[SipCall], None]) -> None:
        """Run ``callback(call)`` once when the call ends, however it ends (release media here).

        Runs at once when the call has already ended.
        """
        if self.state == CallState.ENDED:
            _safe(self, "done callback", functools.partial(callback, self))
        else:
            self._done_callbacks.append(callback)

    @property
    def ended(self) -> bool:
        """True once the call is over."""
        return self.state == CallState.ENDED

    async def wait_ended(self) -> None:
        """Return when the call has ended."""
        await self._ended.wait()

    async def wait_established(self) -> None:
        """Return when the ACK for our 200 arrived (or at once if it had)."""
        await self._established.wait()

    # user agent side ------------------------------------------------------------------------

    def mark_established(self) -> None:
        """The ACK arrived: the call is up."""
        if self.state == CallState.ANSWERED:
            self.state = CallState.ESTABLISHED
            self._established.set()
            if self.on_established is not None:
                _safe(self, "on_established", self.on_established)

    def finish(self, reason: str, *, remote: bool) -> None:
        """Mark the call ended and run the callbacks (``on_hangup`` only when ``remote``)."""
        if self.state == CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.end_reason = reason
        log.info("call %s: ended (%s)", self.call_id, reason)
        if remote:
            self.report_hangup()
        callbacks, self._done_callbacks = self._done_callbacks, []
        for callback in callbacks:
            _safe(self, "done callback", functools.partial(callback, self))
        self._ended.set()

    def report_hangup(self) -> None:
        """Run ``on_hangup`` now (once): the peer is gone, even if our BYE is still out."""
        if self._hangup_reported:
            return
        self._hangup_reported = True
        if self.on_hangup is not None:
            _safe(self, "on_hangup", self.on_hangup)

    def dtmf(self, digit: str) -> None:
        """Report a key from SIP INFO."""
        callback = self.on_dtmf
        if callback is not None:
            _safe(self, "on_dtmf", functools.partial(callback, digit))

    def transfer_result(self, ok: bool, reason: str) -> None:
        """Report the outcome of a transfer."""
        log.info("call %s: transfer %s (%s)", self.call_id, "succeeded" if ok else "failed",
                 reason)  # fmt: skip
        callback = self.on_transfer_result
        if callback is not None:
            _safe(self, "on_transfer_result", lambda: callback(ok, reason))

    def media_updated(self, plan: MediaPlan) -> None:
        """A re-INVITE changed the media plan."""
        self.media = plan
        callback = self.on_media_update
        if callback is not None:
            _safe(self, "on_media_update", lambda: callback(plan))


def _safe(call: SipCall, what: str, func: Callable[[], object]) -> None:
    try:
        func()
    except Exception:
        log.exception("call %s: %s failed", call.call_id, what)
