"""The rescue pass (ivr/asr/rescue.py) on real decoders and speech, the rescue's decision rule
(ivr/asr/confidence.py), and how tune_decision.py chooses its thresholds."""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
from asr_helpers import load_bench
from sphinx_audio import espeak, feed, needs_espeak, padded

from ivr.asr import rescue, rival, sphinx
from ivr.asr.base import AsrOptions, Final, Grammar, NoMatch
from ivr.asr.confidence import (
    CONFIRM,
    Constants,
    Evidence,
    decide,
    rescue_threshold,
    rescue_wanted,
)
from ivr.asr.evaluate import ManifestItem
from ivr.asr.sphinx import CMN_PRIOR, DecoderPool, SphinxBackend, phone_bigram
from ivr.asr.upsample import Wideband

GRAMMAR = Grammar(choices={"zero": ("zero",), "hotel": ("hotel",), "july": ("july",)})
C = Constants(rescue=2.0, rescue_snr=30.0, rescue_share=0.5, rescue_per_doubling=1.0)


def garbage_won(margin: float, snr: float = 10.0, share: float = 0.9,
                phrases: int = 2, choice: str | None = "hotel") -> Evidence:
    """Evidence of an utterance the first pass gave to the garbage path (score -60)."""
    return Evidence(-60.0, -60.0 + margin, False, True, choice, 0.0, None, snr,
                    rescue_share=share, rescue_seconds=0.4, voiced=0.5,
                    phrases=phrases)  # fmt: skip


# --- the rule ---------------------------------------------------------------------------------


def test_a_spotted_phrase_is_rescued_but_never_confident() -> None:
    accepted, confidence = decide(garbage_won(2.5), C)
    assert accepted and 0.0 < confidence < CONFIRM
    assert not decide(garbage_won(1.5), C)[0]  # under the threshold
    huge = decide(garbage_won(1e6), C)
    assert huge[0] and huge[1] < CONFIRM  # however far ahead: the flow asks


def test_no_rescue_on_a_quiet_line_or_for_a_phrase_in_a_sentence() -> None:
    assert not decide(garbage_won(10.0, snr=45.0), C)[0]
    assert not rescue_wanted(45.0, C) and rescue_wanted(20.0, C)
    assert not decide(garbage_won(10.0, share=0.3), C)[0]
    assert not decide(garbage_won(10.0, choice=None), C)[0]  # the pass spotted nothing
    assert not rescue_wanted(10.0, Constants())  # untuned: never, and the pass is not run


def test_larger_grammars_need_a_larger_margin() -> None:
    assert rescue_threshold(2, C) == pytest.approx(2.0)
    assert rescue_threshold(16, C) == pytest.approx(5.0)  # three doublings
    assert rescue_threshold(1, C) == pytest.approx(2.0)
    assert decide(garbage_won(4.0, phrases=2), C)[0]
    assert not decide(garbage_won(4.0, phrases=16), C)[0]


# --- real decoders ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> DecoderPool:
    return DecoderPool()


@needs_espeak
def test_the_rescue_pass_spots_a_phrase_among_other_words(pool: DecoderPool) -> None:
    # Words the grammar does not hold before and after "hotel": the spotting grammar explains
    # them with phones and finds the phrase where it was said.
    before = espeak("please give me the")
    speech = padded(np.concatenate([before, espeak("hotel"), espeak("thank you")]), 0.3, 0.3)
    audio = Wideband().process(speech).tobytes()
    dec = pool.take(GRAMMAR)
    try:
        bigram = phone_bigram(pool.model_dir / "en-us" / "en-us-phone.lm.bin")
        spotting = rescue.ensure_search(dec.decoder, dec.rivals, dec.grammar, bigram)
        assert rescue.ensure_search(dec.decoder, dec.rivals, dec.grammar, bigram) is spotting
        found = rescue.run_spotting(dec.decoder, spotting, [audio], CMN_PRIOR)
        assert dec.decoder.current_search() == rival.MAIN_SEARCH  # type: ignore[attr-defined]
    finally:
        pool.give(dec)
    assert found is not None and found.choice == "hotel" and found.text == "hotel"
    said_at = 0.3 + before.size / 8000
    assert said_at - 0.15 < found.start * rescue.FRAME < said_at + 0.3
    assert found.end > found.start and found.score < 0.0


@needs_espeak
def test_a_garbage_won_utterance_carries_the_rescue_evidence(
        pool: DecoderPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sphinx, "RESCUE_ALWAYS", True)  # the pass runs whatever decision.json
    backend = SphinxBackend(pool)
    stream = backend.open(GRAMMAR, AsrOptions())
    # A sentence that holds a phrase of the grammar: the first pass gives it to the garbage
    # path, the rescue pass finds the phrase in a quarter of it.
    events = feed(stream, padded(espeak("we stayed in a hotel by the sea"), 0.5, 1.0))
    ev = stream.evidence
    assert ev is not None and ev.garbage_won and ev.phrases == 3
    assert ev.rival is not None and ev.rival_choice == "hotel"
    assert 0.0 < ev.rescue_share < 0.5  # the phrase is one piece of the sentence
    assert 0.2 < ev.rescue_seconds < ev.voiced
    decided = [e for e in events if isinstance(e, (Final, NoMatch))]
    assert len(decided) == 1 and decided[0].confidence < CONFIRM


@needs_espeak
def test_without_a_possible_rescue_the_pass_is_not_run(
        pool: DecoderPool, monkeypatch: pytest.MonkeyPatch) -> None:
    # Thresholds that can never rescue (the untuned defaults): the pass is spared.
    monkeypatch.setattr(sphinx, "_constants", Constants)
    stream = SphinxBackend(pool).open(GRAMMAR, AsrOptions())
    events = feed(stream, padded(espeak("can I speak to a real person please"), 0.5, 1.0))
    ev = stream.evidence
    assert ev is not None and ev.garbage_won and ev.voiced > 0.0
    assert ev.rival is None and ev.rival_choice is None and ev.rescue_seconds == 0.0
    assert [e for e in events if isinstance(e, NoMatch)]


# --- the tuning script ------------------------------------------------------------------------


def test_the_script_rescues_words_and_not_sentences(tmp_path: Path) -> None:
    td = load_bench("tune_decision")
    rng = np.random.default_rng(2)
    records = []
    for i in range(600):
        kind = i % 3  # 0: a word of the grammar, 1: another phrase spotted, 2: out of grammar
        margin = float(rng.normal(6.0 if kind == 0 else 1.0, 2.0))
        share = float(rng.uniform(0.7, 1.0) if kind < 2 else rng.uniform(0.1, 0.6))
        expected = None if kind == 2 else "zero"
        spotted = "zero" if kind == 0 else "hotel"
        ev = replace(garbage_won(margin, snr=8.0, share=share, phrases=2), rival_choice=spotted)
        item = ManifestItem(f"i{i}", "a.wav", "zero | hotel", "oog" if kind == 2 else "command",
                            "snr5", expected)  # fmt: skip
        records.append(td.Record(item, ev, 0.01, 1.0))
    t = td.table(records)
    chosen = replace(Constants(), **asdict(td.choose_rescue(t, Constants())))
    figures = td.figures(records, chosen)
    assert figures["false_accept"] <= td.MAX_RESCUE_FA_GROUP
    assert figures["accuracy"] > 0.4  # most words of the grammar (half the in-grammar items)...
    assert figures["confident_wrong"] == 0.0  # ... and never a confident answer
    assert chosen.rescue_share >= 0.6
