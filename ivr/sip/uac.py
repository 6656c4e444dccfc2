"""Placing calls: a small SIP user agent client for a scripted caller (``ivr call``, live tests).

::

    client = SipClient("127.0.0.1", 0)
    await client.start()
    call = client.call("sip:95588@127.0.0.1:5060", LocalMedia("127.0.0.1", rtp_port))
    status = await call.wait_answered(timeout=10)      # 200, or 486, 503, 408 ...
    if call.media is not None:                         # the negotiated MediaPlan
        stream.start((call.media.remote_address, call.media.remote_port), ...)
    await call.send_info("1")                          # SIP INFO DTMF (or RTP: the stream's)
    call.hangup()                                      # BYE (CANCEL while it rings)
    await call.wait_ended()
    await client.close()

Calls are placed by :mod:`ivr.sip.outgoing` (the same code the server's
:class:`~ivr.sip.ua.UserAgent` calls out with): the INVITE's transaction, CANCEL, the ring
timeout, the ACK of the 2xx. Once answered the call is an ordinary
:class:`~ivr.sip.call.SipCall` handled by the same dialog code as incoming calls: the peer's BYE
is answered 200, our BYE is a client transaction, re-INVITEs, INFO and OPTIONS are answered. A
REFER from the peer is accepted and recorded (see :mod:`ivr.sip.uac_dialog`).
Requests outside a dialog: OPTIONS 200; an INVITE 603 (this agent only calls out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ivr.core.clock import Clock
from ivr.sip.call import SipCall
from ivr.sip.client_tx import ClientTransaction
from ivr.sip.dialog import dialog_id_of
from ivr.sip.ids import IdGenerator
from ivr.sip.message import Request, Response
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.outgoing import Dialer, OutgoingCall
from ivr.sip.timers import Timers
from ivr.sip.transaction import ServerTransaction
from ivr.sip.transfer import TransferHandler
from ivr.sip.transport import Address, UdpTransport
from ivr.sip.tx_layer import TransactionLayer
from ivr.sip.ua_base import Resolver, TransferOptions, UaBase
from ivr.sip.ua_dialog import NOT_ALLOWED
from ivr.sip.ua_invite import InviteHandler
from ivr.sip.uac_dialog import CallerDialogHandler
from ivr.sip.validate import ALLOW

log = logging.getLogger("ivr.sip")

__all__ = ["OutgoingCall", "SipClient"]


class SipClient(UaBase):
    """A SIP user agent that places calls (and takes none).

    Args:
        host: The address to bind and to put in Via/Contact.
        port: The port to bind (0: any free port).
        user: The user part of our Contact and the default caller.
        ids: Where Call-IDs, tags and branches come from (seed it in tests).
        timers: T1/T2/T4.
        clock: The timer source; the running loop's by default.
        product: The User-Agent header value.
        resolver: ``async (host, port) -> (ip, port)`` for targets given by name.
        transfer_status: ``(refer_to) -> status`` our NOTIFY reports when the callee transfers
            us (default 200: the transfer worked).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user: str = "caller",
        ids: IdGenerator | None = None,
        timers: Timers | None = None,
        clock: Clock | None = None,
        product: str | None = None,
        resolver: Resolver | None = None,
        transfer_status: Callable[[str], int] | None = None,
    ) -> None:
        super().__init__(host, port, ids=ids, timers=timers or Timers(), clock=clock, user=user,
                         product=product, resolver=resolver,
                         transfer=TransferOptions())  # fmt: skip
        self.transfer_status = transfer_status
        self.dialer = Dialer(self, self)
        self.dialogs = CallerDialogHandler(self, self._on_notify, self._on_bye, self._on_refer)
        self.transfers = TransferHandler(self, self.dialogs.send_bye)
        # Only for the ACKs of our 2xx to re-INVITEs: this agent takes no calls (max_calls 0).
        self.invites = InviteHandler(
            self, self, local_media_factory=_no_media, on_incoming=None, max_calls=0,
            retry_after=0, ringing=(),
            on_no_ack=lambda call: self.dialogs.send_bye(call, "no ack", remote=True),
        )  # fmt: skip

    async def start(self) -> None:
        """Bind the UDP socket."""
        self._transport = await UdpTransport.open(
            self.host, self.port, on_request=self._on_request, on_response=self._on_response,
            make_tag=self.ids.tag,
        )  # fmt: skip
        self._transactions = TransactionLayer(self._transport.send, self.clock, self.timers)
        log.info("call -: SIP client on %s:%d", *self.address)

    async def close(self) -> None:
        """End what is left (without BYE) and close the socket."""
        for call in list(self.calls.values()):
            self.end_call(call, "client closed", remote=False)
        self.dialer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._transactions is not None:
            self._transactions.close()
        if self._transport is not None:
            self._transport.close()

    # --- placing a call -----------------------------------------------------------------------

    @property
    def outgoing(self) -> dict[str, OutgoingCall]:
        """The calls placed and not yet over, by Call-ID."""
        return self.dialer.calls

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

        See :meth:`ivr.sip.outgoing.Dialer.call` (``timeout``: seconds to ring before
        cancelling).

        Raises:
            ValueError: ``target`` is not a sip: URI.
        """
        return self.dialer.call(target, local, caller=caller, display=display, headers=headers,
                                timeout=timeout)  # fmt: skip

    # --- CallControl (for the SipCall of an answered call) ---------------------------------

    def accept_call(self, call: SipCall) -> None:
        log.debug("call %s: accept ignored: we placed this call", call.call_id)

    def reject_call(self, call: SipCall, status: int, reason: str | None) -> None:
        log.debug("call %s: reject ignored: we placed this call", call.call_id)

    def hangup_call(self, call: SipCall) -> None:
        self.dialogs.hangup(call)

    def transfer_call(self, call: SipCall, target: str) -> None:
        self.transfers.start(call, target)

    # --- dispatch -----------------------------------------------------------------------------

    def _on_request(self, request: Request, source: Address) -> None:
        tx = self.transactions.match_request(request)
        if tx is not None:
            tx.receive(request)
            return
        if request.method == "ACK":
            self.invites.on_ack(request, source)
            return
        call = self.calls.get(dialog_id_of(request)) if request.to_addr().tag else None
        if call is not None:
            self.dialogs.on_request(call, request, source)
            return
        server_tx = self.transactions.create_server(request, source)
        method = request.method
        if method == "OPTIONS":
            self.respond(server_tx, 200, headers=self.capability_headers())
        elif method == "INVITE" and request.to_addr().tag is None:
            self.respond(server_tx, 603, "This Agent Only Calls Out")
        elif method in NOT_ALLOWED:
            self.respond(server_tx, 405, headers=[("Allow", ", ".join(ALLOW))])
        else:  # in-dialog requests for a dialog we do not have (or no longer have)
            self.respond(server_tx, 481)

    def _on_response(self, response: Response, source: Address) -> None:
        tx: ClientTransaction | None = self.transactions.match_response(response)
        if tx is not None:
            tx.receive(response)
            return
        if self.dialer.stray_response(response):
            return
        log.debug("call %s: x response %d matches no transaction",
                  response.headers.get("Call-ID"), response.status)  # fmt: skip

    def _on_notify(self, call: SipCall, tx: ServerTransaction) -> None:
        self.transfers.on_notify(call, tx)

    def _on_bye(self, call: SipCall) -> None:
        self.transfers.on_call_ended(call)

    def _on_refer(self, call: SipCall, target: str) -> int:
        outgoing = self.dialer.calls.get(call.call_id)
        status = self.transfer_status
        if outgoing is not None:
            outgoing.refer_received(target)
            status = outgoing.transfer_status or status
        return 200 if status is None else status(target)


async def _no_media(call: SipCall) -> LocalMedia:
    raise RuntimeError("this agent takes no calls")
