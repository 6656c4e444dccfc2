"""The user agent's shared machinery: configuration, sending requests and responses, calls table.

:class:`UaBase` is what the request handlers (:mod:`ivr.sip.ua_invite`, :mod:`ivr.sip.ua_dialog`,
:mod:`ivr.sip.transfer`, :mod:`ivr.sip.register`) work with; :class:`ivr.sip.ua.UserAgent` adds
the public API and the dispatch of incoming messages.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from ivr import __version__
from ivr.core.clock import Clock, LoopClock
from ivr.sip.call import CallState, SipCall
from ivr.sip.client_tx import ClientTransaction
from ivr.sip.dialog import DialogId
from ivr.sip.errors import SipParseError
from ivr.sip.ids import IdGenerator
from ivr.sip.message import Request, Response, make_response
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.timers import Timers
from ivr.sip.transaction import ServerTransaction
from ivr.sip.transport import Address, UdpTransport, is_ip
from ivr.sip.tx_layer import TransactionLayer
from ivr.sip.uri import SipUri, Uri
from ivr.sip.validate import ALLOW, SDP, SUPPORTED

log = logging.getLogger("ivr.sip")

LocalMediaFactory = Callable[[SipCall], Awaitable[LocalMedia]]
IncomingHandler = Callable[[SipCall], Awaitable[None] | None]
Resolver = Callable[[str, int], Awaitable[Address]]


class RouteError(Exception):
    """A request cannot be sent: its next hop is not a SIP URI or does not resolve."""


@dataclass(frozen=True)
class TransferOptions:
    """How blind transfers (REFER) conclude.

    Attributes:
        notify_timeout: Seconds to wait after the 202 for a final NOTIFY.
        success_without_notify: When no final NOTIFY comes in time, count the 202 as success
            (what many PBXs need: they accept the REFER and never report).
        bye_after: After a successful transfer, seconds to wait for the peer's BYE before
            sending ours.
    """

    notify_timeout: float = 5.0
    success_without_notify: bool = True
    bye_after: float = 2.0


async def resolve_host(host: str, port: int) -> Address:
    """A-record lookup (no SRV/NAPTR): the first IPv4 (else IPv6) address of ``host``.

    Raises:
        RouteError: The name does not resolve.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise RouteError(f"cannot resolve {host}: {exc}") from exc
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    if not infos:
        raise RouteError(f"cannot resolve {host}")
    return str(infos[0][4][0]), port


class UaBase:
    """State and helpers shared by the user agent's parts (see the module docstring)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ids: IdGenerator | None,
        timers: Timers,
        clock: Clock | None,
        user: str,
        product: str | None,
        resolver: Resolver | None,
        transfer: TransferOptions,
    ) -> None:
        self.host = host
        self.port = port
        self.ids = ids or IdGenerator()
        self.timers = timers
        self._clock = clock
        self.user = user
        self.own_users: set[str] = {user}  # Contact users: R-URI users that are not numbers
        self.product = product or f"ivr/{__version__}"
        self.resolver: Resolver = resolver or resolve_host
        self.transfer_options = transfer
        self.calls: dict[DialogId, SipCall] = {}
        self._outgoing_calls = 0  # of self.calls, those we placed
        self._transport: UdpTransport | None = None
        self._transactions: TransactionLayer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    # plumbing ------------------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The timer source (the running loop's, unless one was injected)."""
        if self._clock is None:
            self._clock = LoopClock(asyncio.get_running_loop())
        return self._clock

    @property
    def transport(self) -> UdpTransport:
        """The UDP transport (after ``start``)."""
        if self._transport is None:
            raise RuntimeError("the user agent is not started")
        return self._transport

    @property
    def transactions(self) -> TransactionLayer:
        """The transaction layer (after ``start``)."""
        if self._transactions is None:
            raise RuntimeError("the user agent is not started")
        return self._transactions

    @property
    def address(self) -> Address:
        """The bound address (the real port when 0 was asked for)."""
        return self.transport.local

    @property
    def contact_uri(self) -> str:
        """Our Contact URI."""
        host, port = self.address
        return f"sip:{self.user}@{host}:{port}"

    @property
    def contact(self) -> str:
        """Our Contact header value."""
        return f"<{self.contact_uri}>"

    def spawn(self, coro: Coroutine[Any, Any, None], call_id: str = "-") -> None:
        """Run ``coro`` in the background; its exceptions are logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("call %s: background task failed", call_id,
                          exc_info=finished.exception())  # fmt: skip

        task.add_done_callback(done)

    # calls ----------------------------------------------------------------------------------

    @property
    def active_calls(self) -> int:
        """Calls not yet ended (ringing, answered or established), ours included once
        answered."""
        return len(self.calls)

    @property
    def incoming_calls(self) -> int:
        """Of :attr:`active_calls`, those that came in (what ``max_calls`` limits)."""
        return len(self.calls) - self._outgoing_calls

    def add_call(self, call: SipCall) -> None:
        """Enter a call in the table."""
        self.calls[call.dialog.id] = call
        if call.outgoing:
            self._outgoing_calls += 1
        self._idle.clear()

    def end_call(self, call: SipCall, reason: str, *, remote: bool) -> None:
        """End a call: out of the table, callbacks run (``on_hangup`` when ``remote``)."""
        if call.state == CallState.ENDED:
            return
        if self.calls.get(call.dialog.id) is call:
            del self.calls[call.dialog.id]
            if call.outgoing:
                self._outgoing_calls -= 1
        if not self.calls:
            self._idle.set()
        call.finish(reason, remote=remote)

    # sending --------------------------------------------------------------------------------

    def respond(
        self,
        tx: ServerTransaction,
        status: int,
        reason: str | None = None,
        *,
        to_tag: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Response:
        """Answer ``tx`` (a fresh To tag is added when the request's To has none)."""
        extra = [*headers]
        if status >= 200 or body:
            extra.append(("Server", self.product))
        if body and content_type:
            extra.append(("Content-Type", content_type))
        response = make_response(tx.request, status, reason, to_tag=to_tag or self.ids.tag(),
                                 extra_headers=extra, body=body)  # fmt: skip
        tx.respond(response)
        return response

    def capability_headers(self) -> list[tuple[str, str]]:
        """Allow, Accept and (when we have option tags) Supported, as OPTIONS answers carry.

        An empty ``Supported:`` is legal but crashes pyVoIP's parser (REAL-PEERS.md), so it
        is left out while we support no option tags.
        """
        headers = [("Allow", ", ".join(ALLOW)), ("Accept", SDP)]
        if SUPPORTED:
            headers.append(("Supported", ", ".join(sorted(SUPPORTED))))
        return headers

    def new_via(self) -> str:
        """A Via value for a new request from us: our address, a new branch, rport."""
        host, port = self.address
        return f"SIP/2.0/UDP {host}:{port};branch={self.ids.branch()};rport"

    async def resolve(self, uri: Uri) -> Address:
        """Where a request for ``uri`` goes: maddr or host, port or 5060 (RFC 3263 §4 lite).

        Raises:
            RouteError: Not a SIP URI, or the host does not resolve.
        """
        if not isinstance(uri, SipUri):
            raise RouteError(f"cannot route to {uri}")
        host = uri.params.get("maddr") or uri.host
        port = uri.port or 5060
        if is_ip(host):
            return host.strip("[]"), port
        return await self.resolver(host, port)

    async def send_request(self, request: Request, uri: Uri) -> ClientTransaction:
        """Resolve ``uri`` and start a client transaction for ``request`` towards it.

        Raises:
            RouteError: Nowhere to send it.
        """
        destination = await self.resolve(uri)
        if "User-Agent" not in request.headers:
            request.headers.add("User-Agent", self.product)
        return self.transactions.create_client(request, destination)

    async def send_in_dialog(
        self,
        call: SipCall,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> ClientTransaction:
        """Send a request inside ``call``'s dialog (Route set and remote target honoured).

        Raises:
            RouteError: The next hop does not parse or resolve.
        """
        dialog = call.dialog
        try:
            request = dialog.create_request(method, self.new_via(), body=body,
                                            content_type=content_type, extra_headers=headers)
            hop = dialog.next_hop()
        except SipParseError as exc:
            raise RouteError(f"bad route or target: {exc.reason}") from exc
        return await self.send_request(request, hop)
