"""Recognising whole recordings through the streaming interface (``ivr asr``, benchmarks).

A file is brought to 8 kHz mono int16 (:mod:`ivr.media.wav`), ``trailing_silence`` seconds of
digital silence are appended so that the endpointer can see the caller stop, and the audio is fed
in 20 ms frames through ``backend.open(...)`` exactly as a call would feed it; ``finish()`` is
called after the last frame if nothing was decided. The result keeps the recognizer's own times
(seconds of audio): ``decided_at - speech_end`` is the end-of-speech latency.

With ``gate=True`` the audio goes through the live calls' :class:`~ivr.asr.gate.SpeechGate`
first, as :class:`ivr.host.speech.CallSpeech` uses it: the recognizer is opened only when the
gate opens, fed the last :data:`~ivr.asr.gate.PRE_ROLL` frames (:func:`~ivr.asr.gate.pre_roll`)
and then every frame; when the gate gives up it is dropped (no speech confirmed: the gate may
open again later in the file) or decided at once (speech confirmed); its times are shifted back
to the file's. This is how ``ivr asr eval --gate`` measures what the gate costs in accuracy.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ivr.asr.base import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AsrEvent,
    AsrOptions,
    Backend,
    Final,
    Grammar,
    NoMatch,
    NoSpeech,
    SpeechStarted,
)
from ivr.asr.gate import PRE_ROLL, GateAction, GateConfig, SpeechGate, pre_roll
from ivr.media.wav import load_8k_mono, resample, to_int16

Outcome = Literal["match", "nomatch", "nospeech"]


@dataclass(frozen=True)
class FileResult:
    """What a backend made of one recording."""

    path: str
    text: str
    choice: str | None
    confidence: float
    outcome: Outcome
    speech_start: float | None  # seconds of audio
    speech_end: float | None
    decided_at: float | None
    audio_seconds: float  # the recording's length (without the appended silence)
    decode_seconds: float  # wall-clock time spent feeding and deciding
    backend: str

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (floats rounded to the millisecond)."""
        out: dict[str, object] = asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 4 if key == "confidence" else 3)
        return out


def recognize_audio(
    samples: np.ndarray,
    rate: int,
    grammar: Grammar,
    backend: Backend,
    options: AsrOptions = AsrOptions(),  # noqa: B008 - frozen dataclass, safe as a default
    trailing_silence: float = 1.0,
    path: str = "",
    gate: bool = False,
) -> FileResult:
    """Recognise ``samples`` (mono; int16, or float in -1..1; any rate) with ``grammar``
    (through the speech gate first with ``gate``: see the module docstring)."""
    pcm = _to_8k(samples, rate)
    audio_seconds = pcm.size / SAMPLE_RATE
    padded = np.concatenate([pcm, np.zeros(round(trailing_silence * SAMPLE_RATE), np.int16)])
    started = time.perf_counter()
    if gate:
        decided = _gated(padded, grammar, backend, options)
        return _result(decided, path, audio_seconds, time.perf_counter() - started,
                       backend.name)  # fmt: skip
    stream = backend.open(grammar, options)
    events: list[AsrEvent] = []
    decided = None
    for i in range(0, padded.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        events += stream.accept(padded[i : i + FRAME_SAMPLES])
        decided = _decision(events)
        if decided is not None:
            break
    if decided is None:
        events += stream.finish()
        decided = _decision(events)
    elapsed = time.perf_counter() - started
    return _result(decided, path, audio_seconds, elapsed, backend.name)


def _gated(padded: np.ndarray, grammar: Grammar, backend: Backend, options: AsrOptions
           ) -> Final | NoMatch | NoSpeech | None:  # fmt: skip
    """The decision when ``padded`` goes through the gate first (times in the file's)."""
    gate = SpeechGate(GateConfig.for_max_speech(options.max_speech))
    recent: deque[np.ndarray] = deque(maxlen=PRE_ROLL)
    stream = None
    base = 0.0  # where in the file the open stream's time 0 is
    for index, i in enumerate(range(0, padded.size - FRAME_SAMPLES + 1, FRAME_SAMPLES)):
        frame = padded[i : i + FRAME_SAMPLES]
        recent.append(frame)
        if stream is not None:
            events = stream.accept(frame)
            if any(isinstance(e, SpeechStarted) for e in events):
                gate.confirm()
            decided = _decision(events)
            if decided is not None:
                return _shifted(decided, base)
        action = gate.feed(frame)
        if action is GateAction.OPEN and stream is None:
            stream = backend.open(grammar, options)
            base = (index + 1 - PRE_ROLL) * FRAME_SAMPLES / SAMPLE_RATE
            events = [e for f in pre_roll(recent) for e in stream.accept(f)]
            if any(isinstance(e, SpeechStarted) for e in events):
                gate.confirm()
            decided = _decision(events)
            if decided is not None:
                return _shifted(decided, base)
        elif action is GateAction.GIVE_UP and stream is not None:
            if gate.confirmed:  # speech, then a sound that never stops: decide now
                return _shifted(_decision(stream.finish()), base)
            _drop(stream)
            stream = None
    if stream is None:
        return NoSpeech()
    return _shifted(_decision(stream.finish()), base)


def _drop(stream: object) -> None:
    """Give a dropped stream's decoder back (``close`` when it has one, else ``finish``)."""
    close = getattr(stream, "close", None) or getattr(stream, "finish", None)
    if callable(close):
        close()


def _shifted(event: Final | NoMatch | NoSpeech | None, base: float
             ) -> Final | NoMatch | NoSpeech | None:  # fmt: skip
    if isinstance(event, Final | NoMatch):
        return replace(event, speech_start=event.speech_start + base,
                       speech_end=event.speech_end + base,
                       decided_at=event.decided_at + base)  # fmt: skip
    return event


def recognize_file(
    path: Path,
    grammar: Grammar,
    backend: Backend,
    options: AsrOptions = AsrOptions(),  # noqa: B008
    trailing_silence: float = 1.0,
    gate: bool = False,
) -> FileResult:
    """:func:`recognize_audio` on a WAV file (any rate, width and channel count).

    Raises:
        WavError, OSError: the file cannot be read as WAV.
    """
    pcm = load_8k_mono(path)
    return recognize_audio(pcm, SAMPLE_RATE, grammar, backend, options, trailing_silence,
                           str(path), gate)  # fmt: skip


def _to_8k(samples: np.ndarray, rate: int) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim > 1:
        x = x.mean(axis=1)
    if rate == SAMPLE_RATE and x.dtype == np.int16:
        return x
    if np.issubdtype(x.dtype, np.integer):
        floats = x.astype(np.float64) / float(1 << (8 * x.dtype.itemsize - 1))
    else:
        floats = x.astype(np.float64)
    return to_int16(resample(floats, rate, SAMPLE_RATE))


def _decision(events: list[AsrEvent]) -> Final | NoMatch | NoSpeech | None:
    for event in events:
        if isinstance(event, Final | NoMatch | NoSpeech):
            return event
    return None


def _result(
    event: Final | NoMatch | NoSpeech | None, path: str, audio: float, elapsed: float, name: str
) -> FileResult:
    if isinstance(event, Final):
        return FileResult(path, event.text, event.choice, event.confidence, "match",
                          event.speech_start, event.speech_end, event.decided_at, audio, elapsed,
                          name)  # fmt: skip
    if isinstance(event, NoMatch):
        return FileResult(path, event.text, None, event.confidence, "nomatch",
                          event.speech_start, event.speech_end, event.decided_at, audio, elapsed,
                          name)  # fmt: skip
    return FileResult(path, "", None, 0.0, "nospeech", None, None, None, audio, elapsed, name)


__all__ = ["FileResult", "Outcome", "recognize_audio", "recognize_file"]
