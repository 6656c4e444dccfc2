"""The receiving half of an RTP stream: from accepted packets to key presses, speech and frames.

:class:`RtpReceiver` gets the well-formed packets that :class:`ivr.rtp.stream.RtpStream` accepted
from its peer (the stream owns the socket and the source filtering) and runs the pipeline:

* telephone-event packets go to a :class:`DtmfReceiver` at once, before reordering, so a key
  press stops a prompt without waiting for a missing packet;
* every packet goes through the :class:`JitterBuffer` (audio and events share sequence numbers);
  the ordered audio is cut into 20 ms frames by the :class:`AudioFramer`;
* the frames wait for the media clock's pass, which decodes, classifies (in-band DTMF) and measures
  (VAD level) the frames of all calls in one batch and hands each call's back to
  :meth:`RtpReceiver.clock_analysed`: debouncer, VAD state, ``on_audio`` and the audio sinks.

**In-band DTMF** runs only when the peer did not negotiate telephone-event. Senders that negotiate
it take the tones out of the audio (or should); running both would report a key twice unless
de-duplicated by timing, and any de-duplication window would also swallow a real repeated key.
Skipping detection also saves the classification work for those calls.

**Relaying** (:mod:`ivr.rtp.bridge`): a :class:`FrameRelay` set as :attr:`RtpReceiver.relay` also
gets every 20 ms G.711 frame as it leaves the framer (in the socket's read callback, before the
clock's analysis) and every RFC 4733 key as it starts. In-band keys are not given to it: they
travel in the audio.

Event callbacks (``on_dtmf``, ``on_speech_start``, ``on_speech_end``, ``on_inactive``) are read
from the owning stream when they fire and scheduled with ``loop.call_soon``, so an exception in
one never stops the media clock; ``on_audio`` and the sinks get each decoded frame (int16, 160
samples) directly from the clock's pass and must be quick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ivr.media.clock import MediaClock
from ivr.media.g711 import G711Codec, codec_for
from ivr.media.goertzel import DtmfDebouncer
from ivr.media.vad import Vad, VadConfig
from ivr.rtp.dtmf import DtmfParseError, DtmfReceiver
from ivr.rtp.jitter import AudioFramer, JitterBuffer
from ivr.rtp.packet import RtpPacket

log = logging.getLogger("ivr.rtp")

AudioCallback = Callable[[NDArray[np.int16]], None]


@dataclass(frozen=True)
class StreamConfig:
    """Settings shared by the streams of an engine.

    Attributes:
        jitter_window: Newer packets to wait before a missing one is declared lost.
        inactivity_timeout: Seconds without a packet from the peer before ``on_inactive``
            (None: never). Counted only while the stream expects to receive.
        flush_after: Seconds without a packet after which held audio is released (the jitter
            buffer is push-driven: a gap before the last packets would hold them otherwise).
        vad: Voice-activity thresholds.
        dtmf_gap_ms: Audio between two RFC 4733 events sent by ``RtpStream.send_dtmf``.
    """

    jitter_window: int = 4
    inactivity_timeout: float | None = 30.0
    flush_after: float = 0.06
    vad: VadConfig = field(default_factory=VadConfig)
    dtmf_gap_ms: int = 60


@dataclass
class StreamStats:
    """Counters of one stream (packets unless said otherwise)."""

    sent: int = 0
    send_errors: int = 0  # including ICMP errors reported on receive
    received: int = 0  # well-formed RTP from the peer
    malformed: int = 0
    foreign: int = 0  # from an address other than the peer's, or before start()
    rtcp: int = 0
    other_payload: int = 0  # neither the audio nor the telephone-event payload type
    frames: int = 0  # 20 ms frames decoded and analysed
    dtmf_keys: int = 0  # RFC 4733 key presses
    inband_keys: int = 0


class FrameRelay(Protocol):
    """Where a receiver passes on what it takes (a bridge's direction; see module docstring)."""

    def relay_frames(self, frames: list[bytes], payload_type: int) -> None:
        """Whole 160-byte frames of ``payload_type`` (0 or 8), in order."""

    def relay_key(self, digit: str) -> None:
        """A key press that came as RFC 4733 events, when it starts."""


class MediaEvents(Protocol):
    """The callbacks a receiver reports to (the stream's public attributes)."""

    on_dtmf: Callable[[str], None] | None
    on_speech_start: Callable[[], None] | None
    on_speech_end: Callable[[], None] | None
    on_inactive: Callable[[], None] | None
    on_audio: AudioCallback | None

    @property
    def closed(self) -> bool:
        """No callback fires once this is True."""


class RtpReceiver:
    """One stream's receive pipeline; a :class:`~ivr.media.clock.FrameSink` of the media clock.

    Args:
        clock: The media clock that analyses the frames.
        events: Whose callbacks to call.
        stats: The stream's counters (shared with the sending half).
        config: Settings.
        call_id: For log lines.
    """

    def __init__(
        self,
        clock: MediaClock,
        events: MediaEvents,
        stats: StreamStats,
        config: StreamConfig,
        call_id: str = "-",
    ) -> None:
        self.clock = clock
        self.loop: asyncio.AbstractEventLoop = clock.loop
        self.events = events
        self.stats = stats
        self.config = config
        self.call_id = call_id
        self.receiving = False
        self.rx_frames: list[bytes] = []
        self.rx_codec: G711Codec = codec_for(0)
        self.rx_inband = False
        self.relay: FrameRelay | None = None
        self.jitter = JitterBuffer(config.jitter_window)
        self.dtmf = DtmfReceiver()
        self._framer = AudioFramer()
        self._debouncer = DtmfDebouncer()
        self._vad = Vad(config.vad)
        self._pt = -1
        self._dtmf_pt: int | None = None
        self._sinks: list[AudioCallback] = []
        self._seen = 0  # stats.received at the last housekeeping
        self._last_rx = clock.loop.time()
        self._flushed = True
        self._inactive_fired = False

    def configure(self, payload_type: int, dtmf_payload_type: int | None, receive: bool) -> None:
        """Set the negotiated payload types (again after a re-INVITE) and direction."""
        codec = codec_for(payload_type)
        if payload_type != self._pt:
            self._framer = AudioFramer(codec.silence)
            self.rx_frames = []
        if not self.receiving and receive:
            self._last_rx = self.loop.time()  # the inactivity timeout counts from here
        self._pt = payload_type
        self.rx_codec = codec
        self._dtmf_pt = dtmf_payload_type
        self.rx_inband = dtmf_payload_type is None
        self.receiving = receive

    def add_sink(self, sink: AudioCallback) -> None:
        """Also give every decoded frame to ``sink``."""
        self._sinks = [*self._sinks, sink]

    def remove_sink(self, sink: AudioCallback) -> None:
        """Stop giving frames to ``sink``."""
        self._sinks = [s for s in self._sinks if s is not sink]

    def packet(self, packet: RtpPacket) -> None:
        """Take one well-formed packet from the peer."""
        self.stats.received += 1
        if packet.payload_type == self._dtmf_pt:
            self._event_packet(packet)
        for ready in self.jitter.push(packet):
            self._ordered(ready)

    def clock_analysed(
        self, pcm: NDArray[np.int16], codes: list[int] | None, levels: list[float]
    ) -> None:
        """Take decoded frames from the clock's batch: in-band keys, VAD, audio callbacks."""
        if self.events.closed:  # closed by a callback earlier in the same pass
            return
        self.stats.frames += len(levels)
        vad, on_audio, sinks = self._vad, self.events.on_audio, self._sinks
        for i, level in enumerate(levels):
            if codes is not None:
                key = self._debouncer.update(codes[i])
                if key is not None:
                    self.stats.inband_keys += 1
                    self.loop.call_soon(self._fire_dtmf, key)
            event = vad.feed_level(level)
            if event is not None:
                self.loop.call_soon(self._fire_speech, event.kind == "start")
            if on_audio is not None or sinks:
                frame = pcm[i]
                if on_audio is not None:
                    on_audio(frame)
                for sink in sinks:
                    sink(frame)

    def housekeeping(self, now: float) -> None:
        """Release held audio once packets stop; report inactivity; expire a DTMF event."""
        self.dtmf.expire(now)
        if self.stats.received != self._seen:
            self._seen = self.stats.received
            self._last_rx = now
            self._flushed = False
            self._inactive_fired = False
            return
        idle = now - self._last_rx
        if not self._flushed and idle >= self.config.flush_after:
            self._flushed = True
            self._flush()
        timeout = self.config.inactivity_timeout
        if timeout is not None and self.receiving and not self._inactive_fired and idle >= timeout:
            self._inactive_fired = True
            log.info("[%s] no RTP for %.1f s", self.call_id, idle)
            self.loop.call_soon(self._fire_inactive)

    def _ordered(self, packet: RtpPacket) -> None:
        pt = packet.payload_type
        if pt == self._pt:
            frames = self._framer.feed(packet.timestamp, packet.payload)
            if frames:
                self._queue_frames(frames)
        elif pt != self._dtmf_pt:
            self.stats.other_payload += 1

    def _queue_frames(self, frames: list[bytes]) -> None:
        relay = self.relay
        if relay is not None:
            relay.relay_frames(frames, self._pt)
        if not self.rx_frames:
            self.clock.submit(self)
        self.rx_frames.extend(frames)

    def _event_packet(self, packet: RtpPacket) -> None:
        try:
            key = self.dtmf.feed_packet(packet, self.loop.time())
        except DtmfParseError as exc:
            self.stats.malformed += 1
            log.debug("[%s] x telephone-event: %s", self.call_id, exc)
            return
        if key is not None:
            self.stats.dtmf_keys += 1
            log.debug("[%s] < DTMF key", self.call_id)  # never the key: PINs are typed
            if self.relay is not None:
                self.relay.relay_key(key.digit)
            self.loop.call_soon(self._fire_dtmf, key.digit)

    def _flush(self) -> None:
        for packet in self.jitter.flush():
            self._ordered(packet)
        frames = self._framer.flush()
        if frames:
            self._queue_frames(frames)

    def _fire_dtmf(self, digit: str) -> None:
        events = self.events
        if events.on_dtmf is not None and not events.closed:
            events.on_dtmf(digit)

    def _fire_speech(self, started: bool) -> None:
        events = self.events
        callback = events.on_speech_start if started else events.on_speech_end
        if callback is not None and not events.closed:
            callback()

    def _fire_inactive(self) -> None:
        events = self.events
        if events.on_inactive is not None and not events.closed:
            events.on_inactive()
