"""The Vosk backend: Kaldi models from ``asr_models/<lang>/``, a runtime grammar per utterance.

One ``vosk.Model`` per model directory per process, loaded on first use (or by
:meth:`VoskBackend.preload`) under a lock and shared by every stream and thread. Each
:meth:`VoskBackend.open` makes a ``KaldiRecognizer`` (well under a millisecond) whose grammar
is the node's phrases (see :mod:`ivr.asr.vosk_grammar`).

Audio: 8 kHz frames are fed as they are. The models are trained on 16 kHz audio
(``conf/mfcc.conf`` has no ``--sample-frequency``, so 16 kHz); Kaldi's feature pipeline
resamples the 8 kHz input itself (``allow_upsample``). Measured on espeak-ng Korean, upsampling
to 16 kHz ourselves first (whole files with ivr.media.wav.resample, streams with
ivr.asr.upsample) was worse for menus and yes/no, slightly better for digits (docs/ASR.md).

Endpointing is ivr's, not Vosk's (whose rules come from the model's ``model.conf``): the
shared :class:`~ivr.asr.endpoint.Endpointer` (energy VAD) gives the start of speech and its end
after ``end_silence``; ``max_speech`` caps the utterance. Audio before the start of speech is not
decoded; the last :data:`PREROLL` seconds before it are, so that soft onsets are kept.

Out-of-grammar speech: when the model's vocabulary has ``[unk]``, it is added to the grammar;
the Korean model has none, so *filler words* (every consonant+vowel Hangul syllable the model
knows, minus the grammar's own words) are added instead, each once, while every phrase is
repeated :data:`PHRASE_WEIGHT` times (Vosk's grammar is a bigram model estimated from counts).
A result holding a filler or ``[unk]`` is a NoMatch; so is one below ``min_confidence``.
Confidence is the lowest word confidence (Kaldi MBR posteriors, ``SetWords(True)``).

A phrase word that the model does not know is an :class:`AsrError` naming it (raised by
:meth:`VoskBackend.open`; :meth:`VoskBackend.unknown_words` lists them beforehand): Vosk would
silently drop it and recognise the rest of the phrase. Built-in words the model lacks are left out.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ivr.asr.base import (
    SAMPLE_RATE,
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
from ivr.asr.endpoint import Endpointer, SpeechEnd, SpeechStart
from ivr.asr.models import ModelError, check_model, installed
from ivr.asr.vosk_grammar import CompiledGrammar, compile_grammar, interpret, normalise

log = logging.getLogger("ivr.asr.vosk")

UNK = "[unk]"
PHRASE_WEIGHT = 25  # counts per phrase against 1 per filler: measured in docs/ASR.md
PREROLL = 0.3  # seconds of audio before the detected start of speech that are decoded
PARTIAL_EVERY = 5  # frames between partial results (100 ms)
_FRAME_BYTES = 320  # 20 ms of 8 kHz int16

# Korean fillers: a consonant (ㄱ ㄴ ㄷ ㄹ ㅁ ㅂ ㅅ ㅇ ㅈ ㅊ ㅋ ㅌ ㅍ ㅎ)
# and a vowel (ㅏ ㅓ ㅗ ㅜ ㅡ ㅣ ㅐ ㅔ)
_HANGUL_LEADS = (0, 2, 3, 5, 6, 7, 9, 11, 12, 14, 15, 16, 17, 18)
_HANGUL_VOWELS = (0, 4, 8, 13, 18, 20, 1, 5)
FILLER_CANDIDATES: dict[str, tuple[str, ...]] = {
    "ko": tuple(
        chr(0xAC00 + (lead * 21 + vowel) * 28) for lead in _HANGUL_LEADS for vowel in _HANGUL_VOWELS
    ),
}


@dataclass
class LoadedModel:
    """A ``vosk.Model`` and what the backend keeps about its vocabulary."""

    path: Path
    language: str
    model: Any  # vosk.Model
    _known: dict[str, bool] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _garbage: tuple[str, ...] | None = None

    def knows(self, word: str) -> bool:
        with self._lock:
            known = self._known.get(word)
            if known is None:
                known = self._known[word] = self.model.vosk_model_find_word(word) >= 0
            return known

    def garbage_words(self) -> tuple[str, ...]:
        """``("[unk]",)``, or the filler words the model knows, or ``()`` (none for this
        language: out-of-grammar speech is then rejected by confidence only)."""
        if self._garbage is None:
            if self.knows(UNK):
                self._garbage = (UNK,)
            else:
                candidates = FILLER_CANDIDATES.get(self.language, ())
                self._garbage = tuple(w for w in candidates if self.knows(w))
            if not self._garbage:
                log.warning("the Vosk model at %s has no [unk] word and ivr has no filler words "
                            "for %r: out-of-grammar speech is rejected by confidence only",
                            self.path, self.language)  # fmt: skip
        return self._garbage


_models: dict[Path, LoadedModel] = {}
_model_locks: dict[Path, threading.Lock] = {}
_registry = threading.Lock()


def load_model(model_dir: Path, language: str) -> LoadedModel:
    """The process's shared model for ``model_dir``, loaded on the first call.

    Raises:
        ModelError: an incomplete directory, a static graph, or a model Vosk cannot load.
    """
    key = model_dir.resolve()
    with _registry:
        loaded = _models.get(key)
        if loaded is not None:
            return loaded
        lock = _model_locks.setdefault(key, threading.Lock())
    with lock:  # one loader per model; other models load in parallel
        loaded = _models.get(key)
        if loaded is None:
            check_model(model_dir)
            import vosk

            vosk.SetLogLevel(-1)  # Kaldi's LOG lines would go to stderr on every load
            log.info("loading Vosk model %s", model_dir)
            try:
                model = vosk.Model(str(model_dir))
            except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
                raise ModelError(f"Vosk cannot load the model at {model_dir}: {exc}") from exc
            loaded = LoadedModel(model_dir, language, model)
            with _registry:
                _models[key] = loaded
    return loaded


class VoskBackend:
    """Recognition with Vosk models installed under ``models_dir/<language>/``."""

    name = "vosk"

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)

    def languages(self) -> tuple[str, ...]:
        """Languages with a complete, grammar-capable model (others are logged, not listed)."""
        usable = []
        for language, path in installed(self.models_dir):
            try:
                check_model(path)
            except ModelError as exc:
                log.warning("%s", exc)
                continue
            usable.append(language)
        return tuple(usable)

    def model(self, language: str) -> LoadedModel:
        """The loaded model of ``language`` (loading it now if needed)."""
        return load_model(self.models_dir / language, language)

    def preload(self, language: str) -> None:
        """Load the model now (about 3.5 s for the small Korean one) instead of at first use."""
        self.model(language)

    def unknown_words(self, grammar: Grammar) -> list[str]:
        """The words of the grammar's phrases that the model does not know (sorted)."""
        compiled = compile_grammar(grammar)
        model = self.model(grammar.language)
        words = {w for phrase in compiled.phrases for w in phrase.split()}
        return sorted(w for w in words if not model.knows(w))

    def open(self, grammar: Grammar, options: AsrOptions) -> VoskStream:
        """A recognizer for one utterance of ``grammar``.

        Raises:
            AsrError: no usable model for the language, a phrase word the model does not know,
                or a built-in grammar the language has no words for.
        """
        compiled = compile_grammar(grammar)
        model = self.model(grammar.language)
        unknown = sorted({w for p in compiled.phrases for w in p.split() if not model.knows(w)})
        if unknown:
            raise AsrError(f"the {grammar.language} Vosk model at {model.path} does not know "
                           f"{', '.join(map(repr, unknown))}: change the phrases, or install a "
                           f"model whose vocabulary has these words")
        builtin = tuple(p for p in compiled.builtin_phrases
                        if all(model.knows(w) for w in p.split()))  # fmt: skip
        if compiled.builtin_phrases and not builtin:
            raise AsrError(f"the {grammar.language} Vosk model knows none of the words of the "
                           f"{grammar.builtin} grammar")
        said = set(" ".join(compiled.phrases + builtin).split())
        garbage = tuple(w for w in model.garbage_words() if w not in said)
        sentences = [*compiled.phrases, *builtin] * PHRASE_WEIGHT + list(garbage)
        return VoskStream(model, json.dumps(sentences, ensure_ascii=False), compiled,
                          frozenset(garbage), options)


class VoskStream:
    """One utterance: endpointing (:class:`~ivr.asr.endpoint.Endpointer`) around a
    KaldiRecognizer that is made at the start of speech; not thread-safe."""

    def __init__(self, model: LoadedModel, sentences: str, compiled: CompiledGrammar,
                 garbage: frozenset[str], options: AsrOptions) -> None:  # fmt: skip
        self._model = model
        self._sentences = sentences
        self._compiled = compiled
        self._garbage = garbage
        self._min_confidence = options.min_confidence
        self._endpointer = Endpointer(options.end_silence, options.max_speech)
        self._preroll: deque[bytes] = deque(maxlen=max(1, round(PREROLL / 0.02)))
        self._recognizer: Any = None  # made at the start of speech
        self._start = 0.0
        self._frames_in_speech = 0
        self._partial = ""
        self._decided = False

    def accept(self, frame: np.ndarray) -> list[AsrEvent]:
        """Feed one 20 ms frame (int16, 160 samples at 8 kHz)."""
        if self._decided:
            return []
        pcm = np.asarray(frame, dtype=np.int16)
        data = pcm.tobytes()
        event = self._endpointer.feed(pcm)
        if self._recognizer is None:
            self._preroll.append(data)
            return self._begin(event.time) if isinstance(event, SpeechStart) else []
        self._recognizer.AcceptWaveform(data)
        self._frames_in_speech += 1
        if isinstance(event, SpeechEnd):
            return [self._decide(event)]
        if self._frames_in_speech % PARTIAL_EVERY == 0:
            return self._partial_event()
        return []

    def finish(self) -> list[AsrEvent]:
        """No more audio: decide now (NoSpeech if speech never started)."""
        if self._decided:
            return []
        end = self._endpointer.finish()
        if end is None or self._recognizer is None:
            self._decided = True
            return [NoSpeech()]
        return [self._decide(end)]

    def close(self) -> None:
        """Drop the decoder without deciding (the caller hung up)."""
        self._decided = True
        self._recognizer = None

    def _begin(self, at: float) -> list[AsrEvent]:
        import vosk

        self._start = at
        self._recognizer = vosk.KaldiRecognizer(self._model.model, float(SAMPLE_RATE),
                                                self._sentences)  # fmt: skip
        self._recognizer.SetWords(True)
        # Speech that starts with the stream gets silence in front: measured, the decoder
        # misses its first word without any (ivr asr recognize on a file cut at the speech).
        missing = (self._preroll.maxlen or 0) - len(self._preroll)
        self._recognizer.AcceptWaveform(bytes(missing * _FRAME_BYTES) + b"".join(self._preroll))
        self._preroll.clear()
        return [SpeechStarted(at)]

    def _partial_event(self) -> list[AsrEvent]:
        words = json.loads(self._recognizer.PartialResult()).get("partial", "").split()
        text = " ".join(w for w in words if w not in self._garbage)
        if not text or text == self._partial:
            return []
        self._partial = text
        return [Partial(text)]

    def _decide(self, end: SpeechEnd) -> AsrEvent:
        self._decided = True
        result = json.loads(self._recognizer.FinalResult())
        self._recognizer = None  # the decoder's memory goes back now, not at garbage collection
        items = result.get("result", [])
        words = [normalise(str(item["word"])) for item in items]
        confidence = min((float(item["conf"]) for item in items), default=0.0)
        confidence = min(1.0, max(0.0, confidence))
        value = None
        if not any(w in self._garbage for w in words):
            value = interpret(self._compiled, words)
        text = " ".join(words)
        speech_end = max(end.time, self._start)
        if value is None or confidence < self._min_confidence:
            return NoMatch(text, confidence, self._start, speech_end, end.decided_at)
        return Final(text, value, confidence, self._start, speech_end, end.decided_at)
