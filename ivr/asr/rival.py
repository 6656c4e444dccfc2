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
from ivr.asr.grammar import GARBAGE_ENTRY, GARBAGE_MARK, Bigram, CompiledGrammar, compile_grammar

MAIN_SEARCH = "grammar"
# The rival grammar's garbage path is entered as the first pass's is. (Entered more easily,
# 1e-12, the margins told right answers from out-of-grammar speech less well: at the same
# false-accept limit 0.69 right instead of 0.74 on an eighth of the tuning items.) Rival
# grammars always keep a garbage path: PocketSphinx scores each frame against the best *active*
# senone, and without the phone loop's senones in the search a phrase's score per frame is
# inflated and no longer compares with the first pass's.
RIVAL_GARBAGE_ENTRY = GARBAGE_ENTRY


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
        words = [s.word for s in (d.seg() or [])]  # type: ignore[attr-defined]
    finally:
        d.activate_search(MAIN_SEARCH)  # type: ignore[attr-defined]
    if hyp is None or hyp.score <= 0.0 or frames <= 0:
        return None
    text, choice = compiled.interpret(words)
    garbage = any(w.startswith(GARBAGE_MARK) for w in words)
    return RivalResult(score_per_frame(hyp.score, frames), garbage, choice, text)


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


__all__ = ["MAIN_SEARCH", "RivalResult", "add_search", "ensure_search", "rival_grammar",
           "run_rival", "score_per_frame", "supported"]  # fmt: skip
