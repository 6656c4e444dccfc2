"""WAV helpers for the prompt tests: read what was rendered, write recordings with ``wave``."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Audio:
    rate: int
    channels: int
    width: int
    samples: np.ndarray  # int16 when width == 2

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.mean(self.samples.astype(np.float64) ** 2)))


def read(path: Path) -> Audio:
    with wave.open(str(path), "rb") as w:
        raw = w.readframes(w.getnframes())
        width = w.getsampwidth()
        samples = np.frombuffer(raw, dtype="<i2") if width == 2 else np.frombuffer(raw, np.uint8)
        return Audio(w.getframerate(), w.getnchannels(), width, samples)


def write_tone(path: Path, rate: int = 8000, seconds: float = 0.5, channels: int = 1,
               freq: float = 440.0, amplitude: float = 0.5) -> Path:
    """A sine tone as 16-bit PCM, written with the stdlib ``wave`` module (a "recording")."""
    t = np.arange(int(rate * seconds)) / rate
    mono = np.rint(amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    frames = np.repeat(mono[:, None], channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())
    return path
