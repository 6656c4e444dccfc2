"""SIP and other URIs, and name-addr / addr-spec values (From, To, Contact, Route).

RFC 3261 §19.1 (SIP-URI) and §20.10/§25.1 (name-addr). URIs are kept unescaped: ``%HH`` in
the user, password, parameters and headers is expanded on parse and re-applied by ``str()``,
so ``sip:%75ser@host`` and ``sip:user@host`` parse equal (RFC 3261 §19.1.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ivr.sip.errors import SipParseError
from ivr.sip.params import (
    TOKEN,
    Params,
    escape,
    format_params,
    parse_params,
    quote_string,
    read_quoted,
    unescape,
)

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+")
_PASSWORD = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,%]*")
# Underscores are not in RFC 1123 host names but turn up in lab setups; accepting them costs
# nothing. IPv4 addresses match the same pattern.
_HOSTNAME = re.compile(r"[A-Za-z0-9\-._]+")
_IPV6_REF = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_PARAM = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$%]+")
_HEADER = re.compile(r"[A-Za-z0-9\-_.!~*'()\[\]/?:+$%]*")
_OPAQUE = re.compile(r"[^\s<>\"]+")
_USER_SAFE = "&=+$,;?/"
_PASSWORD_SAFE = "&=+$,"
_PARAM_SAFE = "[]/:&+$"
_HEADER_SAFE = "[]/?:+$"


def parse_host_port(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 references in brackets); ``text`` has no white space.

    Raises:
        SipParseError: Bad host or port.
    """
    if text.startswith("["):
        end = text.find("]") + 1
        host, rest = text[:end], text[end:]
        if not end or _IPV6_REF.fullmatch(host) is None or rest[:1] not in ("", ":"):
            raise SipParseError(f"bad IPv6 reference: {text[:60]!r}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_ = text.partition(":")
        port_text = port_text_ if colon else None
        if _HOSTNAME.fullmatch(host) is None:
            raise SipParseError(f"bad host: {host[:60]!r}")
    if port_text is None:
        return host, None
    return host, parse_port(port_text)


def parse_port(text: str) -> int:
    """A port number, 0-65535.

    Raises:
        SipParseError: Not 1-5 digits or out of range.
    """
    if not (text.isdigit() and text.isascii() and len(text) <= 5) or int(text) > 65535:
        raise SipParseError(f"bad port: {text[:20]!r}")
    return int(text)


@dataclass(frozen=True)
class SipUri:
    """A sip: or sips: URI, unescaped.

    Attributes:
        scheme: "sip" or "sips", lower case.
        user: The user part (may contain ``;``, ``?``, even NUL after unescaping), or None.
        password: The password after ``user:``, or None.
        host: Host name, IPv4 address or bracketed IPv6 reference, as written.
        port: The port, or None when absent.
        params: URI parameters, names lower-cased; a parameter without value maps to None.
        headers: The ``?name=value&...`` part, in order.
    """

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a SIP or SIPS URI.

        Raises:
            SipParseError: Not a well-formed sip:/sips: URI (white space included).
        """
        scheme, colon, rest = text.partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in ("sip", "sips"):
            raise SipParseError(f"not a SIP URI: {text[:60]!r}")
        # The user part may hold ";" and "?" but never an unescaped "@", and nothing after
        # the host may hold one, so the last "@" ends the userinfo.
        userinfo, at, hostpart = rest.rpartition("@")
        user = password = None
        if at:
            user, password = _parse_userinfo(userinfo)
        hostpart, question, header_text = hostpart.partition("?")
        hostport, semi, param_text = hostpart.partition(";")
        host, port = parse_host_port(hostport)
        params = _parse_uri_params(param_text) if semi else {}
        headers = _parse_uri_headers(header_text) if question else ()
        return cls(host, user, password, port, params, headers, scheme)

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                out += [":", escape(self.password, _PASSWORD_SAFE)]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        for name, value in self.params.items():
            out += [";", escape(name, _PARAM_SAFE)]
            if value is not None:
                out += ["=", escape(value, _PARAM_SAFE)]
        for i, (name, value) in enumerate(self.headers):
            out += ["?" if i == 0 else "&", escape(name, _HEADER_SAFE), "="]
            out.append(escape(value, _HEADER_SAFE))
        return "".join(out)

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter, lower case, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    def host_port(self, default_port: int = 5060) -> tuple[str, int]:
        """Host without IPv6 brackets and the port, defaulted when absent."""
        return self.host.strip("[]"), self.port if self.port is not None else default_port


def _parse_userinfo(text: str) -> tuple[str, str | None]:
    user, colon, password = text.partition(":")
    if _USER.fullmatch(user) is None:
        raise SipParseError(f"bad user part: {user[:60]!r}")
    if colon and _PASSWORD.fullmatch(password) is None:
        raise SipParseError("bad password part")
    return unescape(user), unescape(password) if colon else None


def _parse_uri_params(text: str) -> Params:
    params: Params = {}
    for part in text.split(";"):
        name, eq, value = part.partition("=")
        if _PARAM.fullmatch(name) is None or (eq and _PARAM.fullmatch(value) is None):
            raise SipParseError(f"bad URI parameter: {part[:60]!r}")
        params[unescape(name).lower()] = unescape(value) if eq else None
    return params


def _parse_uri_headers(text: str) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not name or not eq or _HEADER.fullmatch(name) is None:
            raise SipParseError(f"bad URI header: {part[:60]!r}")
        if _HEADER.fullmatch(value) is None:
            raise SipParseError(f"bad URI header value: {part[:60]!r}")
        headers.append((unescape(name), unescape(value)))
    return tuple(headers)


@dataclass(frozen=True)
class AbsoluteUri:
    """A URI of a scheme other than sip/sips (tel:, http:, isbn: ...), kept opaque."""

    scheme: str
    opaque: str

    @classmethod
    def parse(cls, text: str) -> AbsoluteUri:
        """Parse ``scheme:opaque``; only the scheme's syntax and the absence of spaces are checked.

        Raises:
            SipParseError: No scheme, or white space, quotes or angle brackets in the URI.
        """
        scheme, colon, opaque = text.partition(":")
        if not colon or _SCHEME.fullmatch(scheme) is None or _OPAQUE.fullmatch(opaque) is None:
            raise SipParseError(f"not a URI: {text[:60]!r}")
        return cls(scheme.lower(), opaque)

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = SipUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse any absolute URI: a ``SipUri`` for sip:/sips:, an ``AbsoluteUri`` otherwise.

    Raises:
        SipParseError: Not a well-formed URI.
    """
    scheme = text[:5].lower()
    if scheme.startswith("sip:") or scheme == "sips:":
        return SipUri.parse(text)
    return AbsoluteUri.parse(text)


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI, header parameters.

    Attributes:
        uri: The address.
        display: The display name (unquoted), or None.
        params: Header parameters such as tag, expires, q; names lower-cased.
    """

    uri: Uri
    display: str | None = None
    params: Params = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse ``[display] <URI> *(;param)`` or ``addr-spec *(;param)``.

        Without angle brackets, parameters after the URI belong to the header (RFC 3261
        §20.10), and a URI holding ``,``, ``;`` or ``?`` is an error (RFC 4475 §3.1.2.13).

        Raises:
            SipParseError: Anything else, including spaces inside <...> and unquoted display
                names that are not tokens.
        """
        s = text.strip()
        if s.startswith('"'):
            display, end = read_quoted(s)
            rest = s[end:].lstrip()
            if not rest.startswith("<"):
                raise SipParseError("quoted display name not followed by <URI>")
            return cls._bracketed(display, rest)
        lt = s.find("<")
        if lt >= 0:
            words = s[:lt].split()
            if any(TOKEN.fullmatch(word) is None for word in words):
                raise SipParseError(f"display name must be tokens or quoted: {s[:lt][:60]!r}")
            return cls._bracketed(" ".join(words) or None, s[lt:])
        uri_text, semi, param_text = s.partition(";")
        uri_text = uri_text.rstrip()
        if "," in uri_text or "?" in uri_text:
            raise SipParseError(f"URI with ',' or '?' must be in <>: {uri_text[:60]!r}")
        return cls(parse_uri(uri_text), None, parse_params(semi + param_text))

    @classmethod
    def _bracketed(cls, display: str | None, rest: str) -> NameAddr:
        gt = rest.find(">")
        if gt < 0:
            raise SipParseError("'<' without '>'")
        return cls(parse_uri(rest[1:gt]), display, parse_params(rest[gt + 1 :]))

    def __str__(self) -> str:
        head = f"{quote_string(self.display)} " if self.display is not None else ""
        return f"{head}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter, or None."""
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with the ``tag`` parameter set."""
        return replace(self, params={**self.params, "tag": tag})
