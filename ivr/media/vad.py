"""Energy-based voice-activity detection on 20 ms frames, with an adaptive noise floor.

Each frame's level is its mean power in dBFS. The noise floor follows the level down at once and
up slowly: 3 dB/s outside speech, 0.5 dB/s inside it. Measured on the Allison prompts, letting the
floor rise as fast inside speech cut one utterance short; the price of the slow rate is that a
noise that gets much louder in the middle of speech holds the detector in speech until the
engine's maximum speech length ends the turn. A frame is *loud*
when it is ``start_db`` above the floor and above ``min_level_db``; while speech goes on, frames
``keep_db`` above the floor keep it going (hysteresis, so soft word endings are not cut off).

Speech starts after ``start_frames`` consecutive loud frames (60 ms: clicks and single pops are
ignored) and ends after ``end_silence`` seconds without a frame above the keep level; each event
carries the time of the boundary itself (first loud frame, end of the last one) so that a
recorder or recognizer can keep the audio from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FRAME_SECONDS = 0.02
_FULL_SCALE_POWER = 32768.0 * 32768.0
_SILENT_DB = -100.0  # level given to digital silence


@dataclass(frozen=True)
class VadConfig:
    """Thresholds of :class:`Vad` (levels in dB, times in seconds)."""

    start_db: float = 12.0
    keep_db: float = 6.0
    min_level_db: float = -50.0
    start_frames: int = 3
    end_silence: float = 0.8
    floor_rise_db: float = 3.0  # per second, outside speech
    floor_rise_speech_db: float = 0.5  # per second, inside speech


@dataclass(frozen=True)
class VadEvent:
    """Speech started or ended.

    Attributes:
        kind: "start" or "end".
        time: Seconds from the first frame fed: the start of the first loud frame, or the end of
            the last frame above the keep level.
    """

    kind: Literal["start", "end"]
    time: float


def frame_level(frame: ArrayLike) -> float:
    """Mean power of int16 samples in dBFS (a full-scale square wave is 0 dBFS)."""
    x = np.asarray(frame, dtype=np.float32)
    power = float(np.dot(x, x)) / max(1, x.size)
    return 10.0 * math.log10(power / _FULL_SCALE_POWER) if power > 0 else _SILENT_DB


def frame_levels(frames: ArrayLike) -> NDArray[np.float64]:
    """:func:`frame_level` of each row of a (k, n) batch: one numpy pass for many calls."""
    x = np.asarray(frames, dtype=np.float32)
    power = np.einsum("ij,ij->i", x, x).astype(np.float64) / max(1, x.shape[1])
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(power / _FULL_SCALE_POWER)
    return np.where(power > 0, levels, _SILENT_DB)


def follow_floor(floor: float | None, level: float, rise: float) -> tuple[float, float]:
    """One frame of the noise floor: down to ``level`` at once, up by at most ``rise`` dB.

    Shared by :class:`Vad` and the speech gate (ivr/asr/gate.py) so both judge a frame alike.

    Returns:
        ``(new_floor, judged)``: the floor after this frame, and the floor this frame is judged
        against, the one from before it, so a loud frame never hides itself.
    """
    if floor is None or level <= floor:
        return level, level
    return min(level, floor + rise), floor


class Vad:
    """One call's voice-activity detector; feed it every 20 ms frame in order.

    Args:
        config: Thresholds.
        frame_seconds: Duration of one frame.
    """

    def __init__(
        self, config: VadConfig | None = None, frame_seconds: float = FRAME_SECONDS
    ) -> None:
        self.config = config or VadConfig()
        self.frame_seconds = frame_seconds
        self.floor: float | None = None  # noise floor estimate, dBFS
        self.in_speech = False
        self._frames = 0  # frames fed so far
        self._run = 0  # consecutive loud frames (outside speech)
        self._last_voice = 0  # index of the frame after the last one above the keep level
        self._end_frames = max(1, round(self.config.end_silence / frame_seconds))

    def feed(self, frame: ArrayLike) -> VadEvent | None:
        """Analyse one frame; return an event when speech starts or ends with it."""
        return self.feed_level(frame_level(frame))

    def feed_level(self, level: float) -> VadEvent | None:
        """:meth:`feed` for a frame whose level (dBFS) is already known (batched callers)."""
        cfg = self.config
        index = self._frames
        self._frames += 1
        floor = self._track_floor(level)
        if not self.in_speech:
            loud = level >= floor + cfg.start_db and level >= cfg.min_level_db
            self._run = self._run + 1 if loud else 0
            if self._run >= cfg.start_frames:
                self.in_speech = True
                self._last_voice = index + 1
                self._run = 0
                return VadEvent("start", (index + 1 - cfg.start_frames) * self.frame_seconds)
            return None
        if level >= floor + cfg.keep_db and level >= cfg.min_level_db:
            self._last_voice = index + 1
        elif index + 1 - self._last_voice >= self._end_frames:
            self.in_speech = False
            return VadEvent("end", self._last_voice * self.frame_seconds)
        return None

    def _track_floor(self, level: float) -> float:
        cfg = self.config
        rate = cfg.floor_rise_speech_db if self.in_speech else cfg.floor_rise_db
        self.floor, judged = follow_floor(self.floor, level, rate * self.frame_seconds)
        return judged
