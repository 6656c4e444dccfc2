"""The few WAV operations prompts need: read PCM, write 8 kHz, tell a complete file.

Kept to the stdlib ``wave`` module (integer PCM, 8/16/24/32 bits, any channel count).
A file it cannot read (float, μ-law, WAVE_FORMAT_EXTENSIBLE on Python 3.11) is refused with a
:class:`PromptAudioError` that says how to convert it.
"""

from __future__ import annotations

import os
import struct
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.tts.resample import resample, to_pcm16

TELEPHONE_RATE = 8000
CONVERT_HINT = "convert it with: sox IN.wav -r 8000 -c 1 -b 16 -e signed-integer OUT.wav"


class PromptAudioError(ValueError):
    """A WAV file that cannot be used as a prompt; the message names the file and the fix."""


@dataclass(frozen=True)
class WavInfo:
    """A WAV file's format."""

    rate: int
    channels: int
    sample_width: int  # bytes per sample
    frames: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.rate if self.rate else 0.0

    @property
    def is_telephone(self) -> bool:
        """True for 8 kHz, 16-bit, mono: playable as it is."""
        return (self.rate, self.channels, self.sample_width) == (TELEPHONE_RATE, 1, 2)


def wav_info(path: Path) -> WavInfo:
    """The format of the PCM WAV at ``path``.

    Raises:
        PromptAudioError: not a PCM WAV file the stdlib can read.
    """
    try:
        with wave.open(str(path), "rb") as w:
            return WavInfo(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    except (wave.Error, EOFError, struct.error) as exc:
        raise PromptAudioError(f"{path}: not a PCM WAV file ({exc}); {CONVERT_HINT}") from None


def read_mono(path: Path) -> tuple[NDArray[np.float64], int]:
    """The samples of the PCM WAV at ``path`` as mono floats in -1..1, and its rate.

    Raises:
        PromptAudioError: not a PCM WAV file the stdlib can read.
    """
    try:
        with wave.open(str(path), "rb") as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, struct.error) as exc:
        raise PromptAudioError(f"{path}: not a PCM WAV file ({exc}); {CONVERT_HINT}") from None
    if rate <= 0 or channels <= 0:
        raise PromptAudioError(f"{path}: rate {rate} Hz, {channels} channels; {CONVERT_HINT}")
    samples = _decode(raw, width)
    usable = samples.size - samples.size % channels
    mono = samples[:usable].reshape(-1, channels).mean(axis=1)
    return mono, rate


def _decode(raw: bytes, width: int) -> NDArray[np.float64]:
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if width == 3:  # little-endian 24-bit: widen to 32 bits, sign from the top byte
        b = np.frombuffer(raw[: len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3)
        wide = b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (
            b[:, 2].astype(np.int8).astype(np.int32) << 16
        )
        return wide.astype(np.float64) / 8388608.0
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0
    raise PromptAudioError(f"{width * 8}-bit samples are not supported; {CONVERT_HINT}")


def write_pcm16(path: Path, samples: NDArray[np.int16], rate: int = TELEPHONE_RATE) -> None:
    """Write mono 16-bit samples as a WAV file, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def convert_to_telephone(source: Path, target: Path) -> WavInfo:
    """Convert the PCM WAV ``source`` to 8 kHz 16-bit mono at ``target``; returns its format."""
    mono, rate = read_mono(source)
    pcm = to_pcm16(resample(mono, rate, TELEPHONE_RATE))
    write_pcm16(target, pcm)
    return WavInfo(TELEPHONE_RATE, 1, 2, pcm.size)


def is_complete_wav(path: Path) -> bool:
    """True when ``path`` is a RIFF/WAVE file whose data chunk is all there.

    A writer (the stdlib ``wave`` module among them) puts the data length into the header before
    it writes the samples, so a file whose size reaches the end of the declared data is complete.
    """
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return False
            offset = 12
            while offset + 8 <= size:
                fh.seek(offset)
                chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
                if chunk_id == b"data":
                    return offset + 8 + chunk_size == size
                offset += 8 + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    except OSError:
        return False
    return False


__all__ = [
    "CONVERT_HINT",
    "TELEPHONE_RATE",
    "PromptAudioError",
    "WavInfo",
    "convert_to_telephone",
    "is_complete_wav",
    "read_mono",
    "wav_info",
    "write_pcm16",
]
