"""Typed views of single header values: Via, CSeq, Max-Forwards, Call-ID.

White space around ``/``, ``:``, ``;`` and ``=`` is allowed in Via (RFC 3261 §25.1 SLASH,
COLON, SEMI, EQUAL), as RFC 4475 §3.1.1.1 exercises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ivr.sip.errors import SipParseError
from ivr.sip.params import Params, format_params, parse_params
from ivr.sip.uri import parse_host_port

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with it
MAX_CSEQ = 2**32 - 1  # §8.1.1.5: "expressible as a 32-bit unsigned integer"
MAX_FORWARDS_LIMIT = 255  # §20.22: "an integer in the range 0-255"

_TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
_VIA = re.compile(rf"\s*({_TOKEN})\s*/\s*({_TOKEN})\s*/\s*({_TOKEN})\s+([^;]*)(.*)", re.DOTALL)
_CSEQ = re.compile(rf"\s*([0-9]+)\s+({_TOKEN})\s*")
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALL_ID = re.compile(rf"{_WORD}(?:@{_WORD})?")


@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...``.

    Attributes:
        transport: Upper case (UDP, TCP, TLS, SCTP or anything else).
        host: The sent-by host as written (IPv6 in brackets).
        port: The sent-by port, or None when absent.
        params: Via parameters, names lower-cased.
        protocol: Protocol name, normally "SIP".
        version: Protocol version, normally "2.0".
    """

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP"
    version: str = "2.0"

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one Via value (not a comma-separated list).

        Raises:
            SipParseError: Bad sent-protocol, sent-by or parameters.
        """
        m = _VIA.fullmatch(text)
        if m is None:
            raise SipParseError(f"bad Via: {text[:60]!r}")
        protocol, version, transport, sent_by, param_text = m.groups()
        # COLON = SWS ":" SWS, so "host : 5060" is legal; hosts themselves hold no spaces.
        host, port = parse_host_port(re.sub(r"\s*:\s*", ":", sent_by.strip()))
        return cls(transport.upper(), host, port, parse_params(param_text), protocol, version)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        proto = f"{self.protocol}/{self.version}/{self.transport}"
        return f"{proto} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        """The branch parameter, or None (RFC 2543 peers send none)."""
        return self.params.get("branch")

    @property
    def rfc3261_branch(self) -> bool:
        """True when the branch alone identifies the transaction (cookie plus something more)."""
        branch = self.branch
        return branch is not None and branch.startswith(MAGIC_COOKIE) and len(branch) > 7

    @property
    def received(self) -> str | None:
        """The received parameter, or None."""
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value when it carries a port number, else None."""
        value = self.params.get("rport")
        return (
            int(value)
            if value and value.isascii() and value.isdigit() and len(value) <= 5
            else None
        )

    @property
    def wants_rport(self) -> bool:
        """True when the client asked for rport (RFC 3581), with or without a value."""
        return "rport" in self.params

    def with_params(self, **params: str | None) -> Via:
        """A copy with parameters set (``received=...``, ``rport="5062"``)."""
        return replace(self, params={**self.params, **params})


@dataclass(frozen=True)
class CSeq:
    """The CSeq value: sequence number and method."""

    number: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse ``number method``.

        Raises:
            SipParseError: Not digits and a token, or a number above 2**32-1.
        """
        m = _CSEQ.fullmatch(text)
        # Check the length before int(): a huge digit string would be slow or rejected by
        # int() itself with a ValueError that is not ours.
        if m is None or len(m.group(1).lstrip("0")) > 10 or int(m.group(1)) > MAX_CSEQ:
            raise SipParseError(f"bad CSeq: {text[:60]!r}")
        return cls(int(m.group(1)), m.group(2))

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_max_forwards(text: str) -> int:
    """Max-Forwards as an integer 0-255.

    Raises:
        SipParseError: Not digits, or above 255.
    """
    value = text.strip()
    if not (value.isdigit() and value.isascii()) or len(value.lstrip("0")) > 3:
        raise SipParseError(f"bad Max-Forwards: {text[:20]!r}")
    number = int(value)
    if number > MAX_FORWARDS_LIMIT:
        raise SipParseError(f"Max-Forwards above {MAX_FORWARDS_LIMIT}: {number}")
    return number


def is_call_id(text: str) -> bool:
    """True when ``text`` is ``word [@ word]`` (RFC 3261 §25.1 callid)."""
    return _CALL_ID.fullmatch(text) is not None
