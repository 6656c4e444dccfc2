"""The PocketSphinx backend's decision: the rule (ivr/asr/confidence.py), its thresholds file,
the rival pass on real decoders and real speech, and the script that chooses the thresholds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from asr_helpers import load_bench
from sphinx_audio import espeak, feed, needs_espeak, padded

from ivr.asr.base import AsrOptions, Final, Grammar, NoMatch
from ivr.asr.confidence import (
    CONFIRM,
    DECISION_FILE,
    Constants,
    Evidence,
    decide,
    load_constants,
)
from ivr.asr.evaluate import ManifestItem
from ivr.asr.sphinx import DecoderPool, SphinxBackend, SphinxStream

C = Constants(reject_garbage=5.0, reject_phrase=2.0, confirm_garbage=10.0, confirm_phrase=6.0,
              rescue=3.0, scale=1.5, unexplained=0.65)  # fmt: skip


def phrase_won(margin: float, rival_garbage: bool) -> Evidence:
    return Evidence(-30.0, -30.0 - margin, rival_garbage, False, None, 0.0, "zero")


def test_a_clear_winner_is_confident_and_a_close_one_asks() -> None:
    sure = decide(phrase_won(20.0, rival_garbage=False), C)
    close = decide(phrase_won(3.0, rival_garbage=False), C)
    assert sure[0] and sure[1] > CONFIRM
    assert close[0] and close[1] < CONFIRM  # accepted, but the flow confirms


def test_margins_under_the_rejection_point_are_refused() -> None:
    assert not decide(phrase_won(1.0, rival_garbage=False), C)[0]
    assert not decide(phrase_won(4.0, rival_garbage=True), C)[0]  # garbage's point is 5
    assert decide(phrase_won(6.0, rival_garbage=True), C)[0]


def test_a_phrase_behind_the_garbage_path_is_never_confident() -> None:
    near = Evidence(-50.0, -46.0, False, True, "zero")  # phrase 4 over garbage, rescue at 3
    far = Evidence(-50.0, -48.0, False, True, "zero")
    accepted, confidence = decide(near, C)
    assert accepted and 0.0 < confidence < CONFIRM
    assert not decide(far, C)[0]
    assert not decide(Evidence(-50.0, -20.0, False, True, None), C)[0]  # no phrase to rescue


def test_unexplained_audio_and_a_missing_rival_reject() -> None:
    assert not decide(Evidence(-30.0, -60.0, True, False, None, 0.9, "zero"), C)[0]
    assert decide(Evidence(-30.0, None, True, False, None, 0.0, "zero"), C) == (False, 0.0)


def test_confidence_stays_between_0_and_1() -> None:
    for margin in (-1e6, -5.0, 0.0, 5.0, 1e6):
        for garbage in (False, True):
            _, confidence = decide(phrase_won(margin, garbage), C)
            assert 0.0 <= confidence <= 1.0


def test_constants_file_is_read_and_unknown_keys_ignored(tmp_path: Path) -> None:
    path = tmp_path / "decision.json"
    path.write_text(json.dumps({"constants": {"reject_phrase": 7.5, "bogus": 1}}))
    got = load_constants(path)
    assert got.reject_phrase == 7.5 and got.confirm_phrase == Constants().confirm_phrase
    assert load_constants(tmp_path / "none.json") == Constants()


def test_the_committed_thresholds_were_chosen_by_the_script() -> None:
    data = json.loads(DECISION_FILE.read_text("utf-8"))
    assert data["chosen_by"].startswith("bench/asr/tune_decision.py")
    assert set(data["constants"]) == set(Constants.__dataclass_fields__)
    assert data["tuning"]["false_accept"] <= 0.08
    assert data["tuning"]["confident_wrong"] <= 0.015


# --- real decoders --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend() -> SphinxBackend:
    return SphinxBackend(DecoderPool())


def run(backend: SphinxBackend, grammar: Grammar, pcm: np.ndarray) -> tuple[object, SphinxStream]:
    stream = backend.open(grammar, AsrOptions())
    events = feed(stream, padded(pcm, 0.5, 1.0))
    decided = [e for e in events if isinstance(e, (Final, NoMatch))]
    assert len(decided) == 1, events
    return decided[0], stream


@needs_espeak
def test_the_same_phrase_under_two_choices_is_never_confident(backend: SphinxBackend) -> None:
    # Two choices that sound the same: the rival pass (grammar minus the winner) finds the other
    # one exactly as good, so the caller must be asked, whatever the first pass's score.
    grammar = Grammar(choices={"a": ("zero",), "b": ("zero",), "c": ("hotel",)})
    event, stream = run(backend, grammar, espeak("zero"))
    assert stream.evidence is not None and not stream.evidence.garbage_won
    assert stream.evidence.rival_choice is not None  # another phrase, not the garbage path
    assert event.confidence < CONFIRM


@needs_espeak
def test_a_clear_phrase_is_confident_and_its_margin_positive(backend: SphinxBackend) -> None:
    grammar = Grammar(choices={"zero": ("zero",), "hotel": ("hotel",), "july": ("july",)})
    event, stream = run(backend, grammar, espeak("hotel"))
    assert isinstance(event, Final) and event.choice == "hotel"
    assert stream.evidence is not None and (stream.evidence.margin or 0.0) > 0.0
    assert event.confidence >= CONFIRM


@needs_espeak
def test_out_of_grammar_speech_is_refused(backend: SphinxBackend) -> None:
    grammar = Grammar(choices={"zero": ("zero",), "hotel": ("hotel",), "july": ("july",)})
    event, _ = run(backend, grammar, espeak("can I speak to a real person please"))
    assert isinstance(event, NoMatch)


@needs_espeak
def test_a_one_phrase_grammar_keeps_the_floor(backend: SphinxBackend) -> None:
    # No rival grammar exists: the first pass's floor decides, and the evidence stays empty.
    event, stream = run(backend, Grammar(choices={"hotel": ("hotel",)}), espeak("hotel"))
    assert isinstance(event, Final) and stream.evidence is None


# --- the tuning script ----------------------------------------------------------------------


def record(td: object, i: int, expected: str | None, ev: Evidence | None) -> object:
    item = ManifestItem(f"i{i}", "a.wav", "zero | hotel", "oog" if expected is None else "command",
                        "clean", expected)  # fmt: skip
    return td.Record(item, ev, 0.01, 1.0)  # type: ignore[attr-defined]


def test_the_script_keeps_false_accepts_within_its_limit() -> None:
    td = load_bench("tune_decision")
    rng = np.random.default_rng(1)
    records = []
    for i in range(400):  # right answers well ahead of their rival, wrong ones and oog close
        kind = i % 4
        margin = float(rng.normal(15.0, 4.0) if kind < 2 else rng.normal(3.0, 2.0))
        expected = None if kind == 3 else "zero"
        choice = "zero" if kind < 2 else "hotel"
        ev = Evidence(-30.0, -30.0 - margin, bool(i % 2), False, None, 0.0, choice)
        records.append(record(td, i, expected, ev))
    t = td.table(records)
    rg, rp, rescue = td.choose_rejection(t)
    c = Constants(reject_garbage=rg, reject_phrase=rp, rescue=rescue)
    cg, cp = td.choose_confirmation(t, c)
    figures = td.figures(records, Constants(rg, rp, cg, cp, rescue))
    assert figures["false_accept"] <= td.MAX_FA_POOLED
    assert figures["confident_wrong"] <= td.MAX_CW_POOLED
    assert figures["accuracy"] > 0.5  # the clear right answers survive


def test_the_script_refuses_held_out_voices(tmp_path: Path) -> None:
    td = load_bench("tune_decision")
    manifest = tmp_path / "heldout.jsonl"
    manifest.write_text("")
    with pytest.raises(SystemExit, match="tuning voices only"):
        td.main(["--manifest", str(manifest), "--no-write"])
