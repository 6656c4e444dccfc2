"""A scripted SIP phone for tests, built from the wire layer (ivr.sip.message) on loopback UDP.

It sends exactly what a test asks for (INVITE, ACK, BYE, CANCEL, INFO, OPTIONS, retransmissions)
and hands back every message it receives, so tests can check the user agent byte by byte. It
has no transaction logic of its own on purpose: the test is the transaction layer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from ivr.sip.errors import SipParseError
from ivr.sip.headers import Headers
from ivr.sip.ids import IdGenerator
from ivr.sip.message import Request, Response, make_response, parse_message
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.timers import Timers
from ivr.sip.ua import SipCall, UserAgent

Address = tuple[str, int]
Message = Request | Response
T = TypeVar("T")

FAST = Timers(t1=0.05, t2=0.4, t4=0.5)  # 64*T1 = 3.2 s


def sdp_offer(port: int = 40000, formats: str = "0 8 101", direction: str = "sendrecv",
              address: str = "127.0.0.1", version: int = 1) -> bytes:  # fmt: skip
    """A G.711 + telephone-event offer on loopback."""
    lines = [
        "v=0", f"o=phone 1000 {version} IN IP4 {address}", "s=-", f"c=IN IP4 {address}", "t=0 0",
        f"m=audio {port} RTP/AVP {formats}", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", f"a={direction}",
    ]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n").encode()


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run a test coroutine on a fresh loop, with an overall time limit."""

    async def main() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(main())


class MediaPorts:
    """A stand-in media layer: hands out loopback RTP ports and records releases."""

    def __init__(self, first: int = 30000) -> None:
        self._ports = itertools.count(first, 2)
        self.reserved: dict[str, int] = {}
        self.released: list[str] = []

    async def __call__(self, call: SipCall) -> LocalMedia:
        port = next(self._ports)
        self.reserved[call.call_id] = port
        call.add_done_callback(lambda c: self.released.append(c.call_id))
        return LocalMedia("127.0.0.1", port)


async def start_ua(**kwargs: Any) -> UserAgent:
    """A user agent on 127.0.0.1, any port, fast timers, seeded ids (overridable)."""
    kwargs.setdefault("local_media_factory", MediaPorts())
    kwargs.setdefault("timers", FAST)
    kwargs.setdefault("ids", IdGenerator(seed=1))
    ua = UserAgent("127.0.0.1", 0, **kwargs)
    await ua.start()
    return ua


class Phone(asyncio.DatagramProtocol):
    """One UDP socket that sends what it is told and queues what it gets."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[tuple[Message, Address]] = asyncio.Queue()
        self.raw: list[bytes] = []
        self.skipped: list[Message] = []
        self.address: Address = ("127.0.0.1", 0)
        self._transport: asyncio.DatagramTransport | None = None
        self.ids = IdGenerator(seed="phone")
        self._seq = itertools.count(1)

    @classmethod
    async def open(cls, host: str = "127.0.0.1", port: int = 0) -> Phone:
        loop = asyncio.get_running_loop()
        _, phone = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        return phone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (the selector loop's datagram transport is not a DatagramTransport subclass)
        self._transport = cast(asyncio.DatagramTransport, transport)
        name = self._transport.get_extra_info("sockname")
        self.address = (name[0], name[1])

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.raw.append(data)
        try:
            message = parse_message(data)
        except SipParseError:
            return  # kept in ``raw`` only
        self.inbox.put_nowait((message, (addr[0], addr[1])))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def send(self, message: Message | bytes, to: Address) -> None:
        assert self._transport is not None
        data = message if isinstance(message, bytes) else bytes(message)
        self._transport.sendto(data, to)

    async def recv(
        self,
        timeout: float = 5.0,
        *,
        status: int | None = None,
        method: str | None = None,
        match: Callable[[Message], bool] | None = None,
    ) -> Message:
        """The next message that fits; others are kept in ``skipped``.

        Args:
            status: A response with this status.
            method: A request of this method, or a response whose CSeq has it.
            match: Any other condition.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"nothing matching status={status} method={method}")
            message, _ = await asyncio.wait_for(self.inbox.get(), left)
            if _fits(message, status, method, match):
                return message
            self.skipped.append(message)

    async def response(self, status: int, method: str, timeout: float = 5.0) -> Response:
        message = await self.recv(timeout, status=status, method=method)
        assert isinstance(message, Response)
        return message

    async def request(self, method: str, timeout: float = 5.0) -> Request:
        message = await self.recv(timeout, method=method)
        assert isinstance(message, Request)
        return message

    async def quiet(self, duration: float, **filters: Any) -> list[Message]:
        """Everything fitting ``filters`` that arrives within ``duration`` seconds."""
        got: list[Message] = []
        try:
            while True:
                got.append(await self.recv(duration, **filters))
        except TimeoutError:
            return got

    def reply(self, request: Request, status: int, *, to_tag: str | None = None,
              headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> Response:  # fmt: skip
        """Answer a request from the user agent (to its Via address)."""
        response = make_response(request, status, to_tag=to_tag or "phone",
                                 extra_headers=headers, body=body)  # fmt: skip
        via = request.top_via()
        self.send(response, (via.host, via.port or 5060))
        return response

    def via(self, branch: str | None = None) -> str:
        host, port = self.address
        return f"SIP/2.0/UDP {host}:{port};branch={branch or self.ids.branch()};rport"

    def leg(self, ua: Address, *, user: str = "5000", caller: str = "1001") -> Leg:
        return Leg(self, ua, user=user, caller=caller, call_id=self.ids.call_id("phone"),
                   from_tag=self.ids.tag())  # fmt: skip


def _fits(message: Message, status: int | None, method: str | None,
          match: Callable[[Message], bool] | None) -> bool:  # fmt: skip
    if status is not None and not (isinstance(message, Response) and message.status == status):
        return False
    if method is not None:
        cseq = (message.headers.get("CSeq") or "").split()
        name = message.method if isinstance(message, Request) else (cseq[-1] if cseq else "")
        if name != method:
            return False
    return match is None or match(message)


@dataclass
class Leg:
    """One call from the phone to the user agent: builds its requests with the right fields."""

    phone: Phone
    ua: Address
    user: str
    caller: str
    call_id: str
    from_tag: str
    cseq: int = 0
    to: str = ""
    target: str = ""
    invite_request: Request | None = None
    extra: list[tuple[str, str]] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{self.ua[0]}:{self.ua[1]}"

    def _headers(self, method: str, cseq: int, branch: str | None = None) -> Headers:
        host, port = self.phone.address
        headers = Headers([("Via", self.phone.via(branch)), ("Max-Forwards", "70")])
        headers.add("From", f"<sip:{self.caller}@{host}:{port}>;tag={self.from_tag}")
        headers.add("To", self.to or f"<{self.uri}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        headers.add("Contact", f"<sip:{self.caller}@{host}:{port}>")
        for name, value in self.extra:
            headers.add(name, value)
        return headers

    def invite(self, body: bytes | None = None, headers: Iterable[tuple[str, str]] = ()) -> Request:
        """The initial INVITE (an SDP offer unless ``body`` is b"")."""
        self.cseq += 1
        body = sdp_offer() if body is None else body
        h = self._headers("INVITE", self.cseq)
        for name, value in headers:
            h.add(name, value)
        if body:
            h.add("Content-Type", "application/sdp")
        self.invite_request = Request("INVITE", self.uri, h, body)
        return self.invite_request

    def confirm(self, response: Response) -> None:
        """Take the To tag and Contact of a response to the INVITE (the dialog)."""
        self.to = response.headers.get("To") or self.to
        contacts = response.contacts()
        if contacts:
            self.target = str(contacts[0].uri)

    def ack(self, response: Response, body: bytes = b"") -> Request:
        """ACK for a response to the INVITE (2xx: new branch; else the INVITE's branch)."""
        assert self.invite_request is not None
        invite = self.invite_request
        if response.status < 300:
            self.confirm(response)
            h = self._headers("ACK", invite.cseq().number)
        else:
            h = self._headers("ACK", invite.cseq().number, invite.top_via().branch)
            h.set("To", response.headers.get("To") or "")
        if body:
            h.add("Content-Type", "application/sdp")
        uri = self.target if response.status < 300 and self.target else invite.uri
        return Request("ACK", uri, h, body)

    def cancel(self) -> Request:
        assert self.invite_request is not None
        invite = self.invite_request
        h = self._headers("CANCEL", invite.cseq().number, invite.top_via().branch)
        return Request("CANCEL", invite.uri, h)

    def request(self, method: str, body: bytes = b"", content_type: str | None = None,
                headers: Iterable[tuple[str, str]] = ()) -> Request:  # fmt: skip
        """A new request inside the dialog (after ``confirm``)."""
        self.cseq += 1
        h = self._headers(method, self.cseq)
        for name, value in headers:
            h.add(name, value)
        if content_type:
            h.add("Content-Type", content_type)
        request = Request(method, self.target or self.uri, h, body)
        if method == "INVITE":
            self.invite_request = request  # a re-INVITE: ``ack`` answers it from now on
        return request

    async def establish(self, body: bytes | None = None) -> Response:
        """INVITE, wait for the 200, ACK it; returns the 200."""
        self.phone.send(self.invite(body), self.ua)
        ok = await self.phone.response(200, "INVITE")
        self.phone.send(self.ack(ok), self.ua)
        return ok


class App:
    """An application that records what the user agent tells it."""

    def __init__(self, accept: bool = True, reject: int | None = None) -> None:
        self.calls: list[SipCall] = []
        self.events: list[tuple[str, str]] = []
        self.accept = accept
        self.reject = reject

    def __call__(self, call: SipCall) -> None:
        self.calls.append(call)
        call.on_hangup = lambda: self.events.append(("hangup", call.call_id))
        call.on_dtmf = lambda digit: self.events.append(("dtmf", digit))
        call.on_established = lambda: self.events.append(("established", call.call_id))
        call.on_media_update = lambda plan: self.events.append(("media", plan.direction))
        call.on_transfer_result = lambda ok, why: self.events.append(("transfer", f"{ok} {why}"))
        if self.reject is not None:
            call.reject(self.reject)
        elif self.accept:
            call.accept()


async def setup(app: App | None = None, **kwargs: Any) -> tuple[UserAgent, Phone, App]:
    """A user agent answering through ``app`` (accept all by default) and a phone."""
    app = app or App()
    ua = await start_ua(on_incoming=app, **kwargs)
    phone = await Phone.open()
    return ua, phone, app


async def established(**kwargs: Any) -> tuple[UserAgent, Phone, App, Leg, SipCall]:
    """``setup``, then one call from the phone, answered and ACKed."""
    ua, phone, app = await setup(**kwargs)
    leg = phone.leg(ua.address)
    await leg.establish()
    call = app.calls[0]
    await asyncio.wait_for(call.wait_established(), 2)
    return ua, phone, app, leg, call
