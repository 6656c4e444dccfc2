"""Speech recognition: the types every backend and the media plane share.

A *grammar* says what the caller may say at a node (choice phrases, or a built-in: yes/no,
digits, amounts). A backend opens a :class:`StreamRecognizer` for one utterance and is fed
20 ms frames of 8 kHz 16-bit telephone audio (160 samples, as the media plane delivers them);
each call to :meth:`StreamRecognizer.accept` returns the events that frame caused.

Event order for one utterance: at most one :class:`SpeechStarted`, any number of
:class:`Partial`, then exactly one of :class:`Final` (in grammar, with the matched choice),
:class:`NoMatch` (speech that is not in the grammar, or below the backend's rejection
threshold) or :class:`NoSpeech` (``finish()`` called before anyone spoke). The engine's
no-input timer is the engine's business, not the recognizer's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz

Builtin = Literal["yes_no", "digits", "amount"]


@dataclass(frozen=True)
class Grammar:
    """What may be said: ``choices`` (choice key -> phrases) and/or one built-in grammar.

    ``min_digits``/``max_digits`` bound the ``digits`` built-in (``None``: 1..20).
    """

    language: str = "en"
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    builtin: Builtin | None = None
    min_digits: int | None = None
    max_digits: int | None = None

    def key(self) -> str:
        """A stable hash: decoders built for one grammar are pooled under it."""
        body = json.dumps(
            [self.language, sorted((k, list(v)) for k, v in self.choices.items()),
             self.builtin, self.min_digits, self.max_digits],
            ensure_ascii=False,
        )  # fmt: skip
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AsrOptions:
    """Endpointing and rejection settings for one utterance (seconds)."""

    end_silence: float = 0.8  # silence after speech that ends the utterance
    max_speech: float = 15.0  # longest utterance; cut and decided at this length
    min_confidence: float = 0.0  # backend-level rejection floor (the node's threshold is separate)


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # seconds of audio fed before speech began


@dataclass(frozen=True)
class Partial:
    text: str


@dataclass(frozen=True)
class Final:
    text: str  # what was recognised, normalised (lower case, no fillers)
    choice: str | None  # matched choice key; for built-ins the value ("yes", "1234", "250.00")
    confidence: float  # 0..1
    speech_start: float  # seconds into the fed audio
    speech_end: float
    decided_at: float  # seconds of audio fed when the result was decided


@dataclass(frozen=True)
class NoMatch:
    text: str  # best guess, possibly empty
    confidence: float
    speech_start: float
    speech_end: float
    decided_at: float


@dataclass(frozen=True)
class NoSpeech:
    pass


AsrEvent = SpeechStarted | Partial | Final | NoMatch | NoSpeech


class StreamRecognizer(Protocol):
    """One utterance being recognised; not thread-safe."""

    def accept(self, frame: np.ndarray) -> list[AsrEvent]:
        """Feed one 20 ms frame (int16, 160 samples at 8 kHz)."""

    def finish(self) -> list[AsrEvent]:
        """No more audio: decide now (Final, NoMatch or NoSpeech) unless already decided."""


class Backend(Protocol):
    """A recognition engine (PocketSphinx, Vosk) able to open streams for grammars."""

    name: str

    def languages(self) -> tuple[str, ...]:
        """Languages this backend can recognise as installed."""

    def open(self, grammar: Grammar, options: AsrOptions) -> StreamRecognizer:
        """A recognizer for one utterance (decoders may be pooled per grammar key)."""


class AsrError(Exception):
    """A backend cannot run (missing model file, unsupported language, bad grammar)."""
