"""Generated call-progress audio: DTMF key tones (in-band) and the beep before a recording.

Used when the peer did not negotiate RFC 4733 telephone events (the stream then sends key presses
as tones in the audio), by the scripted caller, and by tests. Pure functions returning 8 kHz mono
int16 samples.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ivr.media.goertzel import COL_FREQS, KEYS, ROW_FREQS

SAMPLE_RATE = 8000
_FULL_SCALE = 32767.0


def tone(freqs: tuple[float, ...], seconds: float, level_db: float = -10.0) -> NDArray[np.int16]:
    """The sum of sines at ``freqs`` (Hz), each at ``level_db`` dBFS peak, with 5 ms ramps.

    The ramps avoid the click (a burst of broadband energy) of a tone switched on at full level.
    """
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    amplitude = _FULL_SCALE * 10.0 ** (level_db / 20.0)
    x = sum((amplitude * np.sin(2.0 * np.pi * f * t) for f in freqs), np.zeros(n))
    ramp = min(n // 2, round(0.005 * SAMPLE_RATE))
    if ramp:
        window = np.linspace(0.0, 1.0, ramp, endpoint=False)
        x[:ramp] *= window
        x[n - ramp :] *= window[::-1]
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def dtmf_tone(digit: str, duration_ms: int = 100, level_db: float = -10.0) -> NDArray[np.int16]:
    """The two tones of one key (ITU-T Q.23) for ``duration_ms``.

    Raises:
        ValueError: not one of the 16 DTMF keys.
    """
    index = KEYS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"not a DTMF key: {digit!r}")
    row, col = divmod(index, 4)
    return tone((ROW_FREQS[row], COL_FREQS[col]), duration_ms / 1000.0, level_db)


def dtmf_tones(
    digits: str, duration_ms: int = 100, gap_ms: int = 100, level_db: float = -10.0
) -> NDArray[np.int16]:
    """Several keys, each ``duration_ms`` long and followed by ``gap_ms`` of silence."""
    gap = np.zeros(round(gap_ms * SAMPLE_RATE / 1000), dtype=np.int16)
    parts: list[NDArray[np.int16]] = []
    for digit in digits:
        parts += [dtmf_tone(digit, duration_ms, level_db), gap]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def beep(seconds: float = 0.25, freq: float = 1000.0, level_db: float = -12.0) -> NDArray[np.int16]:
    """The beep before a recording."""
    return tone((freq,), seconds, level_db)
