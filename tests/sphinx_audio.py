"""Real audio for the PocketSphinx tests: Asterisk recordings and espeak-ng speech at 8 kHz."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from debs import ALLISON
from numpy.typing import NDArray

from ivr.asr.base import FRAME_SAMPLES, AsrEvent, StreamRecognizer
from ivr.media.g711 import ulaw_decode, ulaw_encode
from ivr.media.wav import load_8k_mono

SOUNDS = ALLISON
RATE = 8000

needs_sounds = pytest.mark.usefixtures("asterisk_sounds")
needs_espeak = pytest.mark.usefixtures("espeak_program")

Pcm = NDArray[np.int16]


def asterisk(name: str) -> Pcm:
    """An Asterisk recording (``digits/7``, ``vm-intro``) at 8 kHz."""
    return load_8k_mono(SOUNDS / f"{name}.wav")


@functools.lru_cache(maxsize=128)
def espeak(text: str, voice: str = "en-us", wpm: int = 160) -> Pcm:
    """``text`` spoken by espeak-ng (rendered with ``espeak-ng -w``), at 8 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(path), text],
                       check=True, capture_output=True)  # fmt: skip
        pcm = load_8k_mono(path)
    pcm.setflags(write=False)
    return pcm


def padded(pcm: Pcm, before: float = 0.5, after: float = 0.0) -> Pcm:
    """``pcm`` with digital silence around it (a caller starts after a moment)."""
    return np.concatenate([np.zeros(round(before * RATE), np.int16), pcm,
                           np.zeros(round(after * RATE), np.int16)])  # fmt: skip


def joined(parts: list[Pcm], gap: float = 0.15) -> Pcm:
    silence = np.zeros(round(gap * RATE), np.int16)
    out: list[Pcm] = []
    for part in parts:
        out += [part, silence]
    return np.concatenate(out[:-1])


def ulaw(pcm: Pcm) -> Pcm:
    """Through a G.711 μ-law line and back."""
    return ulaw_decode(ulaw_encode(pcm))


def white(seconds: float, level_db: float, seed: int) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(round(seconds * RATE)) * 32768 * 10 ** (level_db / 20)


def with_noise(pcm: Pcm, snr_db: float, seed: int = 1) -> Pcm:
    """``pcm`` plus white noise ``snr_db`` below the power of its loud part, everywhere."""
    x = pcm.astype(np.float64)
    frames = x[: x.size // 160 * 160].reshape(-1, 160)
    power = (frames**2).mean(axis=1)
    speech = power[power > power.max() * 0.01].mean()
    noise = white(x.size / RATE, 0.0, seed)
    noise *= np.sqrt(speech / 10 ** (snr_db / 10) / np.mean(noise**2))
    return to_pcm(x + noise)


def to_pcm(x: NDArray[np.float64]) -> Pcm:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def feed(stream: StreamRecognizer, pcm: Pcm, finish: bool = True) -> list[AsrEvent]:
    """Feed ``pcm`` in 20 ms frames (a last partial frame is dropped); then ``finish()``."""
    events: list[AsrEvent] = []
    for i in range(0, pcm.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        events += stream.accept(pcm[i : i + FRAME_SAMPLES])
    if finish:
        events += stream.finish()
    return events
