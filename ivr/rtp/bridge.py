"""Relaying audio between two legs of one call: a caller's stream and an agent's.

::

    bridge = Bridge(caller_stream, agent_stream, record=Path("var/rec/call.wav"),
                    whisper=await media.prompts.load("whisper.wav"),   # to the agent only
                    on_connected=lambda: ...)                          # when the whisper ended
    ...
    bridge.stop()                       # both streams go on alone (play a prompt, hang up ...)
    path, seconds = await bridge.recorded()

**The path of a frame.** The receiver of leg A hands every 20 ms G.711 frame to the bridge as it
leaves A's jitter buffer and framer (:class:`~ivr.rtp.receiver.FrameRelay`, in A's socket read
callback); the frame waits in a short queue; on the media clock's next pass leg B's
:meth:`~ivr.rtp.stream.RtpStream.clock_tick` takes it (:class:`~ivr.rtp.stream.FrameFeed`) and
sends it in place of silence. No timer, no task and no numpy per bridge: per frame one
``deque.extend`` on the way in and one ``popleft`` on the way out. When the legs use the same law
the payload bytes go through untouched; PCMU on one leg and PCMA on the other costs one
``bytes.translate`` through a 256-entry table per frame (the law conversion of
:mod:`ivr.media.g711`, exact to the table: decode, then encode).

**Delay.** A frame that arrives between two passes goes out in the next one. A burst (packets
held by the peer's network, then released at once) leaves a standing queue. Digital silence the
framer put into a gap (a key the peer sent as events instead of audio, a lost packet: that time
went out as silence already) is skipped at once while more than one frame waits. Otherwise, when
for half a second more than one frame was always left waiting after a tick, the oldest frame
is dropped (one 20 ms frame per half second, never several in a row), so the delay the bridge
adds comes back to at most one frame waiting. More than :data:`MAX_QUEUE` frames waiting: the
oldest go.

**Keys.** An RFC 4733 key received on one leg is sent as RFC 4733 on the other
(:meth:`~ivr.rtp.stream.RtpStream.send_dtmf`, 100 ms; in-band tones when that leg has no
telephone-event), as soon as its first packet came. In-band tones are audio and pass as audio.
The streams' ``on_dtmf`` callbacks still report the keys of their own leg.

**What wins on a leg.** A telephone event being sent, then the leg's player, then the relayed
frame: a prompt played on one leg during the bridge (a beep) replaces what the other leg says
for its length. Connecting stops both players (hold music), so the legs hear each other at once.

**Recording** (``record=``): a stereo 8 kHz 16-bit WAV, **left channel leg A** (what A said),
**right channel leg B**; each tick both channels get the frame relayed that tick (silence when
none), so they stay aligned on the media clock. Written in pieces of at most :data:`CHUNK_FRAMES`
frames on one writer thread (memory stays at a few seconds of audio per bridge); complete at its
path once :meth:`Bridge.recorded` returns after :meth:`Bridge.stop`.

The bridge never closes or starts streams and never looks at signalling: stop it when a leg
hangs up, then close what is over. Both streams go on through the clock's batched analysis as
before (VAD levels; in-band keys when a leg has no telephone-event), so the legs' callbacks and
audio sinks keep working during the bridge.

**Cost** (bench/media_load.py ``--streams 200 --duplex --bridge``, 15 s runs on this shared
2-core machine): 100 bridges, i.e. 200 streams each receiving and sending 50 packets a second,
took 17.3 to 19.0 % of one core, against 16.8 to 16.9 % for the same 200 streams playing a
prompt instead of relaying (about 0.18 % of a core per bridge, nearly all of it the two legs'
packets); 20.9 to 21.6 % with every bridge recording (the writer thread included), clock
lateness p99 under 6 ms in every run. In a microbenchmark the relay's own work is 0.3 µs per
frame in and out, 0.4 µs with a law conversion, next to about 10 µs for a packet's system
calls, parsing and analysis.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from ivr.media.g711 import (
    ALAW_TO_ULAW,
    PCMA,
    PCMU,
    ULAW_SILENCE,
    ULAW_TO_ALAW,
    codec_for,
    ulaw_decode,
)
from ivr.media.player import EncodedAudio
from ivr.media.wav import WavWriter
from ivr.rtp.stream import RtpStream

log = logging.getLogger("ivr.rtp")

MAX_QUEUE = 8  # frames waiting for a leg at most (160 ms); beyond, the oldest are dropped
CHUNK_FRAMES = 250  # frames per channel per write of a recording (5 s)
_SHRINK_TICKS = 25  # half a second with more than _CUSHION frames always waiting: drop one
_CUSHION = 1
_SILENCE = bytes([ULAW_SILENCE]) * 160
# Frames of the other law, converted to the law of the payload type asked for.
_CONVERT = {PCMU: ALAW_TO_ULAW, PCMA: ULAW_TO_ALAW}
_IN_A_BRIDGE: weakref.WeakSet[RtpStream] = weakref.WeakSet()  # from construction to stop()


@dataclass
class RelayStats:
    """Counters of one direction of a bridge (frames unless said otherwise).

    Attributes:
        received: Frames the source leg's receiver handed on.
        sent: Frames given to the other leg (it drops them while it plays or sends a key).
        underruns: Ticks with nothing waiting (silence went out).
        dropped: Frames dropped to keep the delay down (bursts, a faster sender's clock).
        keys: RFC 4733 key presses passed on.
    """

    received: int = 0
    sent: int = 0
    underruns: int = 0
    dropped: int = 0
    keys: int = 0


class _Relay:
    """One direction of a bridge: the frames one leg receives, sent by leg ``out`` on its next
    ticks (the receiving leg's :class:`~ivr.rtp.receiver.FrameRelay`, ``out``'s
    :class:`~ivr.rtp.stream.FrameFeed`)."""

    def __init__(self, out: RtpStream, track: list[bytes] | None) -> None:
        self.out = out
        self.stats = RelayStats()
        self.track = track  # the recording's channel: μ-law frames, one per tick
        self.recording: _Recording | None = None
        self._queue: deque[bytes] = deque()
        self._pt = PCMU  # the law of the frames in the queue
        self._fill = _SILENCE  # that law's silence frame, as the framer fills gaps with
        self._low = MAX_QUEUE  # fewest frames left waiting after a tick, this half second
        self._ticks = 0

    # the source leg's receiver (FrameRelay), in its socket read callback

    def relay_frames(self, frames: list[bytes], payload_type: int) -> None:
        queue = self._queue
        if payload_type != self._pt:  # the source changed law (a re-INVITE): start over
            queue.clear()
            self._pt = payload_type
            self._fill = bytes([codec_for(payload_type).silence]) * 160
        queue.extend(frames)
        self.stats.received += len(frames)
        extra = len(queue) - MAX_QUEUE
        if extra > 0:
            for _ in range(extra):
                queue.popleft()
            self.stats.dropped += extra

    def relay_key(self, digit: str) -> None:
        self.stats.keys += 1
        self.out.send_dtmf(digit)

    # the other leg's clock tick (FrameFeed), once per media clock pass

    def next_frame(self, payload_type: int) -> bytes | None:
        queue = self._queue
        frame: bytes | None = None
        if queue:
            frame = queue.popleft()
            left = len(queue)
            if left > _CUSHION and frame == self._fill:
                # Behind, and this is the silence the framer put in a gap (a key sent as events,
                # a lost packet) that went out as underruns already: skip it, and the like.
                while left > _CUSHION and frame == self._fill:
                    frame = queue.popleft()
                    left -= 1
                    self.stats.dropped += 1
            if left < self._low:
                self._low = left
        else:
            self._low = 0
            self.stats.underruns += 1
        self._ticks += 1
        if self._ticks >= _SHRINK_TICKS:
            if self._low > _CUSHION:
                queue.popleft()
                self.stats.dropped += 1
            self._ticks = 0
            self._low = MAX_QUEUE
        track = self.track
        if track is not None:
            if frame is None:
                track.append(_SILENCE)
            else:
                track.append(frame if self._pt == PCMU else frame.translate(ALAW_TO_ULAW))
            recording = self.recording
            if recording is not None and len(track) >= recording.flush_at:
                recording.flush()
        if frame is None:
            return None
        self.stats.sent += 1
        if payload_type != self._pt:
            return frame.translate(_CONVERT[payload_type])
        return frame


class _Recording:
    """Both directions of a bridge into one stereo WAV, written in pieces off the loop.

    Every recording of the process writes on one shared thread, in the order the pieces were
    handed over (so a file's pieces never overtake each other, and a hundred recordings
    flushing at once take turns instead of all competing with the event loop for the GIL).
    Each recording flushes after its own number of frames (between half a chunk and a chunk,
    chosen at random) so bridges started together do not all write in the same pass.
    """

    def __init__(self, path: Path, loop: asyncio.AbstractEventLoop, call_id: str) -> None:
        self.path = path
        self.loop = loop
        self.call_id = call_id
        self.tracks: tuple[list[bytes], list[bytes]] = ([], [])
        self.flush_at = random.randint(CHUNK_FRAMES // 2, CHUNK_FRAMES)
        self.frames = 0  # per channel, handed to the writer
        self._writer: WavWriter | None = None
        self._last: asyncio.Future[None] | None = None
        self._failed: OSError | None = None

    def flush(self, final: bool = False) -> None:
        """Hand the frames both channels have to the writer (all of them when ``final``)."""
        left, right = self.tracks
        n = min(len(left), len(right))
        if final or max(len(left), len(right)) >= 2 * self.flush_at:
            n = max(len(left), len(right))  # a leg stopped ticking: pad the other with silence
        if n == 0 and not final:
            return
        chunk = (_take(left, n), _take(right, n))
        self.frames += n
        self._last = self.loop.run_in_executor(_writer_thread(), self._write, chunk, final)

    async def finished(self) -> tuple[str, float]:
        """Wait for the last write; ``(path, seconds)``.

        Raises:
            OSError: The file could not be written.
        """
        if self._last is not None:
            await self._last
        if self._failed is not None:
            raise self._failed
        return str(self.path), self.frames * 160 / 8000

    def _write(self, chunk: tuple[bytes, bytes], final: bool) -> None:
        """On the writer thread: decode the μ-law channels and append them."""
        if self._failed is not None:
            return
        try:
            if self._writer is None:
                self._writer = WavWriter(self.path, channels=2)
            left, right = (ulaw_decode(data) for data in chunk)
            self._writer.write(np.column_stack((left, right)))
            if final:
                self._writer.close()
        except OSError as exc:
            self._failed = exc
            log.warning("[%s] recording %s failed: %s", self.call_id, self.path, exc)
            if self._writer is not None:
                self._writer.discard()


@functools.cache
def _writer_thread() -> ThreadPoolExecutor:
    """The one thread every recording of the process writes on (made when first needed)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-bridge-rec")


def _take(track: list[bytes], n: int) -> bytes:
    """The first ``n`` frames of ``track`` joined (silence past its end); removes them."""
    data = b"".join(track[:n]) + _SILENCE * max(0, n - len(track))
    del track[:n]
    return data


class Bridge:
    """Relays audio and RFC 4733 keys both ways between two started streams of one engine.

    Args:
        a: Leg A (the caller): the recording's left channel.
        b: Leg B (the agent): the recording's right channel; the whisper is played to it.
        record: A WAV file to record both directions into (stereo: A left, B right), or None.
        whisper: Audio played to leg B only before the legs are connected; the bridge connects
            when it has been sent. None connects at once.
        on_connected: Called on the loop once the legs hear each other.

    Raises:
        RuntimeError: A stream is closed, or in a bridge (whispering or connected) already.
    """

    def __init__(
        self,
        a: RtpStream,
        b: RtpStream,
        *,
        record: Path | None = None,
        whisper: EncodedAudio | ArrayLike | None = None,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        if a is b:
            raise RuntimeError("a stream cannot be bridged to itself")
        for stream in (a, b):
            if stream.closed:
                raise RuntimeError(f"stream {stream.call_id} is closed")
            if stream in _IN_A_BRIDGE or stream.feed is not None:
                raise RuntimeError(f"stream {stream.call_id} is already bridged")
        _IN_A_BRIDGE.update((a, b))
        self.a, self.b = a, b
        self.loop = a.loop
        self.on_connected = on_connected
        self.recording = None if record is None else _Recording(Path(record), a.loop, a.call_id)
        tracks = (None, None) if self.recording is None else self.recording.tracks
        self.a_to_b = _Relay(b, tracks[0])
        self.b_to_a = _Relay(a, tracks[1])
        self.a_to_b.recording = self.b_to_a.recording = self.recording
        self._connected = False
        self._stopped = False
        self._whisper: int | None = None
        if whisper is None:
            self._connect()
        else:
            self._whisper = b.player.play(whisper, lambda _id: self._connect())
            log.info("[%s] whisper to %s, then bridge", a.call_id, b.call_id)

    @property
    def connected(self) -> bool:
        """True while the legs hear each other."""
        return self._connected

    @property
    def stopped(self) -> bool:
        """True after :meth:`stop`."""
        return self._stopped

    def stop(self) -> None:
        """Unhook both streams (idempotent): each goes on alone, sending silence until its
        player plays again. A whisper still playing is stopped. Call :meth:`recorded` to wait
        for the recording."""
        if self._stopped:
            return
        self._stopped = True
        self._connected = False
        a, b = self.a, self.b
        _IN_A_BRIDGE.difference_update((a, b))
        if self._whisper is not None and b.player.playing == self._whisper:
            b.player.stop()
        if a.feed is self.b_to_a:
            a.feed = None
        if b.feed is self.a_to_b:
            b.feed = None
        if a.receiver.relay is self.a_to_b:
            a.receiver.relay = None
        if b.receiver.relay is self.b_to_a:
            b.receiver.relay = None
        if self.recording is not None:
            self.recording.flush(final=True)
        log.info("[%s] bridge with %s stopped: %s / %s", a.call_id, b.call_id,
                 self.a_to_b.stats, self.b_to_a.stats)  # fmt: skip

    async def recorded(self) -> tuple[str, float] | None:
        """After :meth:`stop`: wait until the recording is complete; ``(path, seconds)``, or
        None without ``record``.

        Raises:
            RuntimeError: The bridge is not stopped.
            OSError: The file could not be written.
        """
        if not self._stopped:
            raise RuntimeError("recorded() before stop()")
        if self.recording is None:
            return None
        return await self.recording.finished()

    def _connect(self) -> None:
        if self._stopped or self._connected:
            return
        a, b = self.a, self.b
        self._connected = True
        a.player.stop()  # hold music, the end of a prompt: the legs hear each other now
        b.player.stop()
        a.receiver.relay, b.feed = self.a_to_b, self.a_to_b
        b.receiver.relay, a.feed = self.b_to_a, self.b_to_a
        log.info("[%s] bridged with %s", a.call_id, b.call_id)
        if self.on_connected is not None:
            self.loop.call_soon(self.on_connected)
