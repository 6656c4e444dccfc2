"""One call's media loop on pyVoIP's call thread: prompts out, audio and keys in, the end.

pyVoIP gives a call three threads (its callback Timer, an RTP receiver and an RTP sender) and
forgets the call when the callback thread returns, so the callback thread is where this loop
runs, ticking every :data:`TICK` seconds until the call ends:

* **Prompts out.** pyVoIP's sender takes 160 bytes from its buffer every 20 ms and sends silence
  when the buffer is empty. The loop keeps at most ``lead_frames`` (one) frames in that buffer,
  so :meth:`CallPump.stop_playback` silences the caller within one frame; a prompt counts as
  played when its last byte has left the buffer (pyVoIP's sent position, see
  :meth:`~ivr.pyvoip.phone.CallLeg.queued`).
* **Audio in.** One 20 ms frame is read per 20 ms of call time (non-blocking; pyVoIP pads what
  did not arrive with 0x80), converted from 8-bit unsigned to int16, fed to the in-band DTMF
  detector and, while recording, kept. While :attr:`CallPump.hearing` is set (the call has
  speech recognition), the pass's frames go to :meth:`PumpEvents.audio` together, one hop onto
  the loop per pass rather than per frame.
* **Keys.** RFC 2833 keys come from pyVoIP's ``get_dtmf()``. In-band detection runs until the
  first RFC 2833 key arrives (a phone that sends events does not need it, and one that sends
  both would count every key twice); an event key within :data:`DUPLICATE_WINDOW` of the same
  in-band key is dropped.

Commands (:meth:`play`, :meth:`stop_playback`, recording, :meth:`hangup`) come from the event
loop's thread and take effect at the next tick. Events go to :class:`PumpEvents` on this thread;
the channel hops them onto the loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ivr.media.goertzel import InbandDtmfDetector
from ivr.pyvoip.phone import FRAME_BYTES

log = logging.getLogger("ivr.pyvoip")

TICK = 0.01  # seconds between passes; pyVoIP's own receiver polls every 10 ms too
FRAME_SECONDS = 0.02
MAX_CATCH_UP = 50  # frames read in one pass after a stall (1 s); older audio is skipped
DUPLICATE_WINDOW = 0.3  # seconds: an RFC 2833 key this close to the same in-band key is one key
SILENCE = b"\x80" * FRAME_BYTES


def to_unsigned8(pcm: NDArray[np.int16]) -> bytes:
    """int16 samples to pyVoIP's 8-bit unsigned linear (rounded, clipped)."""
    wide = (pcm.astype(np.int32) + 128) >> 8
    return (np.clip(wide, -128, 127) + 128).astype(np.uint8).tobytes()


def from_unsigned8(data: bytes) -> NDArray[np.int16]:
    """pyVoIP's 8-bit unsigned linear to int16 samples."""
    return ((np.frombuffer(data, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)


class MediaLeg(Protocol):
    """What the media loop needs of a call (:class:`~ivr.pyvoip.phone.CallLeg`)."""

    @property
    def ended(self) -> bool: ...

    def hangup(self) -> None: ...

    def write(self, audio: bytes) -> None: ...

    def read(self) -> bytes: ...

    def dtmf(self) -> str: ...

    def queued(self) -> int: ...


class PumpEvents(Protocol):
    """What the media loop reports (on the call's thread)."""

    def played(self, playback_id: int) -> None:
        """The prompt's last byte was sent."""

    def dtmf(self, digit: str) -> None:
        """A key (RFC 2833 or in-band)."""

    def audio(self, frames: list[NDArray[np.int16]]) -> None:
        """The caller's 20 ms frames read in one pass (only while ``hearing``)."""

    def recorded(self, samples: NDArray[np.int16]) -> None:
        """A recording ended (stopped, at its limit, or with the call)."""

    def ended(self) -> None:
        """The caller hung up (or pyVoIP ended the call)."""


class CallPump:
    """The media loop of one pyVoIP call.

    Args:
        leg: The answered call.
        lead_frames: Frames of prompt audio kept queued in pyVoIP's sender (stop latency).
        inband: Detect in-band DTMF until an RFC 2833 key arrives.
        clock: Monotonic seconds (tests may pass their own).
        sleep: How to wait one tick.
    """

    def __init__(
        self,
        leg: MediaLeg,
        *,
        lead_frames: int = 1,
        inband: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.leg = leg
        self.events: PumpEvents | None = None
        self.lead_bytes = lead_frames * FRAME_BYTES
        self.inband = inband
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._playlist: deque[tuple[int, bytes]] = deque()
        self._current: tuple[int, bytes] | None = None
        self._pos = 0
        self._finishing: deque[tuple[int, int]] = deque()  # (playback id, end offset)
        self._written = 0
        self._record: list[NDArray[np.int16]] | None = None
        self._record_left = 0
        self._record_stop = False
        self._hangup = False
        self._detector = InbandDtmfDetector()
        self._inband_at: dict[str, float] = {}
        self.rfc2833_seen = False
        self.hearing = False  # pass the caller's audio on (speech recognition)
        self._heard: list[NDArray[np.int16]] = []
        self.frames_in = 0
        self.frames_out = 0
        self.done = threading.Event()

    # --- commands (any thread) --------------------------------------------------------------

    def play(self, playback_id: int, audio: bytes) -> None:
        """Queue 8-bit unsigned audio after what is playing."""
        with self._lock:
            self._playlist.append((playback_id, audio))

    def stop_playback(self) -> None:
        """Drop the playing prompt and the queued ones (no ``played`` for them)."""
        with self._lock:
            self._playlist.clear()
            self._current = None
            self._pos = 0
            self._finishing.clear()

    def start_recording(self, max_seconds: float) -> None:
        with self._lock:
            self._record = []
            self._record_left = max(1, round(max_seconds / FRAME_SECONDS))
            self._record_stop = False

    @property
    def recording(self) -> bool:
        """True while a recording runs."""
        return self._record is not None

    def stop_recording(self) -> None:
        with self._lock:
            self._record_stop = True

    def hangup(self) -> None:
        """End the call from our side at the next tick (no ``ended`` event)."""
        self._hangup = True

    # --- the loop (the call's thread) -------------------------------------------------------

    def run(self) -> None:
        """Pump media until either side ends the call."""
        start = self._clock()
        try:
            while True:
                if self._hangup:
                    self.leg.hangup()
                    break
                if self.leg.ended:
                    self._emit_ended()
                    break
                self._send()
                due = int((self._clock() - start) / FRAME_SECONDS)
                if due - self.frames_in > MAX_CATCH_UP:
                    self.frames_in = due - MAX_CATCH_UP
                while self.frames_in < due:
                    self._receive(self.leg.read())
                    self.frames_in += 1
                self._pass_audio()
                self._keys()
                self._sleep(TICK)
        finally:
            self._finish_recording()
            self.done.set()

    def _send(self) -> None:
        queued = self.leg.queued()
        sent = self._written - queued
        finished: list[int] = []
        with self._lock:
            while self._finishing and self._finishing[0][1] <= sent:
                finished.append(self._finishing.popleft()[0])
            while queued < self.lead_bytes:
                frame = self._next_frame()
                if frame is None:
                    break
                self.leg.write(frame)
                queued += len(frame)
                self._written += len(frame)
                self.frames_out += 1
            if self._finishing and self._finishing[0][1] <= sent:
                finished.append(self._finishing.popleft()[0])
        events = self.events
        for playback_id in finished:
            if events is not None:
                events.played(playback_id)

    def _next_frame(self) -> bytes | None:
        """The next 160 bytes of prompt audio (a short last piece padded with silence)."""
        while True:
            if self._current is None:
                if not self._playlist:
                    return None
                self._current, self._pos = self._playlist.popleft(), 0
            playback_id, audio = self._current
            if self._pos < len(audio):
                frame = audio[self._pos : self._pos + FRAME_BYTES]
                self._pos += FRAME_BYTES
                if self._pos >= len(audio):
                    self._finishing.append((playback_id, self._written + FRAME_BYTES))
                    self._current = None
                return frame.ljust(FRAME_BYTES, b"\x80")
            self._finishing.append((playback_id, self._written))  # empty audio
            self._current = None

    def _pass_audio(self) -> None:
        heard, self._heard = self._heard, []
        if heard and self.events is not None:
            self.events.audio(heard)

    def _receive(self, frame: bytes) -> None:
        silent = frame == SILENCE
        if self.hearing:
            self._heard.append(from_unsigned8(frame))
        with self._lock:
            recording = self._record
            if recording is not None:
                recording.append(from_unsigned8(frame))
                self._record_left -= 1
                if self._record_left <= 0:
                    self._record_stop = True
        if recording is not None and self._record_stop:
            self._finish_recording()
        if not self.inband or self.rfc2833_seen:
            return
        if silent:  # nothing arrived (or digital silence): no tone, cheaply
            key = self._detector.debouncer.update(-1)
        else:
            key = self._detector.feed(from_unsigned8(frame))
        if key is not None:
            self._inband_at[key] = self._clock()
            self._emit_dtmf(key)

    def _keys(self) -> None:
        keys = self.leg.dtmf()
        if not keys:
            return
        now = self._clock()
        for key in keys:
            self.rfc2833_seen = True
            if now - self._inband_at.get(key, float("-inf")) < DUPLICATE_WINDOW:
                continue
            self._emit_dtmf(key)

    def _finish_recording(self) -> None:
        with self._lock:
            frames, self._record = self._record, None
            self._record_stop = False
        if frames is None:
            return
        samples = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
        if self.events is not None:
            self.events.recorded(samples)

    def _emit_dtmf(self, key: str) -> None:
        if self.events is not None:
            self.events.dtmf(key)

    def _emit_ended(self) -> None:
        if self.events is not None:
            self.events.ended()
