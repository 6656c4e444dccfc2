"""In-band DTMF: synthetic tones in noise after a μ-law round trip, and real recorded speech."""

from __future__ import annotations

import numpy as np
import pytest
from debs import ALLISON
from numpy.typing import NDArray

from ivr.media.g711 import ulaw_decode, ulaw_encode
from ivr.media.goertzel import (
    COL_FREQS,
    KEYS,
    ROW_FREQS,
    DetectorConfig,
    DtmfDebouncer,
    InbandDtmfDetector,
    classify_frame,
    classify_frames,
)
from ivr.media.wav import load_8k_mono

RATE = 8000


def tone(
    key: str,
    seconds: float,
    level_db: float,
    rng: np.random.Generator,
    twist_db: float = 0.0,
    deviation: float = 0.0,
) -> NDArray[np.float64]:
    """Both tones of ``key`` at ``level_db`` dBFS each (column tone ``twist_db`` higher)."""
    row, col = divmod(KEYS.index(key), 4)
    t = np.arange(round(seconds * RATE)) / RATE
    amp = 32768 * 10 ** (level_db / 20)
    low = np.sin(2 * np.pi * ROW_FREQS[row] * (1 + deviation) * t + rng.uniform(0, 7))
    high = np.sin(2 * np.pi * COL_FREQS[col] * (1 - deviation) * t + rng.uniform(0, 7))
    return amp * (low + 10 ** (twist_db / 20) * high)


def ulaw_line(x: NDArray[np.float64]) -> NDArray[np.int16]:
    """What arrives after a PCMU call leg: clipped to int16, μ-law encoded and decoded."""
    pcm = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(pcm))


def press_in_noise(
    key: str, rng: np.random.Generator, level_db: float, snr_db: float, **kwargs: float
) -> NDArray[np.int16]:
    """200 ms of noise, a 100 ms press starting at a random sample, 200 ms of noise."""
    signal = tone(key, 0.1, level_db, rng, **kwargs)
    power = np.mean(signal**2)
    start = 1600 + int(rng.integers(0, 160))
    x = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), start + signal.size + 1600)
    x[start : start + signal.size] += signal
    return ulaw_line(x)


def detect(pcm: NDArray[np.int16], config: DetectorConfig | None = None) -> list[str]:
    frames = pcm[: pcm.size // 160 * 160].reshape(-1, 160)
    detector = InbandDtmfDetector(config or DetectorConfig())
    return [key for frame in frames if (key := detector.feed(frame)) is not None]


@pytest.mark.parametrize("level_db", [-8.0, -16.0, -24.0])
def test_every_key_is_detected_once_at_5_db_snr_after_ulaw(level_db: float) -> None:
    rng = np.random.default_rng(int(-level_db))
    for key in KEYS:
        for _ in range(5):
            assert detect(press_in_noise(key, rng, level_db, snr_db=5.0)) == [key]


@pytest.mark.parametrize(
    ("twist_db", "deviation"), [(4.0, 0.0), (-4.0, 0.0), (0.0, 0.015), (0.0, -0.015), (3.0, 0.015)]
)
def test_twist_and_frequency_tolerance(twist_db: float, deviation: float) -> None:
    rng = np.random.default_rng(7)
    for key in KEYS:
        pcm = press_in_noise(key, rng, -12.0, snr_db=15.0, twist_db=twist_db, deviation=deviation)
        assert detect(pcm) == [key]


def test_twist_beyond_the_limits_is_rejected() -> None:
    rng = np.random.default_rng(3)
    for twist in (-10.0, 12.0):
        assert detect(ulaw_line(tone("5", 0.2, -12.0, rng, twist_db=twist))) == []


def test_single_tones_and_weak_pairs_are_not_keys() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(1600) / RATE
    for freq in (*ROW_FREQS, *COL_FREQS, 1000.0, 440.0):
        assert detect(ulaw_line(8000 * np.sin(2 * np.pi * freq * t))) == []
    assert detect(ulaw_line(tone("1", 0.2, -40.0, rng))) == []  # below min_level


def test_white_noise_gives_no_keys() -> None:
    rng = np.random.default_rng(5)
    for level in (100.0, 1000.0, 8000.0):
        assert detect(ulaw_line(rng.normal(0, level, RATE * 5))) == []


def test_tone_of_one_frame_is_too_short_two_aligned_frames_are_enough() -> None:
    rng = np.random.default_rng(6)
    silence = np.zeros(480)
    short = np.concatenate([silence, tone("7", 0.02, -10.0, rng), silence])
    assert detect(ulaw_line(short)) == []
    aligned = np.concatenate([silence, tone("7", 0.04, -10.0, rng), silence])
    assert detect(ulaw_line(aligned)) == ["7"]


def test_a_lost_frame_inside_a_tone_does_not_count_the_key_twice() -> None:
    rng = np.random.default_rng(8)
    x = tone("0", 0.2, -10.0, rng)
    x[800:960] = 0.0  # one 20 ms frame lost and filled with silence
    assert detect(ulaw_line(x)) == ["0"]


def test_repeated_presses_of_one_key_and_direct_key_changes() -> None:
    rng = np.random.default_rng(9)
    gap = np.zeros(480)  # 60 ms between presses
    parts = [tone("4", 0.1, -10, rng), gap, tone("4", 0.1, -10, rng), gap]
    parts += [tone("A", 0.1, -10, rng), tone("B", 0.1, -10, rng), gap]  # no gap between A and B
    assert detect(ulaw_line(np.concatenate(parts))) == ["4", "4", "A", "B"]


def test_debouncer_states() -> None:
    debouncer = DtmfDebouncer(press_frames=2, release_frames=2)
    codes = [-1, 3, 3, 3, -1, 3, -1, -1, 3, 3]
    pressed = [debouncer.update(code) for code in codes]
    assert pressed == [None, None, "A", None, None, None, None, None, None, "A"]
    assert debouncer.held == "A"


def test_batch_and_single_frame_classification_agree() -> None:
    rng = np.random.default_rng(10)
    pcm = np.concatenate(
        [press_in_noise(key, rng, -14.0, snr_db=5.0) for key in KEYS]
        + [ulaw_line(rng.normal(0, 3000, 16000))]
    )
    frames = pcm[: pcm.size // 160 * 160].reshape(-1, 160)
    batch = classify_frames(frames)
    assert batch.tolist() == [classify_frame(frame) for frame in frames]
    assert set(batch.tolist()) == {-1, *range(16)}


def allison_frames() -> tuple[list[tuple[str, NDArray[np.int16]]], float]:
    files = sorted(ALLISON.rglob("*.wav"))
    assert len(files) > 500, "install asterisk-core-sounds-en-wav (`make test` does)"
    out, seconds = [], 0.0
    for path in files:
        pcm = load_8k_mono(path)
        seconds += pcm.size / RATE
        out.append((path.name, pcm[: pcm.size // 160 * 160].reshape(-1, 160)))
    return out, seconds


@pytest.mark.usefixtures("asterisk_sounds")
def test_no_key_in_25_minutes_of_recorded_speech() -> None:
    recordings, seconds = allison_frames()
    assert seconds > 1500  # 568 prompts, 1528.7 s when this was written
    false_keys = {}
    for name, frames in recordings:
        for line in (frames, ulaw_decode(ulaw_encode(frames))):  # as recorded, and over PCMU
            debouncer = InbandDtmfDetector().debouncer
            codes = classify_frames(line).tolist()
            keys = [key for code in codes if (key := debouncer.update(code))]
            if keys:
                false_keys[name] = keys
    assert false_keys == {}, f"false keys in {seconds:.0f} s of speech"
