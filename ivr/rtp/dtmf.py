"""RFC 4733 telephone events: the payload, a receiver that yields each key press once, a sender.

One key press travels as several RTP packets that share the event's start timestamp (§2.5.1.1):
the first has the marker bit, later ones carry the growing duration, and the last one has the
end bit and is sent three times (§2.5.1.4). Packets get lost, duplicated and replayed, so the
receiver keys an event by (timestamp, event code) and reports it the first time it sees *any*
of its packets: at once for barge-in, and never again.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from ivr.rtp.packet import RtpPacket, ts_diff

DIGITS = "0123456789*#ABCD"  # event codes 0..15 (RFC 4733 §3.2)
DEFAULT_VOLUME = 10  # -10 dBm0, the usual level of a keypad tone
MAX_DURATION = 0xFFFF  # the 16-bit duration field; longer events go on in a new segment
TELEPHONE_EVENT_PT = 101  # the usual dynamic payload type; the SDP decides the real one

_PAYLOAD = struct.Struct("!BBH")


class DtmfParseError(ValueError):
    """A telephone-event payload shorter than 4 bytes or with an invalid field."""


def event_code(digit: str) -> int:
    """The RFC 4733 event code of a key: "0".."9" -> 0..9, "*" 10, "#" 11, "A".."D" 12..15.

    Raises:
        ValueError: not one of the 16 DTMF keys.
    """
    index = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF key: {digit!r}")
    return index


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """One telephone-event payload (RFC 4733 §2.3).

    Attributes:
        event: Event code (0..255; 0..15 are the DTMF keys).
        end: The E bit: this packet reports the end of the event.
        volume: Power level in -dBm0 (0..63).
        duration: Samples since the event (or segment) began, 0..65535.
    """

    event: int
    end: bool = False
    volume: int = DEFAULT_VOLUME
    duration: int = 0

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        """Parse the first 4-byte block of a payload (the R bit is ignored, §2.3.4).

        Raises:
            DtmfParseError: fewer than 4 bytes.
        """
        if len(data) < 4:
            raise DtmfParseError(f"telephone-event payload of {len(data)} bytes, expected 4")
        event, flags, duration = _PAYLOAD.unpack_from(data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def __bytes__(self) -> bytes:
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} outside 0..63")
        flags = (0x80 if self.end else 0) | self.volume
        return _PAYLOAD.pack(self.event, flags, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF key of this event, or None for other events."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None


@dataclass(frozen=True, slots=True)
class DtmfKey:
    """A key press, reported once.

    Attributes:
        digit: "0".."9", "*", "#", "A".."D".
        timestamp: RTP timestamp of the event's start (its identity).
    """

    digit: str
    timestamp: int


@dataclass(slots=True)
class _Event:
    timestamp: int  # of the current segment
    code: int
    duration: int  # highest duration seen in the current segment
    earlier: int  # duration of the segments before this one
    last_update: float
    ended: bool


class DtmfReceiver:
    """Turns received telephone-event packets into key presses, each exactly once.

    * The three end packets, retransmissions and replays of a capture repeat (timestamp, code):
      recognised and dropped.
    * A lost first packet: the event is reported on whichever of its packets arrives first.
    * Lost end packets: an event with a new timestamp is a new press; an event that has had no
      update for ``timeout`` seconds is over.
    * A long press (RFC 4733 §2.5.1.3): past 0xFFFF samples the sender starts a new segment with
      a new timestamp (old + 0xFFFF) and the same code, without marker. While the event is still
      live, a packet of the same code whose timestamp is the old one + 0xFFFF, or lies within
      what the event has covered (plus ``slack`` samples), continues it instead of starting a new
      press.

    Args:
        timeout: Seconds without an update after which an event without end bit is over.
        slack: Samples of tolerance for a continuation segment's timestamp.
        memory: How many past events to remember for recognising replays.
    """

    def __init__(self, timeout: float = 0.5, slack: int = 400, memory: int = 32) -> None:
        self.timeout = timeout
        self.slack = slack
        self._memory = memory
        self._seen: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._current: _Event | None = None

    @property
    def active(self) -> str | None:
        """The key being held now (an event started and not yet ended), or None."""
        cur = self._current
        if cur is None or cur.ended or cur.code >= len(DIGITS):
            return None
        return DIGITS[cur.code]

    @property
    def duration(self) -> int:
        """Samples covered by the current (or last) event, over all its segments."""
        cur = self._current
        return 0 if cur is None else cur.earlier + cur.duration

    def expire(self, now: float) -> None:
        """End the current event if it had no update for ``timeout`` seconds."""
        cur = self._current
        if cur is not None and not cur.ended and now - cur.last_update > self.timeout:
            cur.ended = True

    def feed_packet(self, packet: RtpPacket, now: float) -> DtmfKey | None:
        """:meth:`feed` for an RTP packet of the telephone-event payload type.

        Raises:
            DtmfParseError: the payload is not a telephone event.
        """
        return self.feed(TelephoneEvent.parse(packet.payload), packet.timestamp, now)

    def feed(self, event: TelephoneEvent, timestamp: int, now: float) -> DtmfKey | None:
        """Take one packet's event; return the key press if this packet starts a new one.

        The marker bit is not needed: the packet that carries it may be the one lost.
        """
        self.expire(now)
        key = (timestamp, event.event)
        cur = self._current
        if cur is not None and (cur.timestamp, cur.code) == key:
            self._update(cur, event, now)
            return None
        if key in self._seen:
            return None  # a replay, or a straggler of an event already over
        self._remember(key)
        if cur is not None and self._continues(cur, event.event, timestamp):
            cur.earlier += ts_diff(timestamp, cur.timestamp)
            cur.timestamp, cur.duration = timestamp, 0
            self._update(cur, event, now)
            return None
        self._current = _Event(timestamp, event.event, event.duration, 0, now, event.end)
        digit = event.digit
        return None if digit is None else DtmfKey(digit, timestamp)

    def _continues(self, cur: _Event, code: int, timestamp: int) -> bool:
        if cur.ended or code != cur.code:
            return False
        step = ts_diff(timestamp, cur.timestamp)
        # A new segment starts exactly 0xFFFF after the last one (§2.5.1.3), even when the
        # packets that reported the segment's last stretch were lost.
        return step == MAX_DURATION or 0 < step <= cur.duration + self.slack

    @staticmethod
    def _update(cur: _Event, event: TelephoneEvent, now: float) -> None:
        cur.duration = max(cur.duration, event.duration)
        cur.last_update = now
        if event.end:
            cur.ended = True

    def _remember(self, key: tuple[int, int]) -> None:
        self._seen[key] = None
        if len(self._seen) > self._memory:
            self._seen.popitem(last=False)


def dtmf_payloads(
    digit: str,
    start_ts: int,
    *,
    duration_ms: int = 100,
    volume: int = DEFAULT_VOLUME,
    ptime: int = 20,
    clock_rate: int = 8000,
) -> list[tuple[bool, bytes, int]]:
    """The telephone-event packets of one key press, one per ``ptime`` tick.

    Interim packets carry the duration so far (one ptime, two, ...); the last three carry the
    end bit and the full duration (§2.5.1.4). Events longer than 0xFFFF samples are cut into
    segments (§2.5.1.3): a segment ends at duration 0xFFFF without the end bit and the next one
    starts at timestamp + 0xFFFF, without marker.

    Returns:
        ``(marker, payload, timestamp)`` per packet, in sending order; the caller numbers them
        with the stream's sequence numbers as it sends them.
    """
    code = event_code(digit)
    step = ptime * clock_rate // 1000
    total = max(step, duration_ms * clock_rate // 1000)
    out: list[tuple[bool, bytes, int]] = []
    segment_start = 0  # samples from start_ts to the current segment's timestamp
    for elapsed in range(step, total, step):
        while elapsed - segment_start > MAX_DURATION:
            out.append(_packet(code, volume, MAX_DURATION, start_ts + segment_start, out))
            segment_start += MAX_DURATION
        out.append(_packet(code, volume, elapsed - segment_start, start_ts + segment_start, out))
    while total - segment_start > MAX_DURATION:
        out.append(_packet(code, volume, MAX_DURATION, start_ts + segment_start, out))
        segment_start += MAX_DURATION
    end = bytes(TelephoneEvent(code, True, volume, total - segment_start))
    ts = (start_ts + segment_start) & 0xFFFF_FFFF
    first = not out  # an event shorter than one ptime: the first end packet has the marker
    out.extend([(first, end, ts), (False, end, ts), (False, end, ts)])
    return out


def _packet(
    code: int, volume: int, duration: int, ts: int, so_far: list[tuple[bool, bytes, int]]
) -> tuple[bool, bytes, int]:
    payload = bytes(TelephoneEvent(code, False, volume, duration))
    return (not so_far, payload, ts & 0xFFFF_FFFF)


def dtmf_packets(
    digit: str,
    start_ts: int,
    ssrc: int,
    seq: int,
    duration_ms: int = 100,
    volume: int = DEFAULT_VOLUME,
    ptime: int = 20,
    payload_type: int = TELEPHONE_EVENT_PT,
) -> list[RtpPacket]:
    """:func:`dtmf_payloads` as RTP packets numbered from ``seq`` (wrapping at 65536).

    Each packet has ``marker``, ``payload`` and ``timestamp`` as in the tuples of
    :func:`dtmf_payloads`, plus the stream's SSRC and consecutive sequence numbers.
    """
    payloads = dtmf_payloads(digit, start_ts, duration_ms=duration_ms, volume=volume, ptime=ptime)
    return [
        RtpPacket(payload_type, (seq + i) & 0xFFFF, ts, ssrc, payload, marker)
        for i, (marker, payload, ts) in enumerate(payloads)
    ]
