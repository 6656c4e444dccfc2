"""HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 2617, RFC 7616).

The client side: read a WWW-Authenticate / Proxy-Authenticate challenge and compute the
Authorization / Proxy-Authorization credentials for a request. MD5 and SHA-256 (and their
``-sess`` forms); qop ``auth`` when offered (``auth-int`` when it is the only one offered);
RFC 2069 style (no qop) otherwise.

The server side (:mod:`ivr.sip.registrar`): :func:`challenge_value` writes a challenge,
:class:`Credentials` reads an Authorization value and computes, with the same hashing as the
client side, the response it must carry. Nothing here logs: the credentials carry a password
hash.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.sip.errors import SipParseError
from ivr.sip.params import quote_string, read_quoted

_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
# Preference when a server offers several challenges (RFC 7616 §3.7: the strongest first).
_STRENGTH = {"SHA-512-256": 3, "SHA-256": 2, "MD5": 1}
_NAME = re.compile(r"\s*([A-Za-z0-9\-_.!%*+`'~]+)\s*=\s*")
_TOKEN_VALUE = re.compile(r"[^\s,\"]+")
_NONCE_COUNT = re.compile(r"[0-9A-Fa-f]{8}")


@dataclass(frozen=True)
class Challenge:
    """One Digest challenge.

    Attributes:
        realm: The protection space.
        nonce: The server nonce.
        algorithm: As written (default MD5).
        qop: The qop options offered, lower case (empty for RFC 2069 servers).
        opaque: Echoed back unchanged, or None.
        stale: True when the previous credentials were right but the nonce was old.
        params: Every parameter as read, names lower case.
    """

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Challenge:
        """Parse ``Digest realm="...", nonce="...", ...``.

        Raises:
            SipParseError: Not a Digest challenge, or realm/nonce missing.
        """
        scheme, _, rest = text.strip().partition(" ")
        if scheme.lower() != "digest":
            raise SipParseError(f"not a Digest challenge: {scheme[:20]!r}")
        params = parse_auth_params(rest)
        if "realm" not in params or "nonce" not in params:
            raise SipParseError("Digest challenge without realm or nonce")
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        return cls(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=params.get("algorithm", "MD5"),
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "").lower() == "true",
            params=params,
        )

    @property
    def supported(self) -> bool:
        """True when we can answer it (a known algorithm, and a qop we do if any is asked)."""
        known = self.algorithm.upper().removesuffix("-SESS") in _HASHES
        return known and (not self.qop or "auth" in self.qop or "auth-int" in self.qop)

    @property
    def strength(self) -> int:
        """Higher for stronger hash algorithms."""
        return _STRENGTH.get(self.algorithm.upper().removesuffix("-SESS"), 0)


def parse_auth_params(text: str) -> dict[str, str]:
    """``name=value, name="quoted"`` pairs into a dict (names lower case).

    Raises:
        SipParseError: A parameter that is not ``name=value``.
    """
    params: dict[str, str] = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _NAME.match(text, pos)
        if m is None:
            raise SipParseError(f"bad auth parameter: {text[pos : pos + 40]!r}")
        pos = m.end()
        if text[pos : pos + 1] == '"':
            value, pos = read_quoted(text, pos)
        else:
            v = _TOKEN_VALUE.match(text, pos)
            if v is None:
                raise SipParseError(f"bad auth parameter value: {text[pos : pos + 40]!r}")
            value, pos = v.group(0), v.end()
        params[m.group(1).lower()] = value
        while text[pos : pos + 1] in (" ", "\t"):  # (no slicing of the rest: linear time)
            pos += 1
        if pos < len(text) and text[pos] != ",":
            raise SipParseError(f"text after auth parameter: {text[pos : pos + 40]!r}")
        pos += 1
    return params


def pick_challenge(values: list[str]) -> Challenge | None:
    """The strongest Digest challenge we can answer among header values, or None."""
    usable: list[Challenge] = []
    for value in values:
        try:
            challenge = Challenge.parse(value)
        except SipParseError:
            continue  # other schemes, or a broken challenge next to a good one
        if challenge.supported:
            usable.append(challenge)
    return max(usable, key=lambda c: c.strength, default=None)


def _hash(algorithm: str, text: str) -> str:
    name = _HASHES[algorithm.upper().removesuffix("-SESS")]
    # Header text keeps non-UTF-8 octets as surrogates: hash the octets that were sent.
    return hashlib.new(name, text.encode("utf-8", "surrogateescape")).hexdigest()


def digest_response(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str = "",
    nc: int = 1,
    body: bytes = b"",
) -> tuple[str, str | None]:
    """The request-digest and the qop used (None for RFC 2069 style).

    Args:
        challenge: The challenge answered.
        method: The request method (the SIP method, ACK and CANCEL included).
        uri: The digest-uri: the Request-URI as sent.
        username: The user name.
        password: The password.
        cnonce: Our client nonce (needed with qop and for ``-sess``).
        nc: The nonce count: 1 for the first request with this nonce.
        body: The request body, for qop=auth-int.
    """
    algorithm = challenge.algorithm
    ha1 = _hash(algorithm, f"{username}:{challenge.realm}:{password}")
    if algorithm.lower().endswith("-sess"):
        ha1 = _hash(algorithm, f"{ha1}:{challenge.nonce}:{cnonce}")
    qop = None if not challenge.qop else ("auth" if "auth" in challenge.qop else "auth-int")
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 += ":" + hashlib.new(_HASHES[algorithm.upper().removesuffix("-SESS")], body).hexdigest()
    ha2 = _hash(algorithm, a2)
    if qop is None:
        return _hash(algorithm, f"{ha1}:{challenge.nonce}:{ha2}"), None
    return _hash(algorithm, f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}"), qop


def credentials(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The value of an Authorization or Proxy-Authorization header answering ``challenge``."""
    response, qop = digest_response(
        challenge, method=method, uri=uri, username=username, password=password,
        cnonce=cnonce, nc=nc, body=body,
    )  # fmt: skip
    parts = [
        f"username={quote_string(username)}",
        f"realm={quote_string(challenge.realm)}",
        f"nonce={quote_string(challenge.nonce)}",
        f"uri={quote_string(uri)}",
        f"response={quote_string(response)}",
    ]
    if "algorithm" in challenge.params:
        parts.append(f"algorithm={challenge.algorithm}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc:08x}", f"cnonce={quote_string(cnonce)}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={quote_string(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


# --- the server side ------------------------------------------------------------------------


def challenge_value(
    realm: str,
    nonce: str,
    *,
    algorithm: str = "MD5",
    qop: Iterable[str] = ("auth",),
    stale: bool = False,
    opaque: str | None = None,
) -> str:
    """A WWW-Authenticate / Proxy-Authenticate value: ``Digest realm="...", nonce="...", ...``.

    Args:
        realm: The protection space.
        nonce: A fresh server nonce.
        algorithm: Named explicitly (RFC 7616 §3.3 allows leaving MD5 implicit; we do not).
        qop: The qop options offered; empty for an RFC 2069 style challenge.
        stale: The previous credentials were right but their nonce was not (RFC 7616 §3.3).
        opaque: A value the client must echo, or None.
    """
    parts = [f"realm={quote_string(realm)}", f"nonce={quote_string(nonce)}"]
    if opaque is not None:
        parts.append(f"opaque={quote_string(opaque)}")
    if stale:
        parts.append("stale=true")
    parts.append(f"algorithm={algorithm}")
    options = ",".join(qop)
    if options:
        parts.append(f"qop={quote_string(options)}")
    return "Digest " + ", ".join(parts)


@dataclass(frozen=True)
class Credentials:
    """One Digest Authorization / Proxy-Authorization value, as a server reads it.

    Attributes:
        username: The user name (unquoted; any character the quoted string allowed).
        realm: The realm the client answers.
        nonce: The server nonce it answers.
        uri: The digest-uri (the Request-URI as the client sent it).
        response: The request-digest, lower case.
        algorithm: As written (default MD5).
        qop: The qop chosen, lower case, or None (RFC 2069 style).
        nc: The nonce count (with a qop), or None.
        cnonce: The client nonce (with a qop), or None.
        opaque: The opaque value echoed, or None.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str = field(repr=False)  # a password hash: kept out of any repr that is logged
    algorithm: str = "MD5"
    qop: str | None = None
    nc: int | None = None
    cnonce: str | None = None
    opaque: str | None = None

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """Parse ``Digest username="...", realm="...", ...``.

        Raises:
            SipParseError: Not Digest, a required parameter missing or empty, or a qop without
                an 8-hex-digit nc and a cnonce. The reason never quotes the response.
        """
        scheme, _, rest = text.strip().partition(" ")
        if scheme.lower() != "digest":
            raise SipParseError(f"not Digest credentials: {scheme[:20]!r}")
        params = parse_auth_params(rest)
        missing = [name for name in ("username", "realm", "nonce", "uri", "response")
                   if not params.get(name)]  # fmt: skip
        if missing:
            raise SipParseError(f"Digest credentials without {', '.join(missing)}")
        qop = params.get("qop", "").lower() or None
        nc = cnonce = None
        if qop is not None:
            nc_text, cnonce = params.get("nc", ""), params.get("cnonce", "")
            if _NONCE_COUNT.fullmatch(nc_text) is None or not cnonce:
                raise SipParseError("Digest credentials with a qop but no valid nc or cnonce")
            nc = int(nc_text, 16)
        return cls(
            username=params["username"],
            realm=params["realm"],
            nonce=params["nonce"],
            uri=params["uri"],
            response=params["response"].lower(),
            algorithm=params.get("algorithm", "MD5"),
            qop=qop,
            nc=nc,
            cnonce=cnonce,
            opaque=params.get("opaque"),
        )

    @property
    def supported(self) -> bool:
        """True when we can check them: a known algorithm and qop."""
        known = self.algorithm.upper().removesuffix("-SESS") in _HASHES
        return known and self.qop in (None, "auth", "auth-int")

    def expected_response(self, method: str, password: str, body: bytes = b"") -> str:
        """The request-digest these credentials carry when ``password`` is the user's.

        Only call it when :attr:`supported` is True.
        """
        challenge = Challenge(realm=self.realm, nonce=self.nonce, algorithm=self.algorithm,
                              qop=() if self.qop is None else (self.qop,))  # fmt: skip
        response, _ = digest_response(
            challenge, method=method, uri=self.uri, username=self.username, password=password,
            cnonce=self.cnonce or "", nc=self.nc or 0, body=body,
        )  # fmt: skip
        return response
