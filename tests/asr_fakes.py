"""A recognition backend for tests of the ASR service: real interface, trivial "acoustics".

Speech is any frame whose mean is 1000 or more in magnitude; the mean of the first speech frame,
in thousands, picks the choice (1: the first choice key in sorted order, 2: the second...; no
such choice: NoMatch). Speech ends after ``end_silence`` of quiet frames. Each SpeechStarted is
followed by a Partial naming the worker's pid (so tests see which process decoded a stream).
A grammar with the choice ``hang`` blocks forever on the frame after speech started (a stalled
decoder), and one with the choice ``refuse`` cannot be opened (a grammar the backend rejects).
Loaded in worker processes as ``asr_fakes:make_fake``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ivr.asr.base import (
    AsrError,
    AsrEvent,
    AsrOptions,
    Final,
    Grammar,
    NoMatch,
    NoSpeech,
    Partial,
    SpeechStarted,
)

SPEECH_LEVEL = 1000


def speech(choice_number: int, frames: int = 10) -> list[np.ndarray]:
    """Frames that the fake hears as choice number ``choice_number`` (1-based)."""
    return [np.full(160, choice_number * SPEECH_LEVEL, dtype=np.int16) for _ in range(frames)]


def silence(frames: int) -> list[np.ndarray]:
    return [np.zeros(160, dtype=np.int16) for _ in range(frames)]


class FakeRecognizer:
    def __init__(self, grammar: Grammar, options: AsrOptions) -> None:
        self.grammar = grammar
        self.options = options
        self.fed = 0
        self.word: int | None = None
        self.started_at = 0.0
        self.quiet = 0
        self.decided = False

    def accept(self, frame: np.ndarray) -> list[AsrEvent]:
        self.fed += 1
        if self.decided:
            return []
        level = round(float(np.mean(frame)) / SPEECH_LEVEL)
        if self.word is None:
            if level == 0:
                return []
            self.word, self.started_at = level, (self.fed - 1) * 0.02
            return [SpeechStarted(self.started_at), Partial(f"pid {os.getpid()}")]
        if "hang" in self.grammar.choices:
            time.sleep(3600)
        self.quiet = self.quiet + 1 if level == 0 else 0
        if self.quiet * 0.02 >= self.options.end_silence:
            return [self._decide()]
        return []

    def finish(self) -> list[AsrEvent]:
        if self.decided:
            return []
        if self.word is None:
            self.decided = True
            return [NoSpeech()]
        return [self._decide()]

    def _decide(self) -> AsrEvent:
        self.decided = True
        keys = sorted(self.grammar.choices)
        end, now = (self.fed - self.quiet) * 0.02, self.fed * 0.02
        assert self.word is not None
        if 1 <= self.word <= len(keys):
            key = keys[self.word - 1]
            return Final(self.grammar.choices[key][0], key, 0.9, self.started_at, end, now)
        return NoMatch("mumble", 0.2, self.started_at, end, now)


class FakeBackend:
    name = "fake"

    def __init__(self, language: str) -> None:
        self.language = language
        self.opened = 0

    def languages(self) -> tuple[str, ...]:
        return ("en",)

    def open(self, grammar: Grammar, options: AsrOptions) -> FakeRecognizer:
        self.opened += 1
        if "refuse" in grammar.choices:
            raise AsrError("the fake refuses this grammar")
        return FakeRecognizer(grammar, options)


def make_fake(language: str, models_dir: Path) -> FakeBackend:
    """The factory named in ``AsrService("asr_fakes:make_fake", ...)``."""
    return FakeBackend(language)
