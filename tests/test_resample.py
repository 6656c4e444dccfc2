"""ivr.tts.resample: band-limited rate conversion to (and from) 8 kHz."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.tts.resample import from_pcm16, resample, to_pcm16


def _tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return np.sin(2 * np.pi * freq * t)


def _level_db(samples: np.ndarray) -> float:
    """Level of a sine relative to full scale (0 dB for amplitude 1), edges left out."""
    core = samples[len(samples) // 10 : -len(samples) // 10]
    return float(20 * np.log10(np.sqrt(2 * np.mean(core**2)) + 1e-12))


@pytest.mark.parametrize("rate_in", [22050, 44100, 48000, 16000, 11025])
@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 3400.0])
def test_telephone_band_passes_unchanged(rate_in: int, freq: float) -> None:
    out = resample(_tone(freq, rate_in), rate_in, 8000)
    assert abs(_level_db(out)) < 0.1


@pytest.mark.parametrize("rate_in", [22050, 44100, 48000, 16000])
@pytest.mark.parametrize("freq", [4500.0, 6000.0, 7000.0])
def test_tones_that_would_alias_are_removed(rate_in: int, freq: float) -> None:
    # Decimating without a filter would fold these to 3.5, 2 and 1 kHz at full level.
    out = resample(_tone(freq, rate_in), rate_in, 8000)
    assert _level_db(out) < -55


def test_output_matches_the_ideal_sine() -> None:
    out = resample(_tone(1000.0, 22050), 22050, 8000)
    ideal = _tone(1000.0, 8000)
    core = slice(800, 7200)
    assert np.max(np.abs(out[core] - ideal[core])) < 1e-3


def test_length_follows_the_ratio() -> None:
    assert resample(np.zeros(22050), 22050, 8000).size == 8000
    assert resample(np.zeros(22051), 22050, 8000).size == 8001  # rounded up
    assert resample(np.zeros(100), 8000, 16000).size == 200


def test_upsampling_keeps_a_tone() -> None:
    out = resample(_tone(1000.0, 6000), 6000, 8000)
    assert abs(_level_db(out) - 0.0) < 0.1
    assert out.size == 8000


def test_same_rate_and_empty_input_are_copies() -> None:
    x = _tone(500.0, 8000, 0.1)
    out = resample(x, 8000, 8000)
    assert np.array_equal(out, x) and out is not x
    assert resample(np.zeros(0), 22050, 8000).size == 0


def test_dc_gain_is_one() -> None:
    out = resample(np.full(22050, 0.25), 22050, 8000)
    assert np.allclose(out[200:-200], 0.25, atol=1e-9)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10), 0, 8000)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((10, 2)), 16000, 8000)


def test_pcm16_conversion_rounds_and_clips() -> None:
    floats = np.array([0.0, 0.5, -0.5, 1.5, -1.5, 1.0 / 32768])
    assert to_pcm16(floats).tolist() == [0, 16384, -16384, 32767, -32768, 1]
    assert from_pcm16(np.array([-32768, 16384], dtype=np.int16)).tolist() == [-1.0, 0.5]
