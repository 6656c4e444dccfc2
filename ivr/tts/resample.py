"""Sample-rate conversion for prompts: band-limited, polyphase, numpy only.

espeak-ng renders at 22,050 Hz and recordings arrive at any rate; a call carries 8 kHz. Dropping
samples would fold everything above 4 kHz back into the telephone band (sibilants turn into
whistles), so the signal goes through a low-pass first. The filter is a Kaiser-windowed sinc
designed for the conversion at hand:

* pass band flat up to 85 % of the lower Nyquist frequency (3.4 kHz going to 8 kHz: the
  telephone band), stop band from the lower Nyquist frequency on (4 kHz), attenuated by
  :data:`ATTENUATION_DB`;
* rates in the ratio ``up/down`` (160/441 for 22,050 -> 8,000) have ``up`` distinct fractional
  positions between output and input samples, so the filter is tabulated once per position
  (one row of the bank per phase) and each output sample is one dot product.

Work is done a chunk of output samples at a time so memory stays bounded for long recordings.
Prompts are converted once and cached, never on the media path.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray

ATTENUATION_DB = 60.0
PASSBAND = 0.85  # fraction of the lower Nyquist frequency kept flat
_CHUNK = 4096  # output samples per vectorised step


def resample(samples: NDArray[np.float64], rate_in: int, rate_out: int) -> NDArray[np.float64]:
    """``samples`` (mono, float) converted from ``rate_in`` to ``rate_out`` Hz.

    Args:
        samples: one-dimensional float samples, nominally in -1..1.
        rate_in: their sample rate in Hz.
        rate_out: the wanted sample rate in Hz.

    Returns:
        ``ceil(len(samples) * rate_out / rate_in)`` samples, band-limited below the lower of
        the two Nyquist frequencies, with unity gain in the pass band.

    Raises:
        ValueError: a rate that is not positive, or samples that are not one-dimensional.
    """
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"resample needs mono samples (one dimension), got shape {x.shape}")
    if rate_in == rate_out or x.size == 0:
        return x.copy()
    bank, up, down = _filter_bank(rate_in, rate_out)
    taps = bank.shape[1]
    half = taps // 2
    padded = np.concatenate([np.zeros(half), x, np.zeros(half)])
    n_out = -(-x.size * up // down)  # ceil
    offsets = np.arange(taps)
    out = np.empty(n_out)
    for start in range(0, n_out, _CHUNK):
        n = np.arange(start, min(start + _CHUNK, n_out), dtype=np.int64)
        base, phase = np.divmod(n * down, up)
        # Output n sits at input position base + phase/up; taps cover base-half+1 .. base+half,
        # which are padded indices base+1 .. base+taps.
        window = padded[base[:, None] + 1 + offsets[None, :]]
        out[start : start + n.size] = np.einsum("ij,ij->i", window, bank[phase])
    return out


@functools.lru_cache(maxsize=16)
def _filter_bank(rate_in: int, rate_out: int) -> tuple[NDArray[np.float64], int, int]:
    """The polyphase table (``up`` rows by taps), ``up`` and ``down`` for this conversion."""
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    nyquist = min(rate_in, rate_out) / 2
    # Frequencies in cycles per input sample: the sinc runs on the input's time axis.
    cutoff = (1 + PASSBAND) / 2 * nyquist / rate_in  # the middle of the transition band
    transition = (1 - PASSBAND) * nyquist / rate_in
    # Kaiser's formulas for the window's shape and the filter length.
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    length = (ATTENUATION_DB - 7.95) / (2.285 * 2 * math.pi * transition)
    half = max(2, math.ceil(length / 2))
    k = np.arange(-half + 1, half + 1, dtype=np.float64)
    frac = np.arange(up, dtype=np.float64) / up
    distance = k[None, :] - frac[:, None]  # input sample k seen from the output instant
    window = np.i0(beta * np.sqrt(np.clip(1 - (distance / half) ** 2, 0.0, None))) / np.i0(beta)
    bank = 2 * cutoff * np.sinc(2 * cutoff * distance) * window
    bank /= bank.sum(axis=1, keepdims=True)  # exact unity gain at DC for every phase
    bank.setflags(write=False)
    return bank, up, down


def to_pcm16(samples: NDArray[np.float64]) -> NDArray[np.int16]:
    """Float samples in -1..1 as 16-bit integers, rounded and clipped (no wrap-around)."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def from_pcm16(samples: NDArray[np.int16]) -> NDArray[np.float64]:
    """16-bit integer samples as floats in -1..1."""
    return np.asarray(samples, dtype=np.float64) / 32768.0


__all__ = ["ATTENUATION_DB", "PASSBAND", "from_pcm16", "resample", "to_pcm16"]
