"""DTMF carried in SIP INFO bodies (RFC 2976 INFO; the de-facto body formats).

Two bodies are common: ``application/dtmf-relay`` (Cisco style, ``Signal=5\\r\\nDuration=160``)
and ``application/dtmf`` (just the key, ``5``). Some gateways send the event number instead of
the key for * and # (10 and 11, as in RFC 4733), so those are read too.
"""

from __future__ import annotations

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
INFO_TYPES = (DTMF_RELAY, DTMF)
_KEYS = frozenset("0123456789*#ABCD")
_EVENTS = {"10": "*", "11": "#", "12": "A", "13": "B", "14": "C", "15": "D"}


class DtmfBodyError(ValueError):
    """An INFO body of a DTMF type that names no key."""


def _key(text: str) -> str:
    value = text.strip().upper()
    if value in _KEYS:
        return value
    if value in _EVENTS:
        return _EVENTS[value]
    raise DtmfBodyError(f"not a DTMF key: {text[:20]!r}")


def parse_dtmf_body(content_type: str, body: bytes) -> str:
    """The key an INFO body of type ``content_type`` carries.

    Args:
        content_type: ``application/dtmf-relay`` or ``application/dtmf`` (lower case, no
            parameters).
        body: The body.

    Raises:
        DtmfBodyError: No key in it, or another content type.
    """
    text = body.decode("utf-8", "replace")
    if content_type == DTMF:
        return _key(text)
    if content_type != DTMF_RELAY:
        raise DtmfBodyError(f"not a DTMF body type: {content_type}")
    for line in text.replace("\r", "\n").split("\n"):
        name, eq, value = line.partition("=")
        if eq and name.strip().lower() == "signal":
            return _key(value)
    raise DtmfBodyError("dtmf-relay body without Signal=")
