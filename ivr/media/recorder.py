"""Recording what the caller says to an 8 kHz 16-bit WAV file.

A :class:`Recorder` listens to a stream's decoded 20 ms frames (an audio sink, called from the
media clock's pass) and keeps them in memory; the WAV file is written once, off the event loop
(``asyncio.to_thread``), when the recording stops. At the maximum length it stops taking audio by
itself and tells its owner (``on_limit``); ending on the finish key or on silence is the owner's
decision (it sees the stream's ``on_dtmf`` and ``on_speech_end``), which then calls
:meth:`Recorder.stop`.

Memory: 16 KB per second recorded (a 120 s message is under 2 MB), held only until the file is
written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ivr.media.wav import write_wav

SAMPLE_RATE = 8000

AudioCallback = Callable[[NDArray[np.int16]], None]


class AudioSource(Protocol):
    """What a recorder listens to (an :class:`ivr.rtp.stream.RtpStream`)."""

    loop: asyncio.AbstractEventLoop

    def add_audio_sink(self, sink: AudioCallback) -> None:
        """Start receiving every decoded frame."""

    def remove_audio_sink(self, sink: AudioCallback) -> None:
        """Stop receiving frames."""


class Recorder:
    """Records one stream's incoming audio; one recording at a time.

    Args:
        source: The stream whose caller is recorded.
    """

    def __init__(self, source: AudioSource) -> None:
        self.source = source
        self._path: Path | None = None
        self._frames: list[NDArray[np.int16]] = []
        self._samples = 0
        self._max_samples = 0
        self._on_limit: Callable[[], None] | None = None
        self._listening = False

    @property
    def recording(self) -> bool:
        """True from :meth:`start` until :meth:`stop` (also after the limit was reached)."""
        return self._path is not None

    @property
    def duration(self) -> float:
        """Seconds recorded so far."""
        return self._samples / SAMPLE_RATE

    def start(
        self,
        path: str | Path,
        max_seconds: float = 120.0,
        on_limit: Callable[[], None] | None = None,
    ) -> None:
        """Start recording to ``path`` (written at :meth:`stop`).

        Args:
            path: The WAV file to write; its directory must exist.
            max_seconds: Audio kept at most; then recording pauses and ``on_limit`` is called
                (on the loop); the owner still calls :meth:`stop` to write the file.
            on_limit: Called once when ``max_seconds`` is reached.

        Raises:
            RuntimeError: already recording.
        """
        if self._path is not None:
            raise RuntimeError("the recorder is already recording")
        self._path = Path(path)
        self._frames = []
        self._samples = 0
        self._max_samples = max(1, round(max_seconds * SAMPLE_RATE))
        self._on_limit = on_limit
        self._listening = True
        self.source.add_audio_sink(self._take)

    async def stop(self) -> tuple[str, float]:
        """Stop and write the WAV file off the event loop.

        Returns:
            ``(path, seconds)`` of the file written.

        Raises:
            RuntimeError: not recording.
            OSError: the file could not be written.
        """
        path = self._path
        if path is None:
            raise RuntimeError("the recorder is not recording")
        self._unlisten()
        frames, duration = self._frames, self.duration
        self._path, self._frames = None, []
        pcm = np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)
        await asyncio.to_thread(write_wav, path, pcm)
        return str(path), duration

    def _take(self, frame: NDArray[np.int16]) -> None:
        room = self._max_samples - self._samples
        if room <= 0:
            return
        if frame.size > room:
            frame = frame[:room]
        self._frames.append(frame)
        self._samples += frame.size
        if self._samples >= self._max_samples:
            self._unlisten()
            if self._on_limit is not None:
                self.source.loop.call_soon(self._on_limit)

    def _unlisten(self) -> None:
        if self._listening:
            self._listening = False
            self.source.remove_audio_sink(self._take)
