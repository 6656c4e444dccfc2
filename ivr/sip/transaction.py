"""Server transactions (RFC 3261 §17.2, with the RFC 6026 Accepted state) and matching keys.

A server transaction owns the responses to one request: it sends them, replays the last one
when the request is retransmitted, and for INVITE retransmits a non-2xx final response until
the ACK comes (Timers G, H, I). After a 2xx it stays in Accepted (Timer L) only to swallow
retransmitted INVITEs; the user agent core retransmits the 2xx itself (§13.3.1.4).

Client transactions are in :mod:`ivr.sip.client_tx`; the table that matches messages to both
is :class:`ivr.sip.tx_layer.TransactionLayer`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ivr.core.clock import Clock, TimerHandle
from ivr.sip.message import Request, Response, make_response
from ivr.sip.timers import Retransmitter, Timers
from ivr.sip.transport import Address, response_address

log = logging.getLogger("ivr.sip.transaction")

Sender = Callable[[Request | Response, Address], None]
ServerKey = tuple[str, ...]

# States (RFC 3261 Figures 5-8, RFC 6026 Figure 3).
CALLING = "calling"
TRYING = "trying"
PROCEEDING = "proceeding"
ACCEPTED = "accepted"
COMPLETED = "completed"
CONFIRMED = "confirmed"
TERMINATED = "terminated"


@dataclass
class TxContext:
    """What every transaction needs from the layer that owns it.

    Attributes:
        send: Sends a message to an address.
        clock: The timer source.
        timers: T1, T2, T4.
        forget: Called once when a transaction terminates (drops it from the tables).
    """

    send: Sender
    clock: Clock
    timers: Timers
    forget: Callable[[object], None]


def server_key(request: Request, method: str | None = None) -> ServerKey:
    """The key that matches ``request`` to a server transaction (RFC 3261 §17.2.3).

    Args:
        request: A request whose top Via was stamped by the transport.
        method: Look up the transaction of this method instead (INVITE for a CANCEL, §9.2).

    Raises:
        SipParseError: A field the key needs does not parse.
    """
    via = request.top_via()
    name = method or request.method
    if name == "ACK":
        name = "INVITE"  # the ACK for a non-2xx belongs to the INVITE's transaction
    if via.rfc3261_branch:
        # §17.2.3 needs only branch, sent-by and method. Call-ID and CSeq number are the same
        # in every retransmission, CANCEL and ACK of a transaction, so adding them loses
        # nothing and keeps apart requests from clients that reuse a branch (RFC 4475's
        # messages do, and so do some broken phones).
        return ("3261", via.branch or "", via.host.lower(), str(via.port or ""), name,
                request.call_id(), str(request.cseq().number))  # fmt: skip
    # RFC 2543 peers: the request's identifying fields. The To tag of an INVITE is absent and
    # the ACK's is ours, so INVITE keys leave it out.
    to_tag = "" if name == "INVITE" else (request.to_addr().tag or "")
    return (
        "2543", request.uri, to_tag, request.from_addr().tag or "", request.call_id(),
        str(request.cseq().number), str(via), name,
    )  # fmt: skip


class ServerTransaction:
    """Common part of both server transactions.

    Attributes:
        request: The request that created the transaction.
        source: Where it came from.
        reply_to: Where its responses go (RFC 3261 §18.2.2).
        state: One of the state names above.
        last_response: The response sent last, replayed on retransmissions.
    """

    def __init__(self, ctx: TxContext, request: Request, source: Address, key: ServerKey) -> None:
        self._ctx = ctx
        self.request = request
        self.source = source
        self.key = key
        self.reply_to = response_address(request.top_via(), source)
        self.state = TRYING
        self.last_response: Response | None = None
        self._timers: list[TimerHandle] = []

    @property
    def call_id(self) -> str:
        """The request's Call-ID (for log lines)."""
        return self.request.headers.get("Call-ID") or "-"

    @property
    def final_sent(self) -> bool:
        """True once a final response was sent."""
        return self.state in (ACCEPTED, COMPLETED, CONFIRMED, TERMINATED)

    def respond(self, response: Response) -> None:
        """Send a response from the TU (subclasses change state)."""
        raise NotImplementedError

    def receive(self, request: Request) -> bool:
        """Handle a request that matched; True when the TU must see it."""
        raise NotImplementedError

    def send_again(self, response: Response) -> None:
        """Send ``response`` to this transaction's peer without changing state (2xx resends)."""
        self._ctx.send(response, self.reply_to)

    def _send(self, response: Response) -> None:
        self.last_response = response
        self._ctx.send(response, self.reply_to)

    def _after(self, delay: float, action: Callable[[], None]) -> None:
        self._timers.append(self._ctx.clock.call_later(delay, action))

    def terminate(self) -> None:
        """Stop every timer and leave the tables."""
        if self.state == TERMINATED:
            return
        self.state = TERMINATED
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._stop()
        self._ctx.forget(self)

    def _stop(self) -> None:
        """Subclass hook: stop retransmissions."""


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 Figure 7 with RFC 6026's Accepted state; sends 100 Trying at once.

    Args:
        on_no_ack: Called when Timer H fires (a non-2xx final response was never ACKed).
    """

    def __init__(
        self,
        ctx: TxContext,
        request: Request,
        source: Address,
        key: ServerKey,
        on_no_ack: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(ctx, request, source, key)
        self.state = PROCEEDING
        self.on_no_ack = on_no_ack
        self._timer_g = Retransmitter(ctx.clock, ctx.timers.t1, ctx.timers.t2, self._resend)
        # §17.2.1: a 100 at once stops the caller's INVITE retransmissions sooner.
        self._send(make_response(request, 100))

    def respond(self, response: Response) -> None:
        status = response.status
        if self.state == ACCEPTED and 200 <= status < 300:
            self.send_again(response)  # the TU's own 2xx retransmission
            return
        if self.state != PROCEEDING:
            log.debug("call %s: %d after the final response not sent", self.call_id, status)
            return
        self._send(response)
        if status < 200:
            return
        timers = self._ctx.timers
        if status < 300:
            self.state = ACCEPTED
            self._after(timers.timeout, self.terminate)  # Timer L
            return
        self.state = COMPLETED
        self._timer_g.start()
        self._after(timers.timeout, self._timer_h)

    def receive(self, request: Request) -> bool:
        if request.method == "ACK":
            if self.state == COMPLETED:
                self.state = CONFIRMED
                self._timer_g.stop()
                self._after(self._ctx.timers.t4, self.terminate)  # Timer I
            return self.state == ACCEPTED  # RFC 6026: an ACK in Accepted goes to the TU
        if self.state in (PROCEEDING, COMPLETED):
            self._resend()
        return False

    def _resend(self) -> None:
        if self.last_response is not None:
            self._ctx.send(self.last_response, self.reply_to)

    def _timer_h(self) -> None:
        if self.state != COMPLETED:
            return
        log.info("call %s: no ACK for %d", self.call_id,
                 self.last_response.status if self.last_response else 0)  # fmt: skip
        self.terminate()
        if self.on_no_ack is not None:
            self.on_no_ack()

    def _stop(self) -> None:
        self._timer_g.stop()


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 Figure 8: replays the last response to retransmissions, Timer J."""

    def respond(self, response: Response) -> None:
        if self.state in (COMPLETED, TERMINATED):
            log.debug("call %s: %d after the final response not sent", self.call_id,
                      response.status)  # fmt: skip
            return
        self._send(response)
        if response.status < 200:
            self.state = PROCEEDING
            return
        self.state = COMPLETED
        self._after(self._ctx.timers.timeout, self.terminate)  # Timer J (UDP)

    def receive(self, request: Request) -> bool:
        if self.last_response is not None and self.state in (PROCEEDING, COMPLETED):
            self._ctx.send(self.last_response, self.reply_to)
        return False
