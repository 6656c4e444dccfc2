"""The rival pass: the utterance decoded again with a grammar that lacks the first pass's answer.

:mod:`ivr.asr.confidence` explains why. This module builds the rival grammars (compiled once per
pooled decoder and kept in it as extra FSG searches, so a rival pass costs no build) and runs one
pass over the front-end audio the first pass was fed:

- ``without <key>``: the grammar minus one choice, garbage path included (the first pass chose
  ``key``);
- ``phrases``: the grammar's phrases alone, no garbage path (the first pass chose garbage).

The decoder is the pooled one that ran the first pass (same dictionary, same model), switched to
the rival search and back; the cepstral mean starts from the same prior as the first pass, so
the two passes see the same features and their scores per frame compare.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ivr.asr.base import Grammar
from ivr.asr.confidence import Constants
from ivr.asr.grammar import GARBAGE_ENTRY, GARBAGE_MARK, Bigram, CompiledGrammar, compile_grammar

MAIN_SEARCH = "grammar"
# The rival grammar's garbage path is entered as the first pass's is. (Entered more easily,
# 1e-12, the margins told right answers from out-of-grammar speech less well: at the same
# false-accept limit 0.69 right instead of 0.74 on an eighth of the tuning items.) Rival
# grammars always keep a garbage path: PocketSphinx scores each frame against the best *active*
# senone, and without the phone loop's senones in the search a phrase's score per frame is
# inflated and no longer compares with the first pass's.
RIVAL_GARBAGE_ENTRY = GARBAGE_ENTRY
# Decoder frames (10 ms) of context kept on each side of the first pass's words when both passes
# are scored over the speech span only (:func:`speech_span`); None: over the whole utterance.
SPAN_PAD: int | None = 10
# A threshold at least this large is off (tune_decision.py writes 1e9 for "never").
OFF = 1e6
FRAME_BYTES = 320  # one 10 ms decoder frame of 16 kHz int16 audio
WINDOW_BYTES = 500  # what a frame's analysis window (25.6 ms) reaches past the frame's shift


@dataclass(frozen=True)
class RivalResult:
    """The rival pass's best path: score per frame, whether it was garbage, its choice."""

    score: float
    garbage: bool
    choice: str | None
    text: str = ""


def rival_grammar(grammar: Grammar, winner: str | None) -> Grammar | None:
    """The grammar the rival pass uses (None: there is no rival, e.g. a one-phrase grammar).

    ``winner`` None: the phrases alone (the garbage path is left out by the caller).
    """
    if winner is None:
        return grammar
    choices = {k: v for k, v in grammar.choices.items() if k != winner}
    if not choices:
        return None
    return replace(grammar, choices=choices)


def supported(grammar: Grammar) -> bool:
    """The rival pass runs on choice grammars only (digit strings and amounts have no finite
    list of rivals; they keep the first pass's floor)."""
    return bool(grammar.choices) and grammar.builtin is None


def ensure_search(decoder: object, searches: dict[str, CompiledGrammar], grammar: Grammar,
                  winner: str | None, bigram: Bigram) -> tuple[str, CompiledGrammar] | None:
    """The rival search's name in ``decoder`` and its compiled grammar; built and added to the
    decoder (and to ``searches``, the decoder's own record of them) on first use."""
    name = f"rival-{winner}" if winner is not None else "rival-phrases"
    if name in searches:
        return name, searches[name]
    rival = rival_grammar(grammar, winner)
    if rival is None:
        return None
    compiled = compile_grammar(rival, decoder.lookup_word,  # type: ignore[attr-defined]
                               bigram=bigram if winner is not None else None,
                               garbage_entry=RIVAL_GARBAGE_ENTRY)  # fmt: skip
    add_search(decoder, name, compiled)
    searches[name] = compiled
    return name, compiled


def run_rival(decoder: object, name: str, compiled: CompiledGrammar, audio: Sequence[bytes],
              cmn: str) -> RivalResult | None:
    """Decode ``audio`` (the first pass's 16 kHz chunks) with search ``name``; back to the main
    search afterwards. None when the search found no path."""
    found = decode_with(decoder, name, audio, cmn)
    if found is None:
        return None
    score, segments = found
    words = [word for word, _, _ in segments]
    text, choice = compiled.interpret(words)
    garbage = any(w.startswith(GARBAGE_MARK) for w in words)
    return RivalResult(score, garbage, choice, text)


Segments = list[tuple[str, int, int]]  # (word, first frame, last frame) of a best path


def decode_with(decoder: object, name: str, audio: Sequence[bytes], cmn: str
                ) -> tuple[float, Segments] | None:
    """Decode ``audio`` once more with the decoder's search ``name`` (the cepstral mean from
    ``cmn``), then switch back to the main search: the best path's score per frame and its
    segments, or None when the search found no path."""
    d = decoder
    d.activate_search(name)  # type: ignore[attr-defined]
    try:
        d.set_cmn(cmn)  # type: ignore[attr-defined]
        d.start_utt()  # type: ignore[attr-defined]
        for chunk in audio:
            d.process_raw(chunk, False, False)  # type: ignore[attr-defined]
        d.end_utt()  # type: ignore[attr-defined]
        hyp = d.hyp()  # type: ignore[attr-defined]
        frames = d.n_frames()  # type: ignore[attr-defined]
        segments = [(s.word, s.start_frame, s.end_frame)
                    for s in (d.seg() or [])]  # type: ignore[attr-defined]
    finally:
        d.activate_search(MAIN_SEARCH)  # type: ignore[attr-defined]
    if hyp is None or hyp.score <= 0.0 or frames <= 0:
        return None
    return score_per_frame(hyp.score, frames), segments


def tie_same_words(found: RivalResult | None, text: str, score: float) -> RivalResult | None:
    """The rival with the first pass's own score when it found the very same words (one phrase
    under two choices): over the speech span the two scores come from two decodes that start
    differently (:func:`span_score`), so equal words would not score exactly equal, and
    :func:`ivr.asr.confidence.decide` must still see the tie."""
    if found is None or found.garbage or found.text != text:
        return found
    return replace(found, score=score)


def needed(c: Constants, score: float, garbage_won: bool, unexplained: float) -> bool:
    """Whether :func:`ivr.asr.confidence.decide` could accept anything, whatever the rival pass
    finds: when it could not, the rival pass is not run (the caller gets the same no-match for
    less CPU). No: the garbage path won and ``rescue`` is off; the phrase's path left more of the
    loud audio unexplained than allowed; the first pass's score is under every floor."""
    if garbage_won:
        return c.rescue < OFF
    if c.floor_per_log_phrases < 0.0:  # floors that fall with the grammar's size: no bound
        return True
    floors = (c.floor_garbage, c.floor_phrase, c.floor_garbage_quiet, c.floor_phrase_quiet)
    # The floors only rise with the grammar's size and the pace charge only lowers the score.
    return unexplained <= c.unexplained and score >= min(floors)


def speech_span(segments: Sequence[object], frames: int, pad: int | None) -> tuple[int, int]:
    """The decoder frames ``[start, end]`` both passes are scored over: the first pass's words
    (garbage phones count: they are the caller's audio too) widened by ``pad`` frames each side,
    or the whole utterance when ``pad`` is None or the path has no word.

    The pre-roll and the trailing silence fit any path that ends in silence almost perfectly:
    decoding them again costs CPU (the trailing silence alone is 0.3-0.8 s) and, averaged into a
    score per frame, they dilute a short word's mismatch.
    """
    words = [s for s in segments if not _is_silence(s.word)]  # type: ignore[attr-defined]
    if pad is None or not words or frames <= 0:
        return 0, max(frames - 1, 0)
    start = max(0, words[0].start_frame - pad)  # type: ignore[attr-defined]
    end = min(frames - 1, words[-1].end_frame + pad)  # type: ignore[attr-defined]
    return start, max(start, end)


def span_score(segments: Sequence[object], span: tuple[int, int]) -> float:
    """The first pass's best path score per frame over ``span``, from its segments: each
    segment's acoustic and language scores, the share of its frames inside the span counted
    (a silence's score spread evenly over its frames), in 1e-4 log units as
    :func:`score_per_frame`. Over the whole utterance this is the path's own score per frame
    (PocketSphinx's path score is the sum of its segments' scores)."""
    start, end = span
    total = 0.0
    for seg in segments:
        a, b = seg.start_frame, seg.end_frame  # type: ignore[attr-defined]
        inside = min(b, end) - max(a, start) + 1
        if inside <= 0:
            continue
        share = inside / (b - a + 1)
        prob = seg.ascore * seg.lscore  # type: ignore[attr-defined]
        total += share * math.log(max(prob, 1e-300))
    return total / (end - start + 1) * 1e4


def span_audio(audio: Sequence[bytes], span: tuple[int, int]) -> bytes:
    """The front-end audio (16 kHz chunks as the first pass was fed them) that gives decoder
    frames ``span`` again: from the span's first frame to its last frame's window."""
    start, end = span
    return b"".join(audio)[start * FRAME_BYTES : (end + 1) * FRAME_BYTES + WINDOW_BYTES]


def _is_silence(word: str) -> bool:
    """Silence and noise fillers (``<sil>``, ``[NOISE]``, ``+breath+``), not words."""
    return word.startswith(("<", "[", "+"))


def add_search(decoder: object, name: str, compiled: CompiledGrammar) -> None:
    """Add ``compiled`` to ``decoder`` as the FSG search ``name`` (not activated)."""
    transitions = [t if t[3] is not None else t[:3] for t in compiled.transitions]
    fsg = decoder.create_fsg(name, 0, 1, transitions)  # type: ignore[attr-defined]
    decoder.add_fsg(name, fsg)  # type: ignore[attr-defined]


def score_per_frame(score: float, frames: int) -> float:
    """A best path's score (PocketSphinx gives it as a probability) per frame, in 1e-4 log
    units; far below every floor when there is none."""
    if score <= 0.0 or frames <= 0:
        return -1e9
    return math.log(score) / frames * 1e4


__all__ = ["MAIN_SEARCH", "OFF", "SPAN_PAD", "RivalResult", "Segments", "add_search", "decode_with",
           "ensure_search", "needed", "rival_grammar", "run_rival", "score_per_frame", "span_audio",
           "span_score", "speech_span", "supported", "tie_same_words"]  # fmt: skip
