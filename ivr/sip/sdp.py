"""SDP session descriptions (RFC 4566): parse, inspect and serialize.

Parsing is lenient where real endpoints differ (LF or CRLF line ends, blank lines, missing
s= or t=, unknown line types are skipped as RFC 4566 §5 says) and strict where a wrong guess
would send media to the wrong place (bad o=, c= or m= lines raise ``SdpError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_MAX_PORT = 65535


class SdpError(ValueError):
    """A session description that cannot be read."""


def small_int(text: str, max_digits: int) -> int | None:
    """``text`` as an int when it is 1 to ``max_digits`` ASCII digits, else None.

    (``str.isdigit`` alone lets through digits such as "²" that ``int()`` rejects.)
    """
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def _int(text: str, what: str, limit: int | None = None) -> int:
    if not (text.isdigit() and text.isascii()) or len(text) > 20:
        raise SdpError(f"bad {what}: {text[:20]!r}")
    value = int(text)
    if limit is not None and value > limit:
        raise SdpError(f"{what} out of range: {value}")
    return value


@dataclass
class Origin:
    """The o= line: who made the description and its version."""

    username: str = "-"
    session_id: int = 0
    session_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    @classmethod
    def parse(cls, text: str) -> Origin:
        """Parse ``username sess-id sess-version nettype addrtype address``."""
        parts = text.split()
        if len(parts) != 6:
            raise SdpError(f"bad o= line: {text[:60]!r}")
        user, sid, version, nettype, addrtype, address = parts
        return cls(user, _int(sid, "sess-id"), _int(version, "sess-version"), nettype, addrtype,
                   address)  # fmt: skip

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass
class Connection:
    """A c= line. ``address`` may carry ``/ttl`` for IPv4 multicast, as written."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    @classmethod
    def parse(cls, text: str) -> Connection:
        """Parse ``nettype addrtype address``."""
        parts = text.split()
        if len(parts) != 3:
            raise SdpError(f"bad c= line: {text[:60]!r}")
        return cls(parts[2], parts[1].upper(), parts[0].upper())

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """``IN IP4 a.b.c.d`` or ``IN IP6 ::1`` depending on the address."""
        return cls(address, "IP6" if ":" in address else "IP4")

    @property
    def host(self) -> str:
        """The address without a multicast ``/ttl`` suffix."""
        return self.address.partition("/")[0]

    @property
    def unspecified(self) -> bool:
        """True for 0.0.0.0 or :: (RFC 2543-style hold: send nothing there)."""
        return self.host in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True)
class RtpMap:
    """An a=rtpmap value: ``96 opus/48000/2``."""

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    @classmethod
    def parse(cls, text: str) -> RtpMap:
        """Parse ``pt encoding/clock[/channels]``."""
        pt, _, spec = text.strip().partition(" ")
        parts = spec.strip().split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SdpError(f"bad rtpmap: {text[:60]!r}")
        channels = _int(parts[2], "channels") if len(parts) == 3 else None
        return cls(_int(pt, "payload type", 127), parts[0], _int(parts[1], "clock rate"), channels)

    def __str__(self) -> str:
        tail = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"


Attribute = tuple[str, str | None]  # a=name:value, or a=name -> (name, None)


def _parse_attribute(text: str) -> Attribute:
    name, colon, value = text.partition(":")
    return (name, value) if colon else (name, None)


def _format_attribute(attr: Attribute) -> str:
    return f"a={attr[0]}" if attr[1] is None else f"a={attr[0]}:{attr[1]}"


@dataclass
class Media:
    """One m= section and the lines under it."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    title: str | None = None
    connection: Connection | None = None
    bandwidths: list[str] = field(default_factory=list)
    key: str | None = None
    attributes: list[Attribute] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Media:
        """Parse the m= line's value: ``audio 49170[/2] RTP/AVP 0 8 101``."""
        parts = text.split()
        if len(parts) < 3:
            raise SdpError(f"bad m= line: {text[:60]!r}")
        port_text, _, count = parts[1].partition("/")
        port = _int(port_text, "port", _MAX_PORT)
        port_count = _int(count, "port count") if count else None
        return cls(parts[0], port, parts[2], parts[3:], port_count)

    def m_line(self) -> str:
        """The m= line's value."""
        port = f"{self.port}/{self.port_count}" if self.port_count else str(self.port)
        return " ".join([self.kind, port, self.proto, *self.formats])

    def values(self, name: str) -> list[str]:
        """Values of every a=name:value line."""
        return [v for n, v in self.attributes if n == name and v is not None]

    def rtpmaps(self) -> dict[int, RtpMap]:
        """a=rtpmap lines by payload type; unreadable ones are skipped."""
        maps: dict[int, RtpMap] = {}
        for value in self.values("rtpmap"):
            try:
                rtpmap = RtpMap.parse(value)
            except SdpError:
                continue
            maps.setdefault(rtpmap.payload_type, rtpmap)
        return maps

    def fmtp(self, payload_type: int) -> str | None:
        """The a=fmtp parameters of a payload type, or None."""
        prefix = f"{payload_type} "
        for value in self.values("fmtp"):
            if value.startswith(prefix):
                return value[len(prefix) :].strip()
        return None

    @property
    def direction(self) -> str | None:
        """The media-level direction attribute, or None when there is none."""
        for name, value in self.attributes:
            if value is None and name in DIRECTIONS:
                return name
        return None

    @property
    def ptime(self) -> int | None:
        """The a=ptime value in milliseconds, or None."""
        for value in self.values("ptime"):
            ptime = small_int(value.strip().partition(".")[0], 5)
            if ptime is not None:
                return ptime
        return None

    def lines(self) -> list[str]:
        """The section's lines in RFC 4566 order."""
        out = [f"m={self.m_line()}"]
        if self.title is not None:
            out.append(f"i={self.title}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={b}" for b in self.bandwidths]
        if self.key is not None:
            out.append(f"k={self.key}")
        out += [_format_attribute(a) for a in self.attributes]
        return out


@dataclass
class SessionDescription:
    """A whole SDP body. ``times`` holds (start, stop) pairs; r= and z= lines are kept as text."""

    origin: Origin = field(default_factory=Origin)
    name: str = "-"
    connection: Connection | None = None
    times: list[tuple[int, int]] = field(default_factory=lambda: [(0, 0)])
    media: list[Media] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    bandwidths: list[str] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # i u e p r z k, in order
    version: int = 0

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        """Parse an SDP body.

        Raises:
            SdpError: Not SDP, or a line we rely on is malformed.
        """
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        lines = [line.rstrip("\r") for line in text.split("\n")]
        lines = [line for line in lines if line.strip()]
        if not lines or lines[0].strip() != "v=0":
            raise SdpError("SDP must start with v=0")
        sdp = cls(times=[])
        has_origin = False
        for line in lines[1:]:
            kind, eq, value = line.partition("=")
            if len(kind) != 1 or not eq:
                raise SdpError(f"bad SDP line: {line[:60]!r}")
            if kind == "m":
                sdp.media.append(Media.parse(value))
            elif sdp.media:
                _media_line(sdp.media[-1], kind, value)
            else:
                has_origin |= kind == "o"
                sdp._session_line(kind, value)
        if not has_origin:
            raise SdpError("SDP without o= line")
        if not sdp.times:
            sdp.times = [(0, 0)]
        return sdp

    def _session_line(self, kind: str, value: str) -> None:
        if kind == "o":
            self.origin = Origin.parse(value)
        elif kind == "s":
            self.name = value
        elif kind == "c":
            self.connection = Connection.parse(value)
        elif kind == "t":
            start, _, stop = value.strip().partition(" ")
            self.times.append((_int(start, "start time"), _int(stop.strip(), "stop time")))
        elif kind == "a":
            self.attributes.append(_parse_attribute(value))
        elif kind == "b":
            self.bandwidths.append(value)
        elif kind in "iuepzkr":
            self.other.append((kind, value))

    def connection_for(self, media: Media) -> Connection | None:
        """The c= that applies to ``media``: its own, else the session's."""
        return media.connection or self.connection

    def direction_for(self, media: Media) -> str:
        """The direction of ``media``: its own attribute, else the session's, else sendrecv."""
        if media.direction is not None:
            return media.direction
        for name, value in self.attributes:
            if value is None and name in DIRECTIONS:
                return name
        return "sendrecv"

    def __str__(self) -> str:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.name}"]
        out += [f"{k}={v}" for k, v in self.other if k in "iuep"]
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out += [f"b={b}" for b in self.bandwidths]
        for start, stop in self.times:
            out.append(f"t={start} {stop}")
        out += [f"{k}={v}" for k, v in self.other if k in "rzk"]
        out += [_format_attribute(a) for a in self.attributes]
        for media in self.media:
            out += media.lines()
        return "\r\n".join(out) + "\r\n"

    def __bytes__(self) -> bytes:
        return str(self).encode("utf-8")


def _media_line(media: Media, kind: str, value: str) -> None:
    if kind == "c":
        media.connection = media.connection or Connection.parse(value)
    elif kind == "a":
        media.attributes.append(_parse_attribute(value))
    elif kind == "b":
        media.bandwidths.append(value)
    elif kind == "i":
        media.title = value
    elif kind == "k":
        media.key = value
