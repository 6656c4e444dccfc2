"""Dialog state (RFC 3261 §12) and the requests sent inside a dialog.

A dialog is identified by Call-ID, local tag and remote tag. It remembers the route set (the
Record-Route values of the request or response that created it), the remote target (Contact)
and both CSeq counters, and builds BYE, REFER, INFO and NOTIFY requests with the Route header
and Request-URI that loose and strict routing proxies expect (§12.2.1.1). With a proxy such as
Kamailio in the path (``record_route()``), our in-dialog requests go to the proxy, carrying
Route, whatever the peer behind it does with Record-Route.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from ivr.sip.errors import SipParseError
from ivr.sip.headers import Headers
from ivr.sip.message import Request, Response
from ivr.sip.uri import NameAddr, SipUri, Uri, parse_uri

DialogId = tuple[str, str, str]  # Call-ID, local tag, remote tag
# Methods whose requests carry our Contact (target refresh, and REFER by RFC 3515 §2.4.1).
_WITH_CONTACT = frozenset({"INVITE", "UPDATE", "REFER", "SUBSCRIBE", "NOTIFY"})
MAX_FORWARDS = "70"


def dialog_id_of(request: Request) -> DialogId:
    """The id of the dialog an incoming request belongs to: (Call-ID, To tag, From tag).

    Raises:
        SipParseError: Call-ID, From or To do not parse.
    """
    return (request.call_id(), request.to_addr().tag or "", request.from_addr().tag or "")


@dataclass
class Dialog:
    """One dialog, seen from our side.

    Attributes:
        call_id: The Call-ID.
        local_tag: Our tag.
        remote_tag: The peer's tag ("" for RFC 2543 peers that send none).
        local_addr: Our From/To value, without tag.
        remote_addr: The peer's From/To value, without tag.
        remote_target: The peer's Contact URI (where requests go without a route set).
        route_set: Route values in the order our requests carry them.
        local_contact: Our Contact value.
        local_seq: The CSeq of our last request in the dialog.
        remote_seq: The CSeq of the peer's last request, or None before the first.
    """

    call_id: str
    local_tag: str
    remote_tag: str
    local_addr: NameAddr
    remote_addr: NameAddr
    remote_target: str
    local_contact: str
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None

    @classmethod
    def as_uas(cls, request: Request, local_tag: str, local_contact: str,
               local_seq: int = 0) -> Dialog:  # fmt: skip
        """The dialog a 2xx (or 101-199 with a tag) to ``request`` creates (§12.1.1).

        Raises:
            SipParseError: A field the dialog needs does not parse.
        """
        remote = request.from_addr()
        return cls(
            call_id=request.call_id(),
            local_tag=local_tag,
            remote_tag=remote.tag or "",
            local_addr=_without_tag(request.to_addr()),
            remote_addr=_without_tag(remote),
            remote_target=_target(request.contacts(), remote.uri),
            local_contact=local_contact,
            route_set=request.headers.values("Record-Route"),
            local_seq=local_seq,
            remote_seq=request.cseq().number,
        )

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a 2xx response to our ``request`` creates (§12.1.2).

        Raises:
            SipParseError: A field the dialog needs does not parse, or the response has no
                To tag.
        """
        local = request.from_addr()
        remote = response.to_addr()
        if local.tag is None or remote.tag is None:
            raise SipParseError("a dialog needs both tags")
        return cls(
            call_id=request.call_id(),
            local_tag=local.tag,
            remote_tag=remote.tag,
            local_addr=_without_tag(local),
            remote_addr=_without_tag(remote),
            remote_target=_target(response.contacts(), remote.uri),
            local_contact=request.headers.get("Contact") or "",
            route_set=list(reversed(response.headers.values("Record-Route"))),
            local_seq=request.cseq().number,
        )

    @property
    def id(self) -> DialogId:
        """(Call-ID, local tag, remote tag)."""
        return (self.call_id, self.local_tag, self.remote_tag)

    def accept_remote_cseq(self, request: Request) -> bool:
        """Check and record the CSeq of an incoming in-dialog request (§12.2.2).

        Returns:
            False when it is lower than the last one (answer 500); ACK and CANCEL always pass.
        """
        if request.method in ("ACK", "CANCEL"):
            return True
        number = request.cseq().number
        if self.remote_seq is not None and number <= self.remote_seq:
            return False
        self.remote_seq = number
        return True

    def refresh_target(self, message: Request | Response) -> None:
        """Take a new remote target from the Contact of a target refresh request (re-INVITE)."""
        try:
            contacts = message.contacts()
        except SipParseError:
            return
        if contacts:
            self.remote_target = str(contacts[0].uri)

    def next_hop(self) -> Uri:
        """Where an in-dialog request goes first: the first route, else the remote target.

        Raises:
            SipParseError: The route or target does not parse.
        """
        if self.route_set:
            return NameAddr.parse(self.route_set[0]).uri
        return parse_uri(self.remote_target)

    def create_request(
        self,
        method: str,
        via: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A new request inside the dialog, with the next local CSeq (§12.2.1.1).

        Args:
            method: BYE, REFER, INFO, NOTIFY, INVITE ... (not ACK or CANCEL).
            via: Our Via value, branch included.
            body: The body.
            content_type: Its Content-Type, when there is a body.
            extra_headers: More header fields, in order.

        Raises:
            SipParseError: The route set does not parse.
        """
        self.local_seq += 1
        uri, routes = self._uri_and_routes()
        headers = Headers([("Via", via), ("Max-Forwards", MAX_FORWARDS)])
        headers.add("From", str(self.local_addr.with_tag(self.local_tag)))
        remote = self.remote_addr.with_tag(self.remote_tag) if self.remote_tag else self.remote_addr
        headers.add("To", str(remote))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.local_seq} {method}")
        for route in routes:
            headers.add("Route", route)
        if method in _WITH_CONTACT and self.local_contact:
            headers.add("Contact", self.local_contact)
        for name, value in extra_headers:
            headers.add(name, value)
        if body and content_type:
            headers.add("Content-Type", content_type)
        return Request(method, uri, headers, body)

    def _uri_and_routes(self) -> tuple[str, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = NameAddr.parse(self.route_set[0]).uri
        if isinstance(first, SipUri) and "lr" in first.params:
            return self.remote_target, list(self.route_set)
        # Strict router (RFC 2543 proxy): it gets the Request-URI, the target goes last.
        uri = first
        if isinstance(first, SipUri):
            kept = {k: v for k, v in first.params.items() if k not in ("method", "maddr", "ttl")}
            uri = replace(first, params=kept, headers=())
        return str(uri), [*self.route_set[1:], f"<{self.remote_target}>"]


def _without_tag(addr: NameAddr) -> NameAddr:
    if "tag" not in addr.params:
        return addr
    return replace(addr, params={k: v for k, v in addr.params.items() if k != "tag"})


def _target(contacts: list[NameAddr], fallback: Uri) -> str:
    """The Contact URI, or the From/To URI for RFC 2543 peers that sent no Contact."""
    return str(contacts[0].uri) if contacts else str(fallback)
