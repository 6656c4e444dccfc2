"""Streaming 8 -> 16 kHz: exact continuity across frames, pass band, images, the high-band fill."""

from __future__ import annotations

import numpy as np
from sphinx_audio import RATE, espeak, needs_espeak, to_pcm, white

from ivr.asr.upsample import DELAY, FLOOR_DB, Upsampler, Wideband, upsample


def tone(freq: float, seconds: float = 1.0, level: float = 10000.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return to_pcm(level * np.sin(2 * np.pi * freq * t))


def band_db(x: np.ndarray, lo: float, hi: float, rate: int = 16000) -> float:
    """Power in lo..hi Hz relative to the whole signal, dB."""
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(x.size))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / rate)
    return float(10 * np.log10(spectrum[(freqs >= lo) & (freqs < hi)].sum() / spectrum.sum()))


def test_frames_join_exactly_whatever_their_size() -> None:
    x = to_pcm(white(1.0, -20.0, seed=3))
    whole = upsample(x)
    up = Upsampler()
    sizes = [160, 7, 333, 1, 160, 80]
    parts, i, k = [], 0, 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        parts.append(up.process(x[i : i + n]))
        i, k = i + n, k + 1
    assert np.array_equal(np.concatenate(parts), whole)
    assert whole.size == 2 * x.size


def test_pass_band_tone_comes_out_as_the_same_tone_delayed() -> None:
    out = upsample(tone(1000.0)).astype(np.float64)
    t = np.arange(out.size) / 16000 - DELAY / RATE
    ideal = 10000.0 * np.sin(2 * np.pi * 1000.0 * t)
    err = out[1000:-1000] - ideal[1000:-1000]
    assert 20 * np.log10(np.std(err) / np.std(ideal)) < -60


def test_images_above_the_telephone_band_are_removed() -> None:
    for freq in (300.0, 3000.0, 3400.0):
        assert band_db(upsample(tone(freq))[800:], 4500, 8000) < -65


def test_wideband_floor_on_silence() -> None:
    out = Wideband().process(np.zeros(RATE, np.int16)).astype(np.float64)
    level = 20 * np.log10(np.sqrt(np.mean(out**2)) / 32768)
    assert abs(level - FLOOR_DB) < 1.0


def test_high_band_fill_follows_the_top_of_the_telephone_band() -> None:
    high = Wideband().process(tone(3300.0))  # like a fricative: energy at the top of the band
    low = Wideband().process(tone(500.0))  # like a vowel
    assert band_db(high[800:], 4500, 8000) > -20
    assert band_db(low[800:], 4500, 8000) < -35  # the noise floor only


@needs_espeak
def test_wideband_is_deterministic_and_streams_like_one_shot() -> None:
    speech = espeak("six seven", "en-us", 160)
    a, b = Wideband(), Wideband()
    framed = np.concatenate([a.process(speech[i : i + 160]) for i in range(0, speech.size, 160)])
    assert np.array_equal(framed, b.process(speech))
    assert framed.size == 2 * speech.size
