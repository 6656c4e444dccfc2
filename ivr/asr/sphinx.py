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
4. with :data:`BATCH_DECISION` the utterance is decoded once more with the grammar and once
   with the *reference* decoder (PocketSphinx's phone recognizer, ``allphone`` search with the
   model's phone trigram), both starting from the cepstral mean the streaming pass ended with
   (near the utterance's own; the streaming pass had to start from :data:`CMN_PRIOR`). These
   passes run :data:`DECIDE_SECONDS` of the utterance per frame fed, so a decision takes a
   few frames (its ``decided_at`` says so) and never stalls the other streams of a worker; the
   grammar's words are mapped back to a choice key or a built-in value and the result is
   scored against the reference.

Acoustic model: the means adapted to telephone audio by :mod:`ivr.asr.adapt` (MLLR per phone
class, estimated on synthesized speech through this front end). Pronunciations: the CMU
dictionary's, plus non-rhotic ones for the grammar's words and band-limited ones for digits
(:mod:`ivr.asr.grammar`).

Rejection and confidence. The reference may say any phones, so its score bounds what any words
could score. The log-likelihood ratio per frame ``(grammar - reference) / frames`` (1e-4 of
PocketSphinx's log units) is near zero when the grammar explains the audio about as well as
free phones, and far below when the caller said something else. A result is a
:class:`NoMatch` when the ratio is under its floor (:func:`_floor`: one for phrases, a lower one
for digit strings of fixed length, higher ones in noise as judged by the endpointer's
:meth:`~ivr.asr.endpoint.Endpointer.peak_snr`), when the grammar's path called more than
:data:`UNEXPLAINED` of the loud audio silence, or when the confidence is under
``options.min_confidence``. ``confidence = 1 / (1 + exp(-(ratio - floor - CONF_MARGIN) /
CONF_SCALE))``: 0.27 at the floor, 0.5 where the flows' default threshold asks the caller to
confirm.

Measured: docs/ASR.md (`make bench-asr`), on a tuning set and a held-out one.

Decoders are pooled (:class:`DecoderPool`) per ``grammar.key()``, the reference decoders in a
pool of their own: the first stream for a grammar pays for loading the model and building the
FSG (tens of ms), later ones reuse an idle decoder. A stream holds decoders only from the start
of speech to its decision, so a hundred callers listening in silence share one or two.
PocketSphinx holds the GIL while it decodes.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

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
from ivr.asr.denoise import LATENCY, Denoiser
from ivr.asr.endpoint import Endpointer, SpeechEnd, SpeechStart
from ivr.asr.grammar import CompiledGrammar, compile_grammar
from ivr.asr.upsample import Wideband

PRE_ROLL = 0.3  # seconds of audio before the detected start given to the decoders
PARTIAL_EVERY = 5  # frames between looks at the hypothesis (100 ms)
COMPLETE_SILENCE = 0.3  # end silence once the hypothesis is complete and unambiguous
ADAPT = True  # load the means adapted to telephone audio (ivr.asr.adapt)
GARBAGE = False  # also give the grammar FSG a phone-loop garbage path (ivr.asr.grammar)
DENOISE = True
BATCH_DECISION = True  # decide on second passes over the whole utterance, see module doc
# Audio of the deciding passes processed per frame fed (s): a decision is spread over a few
# frames, so that one caller's decision never stalls the other streams of its worker.
DECIDE_SECONDS = 0.4
# Log-likelihood ratio per frame below which a result is a no-match. Chosen on the tuning set
# of bench/asr (docs/ASR.md has it and a held-out set): about the highest floor that keeps the
# clean in-grammar phrases; the out-of-grammar sentences that get past it score like right
# answers, so a higher floor only trades callers for false accepts.
REJECT_RATIO = -1.5
# Digit strings of fixed length: whole strings score lower than phrases (every digit is a short
# word with rivals), and a rejected string loses every digit, so a lower floor.
REJECT_RATIO_DIGITS = -3.5
# A digit loop of open length can imitate any speech much better than a fixed phrase can, so
# out-of-grammar speech scores higher there: a stricter floor (not measured: the set has no
# open-length digit items).
REJECT_RATIO_OPEN_DIGITS = -1.5
# In noise (the caller's loud syllables less than NOISY_SNR_DB over the noise floor) the ratio
# separates less: other voices behind the caller let a wrong phrase explain the audio nearly as
# well as free phones do. There the floors rise: a noisy caller is asked again more often
# instead of being sent down a wrong branch.
NOISY_SNR_DB = 40.0
REJECT_RATIO_NOISY = 0.5
REJECT_RATIO_DIGITS_NOISY = -1.5
UNEXPLAINED = 0.65  # share of the loud audio the grammar path may call silence or noise
LOUD_DB = 12.0  # "loud": this far over the noise floor (a babble behind the caller rarely is)
# Confidence is the ratio's distance above its floor: 0.27 at the floor, 0.5 CONF_MARGIN above
# it (the flows' default confirmation threshold: about 3 % of right answers are confirmed).
CONF_MARGIN = 3.0
CONF_SCALE = 3.0
# Where the streaming pass's cepstral mean starts, so that it never depends on the previous
# caller: the mean of telephone speech upsampled without the noise filter. (The mean measured
# through the full front end did slightly worse on partials and endpointing, in noise most.)
CMN_PRIOR = "54.8,-4.97,5.09,0.01,-0.89,-4.62,-2.44,-0.18,2.91,1.27,-2.27,1.79,2.01"
DECODER_SETTINGS: dict[str, object] = {
    "bestpath": False,  # lattice rescoring cost time and lost accuracy in grammar mode
    "wip": 0.01,  # word insertion penalty: the default 0.65 dropped digits from strings
    "loglevel": "FATAL",
}
# The reference's phone trigram weighs less than grammar words do (lw 6.5): at full weight its
# language score grew with every phone and a long off-topic sentence could score under a
# one-word grammar path stretched over it; measured best separation at 2-3.
# Scoring every second frame against the 2 best Gaussians: the reference costs 0.026 instead of
# 0.042 s per second of speech (it is most of the recognizer's CPU) for the same separation.
REFERENCE_SETTINGS: dict[str, object] = {"lw": 3.0, "ds": 2, "topn": 2}
_REFERENCE = "\x00allphone"  # pool key of the reference decoders


def _model_dir() -> Path:
    import pocketsphinx

    return Path(pocketsphinx.get_model_path())


@dataclass
class _Decoder:
    """A PocketSphinx decoder with one search active (a grammar's FSG, or the reference)."""

    decoder: object  # pocketsphinx.Decoder
    key: str
    grammar: CompiledGrammar | None = None


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

    def take(self, grammar: Grammar | None) -> _Decoder:
        """An idle decoder for ``grammar`` (None: a reference decoder), or a new one."""
        key = _REFERENCE if grammar is None else grammar.key()
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

    def _build(self, grammar: Grammar | None, key: str) -> _Decoder:
        import pocketsphinx

        model = self.model_dir / "en-us"
        config = pocketsphinx.Config(hmm=str(model / "en-us"),
                                     dict=str(model / "cmudict-en-us.dict"), lm=None)  # fmt: skip
        settings = DECODER_SETTINGS | (REFERENCE_SETTINGS if grammar is None else {})
        for name, value in settings.items():
            config[name] = value
        if ADAPT:
            config["mean"] = str(adapted_means(model / "en-us"))
        try:
            decoder = pocketsphinx.Decoder(config)
        except RuntimeError as exc:
            raise AsrError(f"PocketSphinx could not load its model from {model}: {exc}") from None
        if grammar is None:
            decoder.add_allphone_file("allphone", str(model / "en-us-phone.lm.bin"))
            decoder.activate_search("allphone")
            return _Decoder(decoder, key)
        compiled = compile_grammar(grammar, decoder.lookup_word, garbage=GARBAGE)
        for i, (word, phones) in enumerate(compiled.extra_words):
            decoder.add_word(word, phones, i == len(compiled.extra_words) - 1)
        transitions = [t if t[3] is not None else t[:3] for t in compiled.transitions]
        decoder.add_fsg("grammar", decoder.create_fsg("grammar", 0, 1, transitions))
        decoder.activate_search("grammar")
        return _Decoder(decoder, key, compiled)


class SphinxBackend:
    """The PocketSphinx backend (English)."""

    name = "pocketsphinx"

    def __init__(self, pool: DecoderPool | None = None) -> None:
        self._pool = pool
        self._pool_lock = threading.Lock()

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
        return SphinxStream(pool, grammar, options)


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

    def __init__(self, pool: DecoderPool, grammar: Grammar, options: AsrOptions) -> None:
        self._pool = pool
        self._grammar = grammar
        self._done = False
        self._dec: _Decoder | None = None  # taken from the pool when speech starts
        self._ref: _Decoder | None = None
        self._options = options
        self._denoiser = Denoiser() if DENOISE else None
        self._wideband = Wideband()
        self._endpointer = Endpointer(options.end_silence, options.max_speech)
        frames = round(PRE_ROLL * SAMPLE_RATE / FRAME_SAMPLES) + 3  # + the VAD's start frames
        self._pre_roll: deque[NDArray[np.int16]] = deque(maxlen=frames)
        self._frames_in_speech = 0
        self._partial = ""
        self.unexplained = 0.0  # share of voiced audio left unexplained (see _unexplained)
        self._started = False
        self._audio: list[bytes] = []  # the utterance so far (for the deciding passes)
        self._pending: bytes | None = None  # what the deciding passes have still to process
        self._ending: SpeechEnd | None = None
        self._deciding_frames = 0  # frames fed while the deciding passes ran
        self._origin = 0.0  # stream time of the decoders' frame 0

    @property
    def decided(self) -> bool:
        """True once Final, NoMatch or NoSpeech has been returned."""
        return self._done

    def accept(self, frame: np.ndarray) -> list[AsrEvent]:
        """Feed one 20 ms frame (int16, 160 samples at 8 kHz)."""
        if self._done:
            return []
        if self._pending is not None:  # deciding: this frame's time goes to the passes
            self._deciding_frames += 1
            return self._go_on(DECIDE_SECONDS)
        pcm = np.asarray(frame, dtype=np.int16)
        event = self._endpointer.feed(pcm)
        events: list[AsrEvent] = []
        if not self._started:
            # Until speech starts only the endpointer runs (the front end starts with the
            # pre-roll, whose first quarter second is what the noise filter learns from).
            self._pre_roll.append(pcm)
            if isinstance(event, SpeechStart):
                events.append(SpeechStarted(event.time))
                self._start(self._front(np.concatenate(self._pre_roll)).tobytes())
                self._pre_roll.clear()
            return events
        self._feed(self._front(pcm).tobytes())
        assert self._dec is not None
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
        if self._pending is not None:
            return self._go_on(None)
        end = self._endpointer.finish()
        if end is None:  # nobody spoke
            self._release()
            return [NoSpeech()]
        events = self._decide(end)
        return events if self._pending is None else self._go_on(None)

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
        self._ref = self._pool.take(None)
        for dec in self._streaming():
            dec.decoder.set_cmn(CMN_PRIOR)  # type: ignore[attr-defined]
            dec.decoder.start_utt()  # type: ignore[attr-defined]
        self._feed(audio)

    def _streaming(self) -> list[_Decoder]:
        """The decoders fed frame by frame (the reference only when not deciding in batch)."""
        decs = [self._dec] if BATCH_DECISION else [self._dec, self._ref]
        return [d for d in decs if d is not None]

    def _feed(self, audio: bytes) -> None:
        if BATCH_DECISION:
            self._audio.append(audio)
        for dec in self._streaming():
            dec.decoder.process_raw(audio, False, False)  # type: ignore[attr-defined]

    def _look(self, dec: _Decoder) -> list[AsrEvent]:
        """Read the hypothesis: a Partial when it changed; shorten the end silence if complete."""
        assert dec.grammar is not None
        hyp = dec.decoder.hyp()  # type: ignore[attr-defined]
        words = hyp.hypstr.split() if hyp is not None else []
        text, complete = dec.grammar.partial(words)
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
        that babble silence.
        """
        segments = list(dec.decoder.seg() or [])  # type: ignore[attr-defined]
        words = [s for s in segments if not s.word.startswith(("<", "[", "+", "("))]
        frames = dec.decoder.n_frames()  # type: ignore[attr-defined]
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
        """Speech ended: start the deciding passes (and do the first part of them)."""
        dec = self._dec
        assert dec is not None and dec.grammar is not None
        self._ending = end
        if BATCH_DECISION:
            # The passes start from the cepstral mean the streaming pass ended with (near the
            # utterance's own), so that they can run a part at a time.
            cmn = dec.decoder.get_cmn(True)  # type: ignore[attr-defined]
        for d in self._streaming():
            d.decoder.end_utt()  # type: ignore[attr-defined]
        if not BATCH_DECISION:
            return self._conclude()
        for pooled in (dec, self._ref):
            if pooled is not None:
                pooled.decoder.set_cmn(cmn)  # type: ignore[attr-defined]
                pooled.decoder.start_utt()  # type: ignore[attr-defined]
        self._pending = b"".join(self._audio)
        self._audio = []
        return self._go_on(DECIDE_SECONDS)

    def _go_on(self, seconds: float | None) -> list[AsrEvent]:
        """Run the deciding passes over ``seconds`` more of the utterance (None: the rest)."""
        assert self._pending is not None
        size = len(self._pending) if seconds is None else int(seconds * 4 * SAMPLE_RATE) & ~1
        chunk, self._pending = self._pending[:size], self._pending[size:]
        for pooled in (self._dec, self._ref):
            if pooled is not None and chunk:
                pooled.decoder.process_raw(chunk, False, False)  # type: ignore[attr-defined]
        if self._pending:
            return []
        self._pending = None
        for pooled in (self._dec, self._ref):
            if pooled is not None:
                pooled.decoder.end_utt()  # type: ignore[attr-defined]
        return self._conclude()

    def _conclude(self) -> list[AsrEvent]:
        """Score the decided utterance: Final or NoMatch."""
        dec, ref, end = self._dec, self._ref, self._ending
        assert dec is not None and dec.grammar is not None and end is not None
        decided_at = end.decided_at + self._deciding_frames * self._endpointer.frame_seconds
        scores = []
        for pooled in (dec, ref):
            if pooled is not None:
                hyp = pooled.decoder.hyp()  # type: ignore[attr-defined]
                scores.append(math.log(hyp.score) if hyp is not None and hyp.score > 0 else None)
        frames = dec.decoder.n_frames()  # type: ignore[attr-defined]
        segments = list(dec.decoder.seg() or [])  # type: ignore[attr-defined]
        text, choice = dec.grammar.interpret([s.word for s in segments])
        voiced = self._endpointer.voiced_seconds(0.0, self._endpointer.now, LOUD_DB)
        self.unexplained = self._unexplained(segments) / max(voiced, 0.02)
        ratio = _ratio(scores, frames)
        noisy = self._endpointer.peak_snr() < NOISY_SNR_DB
        floor = _floor(dec.grammar.grammar, dec.grammar.phrases, text, noisy)
        above = (ratio - floor - CONF_MARGIN) / CONF_SCALE
        confidence = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, above))))
        start = self._endpointer.speech_start or 0.0
        self._release()
        rejected = (ratio < floor or self.unexplained > UNEXPLAINED
                    or confidence < self._options.min_confidence)  # fmt: skip
        if choice is None or rejected:
            return [NoMatch(text, round(confidence, 4), start, end.time, decided_at)]
        return [Final(text, choice, round(confidence, 4), start, end.time, decided_at)]

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
        for dec in (self._dec, self._ref):
            if dec is not None:
                self._pool.give(dec)
        self._dec = self._ref = None
        self._done = True


def _floor(grammar: Grammar, phrases: dict[str, str], text: str, noisy: bool) -> float:
    """The ratio below which ``text``, heard with ``grammar`` (``phrases``), is rejected."""
    if grammar.builtin == "digits" and text not in phrases:  # a digit string was heard
        if (grammar.min_digits or 1) != (grammar.max_digits or 0):
            return REJECT_RATIO_OPEN_DIGITS
        return REJECT_RATIO_DIGITS_NOISY if noisy else REJECT_RATIO_DIGITS
    return REJECT_RATIO_NOISY if noisy else REJECT_RATIO


def _ratio(scores: list[float | None], frames: int) -> float:
    """Grammar against reference log-likelihood per frame (1e-4 log units); -inf-ish if none."""
    if len(scores) != 2 or scores[0] is None or scores[1] is None or frames <= 0:
        return -1e9
    return (scores[0] - scores[1]) / frames * 1e4


__all__ = ["COMPLETE_SILENCE", "PRE_ROLL", "DecoderPool", "SphinxBackend", "SphinxStream"]
