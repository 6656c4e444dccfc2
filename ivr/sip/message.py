"""SIP requests and responses: parse from a datagram, serialize back (RFC 3261 §7).

``parse_message`` frames by Content-Length as a UDP receiver must (§18.3): a body shorter
than Content-Length is an error, octets after it are ignored, and without Content-Length the
body runs to the end of the datagram. Header text is decoded as UTF-8 with surrogate escapes,
so raw octets that are not UTF-8 survive a parse/serialize round trip unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.sip.errors import SipParseError
from ivr.sip.fields import CSeq, Via, parse_max_forwards
from ivr.sip.headers import Headers, header_key
from ivr.sip.params import TOKEN
from ivr.sip.uri import NameAddr, Uri, parse_uri

__all__ = [
    "REASON_PHRASES",
    "Headers",
    "Request",
    "Response",
    "SipParseError",
    "make_response",
    "parse_message",
]

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Moved Temporarily", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    491: "Request Pending", 500: "Server Internal Error", 501: "Not Implemented",
    503: "Service Unavailable", 505: "Version Not Supported", 600: "Busy Everywhere",
    603: "Decline",
}  # fmt: skip

_VERSION = re.compile(r"SIP/[0-9]{1,3}\.[0-9]{1,3}", re.IGNORECASE)
_REQUEST_URI = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[^\s<>\"]+")
_NAME_KEYS: dict[str, str] = {}  # field name as written -> lookup key, for names seen valid
_NAME_CACHE_LIMIT = 4096
_WSP = " \t"  # only SP and HTAB are white space in SIP; str.strip() would eat more
# Requests that create dialogs: their 101-299 responses copy Record-Route (RFC 3261 §12.1.1).
_DIALOG_METHODS = frozenset({"INVITE", "SUBSCRIBE", "REFER"})


class _Fields:
    """Typed accessors shared by requests and responses; each parses on call and may raise."""

    headers: Headers

    def single(self, name: str) -> str:
        """The value of a field that must appear exactly once.

        Raises:
            SipParseError: The field is missing or repeated.
        """
        values = self.headers.get_all(name)
        if len(values) != 1:
            raise SipParseError(f"{'missing' if not values else 'repeated'} {name}")
        return values[0]

    def call_id(self) -> str:
        """The Call-ID."""
        return self.single("Call-ID")

    def cseq(self) -> CSeq:
        """The parsed CSeq."""
        return CSeq.parse(self.single("CSeq"))

    def vias(self) -> list[Via]:
        """Every Via value, top first."""
        return [Via.parse(value) for value in self.headers.values("Via")]

    def top_via(self) -> Via:
        """The first Via value."""
        values = self.headers.values("Via")
        if not values:
            raise SipParseError("missing Via")
        return Via.parse(values[0])

    def from_addr(self) -> NameAddr:
        """The parsed From."""
        return NameAddr.parse(self.single("From"))

    def to_addr(self) -> NameAddr:
        """The parsed To."""
        return NameAddr.parse(self.single("To"))

    def contacts(self) -> list[NameAddr]:
        """Every Contact value (a ``*`` Contact raises: only REGISTER may carry it)."""
        return [NameAddr.parse(value) for value in self.headers.values("Contact")]

    def max_forwards(self) -> int | None:
        """Max-Forwards, or None when absent (RFC 2543 peers)."""
        value = self.headers.get("Max-Forwards")
        return None if value is None else parse_max_forwards(value)

    def content_type(self) -> str | None:
        """The media type of Content-Type, lower case and without parameters, or None."""
        value = self.headers.get("Content-Type")
        return None if value is None else value.partition(";")[0].strip().lower()


@dataclass
class Request(_Fields):
    """A SIP request. ``uri`` stays text: schemes other than sip: are legal on the wire."""

    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    @classmethod
    def parse(cls, data: bytes) -> Request:
        """Parse a datagram that must hold a request.

        Raises:
            SipParseError: Malformed, or a response.
        """
        message = parse_message(data)
        if not isinstance(message, Request):
            raise SipParseError("expected a request, got a response", partial=message)
        return message

    @property
    def start_line(self) -> str:
        """``METHOD uri SIP/2.0``."""
        return f"{self.method} {self.uri} {self.version}"

    def request_uri(self) -> Uri:
        """The parsed Request-URI."""
        return parse_uri(self.uri)

    def __bytes__(self) -> bytes:
        return _serialize(self.start_line, self.headers, self.body)


@dataclass
class Response(_Fields):
    """A SIP response."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    @classmethod
    def parse(cls, data: bytes) -> Response:
        """Parse a datagram that must hold a response.

        Raises:
            SipParseError: Malformed, or a request.
        """
        message = parse_message(data)
        if not isinstance(message, Response):
            raise SipParseError("expected a response, got a request", partial=message)
        return message

    @property
    def start_line(self) -> str:
        """``SIP/2.0 code reason``."""
        return f"{self.version} {self.status} {self.reason}"

    def __bytes__(self) -> bytes:
        return _serialize(self.start_line, self.headers, self.body)


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    # Content-Length always tells the truth about the body we send, whatever it said before.
    lines = [start_line]
    length_written = False
    for name, value in headers:
        if header_key(name) == "content-length":
            if length_written:
                continue
            value = str(len(body))
            length_written = True
        lines.append(f"{name}: {value}")
    if not length_written:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body


def parse_message(data: bytes) -> Request | Response:
    """Parse one SIP message from a UDP datagram.

    Raises:
        SipParseError: The message is malformed; ``partial`` holds what could be read.
    """
    start = 0
    while data[start : start + 1] in (b"\r", b"\n"):
        start += 1  # RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives)
    if start == len(data):
        raise SipParseError("empty message")
    head, body_at = _split_head(data, start)
    lines = _head_lines(head.decode("utf-8", "surrogateescape"))
    items, keys, fault = _parse_fields(lines[1:])
    headers = Headers.from_parsed(items, keys)
    message, line_fault = _parse_start_line(lines[0], headers)
    fault = line_fault or fault
    if fault is None and body_at < 0:
        fault = "header fields not ended by an empty line"
    if fault is not None:
        raise SipParseError(fault, partial=message)
    message.body = _frame_body(data, body_at, keys, items, message)
    return message


def _split_head(data: bytes, start: int) -> tuple[bytes, int]:
    """The header section and where the body starts (-1: no empty line)."""
    crlf = data.find(b"\r\n\r\n", start)
    lf = data.find(b"\n\n", start, crlf if crlf >= 0 else len(data))
    if lf >= 0:  # bare-LF line ends: not RFC 3261, but cheap to accept
        return data[start:lf].rstrip(b"\r"), lf + 2
    if crlf >= 0:
        return data[start:crlf], crlf + 4
    return data[start:].rstrip(b"\r\n"), -1


def _head_lines(text: str) -> list[str]:
    crlf = text.count("\r\n")
    if crlf == text.count("\n") and crlf == text.count("\r"):
        return text.split("\r\n")
    # Bare LF line ends, or stray CRs: a CR or LF must never end up inside a value, where
    # serializing would turn it into a line break, so every one of them ends a line.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _parse_fields(lines: list[str]) -> tuple[list[tuple[str, str]], list[str], str | None]:
    """Header lines to (items, keys, fault); stops at the first bad line, keeping the rest."""
    items: list[tuple[str, str]] = []
    keys: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):  # folded continuation: LWS is one SP (RFC 3261 §7.3.1)
            if not items:
                return items, keys, "continuation line before the first header field"
            name, value = items[-1]
            items[-1] = (name, (value + " " + line.strip(_WSP)).strip(_WSP))
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(_WSP)
        key = _NAME_KEYS.get(name)
        if key is None:
            if not colon or TOKEN.fullmatch(name) is None:
                return items, keys, f"bad header line: {line[:60]!r}"
            key = header_key(name)
            if len(_NAME_KEYS) < _NAME_CACHE_LIMIT:
                _NAME_KEYS[name] = key
        elif not colon:
            return items, keys, f"bad header line: {line[:60]!r}"
        items.append((name, value.strip(_WSP)))
        keys.append(key)
    return items, keys, None


def _parse_start_line(line: str, headers: Headers) -> tuple[Request | Response, str | None]:
    """The message skeleton and a fault, if any (the skeleton still carries the headers)."""
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        status = int(code) if len(code) == 3 and code.isdigit() and code.isascii() else 0
        response = Response(status, reason, headers, version=version)
        if not 100 <= status <= 699:
            return response, f"bad status code: {code[:20]!r}"
        if _VERSION.fullmatch(version) is None:
            return response, f"bad SIP version: {version[:20]!r}"
        return response, None
    parts = line.split(" ")
    method = parts[0] if TOKEN.fullmatch(parts[0]) else ""
    if len(parts) != 3:
        # Extra or trailing spaces, or spaces inside the URI (RFC 4475 §3.1.2.8-10).
        return Request(method, "", headers), "request line is not 'METHOD SP URI SP version'"
    request = Request(method, parts[1], headers, version=parts[2])
    if not method:
        return request, f"bad method: {parts[0][:40]!r}"
    if _REQUEST_URI.fullmatch(parts[1]) is None:
        return request, f"bad Request-URI: {parts[1][:60]!r}"
    if _VERSION.fullmatch(parts[2]) is None:
        return request, f"bad SIP version: {parts[2][:20]!r}"
    return request, None


def _frame_body(
    data: bytes,
    body_at: int,
    keys: list[str],
    items: list[tuple[str, str]],
    message: Request | Response,
) -> bytes:
    lengths = [items[i][1] for i, key in enumerate(keys) if key == "content-length"]
    if not lengths:
        return data[body_at:]  # UDP without Content-Length: the rest of the datagram
    if len(lengths) > 1:
        raise SipParseError("more than one Content-Length", partial=message)
    text = lengths[0]
    if not (text.isdigit() and text.isascii()) or len(text.lstrip("0")) > 9:
        raise SipParseError(f"bad Content-Length: {text[:20]!r}", partial=message)
    end = body_at + int(text)
    if end > len(data):
        raise SipParseError("body shorter than Content-Length", partial=message)
    return data[body_at:end]


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """Build a response to ``request`` as RFC 3261 §8.2.6 says.

    Via (all values, in order), From, Call-ID and CSeq are copied; To is copied with
    ``to_tag`` added when it has no tag and the status is above 100. Record-Route is copied
    into 101-299 responses to dialog-creating requests (§12.1.1), Timestamp into 100 (§8.2.6.1).
    Fields the request lacks are left out, so a 400 can answer a request missing them.

    Args:
        request: The request answered (may be the ``partial`` of a ``SipParseError``).
        status: The status code.
        reason: The reason phrase; the standard one when None.
        to_tag: Our tag for the To field.
        extra_headers: Extra fields, appended in order.
        body: The body; Content-Length is set from it when serialized.
    """
    out = Headers()
    src = request.headers
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in src.get_all(name):
            if name == "To" and to_tag and status > 100:
                value = _with_tag(value, to_tag)
            out.add(name, value)
    if 100 < status < 300 and request.method in _DIALOG_METHODS:
        for value in src.get_all("Record-Route"):
            out.add("Record-Route", value)
    if status == 100:
        for value in src.get_all("Timestamp"):
            out.add("Timestamp", value)
    for name, value in extra_headers:
        out.add(name, value)
    phrase = reason if reason is not None else REASON_PHRASES.get(status, "")
    return Response(status, phrase, out, body)


def _with_tag(to: str, tag: str) -> str:
    try:
        if NameAddr.parse(to).tag is not None:
            return to
    except SipParseError:
        return to  # do not touch a To we cannot read; the answer is an error anyway
    return f"{to};tag={tag}"
