"""Energy VAD: synthetic bursts, and every Allison prompt padded with line noise."""

from __future__ import annotations

import numpy as np
import pytest
from debs import ALLISON
from numpy.typing import NDArray

from ivr.media.vad import Vad, VadConfig, VadEvent, frame_level, frame_levels
from ivr.media.wav import load_8k_mono

RATE = 8000
NOISE_DB = -60.0  # a quiet phone line


def run(pcm: NDArray[np.int16], config: VadConfig | None = None) -> list[tuple[VadEvent, float]]:
    """Feed 20 ms frames; return each event with the time it was decided (end of its frame)."""
    vad = Vad(config)
    out = []
    for i in range(pcm.size // 160):
        event = vad.feed(pcm[i * 160 : (i + 1) * 160])
        if event is not None:
            out.append((event, (i + 1) * 0.02))
    return out


def noise(
    seconds: float, rng: np.random.Generator, level_db: float = NOISE_DB
) -> NDArray[np.float64]:
    return rng.normal(0.0, 32768 * 10 ** (level_db / 20), round(seconds * RATE))


def to_pcm(x: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def burst(seconds: float, level_db: float = -20.0) -> NDArray[np.float64]:
    t = np.arange(round(seconds * RATE)) / RATE
    return 32768 * 10 ** (level_db / 20) * np.sqrt(2) * np.sin(2 * np.pi * 300 * t)


def test_frame_level() -> None:
    assert frame_level(np.full(160, 32767, dtype=np.int16)) > -0.01
    assert frame_level(np.zeros(160, dtype=np.int16)) == -100.0
    assert abs(frame_level(to_pcm(burst(0.02, -30.0))) + 30.0) < 0.1


def test_batched_levels_drive_the_same_events() -> None:
    rng = np.random.default_rng(7)
    pcm = to_pcm(np.concatenate([noise(1, rng), burst(0.5) + noise(0.5, rng), noise(1.5, rng)]))
    frames = pcm.reshape(-1, 160)
    levels = frame_levels(frames)
    assert np.allclose(levels, [frame_level(f) for f in frames], atol=1e-3)
    assert frame_levels(np.zeros((2, 160), dtype=np.int16)).tolist() == [-100.0, -100.0]
    vad = Vad()
    events = [e for level in levels.tolist() if (e := vad.feed_level(level)) is not None]
    assert events == [e for e, _ in run(pcm)]
    assert [e.kind for e in events] == ["start", "end"]


def test_steady_and_slowly_rising_noise_is_not_speech() -> None:
    rng = np.random.default_rng(1)
    assert run(to_pcm(noise(10, rng))) == []
    ramp_db = np.linspace(-60.0, -40.0, 10 * RATE)  # 2 dB/s, slower than the floor may rise
    assert run(to_pcm(rng.normal(0.0, 1.0, ramp_db.size) * 32768 * 10 ** (ramp_db / 20))) == []


def test_clicks_shorter_than_three_frames_are_not_speech() -> None:
    rng = np.random.default_rng(2)
    x = noise(3, rng)
    x[8000:8160] += burst(0.02, -10)  # one frame
    x[16000:16320] += burst(0.04, -10)  # two frames
    assert run(to_pcm(x)) == []


def test_start_and_end_times_of_a_burst() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([noise(1, rng), burst(1.0) + noise(1, rng), noise(2, rng)])
    (start, start_at), (end, end_at) = run(to_pcm(x))
    assert (start.kind, end.kind) == ("start", "end")
    assert abs(start.time - 1.0) < 1e-9 and abs(start_at - 1.06) < 1e-9  # 3 frames to decide
    assert abs(end.time - 2.0) < 1e-9 and abs(end_at - 2.8) < 1e-9  # 0.8 s of silence


def test_pause_shorter_than_end_silence_keeps_the_turn() -> None:
    rng = np.random.default_rng(4)
    speech = burst(0.6) + noise(0.6, rng)
    short = np.concatenate([noise(1, rng), speech, noise(0.5, rng), speech, noise(1.5, rng)])
    assert [e.kind for e, _ in run(to_pcm(short))] == ["start", "end"]
    long = np.concatenate([noise(1, rng), speech, noise(1.0, rng), speech, noise(1.5, rng)])
    assert [e.kind for e, _ in run(to_pcm(long))] == ["start", "end", "start", "end"]
    config = VadConfig(end_silence=1.2)
    assert [e.kind for e, _ in run(to_pcm(long), config)] == ["start", "end"]


def test_digital_silence_then_speech() -> None:
    x = np.concatenate([np.zeros(8000), burst(0.5), np.zeros(12000)])
    events = run(to_pcm(x))
    assert [(e.kind, round(e.time, 2)) for e, _ in events] == [("start", 1.0), ("end", 1.5)]


def test_the_floor_adapts_to_a_noisy_line() -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([noise(2, rng, -40), noise(2, rng, -32), noise(2, rng, -40)])
    assert run(to_pcm(x)) == []  # 8 dB up on a noisy line: under the 12 dB start threshold
    x = np.concatenate(
        [noise(2, rng, -40), noise(1, rng, -40) + burst(1.0, -25), noise(2, rng, -40)]
    )
    assert [(e.kind, round(e.time, 2)) for e, _ in run(to_pcm(x))] == [("start", 2.0), ("end", 3.0)]


def envelope_bounds(pcm: NDArray[np.int16], level_db: float) -> tuple[float, float] | None:
    """First and last 5 ms window at or above ``level_db`` dBFS (start, end in seconds)."""
    n = pcm.size // 40
    power = np.mean(pcm[: n * 40].astype(np.float64).reshape(n, 40) ** 2, axis=1)
    loud = np.nonzero(power >= 32768**2 * 10 ** (level_db / 10))[0]
    return None if loud.size == 0 else (loud[0] * 0.005, (loud[-1] + 1) * 0.005)


@pytest.mark.usefixtures("asterisk_sounds")
def test_allison_prompts_with_line_noise() -> None:
    rng = np.random.default_rng(6)
    files = sorted(ALLISON.rglob("*.wav"))
    assert len(files) > 500, "install asterisk-core-sounds-en-wav (`make test` does)"
    lead, tail, end_silence = 1.0, 1.5, VadConfig().end_silence
    start_delays: list[float] = []
    problems: list[tuple[object, ...]] = []
    checked = 0
    for path in files:
        speech = load_8k_mono(path)
        x = np.concatenate([np.zeros(round(lead * RATE)), speech, np.zeros(round(tail * RATE))])
        events = run(to_pcm(x + noise(x.size / RATE, rng)))
        if path.parent.name == "silence":
            if events:
                problems.append((path.name, "events in a silence file"))
            continue
        onset = envelope_bounds(speech, -35.0)  # clearly voiced
        offset = envelope_bounds(speech, -45.0)  # trailing sounds included
        assert onset is not None and offset is not None, path
        on, off = lead + onset[0], lead + offset[1]
        kinds = [e.kind for e, _ in events]
        if kinds != ["start", "end"]:
            problems.append((path.name, kinds))
            continue
        (start, start_at), (end, end_at) = events
        checked += 1
        start_delays.append(start_at - on)
        if not (start_at - on <= 0.15 and start.time >= lead - 0.02):
            problems.append((path.name, "start", start.time, start_at, on))
        if not (end_silence - 0.02 <= end_at - off <= end_silence + 0.2):
            problems.append((path.name, "end", end.time, end_at, off))
    assert problems == []
    assert checked > 500
    assert np.median(start_delays) <= 0.07  # measured: 50 ms median, 125 ms worst
