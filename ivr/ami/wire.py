"""AMI messages on the wire: framing, parsing and writing (docs/ASTERISK.md).

AMI is text: a banner line (``Asterisk Call Manager/7.0.3``), then messages of ``Key: value``
lines ended by an empty line. Asterisk sends CRLF; recordings and some proxies use LF, so both
are taken. A message longer than :data:`MAX_MESSAGE` or a banner that is not AMI is a
:class:`AmiProtocolError` (the connection is dropped): a hostile peer never makes us buffer
without end.

Parsing a complete message into keys and values is the ``asterisk-ami`` package's
(``Response.read``, ``Event.read``), and so is writing an action (``Action``); what it lacks
for an asyncio client with hostile input (LF line ends, a bound on what is buffered, refusing
CR/LF inside a value so a caller's data cannot add headers) is done here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from asterisk.ami import Action, Event, Response

MAX_MESSAGE = 256 * 1024  # bytes of one message (a QueueStatus of a big queue is a list, not one)
MAX_BANNER = 200
_BANNER = re.compile(r"Asterisk Call Manager/(?P<version>[0-9]+(\.[0-9]+)*)", re.IGNORECASE)
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


class AmiProtocolError(Exception):
    """The peer does not speak AMI (or speaks it in a way we refuse)."""


@dataclass(frozen=True)
class AmiMessage:
    """One message from Asterisk: a response (``kind == "response"``, ``name`` its status,
    ``Success``/``Error``/``Follows``/``Goodbye``) or an event (``name`` the event's).

    ``headers`` are the keys as sent; :meth:`get` looks one up whatever its case.
    """

    kind: str
    name: str
    headers: dict[str, str] = field(default_factory=dict)
    follows: tuple[str, ...] = ()  # the output of a ``Response: Follows``

    def get(self, key: str, default: str = "") -> str:
        """The value of ``key`` (any case), or ``default``."""
        wanted = key.lower()
        for name, value in self.headers.items():
            if name.lower() == wanted:
                return value
        return default

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    @property
    def ok(self) -> bool:
        """A response that is not an error."""
        return self.kind == "response" and self.name.lower() != "error"


def banner_version(line: bytes) -> str:
    """The AMI version of the banner ``line``.

    Raises:
        AmiProtocolError: not an AMI banner.
    """
    text = line.decode("utf-8", "replace").strip()
    match = _BANNER.match(text)
    if match is None:
        raise AmiProtocolError(f"not an AMI server (it said {text[:60]!r})")
    return match.group("version")


class Framer:
    """Cuts a byte stream into messages, CRLF or LF alike; bounded."""

    def __init__(self, limit: int = MAX_MESSAGE) -> None:
        self.limit = limit
        self._buffer = b""

    def feed(self, data: bytes) -> list[str]:
        """The messages completed by ``data`` (text with LF line ends).

        Raises:
            AmiProtocolError: a message grew past the limit.
        """
        self._buffer = (self._buffer + data).replace(b"\r\n", b"\n")
        # A CR at the very end may be the first half of a CRLF split across reads: keep it.
        packs = self._buffer.split(b"\n\n")
        self._buffer = packs.pop()
        if len(self._buffer) > self.limit:
            raise AmiProtocolError(f"a message longer than {self.limit} bytes")
        out = []
        for pack in packs:
            if len(pack) > self.limit:
                raise AmiProtocolError(f"a message longer than {self.limit} bytes")
            text = pack.decode("utf-8", "replace").strip("\n")
            if text:  # several empty lines in a row are no message
                out.append(text)
        return out


def parse(text: str) -> AmiMessage:
    """One framed message (see :class:`AmiMessage`); neither response nor event: ``unknown``."""
    if Response.match(text):
        response = Response.read(text)
        return AmiMessage("response", response.status, dict(response.keys),
                          tuple(response.follows or ()))  # fmt: skip
    if Event.match(text):
        event = Event.read(text)
        return AmiMessage("event", event.name, {k: _flat(v) for k, v in event.keys.items()})
    return AmiMessage("unknown", "", {})


def _flat(value: object) -> str:
    """asterisk-ami reads ``ChanVariable: a=b`` lines into a mapping: back into text."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def render(name: str, headers: dict[str, str]) -> bytes:
    """The action ``name`` with ``headers`` as AMI bytes (CRLF, ended by an empty line).

    Raises:
        ValueError: a key that is not a header name, or a CR, LF or NUL in a value (text from a
            caller or a SIP header must never add lines to an action).
    """
    for key, value in [("Action", name), *headers.items()]:
        if not _KEY.fullmatch(key):
            raise ValueError(f"AMI header name {key[:40]!r} is not a name")
        if _BAD_VALUE.search(value):
            raise ValueError(f"AMI header {key}: a line break or NUL in the value")
    return (str(Action(name, dict(headers))) + "\r\n").encode("utf-8")
