"""A small jitter buffer for the audio a caller sends, and a framer that cuts it into 20 ms frames.

Incoming audio is never played to a loudspeaker here: it feeds the in-band DTMF detector, the VAD,
the recognizer and recordings, which need the frames complete and in order but not paced. So the
buffer is push-driven and adds no delay in the normal case:

* :class:`JitterBuffer` takes the packets of one RTP stream (one SSRC; audio and telephone events
  share its sequence numbers) and releases them in sequence order as soon as they are contiguous.
  A missing packet is waited for until ``window`` newer packets have arrived (reordering of up to
  ``window - 1`` places is repaired); then it is declared lost and the packets after it go out.
  Duplicates and packets arriving after their place was given up ("late") are dropped and counted.
* :class:`AudioFramer` takes the ordered G.711 payloads (one byte per sample, any packet time) and
  cuts them into 160-sample frames. Gaps in the RTP timestamps (lost packets, or audio the sender
  replaced with telephone events) are filled with **silence**, not with a repeat of the last frame:
  repeating would stretch a DTMF tone or a word into the gap and can make one key press look like
  two to the in-band detector; silence is what the VAD and the recognizer handle best. A gap longer
  than ``max_gap`` samples (1 s) is a discontinuity (hold, a restarted sender) and is not filled.

When packets stop coming (hold, end of call), the transport calls ``flush()`` on both.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ivr.media.g711 import ULAW_SILENCE
from ivr.rtp.packet import MAX_DROPOUT, RtpPacket, SequenceCounter, ts_diff

FRAME_SAMPLES = 160
_LOST_MEMORY = 256  # lost sequence numbers remembered to tell a late packet from a duplicate


@dataclass
class JitterStats:
    """Counters of one :class:`JitterBuffer`.

    Attributes:
        received: Packets pushed.
        reordered: Packets that arrived after a newer one but in time to be put back in order.
        duplicates: Packets dropped because the same sequence number was already taken.
        late: Packets dropped because their place had been given up as lost.
        lost: Sequence numbers skipped in the output (whether or not they arrived late later).
        invalid: Packets dropped by the RFC 3550 sequence checks (a big jump not yet confirmed).
        resyncs: Times the sender restarted its numbering and the buffer followed.
    """

    received: int = 0
    reordered: int = 0
    duplicates: int = 0
    late: int = 0
    lost: int = 0
    invalid: int = 0
    resyncs: int = 0


class JitterBuffer:
    """Puts one RTP stream's packets back in sequence order.

    Args:
        window: How many newer packets may arrive before a missing one is declared lost.
    """

    def __init__(self, window: int = 4) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.window = window
        self.stats = JitterStats()
        self._seq = SequenceCounter()
        self._next: int | None = None  # extended sequence number to release next
        self._held: dict[int, RtpPacket] = {}
        self._lost: OrderedDict[int, None] = OrderedDict()

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        """Take one packet; return the packets now ready, in sequence order (often just it)."""
        stats = self.stats
        stats.received += 1
        highest = self._seq.highest
        ext = self._seq.extend(packet.sequence_number)
        if ext is None:
            stats.invalid += 1
            return []
        if self._next is None:
            self._next = ext
        out: list[RtpPacket] = []
        if ext - self._next > MAX_DROPOUT:  # the sender restarted: start over from this packet
            stats.resyncs += 1
            out = self.flush()
            self._next = ext
        if ext < self._next:
            if ext in self._lost:
                del self._lost[ext]
                stats.late += 1
            else:
                stats.duplicates += 1
            return out
        if ext in self._held:
            stats.duplicates += 1
            return out
        if highest is not None and ext < highest:
            stats.reordered += 1
        self._held[ext] = packet
        out.extend(self._release())
        return out

    def flush(self) -> list[RtpPacket]:
        """Release everything held, skipping the gaps (counted as lost)."""
        out: list[RtpPacket] = []
        while self._held:
            out.extend(self._release(force=True))
        return out

    def _release(self, force: bool = False) -> list[RtpPacket]:
        out: list[RtpPacket] = []
        held = self._held
        assert self._next is not None
        while held:
            packet = held.pop(self._next, None)
            if packet is not None:
                out.append(packet)
                self._next += 1
                continue
            if not force and max(held) - self._next < self.window:
                break  # still worth waiting for the missing packet
            first = min(held)
            for missing in range(self._next, first):
                self._mark_lost(missing)
            self.stats.lost += first - self._next
            self._next = first
        return out

    def _mark_lost(self, ext: int) -> None:
        self._lost[ext] = None
        if len(self._lost) > _LOST_MEMORY:
            self._lost.popitem(last=False)


class AudioFramer:
    """Cuts ordered G.711 payloads into fixed frames, filling timestamp gaps with silence.

    Args:
        silence: The codec's silence byte (0xFF μ-law, 0xD5 A-law).
        frame_samples: Samples (bytes) per frame; 160 is 20 ms at 8 kHz.
        max_gap: Largest gap (samples) that is filled; a bigger jump restarts the timeline.
    """

    def __init__(
        self, silence: int = ULAW_SILENCE, frame_samples: int = FRAME_SAMPLES, max_gap: int = 8000
    ) -> None:
        self.silence = silence
        self.frame_samples = frame_samples
        self.max_gap = max_gap
        self.filled = 0  # samples of silence inserted for gaps
        self.discontinuities = 0
        self._next_ts: int | None = None
        self._pending = bytearray()

    def feed(self, timestamp: int, payload: bytes) -> list[bytes]:
        """Take one packet's payload; return the whole frames now complete."""
        if self._next_ts is not None:
            gap = ts_diff(timestamp, self._next_ts)
            if 0 < gap <= self.max_gap:
                self._pending += bytes([self.silence]) * gap
                self.filled += gap
            elif -self.max_gap <= gap < 0:
                payload = payload[-gap:]  # overlaps audio already framed: keep only what is new
                timestamp = self._next_ts
            elif gap:
                self.discontinuities += 1
        self._pending += payload
        self._next_ts = (timestamp + len(payload)) & 0xFFFF_FFFF
        return self._take_frames()

    def flush(self) -> list[bytes]:
        """Return the frames still pending, the last one padded with silence."""
        rest = len(self._pending) % self.frame_samples
        if rest:
            self._pending += bytes([self.silence]) * (self.frame_samples - rest)
        return self._take_frames()

    def _take_frames(self) -> list[bytes]:
        n = self.frame_samples
        count = len(self._pending) // n
        if not count:
            return []
        frames = [bytes(self._pending[i * n : (i + 1) * n]) for i in range(count)]
        del self._pending[: count * n]
        return frames
