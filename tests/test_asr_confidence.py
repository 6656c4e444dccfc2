"""The PocketSphinx backend's decision: the rule (ivr/asr/confidence.py), its thresholds file,
the rival pass on real decoders and real speech, and the script that chooses the thresholds."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
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
    fit,
    load_constants,
    seconds_per_phone,
)
from ivr.asr.evaluate import ManifestItem
from ivr.asr.sphinx import DecoderPool, SphinxBackend, SphinxStream

C = Constants(floor_garbage=-50.0, floor_phrase=-45.0, quiet_snr=40.0, floor_garbage_quiet=-40.0,
              floor_phrase_quiet=-35.0, confirm_garbage=10.0, confirm_phrase=6.0, rescue=3.0,
              scale=1.5, unexplained=0.65)  # fmt: skip


def phrase_won(margin: float, rival_garbage: bool, score: float = -30.0,
               snr: float = 20.0) -> Evidence:
    return Evidence(score, score - margin, rival_garbage, False, None, 0.0, "zero", snr)


def test_a_clear_winner_is_confident_and_a_close_one_asks() -> None:
    sure = decide(phrase_won(20.0, rival_garbage=False), C)
    close = decide(phrase_won(3.0, rival_garbage=False), C)
    assert sure[0] and sure[1] > CONFIRM
    assert close[0] and close[1] < CONFIRM  # accepted, but the flow confirms


def test_a_loose_fit_under_its_floor_is_refused() -> None:
    assert not decide(phrase_won(20.0, rival_garbage=True, score=-52.0), C)[0]
    assert decide(phrase_won(20.0, rival_garbage=True, score=-48.0), C)[0]
    assert not decide(phrase_won(20.0, rival_garbage=False, score=-48.0), C)[0]  # floor -45


def test_a_quiet_line_has_its_own_floor() -> None:
    noisy = phrase_won(20.0, rival_garbage=True, score=-45.0, snr=20.0)
    quiet = phrase_won(20.0, rival_garbage=True, score=-45.0, snr=60.0)
    assert decide(noisy, C)[0] and not decide(quiet, C)[0]


def test_the_first_pass_fit_weighs_in_the_confidence() -> None:
    weighted = Constants(confirm_phrase=-20.0, weight_phrase=1.0)
    good = decide(phrase_won(5.0, rival_garbage=False, score=-20.0), weighted)[1]
    poor = decide(phrase_won(5.0, rival_garbage=False, score=-40.0), weighted)[1]
    assert good > CONFIRM > poor


def test_a_phrase_behind_the_garbage_path_is_never_confident() -> None:
    near = Evidence(-50.0, -46.0, False, True, "zero")  # phrase 4 over garbage, rescue at 3
    far = Evidence(-50.0, -48.0, False, True, "zero")
    accepted, confidence = decide(near, C)
    assert accepted and 0.0 < confidence < CONFIRM
    assert not decide(far, C)[0]
    assert not decide(Evidence(-50.0, -20.0, False, True, None), C)[0]  # no phrase to rescue


def test_the_floor_rises_with_the_grammar_s_size() -> None:
    # More phrases: likelier that speech in none of them fits one, so a stricter floor.
    c = replace(C, floor_per_log_phrases=3.0)  # floor -50 + 3 ln(n): -47.9 for 2, -37.7 for 60
    for phrases, accepted in ((2, True), (60, False)):
        ev = replace(phrase_won(20.0, rival_garbage=True, score=-45.0), phrases=phrases)
        assert decide(ev, c)[0] is accepted
    unmeasured = phrase_won(20.0, rival_garbage=True, score=-45.0)  # phrases 0: no rise
    assert decide(unmeasured, c)[0]


def test_speech_too_slow_for_the_phrase_is_charged() -> None:
    c = replace(C, pace=0.12, pace_charge=200.0)
    quick = replace(phrase_won(20.0, rival_garbage=True, score=-40.0), phones=4, span=0.5)
    slow = replace(quick, span=1.6)  # a sentence matched to a four-phone phrase
    assert seconds_per_phone(quick) == pytest.approx(0.1)
    assert fit(quick, c) == -40.0 and decide(quick, c)[0]
    assert fit(slow, c) == pytest.approx(-40.0 - 200.0 * (0.32 - 0.12))
    assert not decide(slow, c)[0]
    assert decide(slow, C)[0]  # no charge by default
    assert decide(replace(slow, phones=0), c)[0]  # phones not measured: no charge
    # the charge also lowers the confidence where the first pass's fit weighs in
    weighted = replace(c, weight_garbage=1.0, floor_garbage=-1e9)
    assert decide(slow, weighted)[1] < decide(quick, weighted)[1]


def test_unexplained_audio_rejects() -> None:
    assert not decide(Evidence(-30.0, -60.0, True, False, None, 0.9, "zero"), C)[0]


def test_a_phrase_without_any_rival_path_is_confident() -> None:
    # The rival pass found no path at all (even the garbage path pruned away): nothing else
    # explains the audio. It still has to clear its floor.
    assert decide(Evidence(-30.0, None, False, False, None, 0.0, "zero"), C) == (True, 1.0)
    assert not decide(Evidence(-60.0, None, False, False, None, 0.0, "zero"), C)[0]


def test_confidence_stays_between_0_and_1() -> None:
    for margin in (-1e6, -5.0, 0.0, 5.0, 1e6):
        for garbage in (False, True):
            _, confidence = decide(phrase_won(margin, garbage), C)
            assert 0.0 <= confidence <= 1.0


def test_constants_file_is_read_and_unknown_keys_ignored(tmp_path: Path) -> None:
    path = tmp_path / "decision.json"
    path.write_text(json.dumps({"constants": {"floor_phrase": -7.5, "bogus": 1}}))
    got = load_constants(path)
    assert got.floor_phrase == -7.5 and got.confirm_phrase == Constants().confirm_phrase
    assert load_constants(tmp_path / "none.json") == Constants()


def test_the_committed_thresholds_were_chosen_by_the_script() -> None:
    data = json.loads(DECISION_FILE.read_text("utf-8"))
    assert data["chosen_by"].startswith("bench/asr/tune_decision.py")
    assert set(data["constants"]) == set(Constants.__dataclass_fields__)
    assert data["tuning"]["false_accept"] <= 0.08
    assert data["tuning"]["false_accept_worst_group"] <= 0.10
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
def test_the_evidence_measures_the_grammar_and_the_phrase(backend: SphinxBackend) -> None:
    grammar = Grammar(choices={"zero": ("zero",), "hotel": ("hotel",), "july": ("july",)})
    _, stream = run(backend, grammar, espeak("hotel"))
    ev = stream.evidence
    assert ev is not None and ev.choice == "hotel"
    assert ev.phrases == 3
    assert ev.phones == 5  # HH OW T EH L
    assert 0.2 < ev.span < 1.5 and 0.2 < ev.voiced < 1.5
    assert 0.03 < seconds_per_phone(ev) < 0.25


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
    for i in range(800):  # right answers fit well and lead; wrong ones and oog fit worse
        kind = i % 4  # 0, 1: right; 2: another phrase; 3: out of grammar
        score = float(rng.normal((-30.0, -30.0, -40.0, -55.0)[kind], 4.0))
        margin = float(rng.normal(15.0, 4.0) if kind < 2 else rng.normal(3.0, 2.0))
        expected = None if kind == 3 else "zero"
        choice = "zero" if kind < 2 else "hotel"
        ev = Evidence(score, score - margin, bool(i % 2), False, None, 0.0, choice, 20.0)
        records.append(record(td, i, expected, ev))
    t = td.table(records)
    c = replace(Constants(), **asdict(td.choose_rejection(t)))
    cg, cp, wg, wp = td.choose_confirmation(t, c)
    c = replace(c, confirm_garbage=cg, confirm_phrase=cp, weight_garbage=wg, weight_phrase=wp)
    figures = td.figures(records, c)
    assert figures["false_accept"] <= td.MAX_FA_POOLED
    assert figures["confident_wrong"] <= td.MAX_CW_POOLED
    assert figures["accuracy"] > 0.5  # the clear right answers survive


def test_the_script_holds_every_group_and_prices_slow_speech() -> None:
    # Out-of-grammar speech fits a phrase only in the large grammar, and is said slowly for the
    # phrase it fits: the script must keep every group within its limit, and it can do so
    # cheaply by charging slow speech or raising the floor with the grammar's size.
    td = load_bench("tune_decision")
    rng = np.random.default_rng(2)
    records = []
    for i in range(1600):
        kind = i % 4  # 0, 1, 2: right; 3: out of grammar
        big = (i // 4) % 2 == 1
        phrases = [f"p{k}" for k in range(60 if big else 2)]
        oog = kind == 3
        score = float(rng.normal(-52.0 if oog and not big else -38.0 if oog else -36.0, 4.0))
        seconds = float(rng.uniform(0.9, 1.6) if oog else rng.uniform(0.25, 0.45))
        item = ManifestItem(f"i{i}", "a.wav", " | ".join(phrases),
                            "oog" if oog else "command", "clean", None if oog else "p0")
        ev = Evidence(score, score - 20.0, True, False, None, 0.0, "p0", 20.0,
                      len(phrases), 4, seconds, seconds * 1.1)  # fmt: skip
        records.append(td.Record(item, ev, 0.01, 1.0))
    t = td.table(records)
    rej = td.choose_rejection(t)
    c = replace(Constants(), **asdict(rej))
    figures = td.figures(records, c)
    assert figures["false_accept_worst_group"] <= td.MAX_FA_GROUP
    assert rej.pace_charge > 0.0  # slow speech told out-of-grammar speech apart
    assert figures["accuracy"] > 0.9  # and the right answers stayed


def test_the_script_refuses_held_out_voices(tmp_path: Path) -> None:
    td = load_bench("tune_decision")
    manifest = tmp_path / "heldout.jsonl"
    manifest.write_text("")
    with pytest.raises(SystemExit, match="tuning voices only"):
        td.main(["--manifest", str(manifest), "--no-write"])
