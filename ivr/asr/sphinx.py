"""PocketSphinx backend: the recognizer that works on a fresh machine, no download needed.

The PyPI wheel of PocketSphinx 5.1.1 carries a US English acoustic model (16 kHz, PTM) and the
CMU dictionary; this backend uses them in grammar mode only (free language-model and keyword
search were measured unusable on telephone audio). One utterance flows like this:

1. every 8 kHz frame goes to the :class:`~ivr.asr.endpoint.Endpointer` (energy); nothing else
   runs until speech starts;
2. at the start of speech the last :data:`PRE_ROLL` seconds and then every new frame go through
   the front end, :class:`~ivr.asr.denoise.Denoiser` (Wiener filter) and
   :class:`~ivr.asr.upsample.Wideband` (16 kHz, high band filled, noise floor), into a pooled
   *grammar* decoder (the node's grammar as an FSG, :mod:`ivr.asr.grammar`), whose hypothesis
   is read every :data:`PARTIAL_EVERY` frames and sent as a :class:`Partial` when it changes;
3. the utterance ends after ``end_silence`` of silence, or after :data:`COMPLETE_SILENCE` when
   the hypothesis so far is already complete (a choice no longer phrase could change,
   ``max_digits`` digits) - by the endpointer's energy, or by the decoder's best path having
   spent that long in silence after a word (in babble noise the energy never drops) - or at
   ``max_speech``;
4. the decoder's best path is mapped back to a choice key or a built-in value and scored.
   There is one pass: the decision is ready the frame the utterance ends.

Acoustic model: the means adapted to telephone audio by :mod:`ivr.asr.adapt` (MLLR per phone
class, estimated on synthesized speech through this front end). Pronunciations: the CMU
dictionary's, plus non-rhotic ones for the grammar's words and band-limited ones for digits
(:mod:`ivr.asr.grammar`).

Rejection and confidence. The grammar's FSG has a *garbage* path beside its phrases: a phone
recogniser weighted by the model's phone bigram (:func:`phone_bigram`, :mod:`ivr.asr.grammar`).
Speech the grammar cannot explain ends on it. For choice grammars the decision is then made by
:mod:`ivr.asr.confidence` from a second, *rival* pass over the utterance's stored front-end audio
(:mod:`ivr.asr.rival`: the grammar minus the chosen phrase; the phrases alone when the garbage path
won): the first pass's score per frame against floors per rival kind and line noise rejects
out-of-grammar speech, and the margin between the two best paths per frame sets the confidence
(below 0.5 when another phrase fits nearly as well: the flow asks). Its thresholds are chosen by
``bench/asr/tune_decision.py`` on the tuning voices and read from ``ivr/asr/decision.json``.
Each pooled decoder keeps the rival grammars it has built (at most one per choice) as extra
FSG searches. Digit strings, amounts and one-phrase grammars, which have no finite
list of rivals, keep the first pass's floor: the best path's score per frame (1e-4 log units,
:func:`~ivr.asr.rival.score_per_frame`; near zero when the words fit, since PocketSphinx
scores each frame against its best senone and the garbage path keeps every phone's senones in
the search) under :func:`_floor` is a :class:`NoMatch`, and ``confidence = 1 / (1 +
exp(-(score - floor - CONF_MARGIN) / CONF_SCALE))``. Either way a result whose path called more than
:data:`UNEXPLAINED` of the loud audio silence, or whose confidence is under
``options.min_confidence``, is a :class:`NoMatch`. (An earlier design scored the grammar against
a free phone decoder run over the utterance again: as accurate, but three times the CPU.)

Measured: docs/ASR.md (`make bench-asr`), on a tuning set and a held-out one.

Decoders are pooled (:class:`DecoderPool`) per ``grammar.key()``: the first stream for a
grammar pays for loading the model and building the FSG (tens of ms), later ones reuse an idle
decoder. A stream holds a decoder only from the start of speech to its decision, so a hundred
callers listening in silence share one or two.
PocketSphinx holds the GIL while it decodes.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.asr import rescue, rival
from ivr.asr.adapt import adapted_means
from ivr.asr.base import (
    FRAME_SAMPLES,
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
from ivr.asr.confidence import (
    Constants,
    Evidence,
    decide,
    load_constants,
    logistic,
    rescue_wanted,
)
from ivr.asr.denoise import LATENCY, Denoiser
from ivr.asr.endpoint import Endpointer, SpeechEnd, SpeechStart
from ivr.asr.grammar import GARBAGE_MARK, PHONES, Bigram, CompiledGrammar, compile_grammar
from ivr.asr.upsample import Wideband
from ivr.media.vad import frame_level

# Seconds of the caller's lead noise PocketSphinx's own noise estimate learns from before each
# utterance on a noisy line (see SphinxStream._prime).
PRIME = 2.0
# ... played this much louder (amplitude; +6 dB): PocketSphinx subtracts its noise estimate, and
# one learnt from a short lead is lower than one converged over a whole call (tuning sample,
# 15 dB babble: 0.47 right at 1x, 0.54 at 1.4x, 0.55 at 2x; 5 dB: 0.009 -> 0.028).
PRIME_GAIN = 2.0
PRE_ROLL = 0.3  # seconds of audio before the detected start given to the decoder
PARTIAL_EVERY = 5  # frames between looks at the hypothesis (100 ms)
COMPLETE_SILENCE = 0.3  # end silence once the hypothesis is complete and unambiguous
ADAPT = True  # load the means adapted to telephone audio (ivr.asr.adapt)
DENOISE = True
# Score per frame (1e-4 PocketSphinx log units; senone scores are relative to each frame's best
# senone, so a perfect fit is near 0) below which a result is a no-match; chosen on the tuning
# set of bench/asr (docs/ASR.md has it and a held-out set).
SCORE_FLOOR = -47.0
# Digit strings of fixed length in clean audio: every digit is a short word with rivals and a
# rejected string loses every digit, so a lower floor. In noise (the caller's loud syllables
# less than NOISY_SNR_DB over the noise floor) other voices let a wrong string fit nearly as
# well as the right one, and they get SCORE_FLOOR. (Raising the phrases' floor in noise too
# cost more right answers at 15 dB than it saved false accepts.) Digit loops of open length
# imitate speech better than fixed phrases: SCORE_FLOOR (not measured: no such items).
SCORE_FLOOR_DIGITS = -55.0
NOISY_SNR_DB = 40.0
# Run the rescue pass whenever the first pass ends on the garbage path, even where the
# thresholds could not accept its phrase (bench/asr/tune_decision.py sets it: it gathers the
# evidence the thresholds are then chosen from).
RESCUE_ALWAYS = False
UNEXPLAINED = 0.65  # share of the loud audio the grammar path may call silence or noise
LOUD_DB = 12.0  # "loud": this far over the noise floor (a babble behind the caller rarely is)
# Confidence is the score's distance above its floor: 0.27 at the floor, 0.5 CONF_MARGIN above
# it (the flows' default confirmation threshold: about 3 % of right answers are confirmed).
CONF_MARGIN = 2.0
CONF_SCALE = 2.0
# Where the streaming pass's cepstral mean starts, so that it never depends on the previous
# caller: the mean of telephone speech upsampled without the noise filter. (The mean measured
# through the full front end did slightly worse on partials and endpointing, in noise most.)
CMN_PRIOR = "54.8,-4.97,5.09,0.01,-0.89,-4.62,-2.44,-0.18,2.91,1.27,-2.27,1.79,2.01"
DECODER_SETTINGS: dict[str, object] = {
    "bestpath": False,  # lattice rescoring cost time and lost accuracy in grammar mode
    "wip": 0.01,  # word insertion penalty: the default 0.65 dropped digits from strings
    "loglevel": "FATAL",
}


def _model_dir() -> Path:
    import pocketsphinx

    return Path(pocketsphinx.get_model_path())


@dataclass
class _Decoder:
    """A PocketSphinx decoder with one grammar's FSG active."""

    decoder: object  # pocketsphinx.Decoder
    key: str
    grammar: CompiledGrammar
    rivals: dict[str, CompiledGrammar] = field(default_factory=dict)  # rival searches added


@dataclass
class DecoderPool:
    """Idle decoders per grammar key, reused across streams; thread-safe.

    Attributes:
        model_dir: the acoustic model and dictionary (default: the ones in the wheel).
        max_idle: idle decoders kept in all (least recently used grammars go first).
        created: decoders built so far (tests and benchmarks read it).
    """

    model_dir: Path = field(default_factory=_model_dir)
    max_idle: int = 64
    created: int = 0
    _idle: OrderedDict[str, list[_Decoder]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, grammar: Grammar) -> _Decoder:
        """An idle decoder for ``grammar``, or a new one."""
        key = grammar.key()
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                self._idle.move_to_end(key)
                return idle.pop()
        built = self._build(grammar, key)
        with self._lock:
            self.created += 1
        return built

    def give(self, decoder: _Decoder) -> None:
        """Return a decoder whose utterance is over."""
        with self._lock:
            self._idle.setdefault(decoder.key, []).append(decoder)
            self._idle.move_to_end(decoder.key)
            while sum(len(v) for v in self._idle.values()) > self.max_idle:
                oldest = next(iter(self._idle))
                self._idle[oldest].pop(0)
                if not self._idle[oldest]:
                    del self._idle[oldest]

    def _build(self, grammar: Grammar, key: str) -> _Decoder:
        import pocketsphinx

        model = self.model_dir / "en-us"
        config = pocketsphinx.Config(hmm=str(model / "en-us"),
                                     dict=str(model / "cmudict-en-us.dict"), lm=None)  # fmt: skip
        for name, value in DECODER_SETTINGS.items():
            config[name] = value
        if ADAPT:
            config["mean"] = str(adapted_means(model / "en-us"))
        try:
            decoder = pocketsphinx.Decoder(config)
        except RuntimeError as exc:
            raise AsrError(f"PocketSphinx could not load its model from {model}: {exc}") from None
        bigram = phone_bigram(model / "en-us-phone.lm.bin")
        compiled = compile_grammar(grammar, decoder.lookup_word, bigram=bigram)
        for i, (word, phones) in enumerate(compiled.extra_words):
            decoder.add_word(word, phones, i == len(compiled.extra_words) - 1)
        rival.add_search(decoder, rival.MAIN_SEARCH, compiled)
        decoder.activate_search(rival.MAIN_SEARCH)
        return _Decoder(decoder, key, compiled)


def forget_noise(decoder: object) -> None:
    """Reset PocketSphinx's noise estimate (``remove_noise``) before a new utterance.

    PocketSphinx 5.1 calls ``start_stream`` deprecated and unnecessary, but only it resets that
    estimate: without it the answer depends on earlier utterances (tests/test_asr_repeatable.py).
    The deprecation warning is expected, so it is not shown.
    """
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "start_stream", DeprecationWarning)
        decoder.start_stream()  # type: ignore[attr-defined]


_QUIET_LOCK = threading.Lock()  # catch_warnings changes process-wide filters: one at a time


@functools.lru_cache(maxsize=4)
def phone_bigram(path: Path) -> Bigram:
    """P(phone | previous phone or <s>) from the model's phone language model (cached)."""
    import pocketsphinx

    lm = pocketsphinx.NGramModel.readfile(str(path))
    # NGramModel.prob takes the word first, then its history; log base 1.0001.
    return {(a, b): math.exp(lm.prob([b, a]) * 1e-4) for a in ("<s>", *PHONES) for b in PHONES}


class SphinxBackend:
    """The PocketSphinx backend (English)."""

    name = "pocketsphinx"

    def __init__(self, pool: DecoderPool | None = None, *, full_evidence: bool = False) -> None:
        """``full_evidence``: run the rival pass even where the decision cannot depend on it,
        so that every stream's :class:`Evidence` is complete (``bench/asr/tune_decision.py``
        needs it to try other thresholds)."""
        self._pool = pool
        self._pool_lock = threading.Lock()
        self._full_evidence = full_evidence

    @property
    def pool(self) -> DecoderPool:
        """The decoder pool (created on first use: importing this module loads nothing)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = _shared_pool()
            return self._pool

    def languages(self) -> tuple[str, ...]:
        return ("en",)

    def open(self, grammar: Grammar, options: AsrOptions) -> SphinxStream:
        """A recognizer for one utterance of ``grammar``.

        Raises:
            AsrError: the grammar is not English or has words the dictionary lacks.
        """
        if grammar.language.split("-")[0].lower() not in self.languages():
            raise AsrError(f"PocketSphinx recognises English only, not {grammar.language!r}")
        pool = self.pool
        # Build (or find) a decoder now, so a bad grammar fails here, then give it back: the
        # stream takes one only when speech starts. A silent caller holds no decoder (each is
        # ~27 MB), and a burst of calls opening streams costs one build per grammar.
        pool.give(pool.take(grammar))
        return SphinxStream(pool, grammar, options, full_evidence=self._full_evidence)


_SHARED: DecoderPool | None = None
_SHARED_LOCK = threading.Lock()


def _shared_pool() -> DecoderPool:
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = DecoderPool()
        return _SHARED


class SphinxStream:
    """One utterance: feed 20 ms frames with :meth:`accept`, end with :meth:`finish`."""

    def __init__(self, pool: DecoderPool, grammar: Grammar, options: AsrOptions, *,
                 full_evidence: bool = False) -> None:
        self._pool = pool
        self._full_evidence = full_evidence  # run the rival pass even when it cannot matter
        self._grammar = grammar
        self._done = False
        self._dec: _Decoder | None = None  # taken from the pool when speech starts
        self._options = options
        self._denoiser = Denoiser() if DENOISE else None
        self._wideband = Wideband()
        self._endpointer = Endpointer(options.end_silence, options.max_speech)
        frames = round(PRE_ROLL * SAMPLE_RATE / FRAME_SAMPLES) + 3  # + the VAD's start frames
        self._pre_roll: deque[NDArray[np.int16]] = deque(maxlen=frames)
        self._frames_in_speech = 0
        self._partial = ""
        self._complete = False  # the last hypothesis read was complete (see _look)
        self._complete_end: int | None = None  # decoder frame where it ended
        self.unexplained = 0.0  # share of voiced audio left unexplained (see _unexplained)
        self.voiced = 0.0  # seconds of loud audio in the utterance (the endpointer's)
        self._started = False
        self._origin = 0.0  # stream time of the decoders' frame 0
        self._audio: list[bytes] = []  # the front end's output, for the rival pass
        self.evidence: Evidence | None = None  # what the decision was made on (benchmarks)

    @property
    def decided(self) -> bool:
        """True once Final, NoMatch or NoSpeech has been returned."""
        return self._done

    def accept(self, frame: np.ndarray) -> list[AsrEvent]:
        """Feed one 20 ms frame (int16, 160 samples at 8 kHz)."""
        if self._done:
            return []
        pcm = np.asarray(frame, dtype=np.int16)
        event = self._endpointer.feed(pcm)
        events: list[AsrEvent] = []
        if not self._started:
            # Until speech starts only the endpointer runs (the front end starts with the
            # pre-roll, whose first quarter second is what the noise filter learns from).
            self._pre_roll.append(pcm)
            if isinstance(event, SpeechStart):
                events.append(SpeechStarted(event.time))
                if self._denoiser is not None:
                    self._denoiser.noise_only(round(self._lead() * SAMPLE_RATE))
                self._start(self._front(np.concatenate(self._pre_roll)).tobytes())
                self._pre_roll.clear()
            return events
        assert self._dec is not None
        self._feed(self._front(pcm).tobytes())
        self._frames_in_speech += 1
        if self._frames_in_speech % PARTIAL_EVERY == 0:
            events += self._look(self._dec)
            if not isinstance(event, SpeechEnd):
                event = self._decoder_end(self._dec)
        if isinstance(event, SpeechEnd):
            events += self._decide(event)
        return events

    def finish(self) -> list[AsrEvent]:
        """No more audio: decide now (Final, NoMatch or NoSpeech) unless already decided."""
        if self._done:
            return []
        end = self._endpointer.finish()
        if end is None:  # nobody spoke
            self._release()
            return [NoSpeech()]
        return self._decide(end)

    def _front(self, pcm: NDArray[np.int16]) -> NDArray[np.int16]:
        """8 kHz telephone audio -> 16 kHz for the model (noise filter, upsampling, fill)."""
        clean = self._denoiser.process(pcm) if self._denoiser is not None else pcm
        return self._wideband.process(clean)

    def _start(self, audio: bytes) -> None:
        self._dec = self._pool.take(self._grammar)
        self._started = True
        # Decoder frame 0 is this much audio into the stream (pre-roll, and the filter delay).
        fed = self._endpointer.now - len(self._pre_roll) * FRAME_SAMPLES / SAMPLE_RATE
        self._origin = fed - (LATENCY / SAMPLE_RATE if self._denoiser is not None else 0.0)
        # A pooled decoder carries state between utterances: PocketSphinx's own noise estimate
        # (remove_noise, on in the model's feat.params; only start_stream resets it) and the
        # live cepstral mean. Reset both so every utterance is decoded as by a fresh decoder.
        forget_noise(self._dec.decoder)
        self._prime(audio)
        self._dec.decoder.set_cmn(CMN_PRIOR)  # type: ignore[attr-defined]
        self._dec.decoder.start_utt()  # type: ignore[attr-defined]
        self._feed(audio)

    def _lead(self) -> float:
        """Seconds of the pre-roll before the detected start of speech (noise only)."""
        began = self._endpointer.now - len(self._pre_roll) * FRAME_SAMPLES / SAMPLE_RATE
        return max(0.0, (self._endpointer.speech_start or 0.0) - began)

    def _prime(self, audio: bytes) -> None:
        """On a noisy line, let PocketSphinx's noise estimate learn this call's noise first.

        Its own noise removal (``remove_noise``, on in the model) starts each utterance from
        the first frame's spectrum and needs seconds to follow a babble; before utterances were
        made independent it inherited a converged estimate from the previous caller. Decoding
        the noise-only lead of ``audio`` (16 kHz front-end output), looped to :data:`PRIME`
        seconds and :data:`PRIME_GAIN` louder, in a throw-away utterance gives it this caller's
        noise instead (tuning sample, 15 dB babble: 0.35 right without, 0.45 with 1 s, 0.50
        with 2 s, 0.55 with 2 s at +6 dB). Skipped on a quiet
        line, where it changed nothing but doubled the decoder's CPU.
        """
        assert self._dec is not None
        samples = round(self._lead() * SAMPLE_RATE)
        heard = np.concatenate(self._pre_roll)[:samples] if self._pre_roll else np.zeros(0)
        if PRIME <= 0 or samples < 100 or frame_level(heard) < self._endpointer.min_level_db:
            return
        lead = np.frombuffer(audio[: samples * 4], np.int16)  # the lead at 16 kHz, filtered
        noise = np.clip(np.rint(lead * PRIME_GAIN), -32768, 32767).astype(np.int16).tobytes()
        wanted = round(PRIME * SAMPLE_RATE) * 4
        dec = self._dec.decoder
        dec.start_utt()  # type: ignore[attr-defined]
        dec.process_raw((noise * (wanted // len(noise) + 1))[:wanted], False, False)  # type: ignore[attr-defined]
        dec.end_utt()  # type: ignore[attr-defined]

    def _feed(self, audio: bytes) -> None:
        assert self._dec is not None
        self._audio.append(audio)
        self._dec.decoder.process_raw(audio, False, False)  # type: ignore[attr-defined]

    def _look(self, dec: _Decoder) -> list[AsrEvent]:
        """Read the hypothesis: a Partial when it changed; shorten the end silence if complete."""
        hyp = dec.decoder.hyp()  # type: ignore[attr-defined]
        words = hyp.hypstr.split() if hyp is not None else []
        text, complete = dec.grammar.partial(words)
        self._complete = complete
        wanted = self._options.end_silence
        self._endpointer.end_silence = min(wanted, COMPLETE_SILENCE) if complete else wanted
        if text and text != self._partial:
            self._partial = text
            return [Partial(text)]
        return []

    def _decoder_end(self, dec: _Decoder) -> SpeechEnd | None:
        """End when the decoder has spent the end silence in silence after a word.

        In a babble of other voices the energy never drops, so the endpointer alone would wait
        for ``max_speech``; the decoder, which knows what the grammar's words sound like, calls
        that babble silence - or, once the caller has said a complete phrase, the garbage path
        takes over the best path to explain the babble: then the phrase's end counts.
        """
        segments = list(dec.decoder.seg() or [])  # type: ignore[attr-defined]
        words = [s for s in segments if not s.word.startswith(("<", "[", "+", "("))]
        frames = dec.decoder.n_frames()  # type: ignore[attr-defined]
        if words and words[-1].word.startswith(GARBAGE_MARK):
            if self._complete_end is None:
                return None
            trailing = (frames - 1 - self._complete_end) * 0.01
            if trailing + 1e-9 < min(self._options.end_silence, COMPLETE_SILENCE):
                return None
            return self._endpointer.end_now(self._origin + (self._complete_end + 1) * 0.01)
        self._complete_end = words[-1].end_frame if words and self._complete else None
        # The best path must end in silence that reaches the present: a word still being
        # heard is not on it yet, and its time must not count as silence.
        if not words or segments[-1] is words[-1] or segments[-1].end_frame < frames - 6:
            return None
        last = words[-1].end_frame
        trailing = (frames - 1 - last) * 0.01
        if trailing + 1e-9 < self._endpointer.end_silence:
            return None
        return self._endpointer.end_now(self._origin + (last + 1) * 0.01)

    def _decide(self, end: SpeechEnd) -> list[AsrEvent]:
        """Speech ended: score the utterance, Final or NoMatch."""
        dec = self._dec
        assert dec is not None
        dec.decoder.end_utt()  # type: ignore[attr-defined]
        hyp = dec.decoder.hyp()  # type: ignore[attr-defined]
        frames = dec.decoder.n_frames()  # type: ignore[attr-defined]
        segments = list(dec.decoder.seg() or [])  # type: ignore[attr-defined]
        text, choice = dec.grammar.interpret([s.word for s in segments])
        voiced = self._endpointer.voiced_seconds(0.0, self._endpointer.now, LOUD_DB)
        self.unexplained = self._unexplained(segments) / max(voiced, 0.02)
        self.voiced = voiced
        score = rival.score_per_frame(hyp.score if hyp is not None else 0.0, frames)
        judged = (self._judge(dec, segments, frames, score)
                  if rival.supported(dec.grammar.grammar) else None)  # fmt: skip
        if judged is None:
            accepted, confidence = self._by_floor(dec, text, score)
        else:
            accepted, confidence, text, choice = judged
        start = self._endpointer.speech_start or 0.0
        self._release()
        if choice is None or not accepted or confidence < self._options.min_confidence:
            return [NoMatch(text, round(confidence, 4), start, end.time, end.decided_at)]
        return [Final(text, choice, round(confidence, 4), start, end.time, end.decided_at)]

    def _by_floor(self, dec: _Decoder, text: str, score: float) -> tuple[bool, float]:
        """Digit strings, amounts and one-phrase grammars: the first pass's score per frame
        against a floor (no rival grammar to compare with)."""
        noisy = self._endpointer.peak_snr() < NOISY_SNR_DB
        floor = _floor(dec.grammar.grammar, dec.grammar.phrases, text, noisy)
        confidence = logistic((score - floor - CONF_MARGIN) / CONF_SCALE)
        return score >= floor and self.unexplained <= UNEXPLAINED, confidence

    def _judge(self, dec: _Decoder, segments: list[object], frames: int, score: float
               ) -> tuple[bool, float, str, str | None] | None:
        """Choice grammars: the rival pass and :func:`ivr.asr.confidence.decide` -> (accepted,
        confidence, text, choice); None when there is no rival grammar (one phrase).

        Both passes are scored over the speech span only (:func:`ivr.asr.rival.speech_span`):
        the rival pass decodes just that audio, and the first pass's score over it comes from its
        segments (``score``, over the whole utterance, is then not used)."""
        words: list[str] = [s.word for s in segments]  # type: ignore[attr-defined]
        text, choice = dec.grammar.interpret(words)
        garbage_won = any(w.startswith(GARBAGE_MARK) for w in words)
        if choice is None and not garbage_won:  # silence only, or no path at all
            return False, 0.0, text, None
        bigram = phone_bigram(self._pool.model_dir / "en-us" / "en-us-phone.lm.bin")
        if garbage_won:  # the rescue pass decodes the whole utterance: whole-utterance scores
            return self._rescue(dec, score, bigram)
        span = rival.speech_span(segments, frames, rival.SPAN_PAD)
        whole = span == (0, max(frames - 1, 0))
        if not whole:
            score = rival.span_score(segments, span)
        search = rival.ensure_search(dec.decoder, dec.rivals, dec.grammar.grammar,
                                     choice, bigram)  # fmt: skip
        if search is None:
            return None
        if not self._full_evidence and not rival.needed(_constants(), score, False,
                                                        self.unexplained):  # fmt: skip
            return False, 0.0, text, None  # decide() would reject whatever the rival found
        audio = self._audio if whole else [rival.span_audio(self._audio, span)]
        found = rival.run_rival(dec.decoder, search[0], search[1], audio, CMN_PRIOR)
        if not whole:
            found = rival.tie_same_words(found, text, score)
        self.evidence = Evidence(
            score, found.score if found else None, found.garbage if found else False,
            False, found.choice if found else None, self.unexplained, choice,
            self._endpointer.peak_snr(), _choices(dec), *_phrase_extent(dec.decoder, segments),
            self.voiced)  # fmt: skip
        accepted, confidence = decide(self.evidence, _constants())
        return accepted, confidence, text, choice

    def _rescue(self, dec: _Decoder, score: float, bigram: Bigram
                ) -> tuple[bool, float, str, str | None]:
        """The first pass ended on the garbage path: spot a phrase in the utterance
        (:mod:`ivr.asr.rescue`) and let :func:`ivr.asr.confidence.decide` judge it -> (accepted,
        confidence, text, choice)."""
        snr = self._endpointer.peak_snr()
        loud = self._endpointer.voiced_seconds(0.0, self._endpointer.now, LOUD_DB)
        if not (RESCUE_ALWAYS or rescue_wanted(snr, _constants())):
            # No rescue could be accepted on this line: spare the pass (a no-match).
            self.evidence = Evidence(score, None, False, True, None, self.unexplained, None, snr,
                                     voiced=loud, phrases=_choices(dec))  # fmt: skip
            return False, 0.0, "", None
        spotting = rescue.ensure_search(dec.decoder, dec.rivals, dec.grammar, bigram)
        found = rescue.run_spotting(dec.decoder, spotting, self._audio, CMN_PRIOR)
        share = seconds = 0.0
        if found is not None and found.choice is not None:
            start = self._origin + found.start * rescue.FRAME
            end = self._origin + (found.end + 1) * rescue.FRAME
            seconds = end - start
            share = self._endpointer.voiced_seconds(start, end, LOUD_DB) / max(loud, 0.02)
        self.evidence = Evidence(
            score, found.score if found else None, False, True, found.choice if found else None,
            self.unexplained, None, snr, rescue_share=min(share, 1.0), rescue_seconds=seconds,
            voiced=loud, phrases=_choices(dec))  # fmt: skip
        accepted, confidence = decide(self.evidence, _constants())
        return accepted, confidence, found.text if found else "", self.evidence.rival_choice

    def _unexplained(self, segments: list[object]) -> float:
        """Seconds of voiced audio that the grammar path spent in silence or noise fillers.

        The decoder must explain every frame; when the caller said more than the grammar holds,
        the best grammar path often calls the rest "silence". The endpointer heard voice there.
        """
        total = 0.0
        for seg in segments:
            word: str = seg.word  # type: ignore[attr-defined]
            if word.startswith(("<", "[", "+")):
                start = self._origin + seg.start_frame * 0.01  # type: ignore[attr-defined]
                end = self._origin + (seg.end_frame + 1) * 0.01  # type: ignore[attr-defined]
                total += self._endpointer.voiced_seconds(start, end, LOUD_DB)
        return total

    def _release(self) -> None:
        if self._dec is not None:
            self._pool.give(self._dec)
        self._dec = None
        self._audio = []
        self._done = True


def _phrase_extent(decoder: object, segments: list[object]) -> tuple[int, float]:
    """(phones, seconds) of the path's words other than fillers and the garbage path's: how
    long the phrase is in the dictionary and how long the caller took to say it."""
    phones = 0
    frames = 0
    for seg in segments:
        word: str = seg.word  # type: ignore[attr-defined]
        if word.startswith(("<", "[", "+", GARBAGE_MARK)):
            continue
        pron = decoder.lookup_word(word)  # type: ignore[attr-defined]
        phones += len(pron.split()) if pron else 0
        frames += seg.end_frame - seg.start_frame + 1  # type: ignore[attr-defined]
    return phones, frames * 0.01


def _choices(dec: _Decoder) -> int:
    """How many choices the decoder's grammar holds (phrases under one choice count once)."""
    return len(set(dec.grammar.phrases.values()))


@functools.lru_cache(maxsize=1)
def _constants() -> Constants:
    """The decision's thresholds (ivr/asr/decision.json, read once)."""
    return load_constants()


def _floor(grammar: Grammar, phrases: dict[str, str], text: str, noisy: bool) -> float:
    """The score per frame below which ``text``, heard with ``grammar`` (``phrases``), is
    rejected."""
    fixed_length = (grammar.min_digits or 1) == (grammar.max_digits or 0)
    if grammar.builtin == "digits" and text not in phrases and fixed_length and not noisy:
        return SCORE_FLOOR_DIGITS
    return SCORE_FLOOR


__all__ = ["COMPLETE_SILENCE", "PRE_ROLL", "DecoderPool", "SphinxBackend", "SphinxStream",
           "forget_noise"]
