"""RTP data packets (RFC 3550 §5.1) and 16-bit sequence-number arithmetic (RFC 3550 App. A.1).

The receive path calls :meth:`RtpPacket.parse` once per datagram and the send path
``bytes(packet)`` once per packet, so both are a single ``struct`` call in the common case (no
CSRC, no extension, no padding).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_SIZE = 12

# RFC 3550 App. A.1: a jump forward of more than MAX_DROPOUT or backwards of more than
# MAX_MISORDER is not ordinary loss or reordering; two packets in sequence after it mean the
# sender restarted its numbering.
MAX_DROPOUT = 3000
MAX_MISORDER = 100

_FIXED = struct.Struct("!BBHII")
_EXT_HEAD = struct.Struct("!HH")


class RtpParseError(ValueError):
    """A datagram that is not a well-formed RTP version 2 packet.

    The receiver logs and drops it; it never ends the call.
    """


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """The header extension of RFC 3550 §5.3.1: a profile-defined id and whole 32-bit words."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if len(self.data) % 4:
            raise ValueError("an RTP header extension is a whole number of 32-bit words")


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet.

    Attributes:
        payload_type: 0..127 (0 PCMU, 8 PCMA, dynamic 96..127 e.g. telephone-event).
        sequence_number: 0..65535, +1 per packet sent (wraps; see :func:`seq_diff`).
        timestamp: 0..2**32-1, in the payload's clock units (8000 Hz for G.711 and DTMF).
        ssrc: Synchronization source.
        payload: The payload without padding.
        marker: Start of a talkspurt (audio) or of a new event (RFC 4733 §2.5.1.1).
        csrcs: Contributing sources (at most 15).
        extension: The header extension, or None.
        padding_size: Number of padding octets, including the count octet (0: none).
    """

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding_size: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one datagram.

        Raises:
            RtpParseError: too short, not version 2, or CSRC count, extension length or padding
                count pointing past the end of the datagram.
        """
        if len(data) < HEADER_SIZE:
            raise RtpParseError(f"RTP packet too short ({len(data)} bytes)")
        first, second, seq, ts, ssrc = _FIXED.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpParseError(f"RTP version {first >> 6}, expected 2")
        if not first & 0x3F:  # fast path: no padding, extension or CSRC
            return cls(second & 0x7F, seq, ts, ssrc, data[HEADER_SIZE:], bool(second & 0x80))
        offset, csrcs = _parse_csrcs(data, first & 0x0F)
        extension = None
        if first & 0x10:
            offset, extension = _parse_extension(data, offset)
        end = len(data)
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0 or padding > end - offset:
                raise RtpParseError(f"bad RTP padding count {padding}")
            end -= padding
        return cls(
            second & 0x7F,
            seq,
            ts,
            ssrc,
            data[offset:end],
            bool(second & 0x80),
            csrcs,
            extension,
            padding,
        )

    def __bytes__(self) -> bytes:
        first = RTP_VERSION << 6
        second = (self.payload_type & 0x7F) | (0x80 if self.marker else 0)
        if not (self.csrcs or self.extension or self.padding_size):
            return (
                _FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
                + self.payload
            )
        if len(self.csrcs) > 15:
            raise ValueError("an RTP packet carries at most 15 CSRCs")
        if not 0 <= self.padding_size <= 255:
            raise ValueError("RTP padding is 1..255 octets")
        first |= len(self.csrcs)
        parts = [b"", struct.pack(f"!{len(self.csrcs)}I", *self.csrcs)]
        if self.extension is not None:
            first |= 0x10
            ext = self.extension
            parts.append(_EXT_HEAD.pack(ext.profile, len(ext.data) // 4) + ext.data)
        parts.append(self.payload)
        if self.padding_size:
            first |= 0x20
            parts.append(bytes(self.padding_size - 1) + bytes([self.padding_size]))
        parts[0] = _FIXED.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)
        return b"".join(parts)


def _parse_csrcs(data: bytes, count: int) -> tuple[int, tuple[int, ...]]:
    end = HEADER_SIZE + 4 * count
    if len(data) < end:
        raise RtpParseError(f"RTP packet too short for {count} CSRCs")
    return end, struct.unpack_from(f"!{count}I", data, HEADER_SIZE)


def _parse_extension(data: bytes, offset: int) -> tuple[int, RtpExtension]:
    if len(data) < offset + 4:
        raise RtpParseError("RTP packet too short for its header extension")
    profile, words = _EXT_HEAD.unpack_from(data, offset)
    start = offset + 4
    end = start + 4 * words
    if len(data) < end:
        raise RtpParseError(f"RTP header extension of {words} words runs past the packet")
    return end, RtpExtension(profile, data[start:end])


def seq_diff(a: int, b: int) -> int:
    """``a - b`` for 16-bit sequence numbers, taking wrap-around into account.

    The result is in -32768..32767: positive when ``a`` is newer than ``b``
    (``seq_diff(2, 65534) == 4``).
    """
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_newer(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (serial-number order, RFC 1982)."""
    return seq_diff(a, b) > 0


def ts_diff(a: int, b: int) -> int:
    """``a - b`` for 32-bit RTP timestamps, wrap-around aware (-2**31..2**31-1)."""
    return ((a - b + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


class SequenceCounter:
    """Extends 16-bit sequence numbers to ever-growing integers (cycles * 65536 + seq).

    Follows the rules of RFC 3550 App. A.1: a packet within MAX_MISORDER behind or MAX_DROPOUT
    ahead of the highest number seen gets its extended number (a late packet from before a wrap
    gets the previous cycle's). A bigger jump is held on probation: :meth:`extend` returns None,
    and if the very next packet follows it in sequence, the sender is taken to have restarted;
    numbering then goes on in a new cycle above everything seen so far, so extended numbers never
    go backwards.
    """

    __slots__ = ("_bad_seq", "_highest", "restarts")

    def __init__(self) -> None:
        self._highest: int | None = None
        self._bad_seq: int | None = None
        self.restarts = 0

    @property
    def highest(self) -> int | None:
        """The highest extended sequence number accepted so far."""
        return self._highest

    @property
    def cycles(self) -> int:
        """How many times the 16-bit number wrapped (the rollover count)."""
        return 0 if self._highest is None else self._highest >> 16

    def extend(self, seq: int) -> int | None:
        """The extended number of ``seq``, or None for a packet on probation (drop it)."""
        if self._highest is None:
            self._highest = seq
            return seq
        delta = seq_diff(seq, self._highest & 0xFFFF)
        if -MAX_MISORDER <= delta <= MAX_DROPOUT:
            self._bad_seq = None
            ext = self._highest + delta
            if ext > self._highest:
                self._highest = ext
            return ext
        if seq == self._bad_seq:
            # Restart confirmed: go on in a fresh cycle above anything handed out before.
            self._bad_seq = None
            self.restarts += 1
            base = ((self._highest >> 16) + 2) << 16
            self._highest = base + seq
            return self._highest
        self._bad_seq = (seq + 1) & 0xFFFF
        return None
