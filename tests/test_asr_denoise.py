"""The Wiener noise reducer: delay, speech kept, stationary noise removed, streaming = one shot."""

from __future__ import annotations

import numpy as np
from sphinx_audio import RATE, espeak, needs_espeak, to_pcm, white

from ivr.asr.denoise import LATENCY, Denoiser, denoise


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


@needs_espeak
def test_speech_passes_and_noise_is_removed() -> None:
    speech = espeak("hello there how are you", "en-us", 160).astype(np.float64)
    noise = white(1.0 + speech.size / RATE, -50.0, seed=5)
    mixed = noise.copy()
    mixed[RATE:] += speech
    out = denoise(to_pcm(mixed))
    assert out.size == mixed.size
    assert rms(out[RATE // 2 : RATE]) < rms(mixed[RATE // 2 : RATE]) * 10 ** (-15 / 20)
    assert 0.9 < rms(out[RATE:]) / rms(mixed[RATE:]) < 1.05


@needs_espeak
def test_output_lags_by_latency_and_streams_like_one_shot() -> None:
    speech = espeak("seven", "en-us", 160)
    x = to_pcm(np.concatenate([white(0.5, -55.0, seed=2), speech.astype(np.float64)]))
    d = Denoiser()
    framed = np.concatenate([d.process(x[i : i + 160]) for i in range(0, x.size, 160)])
    out, ref = framed.astype(np.float64), x.astype(np.float64)
    n = x.size - 400
    corr = [float(np.dot(out[lag : lag + n - 4000], ref[: n - 4000])) for lag in range(400)]
    assert int(np.argmax(corr)) == LATENCY
    assert np.array_equal(framed[LATENCY:], denoise(x)[: x.size - LATENCY])


@needs_espeak
def test_speech_at_once_is_not_taken_for_noise() -> None:
    """A caller who speaks 0.05 s in: told where the noise ends, the filter keeps the voice;
    learning from the whole first quarter second (the voice) it would filter it away."""
    speech = espeak("hello there how are you", "en-us", 160).astype(np.float64)
    x = white(0.05 + speech.size / RATE, -50.0, seed=6)
    x[400:] += speech
    pcm = to_pcm(x)

    def kept(lead: int | None) -> float:
        denoiser = Denoiser()
        if lead is not None:
            denoiser.noise_only(lead)
        out = denoiser.process(np.concatenate([pcm, np.zeros(LATENCY, np.int16)]))[LATENCY:]
        return rms(out[400 : 400 + RATE // 2]) / rms(pcm[400 : 400 + RATE // 2])

    assert kept(400) > 0.9
    assert kept(None) < 0.7  # what the lead silence guards against
