"""Generated tones: every DTMF key is recognised by the in-band detector; the beep."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.media.goertzel import KEYS, InbandDtmfDetector
from ivr.media.tones import beep, dtmf_tone, dtmf_tones


def test_every_key_tone_is_detected_once() -> None:
    for key in KEYS:
        detector = InbandDtmfDetector()
        pcm = np.concatenate([dtmf_tone(key, 100), np.zeros(320, dtype=np.int16)])
        assert detector.feed_many(pcm.reshape(-1, 160)) == [key]


def test_a_key_sequence_has_tones_and_gaps() -> None:
    pcm = dtmf_tones("12#", duration_ms=80, gap_ms=60)
    assert pcm.size == 3 * (640 + 480)
    assert InbandDtmfDetector().feed_many(pcm[: pcm.size // 160 * 160].reshape(-1, 160)) == [
        "1",
        "2",
        "#",
    ]
    assert dtmf_tones("").size == 0
    with pytest.raises(ValueError):
        dtmf_tone("x")


def test_beep_level_and_ramps() -> None:
    tone = beep(0.25)
    assert tone.size == 2000 and tone.dtype == np.int16
    assert tone[0] == 0 and abs(int(tone[-1])) < 200  # ramped, no click
    peak = 32767 * 10 ** (-12 / 20)
    assert np.max(np.abs(tone)) == pytest.approx(peak, rel=0.01)
