"""What a UAS answers to a request it cannot take, and which messages it drops unanswered.

The checks follow RFC 3261 §8.2 in its order: version (505), then the fields every request
must carry and their syntax (400), method (501), Request-URI scheme (416), Require (420),
and for INVITE the body's type and encoding (415) and Accept (406). Whether a known method
such as REGISTER is allowed here (405) is the user agent's business, not the wire's.

RFC 4475 choices, where it leaves room: a request-line with extra spaces or ``<>`` around the
URI is rejected (400); ``branch=z9hG4bK`` alone is accepted and left to RFC 2543-style
transaction matching; an unreadable Date is ignored (we never use it); Max-Forwards is
optional (RFC 2543 peers send none) and 0 is fine for a request addressed to us (483 is a
proxy's answer, RFC 3261 §16.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from ivr.sip.errors import SipParseError
from ivr.sip.fields import CSeq, is_call_id
from ivr.sip.message import Request, Response, make_response
from ivr.sip.uri import NameAddr, SipUri

# The methods this user agent implements, for Allow headers.
ALLOW: tuple[str, ...] = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "REFER", "NOTIFY")
# Methods we recognise: anything else gets 501 (RFC 3261 §8.2.1).
KNOWN_METHODS = frozenset(
    (*ALLOW, "REGISTER", "SUBSCRIBE", "MESSAGE", "PRACK", "UPDATE", "PUBLISH")
)
# Option tags we support in Require: none yet (no 100rel, timer or replaces).
SUPPORTED: frozenset[str] = frozenset()
URI_SCHEMES = frozenset({"sip", "sips", "tel"})
SDP = "application/sdp"
_ACCEPTS_SDP = frozenset({SDP, "application/*", "*/*"})


@dataclass(frozen=True)
class Reject:
    """Answer the request with ``status`` (and ``headers``) instead of processing it."""

    status: int
    why: str
    headers: tuple[tuple[str, str], ...] = ()

    def response(self, request: Request, to_tag: str | None = None) -> Response:
        """The response that carries out this verdict."""
        return make_response(request, self.status, to_tag=to_tag, extra_headers=self.headers)


@dataclass(frozen=True)
class Drop:
    """Send nothing: a malformed response, an ACK, or a message with nowhere to answer."""

    why: str


Verdict = Reject | Drop


def check_request(request: Request, *, supported: frozenset[str] = SUPPORTED) -> Verdict | None:
    """What a UAS must answer instead of processing ``request``; None when it may process it.

    Args:
        request: A parsed request.
        supported: Option tags we accept in Require.
    """
    verdict = _check_request(request, supported)
    if verdict is not None and request.method == "ACK":
        return Drop(verdict.why)  # nothing ever answers an ACK (RFC 3261 §17.2.1)
    return verdict


def _check_request(request: Request, supported: frozenset[str]) -> Verdict | None:
    if request.version.upper() != "SIP/2.0":
        return Reject(505, f"version {request.version}")
    try:
        cseq = _check_fields(request)
    except SipParseError as err:
        return Reject(400, err.reason)
    if request.method not in KNOWN_METHODS:
        return Reject(501, f"unknown method {request.method}", (("Allow", ", ".join(ALLOW)),))
    if cseq.method != request.method:
        return Reject(400, f"CSeq method {cseq.method} on a {request.method}")
    return (
        _check_uri(request.uri)
        or _check_require(request, supported)
        or (_check_invite(request) if request.method == "INVITE" else None)
    )


def _check_fields(request: Request) -> CSeq:
    """Syntax of the fields a request must carry; raises SipParseError for the first fault."""
    call_id = request.call_id()
    if not is_call_id(call_id):
        raise SipParseError(f"bad Call-ID: {call_id[:60]!r}")
    cseq = request.cseq()
    request.from_addr()
    request.to_addr()
    if not request.vias():
        raise SipParseError("missing Via")
    if len(request.headers.get_all("Max-Forwards")) > 1:
        raise SipParseError("repeated Max-Forwards")
    request.max_forwards()
    for value in request.headers.values("Contact"):
        if value != "*" or request.method != "REGISTER":
            NameAddr.parse(value)
    return cseq


def _check_uri(uri: str) -> Verdict | None:
    scheme = uri.partition(":")[0].lower()
    if scheme not in URI_SCHEMES:
        return Reject(416, f"Request-URI scheme {scheme[:40]!r}")
    if scheme in ("sip", "sips"):
        try:
            parsed = SipUri.parse(uri)
        except SipParseError as err:
            return Reject(400, f"Request-URI: {err.reason}")
        if parsed.headers:  # RFC 3261 §19.1.1 table: never in a Request-URI
            return Reject(400, "headers in the Request-URI")
    return None


def _check_require(request: Request, supported: frozenset[str]) -> Verdict | None:
    if request.method in ("ACK", "CANCEL"):
        return None  # RFC 3261 §8.2.2.3: Require is ignored in these
    unknown = [tag for tag in request.headers.values("Require") if tag.lower() not in supported]
    unknown = [tag for tag in unknown if tag]
    if unknown:
        return Reject(420, "unsupported extension", (("Unsupported", ", ".join(unknown)),))
    return None


def _check_invite(request: Request) -> Verdict | None:
    """An INVITE's offer must be plain SDP, and our answer must be acceptable to it."""
    if request.body:
        if request.content_type() != SDP:
            return Reject(415, f"body type {request.content_type()}", (("Accept", SDP),))
        encodings = [e.lower() for e in request.headers.values("Content-Encoding") if e]
        if any(e != "identity" for e in encodings):
            headers = (("Accept", SDP), ("Accept-Encoding", "identity"))
            return Reject(415, f"body encoding {', '.join(encodings)}", headers)
    accepted = [a.partition(";")[0].strip().lower() for a in request.headers.values("Accept")]
    accepted = [a for a in accepted if a]
    if accepted and _ACCEPTS_SDP.isdisjoint(accepted):
        return Reject(406, "Accept does not allow application/sdp", (("Accept", SDP),))
    return None


def check_response(response: Response) -> Drop | None:
    """Drop a response whose fields a UAC cannot match to a transaction; None to process it."""
    if response.version.upper() != "SIP/2.0":
        return Drop(f"version {response.version}")
    try:
        response.cseq()
        response.call_id()
        response.from_addr()
        response.to_addr()
        if not response.vias():
            raise SipParseError("missing Via")
    except SipParseError as err:
        return Drop(err.reason)
    return None


def verdict_for_error(error: SipParseError) -> Verdict:
    """What to do with a message ``parse_message`` could not read.

    A request whose header fields up to the fault include a Via is answered (400 unless the
    error says otherwise), so the sender learns why; everything else is dropped.
    """
    partial = error.partial
    if not isinstance(partial, Request) or partial.method == "ACK":
        return Drop(error.reason)
    if "Via" not in partial.headers:
        return Drop(f"{error.reason} (no Via to answer to)")
    return Reject(error.status, error.reason)
