"""The rescue pass: a phrase spotted inside an utterance the first pass gave to the garbage path.

In loud babble (5 dB) the first pass ends on the garbage path for most in-grammar utterances:
its phrases must explain the whole utterance, the babble before and after the caller's word
included, and silence fillers explain babble badly, so the phone loop wins. When that happens
the backend decodes the utterance's stored front-end audio once more with a *spotting* grammar
(:func:`ivr.asr.grammar.compile_spotting`): ``garbage* phrase garbage*``, a phrase that must be
said somewhere, with the phone loop free to explain what comes before and after it.

What it measures, for :func:`ivr.asr.confidence.decide`:

- its best phrase (the answer a rescue accepts, always below the flows' confirmation
  threshold);
- its best path's score per frame. Both passes keep the phone loop's senones in the search, so
  PocketSphinx normalises each frame against the same best senones and the two scores compare
  (a pass over the phrases alone does not: without the phone loop each frame is scored against
  the phrases' best senone only, and out-of-grammar speech looked as good as a right answer);
- where the phrase lies: the share of the caller's loud audio inside the phrase's frames. A
  single word of the grammar fills its utterance; a sentence that is not in the grammar has a
  phrase spotted in one piece of it.

The spotting grammar is built once per pooled decoder and kept in it as an extra FSG search
(as :mod:`ivr.asr.rival` does for its grammars).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ivr.asr import rival
from ivr.asr.grammar import GARBAGE_MARK, Bigram, CompiledGrammar, compile_spotting

SEARCH = "rescue-spotting"
# Weight of entering the phone loop before and after the phrase (kept as given: the path
# always holds one phrase). Measured on 5 dB babble of the tuning voices (136 utterances the
# first pass gave to the garbage path): 1e-2 spotted the right phrase in 35, 1e-6 in 32, a
# pass over the phrases alone in 28.
LOOP_ENTRY = 1e-2
FRAME = 0.01  # seconds per decoder frame


@dataclass(frozen=True)
class Spotted:
    """The rescue pass's best path.

    Attributes:
        score: its score per frame (1e-4 log units, as :func:`ivr.asr.rival.score_per_frame`).
        choice: the spotted phrase's choice key (None: the path held no phrase).
        text: the spotted phrase.
        start, end: the phrase's first and last decoder frame.
    """

    score: float
    choice: str | None
    text: str
    start: int
    end: int


def ensure_search(decoder: object, searches: dict[str, CompiledGrammar],
                  compiled: CompiledGrammar, bigram: Bigram) -> CompiledGrammar:
    """The spotting grammar for ``compiled``'s grammar, added to ``decoder`` (and recorded in
    ``searches``) on first use."""
    if SEARCH not in searches:
        spotting = compile_spotting(compiled.grammar,
                                    decoder.lookup_word,  # type: ignore[attr-defined]
                                    bigram, LOOP_ENTRY)  # fmt: skip
        rival.add_search(decoder, SEARCH, spotting)
        searches[SEARCH] = spotting
    return searches[SEARCH]


def run_spotting(decoder: object, spotting: CompiledGrammar, audio: Sequence[bytes],
                 cmn: str) -> Spotted | None:
    """Decode ``audio`` (the first pass's 16 kHz chunks) with the spotting search; back to the
    main search afterwards. None when it found no path."""
    found = rival.decode_with(decoder, SEARCH, audio, cmn)
    if found is None:
        return None
    score, segments = found
    said = [s for s in segments if not s[0].startswith(GARBAGE_MARK) and not _filler(s[0])]
    text, choice = spotting.interpret([s[0] for s in said])
    if not said:
        return Spotted(score, None, text, 0, -1)
    return Spotted(score, choice, text, said[0][1], said[-1][2])


def _filler(word: str) -> bool:
    return word.startswith(("<", "[", "+", "(")) or not word


__all__ = ["LOOP_ENTRY", "SEARCH", "Spotted", "ensure_search", "run_spotting"]
