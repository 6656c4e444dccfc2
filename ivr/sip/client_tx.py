"""Client transactions (RFC 3261 §17.1, with RFC 6026's Accepted state for INVITE).

A client transaction sends one request, retransmits it over UDP (Timer A for INVITE, E for
the rest), gives up after 64*T1 (Timers B and F: the TU gets a locally made 408), and hands
the final response to the TU through :attr:`ClientTransaction.result`. An INVITE client
transaction ACKs non-2xx final responses itself (§17.1.1.3); the ACK for a 2xx is the TU's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ivr.sip.headers import Headers
from ivr.sip.message import Request, Response, make_response
from ivr.sip.timers import Retransmitter
from ivr.sip.transaction import (
    ACCEPTED,
    CALLING,
    COMPLETED,
    PROCEEDING,
    TERMINATED,
    TRYING,
    TxContext,
)
from ivr.sip.transport import Address

log = logging.getLogger("ivr.sip.transaction")

ClientKey = tuple[str, str]


def client_key(message: Request | Response) -> ClientKey:
    """Branch of the top Via and the CSeq method (§17.1.3); CANCEL gets its own key.

    Raises:
        SipParseError: The Via or CSeq does not parse.
    """
    return (message.top_via().branch or "", message.cseq().method)


class ClientTransaction:
    """Common part of both client transactions.

    Attributes:
        request: The request sent.
        destination: Where it goes.
        state: The state name.
        result: Resolves to the final response (a locally made 408 when nobody answered).
        timed_out: True when ``result`` is that local 408.
        on_provisional: Called with each 1xx.
    """

    def __init__(self, ctx: TxContext, request: Request, destination: Address) -> None:
        self._ctx = ctx
        self.request = request
        self.destination = destination
        self.key = client_key(request)
        self.state = TRYING
        self.result: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.timed_out = False
        self.on_provisional: Callable[[Response], None] | None = None
        self._timeout = ctx.clock.call_later(ctx.timers.timeout, self._timer_timeout)
        self._end: object | None = None
        self._retransmit = self._make_retransmitter()

    @property
    def call_id(self) -> str:
        """The request's Call-ID (for log lines)."""
        return self.request.headers.get("Call-ID") or "-"

    def _make_retransmitter(self) -> Retransmitter:
        raise NotImplementedError

    def start(self) -> None:
        """Send the request and start the timers."""
        self._ctx.send(self.request, self.destination)
        self._retransmit.start()

    def receive(self, response: Response) -> None:
        """Handle a response that matched this transaction."""
        raise NotImplementedError

    def _resend(self) -> None:
        self._ctx.send(self.request, self.destination)

    def _provisional(self, response: Response) -> None:
        if self.on_provisional is not None:
            self.on_provisional(response)

    def _finish(self, response: Response) -> None:
        self._retransmit.stop()
        self._timeout.cancel()
        if not self.result.done():
            self.result.set_result(response)

    def _timer_timeout(self) -> None:
        if self.state not in (CALLING, TRYING, PROCEEDING):
            return
        log.info("call %s: no final response to %s from %s:%d", self.call_id,
                 self.request.method, *self.destination)  # fmt: skip
        self.timed_out = True
        self._finish(make_response(self.request, 408))
        self.terminate()

    def _terminate_after(self, delay: float) -> None:
        self._end = self._ctx.clock.call_later(delay, self.terminate)

    def terminate(self) -> None:
        """Stop every timer and leave the tables (a pending ``result`` gets a 408)."""
        if self.state == TERMINATED:
            return
        self.state = TERMINATED
        self._retransmit.stop()
        self._timeout.cancel()
        if not self.result.done():
            self.timed_out = True
            self.result.set_result(make_response(self.request, 408))
        self._ctx.forget(self)


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 Figure 5 with RFC 6026's Accepted state.

    Attributes:
        on_2xx_retransmission: Called with each 2xx after the first (the TU re-sends its ACK).
    """

    def __init__(self, ctx: TxContext, request: Request, destination: Address) -> None:
        super().__init__(ctx, request, destination)
        self.state = CALLING
        self.on_2xx_retransmission: Callable[[Response], None] | None = None
        self._ack: Request | None = None

    def _make_retransmitter(self) -> Retransmitter:
        return Retransmitter(self._ctx.clock, self._ctx.timers.t1, None, self._resend)  # Timer A

    def receive(self, response: Response) -> None:
        status = response.status
        if self.state in (CALLING, PROCEEDING):
            if status < 200:
                self.state = PROCEEDING
                self._retransmit.stop()
                self._provisional(response)
            elif status < 300:
                self.state = ACCEPTED
                self._finish(response)
                self._terminate_after(self._ctx.timers.timeout)  # Timer M
            else:
                self.state = COMPLETED
                self._ack = make_ack(self.request, response)
                self._ctx.send(self._ack, self.destination)
                self._finish(response)
                self._terminate_after(self._ctx.timers.d)  # Timer D
        elif self.state == ACCEPTED and 200 <= status < 300:
            if self.on_2xx_retransmission is not None:
                self.on_2xx_retransmission(response)
        elif self.state == COMPLETED and status >= 300 and self._ack is not None:
            self._ctx.send(self._ack, self.destination)


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 Figure 6: Timer E (T1 doubling to T2), F, and K."""

    def _make_retransmitter(self) -> Retransmitter:
        timers = self._ctx.timers
        return Retransmitter(self._ctx.clock, timers.t1, timers.t2, self._resend)  # Timer E

    def receive(self, response: Response) -> None:
        if self.state not in (TRYING, PROCEEDING):
            return  # Completed: absorb retransmitted responses
        if response.status < 200:
            if self.state == TRYING:
                self.state = PROCEEDING
                self._retransmit.reset(self._ctx.timers.t2)
            self._provisional(response)
            return
        self.state = COMPLETED
        self._finish(response)
        self._terminate_after(self._ctx.timers.t4)  # Timer K


def make_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response to ``invite`` (RFC 3261 §17.1.1.3)."""
    headers = Headers()
    vias = invite.headers.values("Via")
    if vias:
        headers.add("Via", vias[0])
    for name in ("Route",):
        for value in invite.headers.get_all(name):
            headers.add(name, value)
    headers.add("Max-Forwards", "70")
    for name, source in (("From", invite), ("To", response), ("Call-ID", invite)):
        found = source.headers.get(name)
        if found is not None:
            headers.add(name, found)
    headers.add("CSeq", f"{invite.cseq().number} ACK")
    return Request("ACK", invite.uri, headers)
