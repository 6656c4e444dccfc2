"""The UDP transport (RFC 3261 §18): datagrams in, parsed and validated messages up.

Receiving: keep-alive CRLFs are ignored; a datagram that does not parse is answered as
``verdict_for_error`` says (400/505 when enough of a request was read to answer it) or dropped;
a request that parses but breaks RFC 3261 §8.2 is answered as ``check_request`` says; a
response ``check_response`` cannot use is dropped. The top Via of every request that gets
through is stamped with ``received`` and ``rport`` (§18.2.1, RFC 3581) so that the responses
built from it carry where they go. Nothing a peer sends can raise out of the protocol.

Sending: responses go where §18.2.2 and RFC 3581 say; requests go to an address the caller
resolved (the transport never does DNS: ``sendto`` would block the loop).

Wire debug lines: ``<`` in, ``>`` out, ``x`` dropped, each with the Call-ID.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import cast

from ivr.sip.errors import SipParseError
from ivr.sip.fields import Via
from ivr.sip.headers import Headers, header_key
from ivr.sip.message import Request, Response, parse_message
from ivr.sip.params import split_top
from ivr.sip.validate import Drop, Reject, check_request, check_response, verdict_for_error

log = logging.getLogger("ivr.sip.wire")

Address = tuple[str, int]
RequestHandler = Callable[[Request, Address], None]
ResponseHandler = Callable[[Response, Address], None]
# Given a raw datagram and its source, handles it elsewhere (another worker process) and
# returns True, or returns False to have it handled here.
Router = Callable[[bytes, Address], bool]
DEFAULT_PORT = 5060
RECEIVE_BUFFER = 4 * 1024 * 1024


def is_ip(host: str) -> bool:
    """True for an IPv4 address or an IPv6 address (with or without brackets)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def response_address(via: Via, source: Address) -> Address:
    """Where a response to a request with top Via ``via``, received from ``source``, goes.

    RFC 3261 §18.2.2 for unreliable unicast transports, hardened: always the address the
    request came from (what ``received`` says once stamped), at the ``rport`` port when the
    client asked for it (RFC 3581 §4), else the sent-by port or 5060. A ``maddr`` and a
    ``received`` the sender wrote itself are ignored: honouring them would let one datagram
    aim our responses (several kilobytes, retransmitted) at a third party.
    """
    host = source[0]
    if via.rport is not None:
        return host, via.rport
    if via.wants_rport:
        return host, source[1]
    return host, via.port or DEFAULT_PORT


def stamp_via(request: Request, source: Address) -> None:
    """Add ``received`` (when the sent-by host differs from the source) and ``rport``.

    Raises:
        SipParseError: The top Via does not parse (``check_request`` rules that out).
    """
    via = request.top_via()
    params: dict[str, str | None] = {}
    if via.host.strip("[]") != source[0]:
        params["received"] = source[0]
    if via.wants_rport:
        params["rport"] = str(source[1])
    if not params:
        return
    stamped = str(via.with_params(**params))
    items: list[tuple[str, str]] = []
    done = False
    for name, value in request.headers:
        if not done and header_key(name) == "via":
            rest = split_top(value, ",")[1:]
            value = ", ".join([stamped, *(part.strip() for part in rest)])
            done = True
        items.append((name, value))
    request.headers = Headers(items)


def call_id_of(message: Request | Response | None) -> str:
    """The Call-ID for log lines, ``-`` when there is none."""
    if message is None:
        return "-"
    return message.headers.get("Call-ID") or "-"


def describe(message: Request | Response) -> str:
    """A one-line summary for wire logs: the start line and the CSeq (never credentials)."""
    cseq = message.headers.get("CSeq") or "?"
    return f"{message.start_line[:120]} ({cseq[:40]})"


class UdpTransport(asyncio.DatagramProtocol):
    """A SIP endpoint on one UDP socket.

    Args:
        on_request: Called with each valid request (top Via stamped) and its source.
        on_response: Called with each usable response and its source.
        make_tag: Makes To tags for the responses the transport sends by itself.
    """

    def __init__(
        self,
        on_request: RequestHandler,
        on_response: ResponseHandler,
        make_tag: Callable[[], str],
    ) -> None:
        self._on_request = on_request
        self._on_response = on_response
        self._make_tag = make_tag
        self._transport: asyncio.DatagramTransport | None = None
        self.local: Address = ("0.0.0.0", 0)
        self.closed = asyncio.Event()
        self.router: Router | None = None
        # Datagrams received, sent, answered by the transport itself, and dropped unanswered.
        self.stats = {"received": 0, "sent": 0, "rejected": 0, "dropped": 0}

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        on_request: RequestHandler,
        on_response: ResponseHandler,
        make_tag: Callable[[], str],
        reuse_port: bool = False,
        router: Router | None = None,
    ) -> UdpTransport:
        """Bind ``host:port`` (port 0: any free port) and start receiving.

        ``reuse_port`` lets several worker processes bind the same port (SO_REUSEPORT: the
        kernel spreads datagrams among them by source address); ``router`` then sends each
        datagram to the worker that owns its call (see :mod:`ivr.sip.affinity`).
        """
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: cls(on_request, on_response, make_tag), local_addr=(host, port),
            reuse_port=reuse_port or None,
        )  # fmt: skip
        protocol.router = router
        return protocol

    # asyncio.DatagramProtocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (the selector loop's datagram transport is not a DatagramTransport subclass)
        self._transport = cast(asyncio.DatagramTransport, transport)
        sockname = self._transport.get_extra_info("sockname")
        self.local = (sockname[0], sockname[1])
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            # asyncio reads one datagram per loop pass: a larger buffer rides out bursts
            # (best effort: the kernel caps it at net.core.rmem_max).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.closed.set()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: the retransmission timers deal with the loss.
        log.debug("call -: x socket error: %s", exc)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        source = (str(addr[0]), int(addr[1]))
        if self.router is not None and self.router(data, source):
            return
        self.deliver(data, source)

    def deliver(self, data: bytes, source: Address) -> None:
        """Handle a datagram from ``source`` here (one another worker forwarded, or our own)."""
        self.stats["received"] += 1
        try:
            self._receive(data, source)
        except Exception:  # one bad packet, or a bug above us, must not stop the endpoint
            log.exception("call -: error handling a datagram from %s:%d", *source)

    # receiving ------------------------------------------------------------------------------

    def _receive(self, data: bytes, source: Address) -> None:
        if not data.strip(b"\r\n"):
            return  # keep-alive (RFC 5626 §4.4.1 double CRLF, or a single one)
        try:
            message = parse_message(data)
        except SipParseError as err:
            self._unreadable(err, source)
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("call %s: < %s:%d %s", call_id_of(message), *source, describe(message))
        if isinstance(message, Response):
            drop = check_response(message)
            if drop is not None:
                self.stats["dropped"] += 1
                log.debug("call %s: x response dropped: %s", call_id_of(message), drop.why)
                return
            self._on_response(message, source)
            return
        verdict = check_request(message)
        if isinstance(verdict, Reject):
            self._reject(message, verdict, source)
            return
        if isinstance(verdict, Drop):
            self.stats["dropped"] += 1
            log.debug("call %s: x request dropped: %s", call_id_of(message), verdict.why)
            return
        stamp_via(message, source)
        self._on_request(message, source)

    def _unreadable(self, err: SipParseError, source: Address) -> None:
        verdict = verdict_for_error(err)
        partial = err.partial
        if isinstance(verdict, Reject) and isinstance(partial, Request):
            self._reject(partial, verdict, source)
            return
        self.stats["dropped"] += 1
        log.debug("call %s: x unreadable datagram from %s:%d: %s", call_id_of(partial), *source,
                  err.reason)  # fmt: skip

    def _reject(self, request: Request, verdict: Reject, source: Address) -> None:
        self.stats["rejected"] += 1
        log.info("call %s: %s %s rejected with %d: %s", call_id_of(request), request.method or "?",
                 request.uri[:80], verdict.status, verdict.why)  # fmt: skip
        try:
            stamp_via(request, source)
            address = response_address(request.top_via(), source)
        except SipParseError:
            address = source  # no Via we can read: the best guess is where it came from
        response = verdict.response(request, to_tag=self._make_tag())
        self.send(response, address)

    # sending --------------------------------------------------------------------------------

    def send(self, message: Request | Response, address: Address) -> None:
        """Send ``message`` to ``address`` (an IP address and port; names are not resolved)."""
        if self._transport is None:
            log.debug("call %s: x not sent, transport closed: %s", call_id_of(message),
                      describe(message))  # fmt: skip
            return
        if not is_ip(address[0]):
            log.warning("call %s: x not sent to unresolved host %r: %s", call_id_of(message),
                        address[0], describe(message))  # fmt: skip
            return
        if log.isEnabledFor(logging.DEBUG):
            log.debug("call %s: > %s:%d %s", call_id_of(message), *address, describe(message))
        try:
            self._transport.sendto(bytes(message), (address[0].strip("[]"), address[1]))
            self.stats["sent"] += 1
        except (OSError, ValueError) as exc:
            log.warning("call %s: x send to %s:%d failed: %s", call_id_of(message), *address, exc)

    def send_response(self, response: Response, source: Address) -> None:
        """Send a response to the address its top Via names (received/rport stamped already).

        Args:
            response: The response; its Via values were copied from the request.
            source: Where the request came from (used when the Via cannot be read).
        """
        try:
            address = response_address(response.top_via(), source)
        except SipParseError:
            address = source
        self.send(response, address)

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()
