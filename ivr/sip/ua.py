"""The SIP user agent of an IVR endpoint: takes calls, answers them, hangs up, transfers, and
calls out (an agent of the queue, from this same socket).

::

    async def media(call: SipCall) -> LocalMedia:          # the media layer reserves a port
        port = await rtp.reserve()
        call.add_done_callback(lambda c: rtp.release(port))
        return LocalMedia("127.0.0.1", port)

    def incoming(call: SipCall) -> None:                   # the application decides
        call.on_hangup = ...; call.on_dtmf = ...
        call.accept()                                      # 180 went out already; now 200

    ua = UserAgent("127.0.0.1", 5060, local_media_factory=media, on_incoming=incoming,
                   max_calls=200)
    await ua.start()
    await ua.register("sip:pbx.example", "sip:1001@pbx.example", "1001", "secret")
    agent = ua.call("sip:1001@192.0.2.7:5062", LocalMedia("127.0.0.1", port), timeout=15)
    if await agent.wait_answered() == 200 and agent.connected:   # 486, 487 (no answer) ...
        ...                                                   # agent.media: the MediaPlan
    agent.hangup()                                            # CANCEL while ringing, else BYE
    ...
    await ua.drain(timeout=30)

Incoming messages are dispatched here: retransmissions and ACKs for non-2xx to their server
transactions; ACKs for our 2xx and CANCELs to :mod:`ivr.sip.ua_invite`; requests inside a
call's dialog to :mod:`ivr.sip.ua_dialog`; OPTIONS is answered anywhere; requests for a dialog
we do not have get 481; REGISTER goes to the :class:`~ivr.sip.registrar.Registrar` when one is
given; methods we know but do not take get 405.

Calls out (:meth:`UserAgent.call`) are placed by :mod:`ivr.sip.outgoing`, the code
:class:`ivr.sip.uac.SipClient` uses. They are never refused by ``max_calls`` or by draining
(they serve a caller already taken: refusing would strand that caller) and do not count
against ``max_calls``; once answered they are in :attr:`UserAgent.calls` like any call, so
:meth:`UserAgent.drain` waits for them and hangs up those left at its timeout. A REFER inside
one is declined (403), as in an incoming call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ivr.core.clock import Clock
from ivr.sip.admission import SourceLimits
from ivr.sip.call import CallState, SipCall
from ivr.sip.dialog import dialog_id_of
from ivr.sip.ids import IdGenerator
from ivr.sip.message import Request, Response
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.outgoing import Dialer, OutgoingCall
from ivr.sip.register import Registration, contact_user
from ivr.sip.registrar import Registrar
from ivr.sip.timers import Timers
from ivr.sip.transaction import ServerTransaction
from ivr.sip.transfer import TransferHandler
from ivr.sip.transport import Address, Router, UdpTransport
from ivr.sip.tx_layer import TransactionLayer
from ivr.sip.ua_base import (
    IncomingHandler,
    LocalMediaFactory,
    Resolver,
    TransferOptions,
    UaBase,
)
from ivr.sip.ua_dialog import NOT_ALLOWED, DialogHandler
from ivr.sip.ua_invite import InviteHandler, RefusalHandler, from_peer
from ivr.sip.validate import ALLOW

log = logging.getLogger("ivr.sip")

__all__ = ["CallState", "OutgoingCall", "SipCall", "TransferOptions", "UserAgent"]


class UserAgent(UaBase):
    """An asyncio SIP user agent over UDP: takes incoming calls and places calls out.

    Args:
        host: The address to bind and to put in Via/Contact (127.0.0.1 by default).
        port: The port to bind (0: any free port; see :attr:`address`).
        local_media_factory: ``async (call) -> LocalMedia``: reserves an RTP port for a call
            before it is offered to the application; release it in a done callback.
        on_incoming: ``(call) -> None`` or a coroutine: accept or reject the call (now or
            later). None answers every call at once.
        max_calls: Incoming calls beyond this many (ringing or up) get 503 with Retry-After
            (calls we place do not count).
        retry_after: The Retry-After seconds of those 503s.
        ringing: Provisional responses sent before the application decides: ``("180",)``,
            ``("183",)`` (with the SDP answer: early media) or ``()``.
        ids: Where Call-IDs, tags and branches come from (seed it in tests).
        timers: T1/T2/T4 (shrink them in tests).
        clock: The timer source; the running loop's by default.
        user: The user part of our Contact.
        product: The User-Agent/Server header value.
        transfer: How transfers conclude (NOTIFY timeout, success without NOTIFY).
        resolver: ``async (host, port) -> (ip, port)`` for next hops given by name.
        registrar: Answers REGISTER (agents' phones); without one REGISTER gets 405. Its
            owner closes it.
        on_refused: ``(invite, caller, called, status, reason)`` for every incoming call
            refused before an answer (503 when full or draining, 404, 488 ...; not a CANCEL).
        per_source: What one source address may take (:mod:`ivr.sip.admission`; default: no
            limit per source); beyond it INVITEs get 503. ``ivr serve`` sets ivr.yaml's.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5060,
        *,
        local_media_factory: LocalMediaFactory,
        on_incoming: IncomingHandler | None = None,
        max_calls: int = 100,
        retry_after: int = 30,
        ringing: tuple[str, ...] = ("180",),
        ids: IdGenerator | None = None,
        timers: Timers | None = None,
        clock: Clock | None = None,
        user: str = "ivr",
        product: str | None = None,
        transfer: TransferOptions | None = None,
        resolver: Resolver | None = None,
        registrar: Registrar | None = None,
        on_refused: RefusalHandler | None = None,
        per_source: SourceLimits | None = None,
    ) -> None:
        super().__init__(host, port, ids=ids, timers=timers or Timers(), clock=clock, user=user,
                         product=product, resolver=resolver,
                         transfer=transfer or TransferOptions())  # fmt: skip
        codes = tuple(int(code) for code in ringing)
        if any(code not in (180, 183) for code in codes):
            raise ValueError(f"ringing must be made of 180 and 183, not {ringing!r}")
        self.dialogs = DialogHandler(self, self._on_notify, self._on_bye)
        self.transfers = TransferHandler(self, self.dialogs.send_bye)
        self.invites = InviteHandler(
            self, self, local_media_factory=local_media_factory, on_incoming=on_incoming,
            max_calls=max_calls, retry_after=retry_after, ringing=codes,
            on_no_ack=lambda call: self.dialogs.send_bye(call, "no ack", remote=True),
            on_refused=on_refused,
            per_source=per_source,
        )  # fmt: skip
        self.dialer = Dialer(self, self)
        self.registrations: list[Registration] = []
        self.registrar = registrar

    # lifecycle ------------------------------------------------------------------------------

    async def start(self, *, reuse_port: bool = False, router: Router | None = None) -> None:
        """Bind the UDP socket and start taking requests (see :meth:`UdpTransport.open` for
        ``reuse_port`` and ``router``: several worker processes on one port)."""
        self._transport = await UdpTransport.open(
            self.host, self.port, on_request=self._on_request, on_response=self._on_response,
            make_tag=self.ids.tag, reuse_port=reuse_port, router=router,
        )  # fmt: skip
        self._transactions = TransactionLayer(self._transport.send, self.clock, self.timers)
        log.info("call -: SIP user agent on %s:%d", *self.address)

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` began: new INVITEs get 503."""
        return self.invites.draining

    async def drain(self, timeout: float = 30.0) -> None:
        """Stop taking calls, let the current ones finish (hang up what is left after
        ``timeout`` seconds), de-register, and close the transport."""
        self.invites.draining = True
        log.info("call -: draining, %d calls active", self.active_calls)
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            for call in list(self.calls.values()):
                call.hangup()
            try:  # BYEs complete (or time out) within 64*T1
                await asyncio.wait_for(self._idle.wait(), self.timers.timeout + 1)
            except TimeoutError:
                log.warning("call -: %d calls did not end; closing anyway", self.active_calls)
        await self.close()

    async def close(self) -> None:
        """De-register (briefly), end what is left, and close the socket."""
        for registration in self.registrations:
            if registration.bound:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(registration.unregister(), self.timers.timeout)
            registration.close()
        for call in list(self.calls.values()):
            self.end_call(call, "user agent closed", remote=True)
        self.dialer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._transactions is not None:
            self._transactions.close()
        if self._transport is not None:
            self._transport.close()

    # registration ---------------------------------------------------------------------------

    async def register(
        self,
        registrar_uri: str,
        aor: str,
        username: str,
        password: str,
        expires: int = 3600,
        contact: str | None = None,
        *,
        on_status: Callable[[Registration], None] | None = None,
        retry_interval: float = 60.0,
    ) -> Registration:
        """Register ``contact`` (by default ``sip:<username>@<our address>``) for ``aor``.

        Returns after the first attempt; the registration then refreshes itself (and retries
        after failures) until :meth:`close` or :meth:`drain` removes it. Calls the registrar
        sends to the contact are handled like any other INVITE.
        """
        host, port = self.address
        contact = contact or f"sip:{username}@{host}:{port}"
        registration = Registration(
            self, registrar_uri, aor, username, password, expires=expires, contact=contact,
            on_status=on_status, retry_interval=retry_interval,
        )  # fmt: skip
        self.registrations.append(registration)
        user = contact_user(contact)
        if user:
            self.own_users.add(user)
        await registration.register()
        return registration

    # calls out ------------------------------------------------------------------------------

    def call(
        self,
        uri: str,
        local_media: LocalMedia,
        *,
        caller: str | None = None,
        display: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        timeout: float | None = None,
    ) -> OutgoingCall:
        """Call ``uri`` from this user agent's socket; returns at once (see
        :class:`~ivr.sip.outgoing.OutgoingCall`: ``wait_answered``, ``media``, ``hangup``).

        Args:
            uri: The Request-URI: an agent's registered Contact, ``sip:1001@192.0.2.7:5062``.
            local_media: Where we receive RTP (a stream reserved for this leg) and what we
                offer.
            caller: The From user the callee sees (default: our Contact user).
            display: A display name for From.
            headers: More header fields for the INVITE.
            timeout: Seconds to ring before cancelling: the call then ends "no answer" with
                the callee's 487, or 408 when nothing came that a CANCEL could follow.

        Raises:
            ValueError: ``uri`` is not a sip: URI.
            RuntimeError: The user agent is not started.
        """
        return self.dialer.call(uri, local_media, caller=caller, display=display,
                                headers=headers, timeout=timeout)  # fmt: skip

    # CallControl ----------------------------------------------------------------------------

    def accept_call(self, call: SipCall) -> None:
        self.invites.accept(call)

    def reject_call(self, call: SipCall, status: int, reason: str | None) -> None:
        self.invites.final(call, status, reason)

    def hangup_call(self, call: SipCall) -> None:
        if call.state == CallState.OFFERED:
            self.invites.final(call, 480)
        else:
            self.dialogs.hangup(call)

    def transfer_call(self, call: SipCall, target: str) -> None:
        self.transfers.start(call, target)

    # dispatch -------------------------------------------------------------------------------

    def _on_request(self, request: Request, source: Address) -> None:
        tx = self.transactions.match_request(request)
        if tx is not None:
            if tx.receive(request) and request.method == "ACK":
                self.invites.on_ack(request, source)
            return
        method = request.method
        if method == "ACK":
            self.invites.on_ack(request, source)
        elif method == "CANCEL":
            self.invites.on_cancel(request, source)
        elif request.to_addr().tag is not None:
            self._in_dialog(request, source)
        elif method == "INVITE":
            self.invites.on_invite(request, source)
        else:
            self._out_of_dialog(request, source)

    def _in_dialog(self, request: Request, source: Address) -> None:
        call = self.calls.get(dialog_id_of(request))
        if call is not None and not from_peer(call, source):
            # Knowing a dialog's Call-ID and tags is not being its peer: a BYE or re-INVITE
            # from elsewhere (a spoofer, a sniffer) must not end or move the call.
            log.warning("call %s: %s from %s, not the dialog's peer: 403", call.call_id,
                        request.method, source[0])  # fmt: skip
            if request.method != "ACK":
                self.respond(self.transactions.create_server(request, source), 403)
            return
        if call is not None:
            self.dialogs.on_request(call, request, source)
            return
        tx = self.transactions.create_server(request, source)
        if request.method == "OPTIONS":
            self.respond(tx, 200, headers=self.capability_headers())
        else:
            self.respond(tx, 481)

    def _out_of_dialog(self, request: Request, source: Address) -> None:
        tx = self.transactions.create_server(request, source)
        method = request.method
        if method == "OPTIONS" and self.draining:
            # A load balancer probing with OPTIONS (Kamailio's dispatcher) takes us out of
            # rotation while we drain.
            retry = [("Retry-After", str(self.invites.retry_after))]
            self.respond(tx, 503, headers=[*retry, *self.capability_headers()])
        elif method == "OPTIONS":
            self.respond(tx, 200, headers=self.capability_headers())
        elif method == "REGISTER" and self.registrar is not None:
            reply = self.registrar.handle(request, source)
            self.respond(tx, reply.status, reply.reason, headers=reply.headers)
        elif method in NOT_ALLOWED:
            self.respond(tx, 405, headers=[("Allow", ", ".join(ALLOW))])
        elif method == "REFER":
            self.respond(tx, 403, "Transfers Not Accepted Here")
        else:  # BYE, INFO, NOTIFY without a To tag: no dialog they could belong to
            self.respond(tx, 481)

    def _on_response(self, response: Response, source: Address) -> None:
        tx = self.transactions.match_response(response)
        if tx is None:
            if self.dialer.stray_response(response):
                return
            log.debug("call %s: x response %d matches no transaction",
                      response.headers.get("Call-ID"), response.status)  # fmt: skip
            return
        tx.receive(response)

    def _on_notify(self, call: SipCall, tx: ServerTransaction) -> None:
        self.transfers.on_notify(call, tx)

    def _on_bye(self, call: SipCall) -> None:
        self.transfers.on_call_ended(call)
