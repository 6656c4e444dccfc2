"""Endpointing on real speech: start, end after the silence, pauses, noise, max_speech cut."""

from __future__ import annotations

import numpy as np
from sphinx_audio import (
    RATE,
    asterisk,
    espeak,
    joined,
    needs_espeak,
    needs_sounds,
    padded,
    to_pcm,
    white,
    with_noise,
)

from ivr.asr.endpoint import Endpointer, SpeechEnd, SpeechStart


def run(ep: Endpointer, pcm: np.ndarray) -> list[SpeechStart | SpeechEnd]:
    events = []
    for i in range(0, pcm.size - 159, 160):
        event = ep.feed(pcm[i : i + 160])
        if event is not None:
            events.append(event)
    return events


@needs_sounds
def test_recorded_digit_starts_and_ends_after_the_silence() -> None:
    digit = asterisk("digits/7")
    pcm = padded(digit, 0.6, 1.5)
    ep = Endpointer(end_silence=0.8)
    events = run(ep, pcm)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    start, end = events
    assert isinstance(start, SpeechStart) and isinstance(end, SpeechEnd)
    assert 0.55 <= start.time <= 0.8
    assert end.reason == "silence"
    assert 0.6 < end.time <= 0.6 + digit.size / RATE + 0.02
    assert abs(end.decided_at - end.time - 0.8) < 0.021
    assert ep.voiced_seconds(0.0, ep.now) > 0.2


@needs_espeak
def test_a_pause_shorter_than_the_end_silence_keeps_one_utterance() -> None:
    first = espeak("lost", "en-us", 160)
    words = joined([first, espeak("card", "en-us", 160)], gap=0.2)
    ep = Endpointer(end_silence=0.8)
    events = run(ep, padded(words, 0.5, 1.2))
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert len(ends) == 1
    assert ends[0].time > 0.5 + first.size / RATE + 0.2  # the second word is inside


@needs_espeak
def test_end_silence_can_be_shortened_while_speaking() -> None:
    pcm = padded(espeak("agent", "en-us", 160), 0.5, 1.2)
    long_wait, short_wait = Endpointer(end_silence=0.8), Endpointer(end_silence=0.8)
    for i in range(0, pcm.size - 159, 160):
        long_wait.feed(pcm[i : i + 160])
        if short_wait.in_speech:
            short_wait.end_silence = 0.3  # as the recognizer does once the result is certain
        short_wait.feed(pcm[i : i + 160])
    assert long_wait.ended is not None and short_wait.ended is not None
    assert abs(short_wait.ended.time - long_wait.ended.time) < 0.021
    gap = long_wait.ended.decided_at - short_wait.ended.decided_at
    assert abs(gap - 0.5) < 0.021


def test_steady_noise_from_the_start_is_not_speech() -> None:
    ep = Endpointer()
    assert run(ep, to_pcm(white(5.0, -30.0, seed=11))) == []
    assert ep.finish() is None


def test_noise_that_starts_and_never_stops_is_cut_at_max_speech() -> None:
    quiet, loud = white(1.0, -60.0, seed=1), white(6.0, -20.0, seed=2)
    ep = Endpointer(end_silence=0.8, max_speech=2.0)
    events = run(ep, to_pcm(np.concatenate([quiet, loud])))
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    start, end = events
    assert isinstance(end, SpeechEnd) and end.reason == "max_speech"
    assert abs(end.decided_at - start.time - 2.0) < 0.021
    assert ep.feed(np.zeros(160, np.int16)) is None  # over: nothing more from this utterance


@needs_sounds
def test_finish_and_end_now() -> None:
    pcm = padded(asterisk("digits/3"), 0.5, 0.1)
    ep = Endpointer(end_silence=0.8)
    run(ep, pcm)
    assert ep.in_speech
    end = ep.finish()
    assert end is not None and end.decided_at == ep.now
    assert ep.finish() is None
    other = Endpointer()
    assert other.end_now(1.0) is None  # no speech yet
    run(other, pcm)
    forced = other.end_now(0.9)
    assert forced is not None and forced.time == 0.9 and forced.reason == "silence"


@needs_sounds
def test_peak_snr_tells_a_quiet_line_from_a_noisy_one() -> None:
    """How far the caller's loud syllables stand over the noise floor (the recognizer raises its
    rejection floors under 40 dB)."""
    digit = asterisk("digits/7")
    quiet, noisy = Endpointer(), Endpointer()
    assert quiet.peak_snr() == 0.0  # before speech
    speech = padded(digit, 0.6, 1.0)
    run(quiet, to_pcm(speech + white(speech.size / RATE, -70.0, seed=3)))  # a quiet line
    run(noisy, with_noise(speech, 10.0, seed=3))
    assert quiet.speech_start is not None and noisy.speech_start is not None
    assert quiet.peak_snr() > 40.0 > noisy.peak_snr() > 5.0
