"""Evaluation (ivr/asr/evaluate.py, ivr/asr/metrics.py) on real audio and on known outcomes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from asr_helpers import MENU, build_tiny, load_build_set

from ivr.asr.evaluate import (
    ItemResult,
    ManifestError,
    ManifestItem,
    RunSettings,
    load_manifest,
    run_items,
    write_manifest,
)
from ivr.asr.metrics import compute_metrics, edit_distance, format_table, summarize
from ivr.asr.offline import FileResult


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("asr-tiny"))


@pytest.fixture(scope="module")
def ran(tiny: Path) -> list[ItemResult]:
    return run_items(load_manifest(tiny), tiny.parent, RunSettings("pocketsphinx"))


# --- the manifest ------------------------------------------------------------------------------

GOOD = {"audio": "a.wav", "grammar": "balance | agent", "kind": "command",
        "condition": "clean", "expected": "balance"}


def write_lines(path: Path, *objects: object) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n"
                            for o in objects), encoding="utf-8")
    return path


def test_manifest_defaults_and_comments(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "m.jsonl", "# a comment", "", GOOD)
    [item] = load_manifest(path)
    assert (item.id, item.language, item.speech_end, item.expected) == ("a.wav", "en", None,
                                                                         "balance")


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "m.jsonl:2: not JSON"),
    ({**GOOD, "colour": "red"}, "unknown key 'colour'"),
    ({k: v for k, v in GOOD.items() if k != "grammar"}, "missing 'grammar'"),
    ({**GOOD, "kind": "word"}, "kind 'word' is not one of"),
    ({**GOOD, "condition": "noisy"}, "condition 'noisy'"),
    ({**GOOD, "kind": "oog"}, "'expected' is null exactly for kind 'oog'"),
    ({**GOOD, "expected": None}, "'expected' is null exactly for kind 'oog'"),
    ({**GOOD, "kind": "digits", "grammar": "@digits:4", "expected": "12a4"}, "digit string"),
    ({**GOOD, "grammar": "@digits:9-1"}, "grammar: '@digits:9-1'"),
    ({**GOOD, "speech_end": "late"}, "'speech_end' must be a number"),
    ({**GOOD, "audio": 3}, "'audio' must be a string"),
    (GOOD, "id 'a.wav' appears twice"),
])
def test_manifest_errors_name_the_line(tmp_path: Path, line: object, message: str) -> None:
    path = write_lines(tmp_path / "m.jsonl", GOOD, line)
    with pytest.raises(ManifestError, match=message.replace("(", r"\(")) as info:
        load_manifest(path)
    assert "m.jsonl:2:" in str(info.value)


def test_the_builder_is_reproducible_and_knows_where_speech_ends(tmp_path: Path) -> None:
    first, second = build_tiny(tmp_path / "a"), build_tiny(tmp_path / "b")
    assert first.read_text() == second.read_text()
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
              for p in (first.parent / "audio").iterdir()}
    assert digest == {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                      for p in (second.parent / "audio").iterdir()}
    bs = load_build_set()
    for item in load_manifest(first):
        pcm = bs.load_8k_mono(first.parent / item.audio).astype(float)
        end = round(item.speech_end * 8000)
        assert abs(pcm[end - 400 : end]).max() > 300  # speech in the 50 ms before the end
        assert abs(pcm[end + 400 :]).max() == 0  # nothing but silence after it (clean, μ-law)


def test_noise_is_added_at_the_asked_snr() -> None:
    import numpy as np

    bs = load_build_set()
    rng = np.random.default_rng(3)
    speech = (8000 * np.sin(np.arange(8000) / 5)).astype(np.int16)
    x = np.concatenate([np.zeros(4000, np.int16), speech, np.zeros(4000, np.int16)])
    noise = rng.standard_normal(len(x))
    noisy = bs.add_noise(x, slice(4000, 12000), noise, 15.0)
    added = noisy.astype(float) - x
    snr = 10 * np.log10(np.mean(speech.astype(float) ** 2) / np.mean(added**2))
    assert snr == pytest.approx(15.0, abs=0.1)


# --- metrics on known outcomes -----------------------------------------------------------------


def item(kind: str, expected: str | None, **extra: object) -> ManifestItem:
    grammar = {"digits": "@digits:4", "digit": "@digits:1"}.get(kind, MENU)
    return ManifestItem(id=f"{kind}-{expected}-{len(extra)}-{extra.get('condition', '')}",
                        audio="x.wav", grammar=grammar, kind=kind,  # type: ignore[arg-type]
                        condition=str(extra.get("condition", "clean")), expected=expected,
                        speech_end=1.0)


def outcome(choice: str | None, kind: str = "match", decided: float = 1.8) -> FileResult:
    return FileResult(path="x.wav", text=choice or "", choice=choice, confidence=0.9,
                      outcome=kind, speech_start=0.5, speech_end=1.0,  # type: ignore[arg-type]
                      decided_at=None if kind == "nospeech" else decided, audio_seconds=3.0,
                      decode_seconds=0.3, backend="test")


def test_metrics_on_known_outcomes() -> None:
    results = [
        ItemResult(item("command", "balance"), outcome("balance")),  # right
        ItemResult(item("command", "balance"), outcome("agent", decided=2.0)),  # wrong choice
        ItemResult(item("command", "card"), outcome(None, "nomatch")),  # false reject
        ItemResult(item("digits", "1234"), outcome("1244")),  # one substitution
        ItemResult(item("digits", "5678"), outcome(None, "nospeech")),  # 4 digits lost
        ItemResult(item("oog", None), outcome("agent")),  # false accept
        ItemResult(item("oog", None), outcome(None, "nomatch", decided=3.4)),  # after the end
        ItemResult(item("command", "agent"), error="OSError: no such file"),  # not counted
    ]
    m = compute_metrics(results)
    assert (m.items, m.errors, m.in_grammar, m.correct) == (7, 1, 5, 1)
    assert m.accuracy == pytest.approx(1 / 5)
    assert m.false_reject_rate == pytest.approx(2 / 5)
    assert (m.oog, m.false_accepts, m.false_accept_rate) == (2, 1, 0.5)
    assert m.digit_error_rate == pytest.approx((1 + 4) / 8)
    assert m.rtf == pytest.approx(0.1)
    # latencies 0.8 (four), 1.0 and 2.4 s; the nospeech item has none
    assert m.latency_p50 == pytest.approx(0.8)
    assert m.latency_p95 == pytest.approx(1.0 + 0.75 * 1.4)
    assert (m.decided, m.decided_in_audio) == (6, 5)  # one decided after the 3 s recording


def test_groups_and_table() -> None:
    results = [ItemResult(item("command", "balance", condition=c), outcome(choice))
               for c, choice in (("clean", "balance"), ("ulaw", "balance"), ("snr5", None))]
    summary = summarize(results)
    assert list(summary.by_condition) == ["clean", "ulaw", "snr5"]
    assert summary.by_condition["snr5"].accuracy == 0.0
    assert summary.by_condition_kind["clean"]["command"].accuracy == 1.0
    assert summary.by_kind["command"].accuracy == pytest.approx(2 / 3)
    assert summary.backends == ("test",)
    table = format_table(summary)
    assert "condition snr5" in table and "kind command" in table
    assert json.loads(json.dumps(summary.to_json()))["overall"]["correct"] == 2


def test_edit_distance() -> None:
    assert edit_distance("1234", "1234") == 0
    assert edit_distance("1234", "124") == 1
    assert edit_distance("", "5678") == 4
    assert edit_distance("12345678", "21345679") == 3


# --- real audio ---------------------------------------------------------------------------------


def test_every_item_runs_on_real_audio(ran: list[ItemResult]) -> None:
    assert len(ran) == 12
    assert all(r.error is None and r.result is not None for r in ran), [r.error for r in ran]
    assert {r.result.backend for r in ran if r.result} == {"pocketsphinx"}
    for r in ran:
        assert r.result is not None
        assert r.result.outcome in ("match", "nomatch", "nospeech")
        assert r.result.audio_seconds > 2.0  # lead-in, speech and 1.5 s of silence


def test_wrong_labels_move_accuracy_and_false_accepts_as_they_must(tiny: Path) -> None:
    """Relabel: one command gets a wrong expected choice, and every in-grammar item of the
    μ-law condition is declared out of grammar. Scored with the right labels and with the wrong
    ones, the same outcomes must move the rates by exactly what they imply."""
    items = load_manifest(tiny)
    wrong: list[ManifestItem] = []
    for it in items:
        if it.id == "tts-balance-clean":
            it = dataclasses.replace(it, expected="agent")
        elif it.condition == "ulaw" and it.kind != "oog":
            it = dataclasses.replace(it, kind="oog", expected=None)
        wrong.append(it)
    path = tiny.parent / "wrong.jsonl"
    write_manifest(path, wrong)
    again = run_items(load_manifest(path), tiny.parent, RunSettings("pocketsphinx"))
    right = [ItemResult(it, r.result, r.error) for it, r in zip(items, again, strict=True)]
    before, after = compute_metrics(right), compute_metrics(again)
    by_id = {r.item.id: r for r in right}
    clean = [r for r in right if r.item.condition == "clean" and r.item.kind != "oog"]
    ulaw = [r for r in right if r.item.condition == "ulaw" and r.item.kind != "oog"]
    assert after.in_grammar == len(clean) == before.in_grammar - len(ulaw)
    assert after.correct == sum(r.correct for r in clean) - by_id["tts-balance-clean"].correct
    assert after.false_rejects == sum(r.rejected for r in clean)
    assert after.oog == before.oog + len(ulaw)
    assert after.false_accepts == before.false_accepts + sum(not r.rejected for r in ulaw)


def test_processes_give_the_same_results(tiny: Path, ran: list[ItemResult]) -> None:
    items = [i for i in load_manifest(tiny) if i.condition == "clean"]
    parallel = run_items(items, tiny.parent, RunSettings("pocketsphinx"), jobs=2)
    assert [r.item.id for r in parallel] == [i.id for i in items]
    by_id = {r.item.id: r.result for r in ran}

    def decision(r: FileResult | None) -> tuple[str, str | None] | None:
        return None if r is None else (r.outcome, r.choice)

    assert [decision(r.result) for r in parallel] == [decision(by_id[i.id]) for i in items]


def test_an_item_that_cannot_run_is_counted_apart(tiny: Path) -> None:
    [first, *_] = load_manifest(tiny)
    gone = dataclasses.replace(first, id="gone", audio="audio/missing.wav")
    [result] = run_items([gone], tiny.parent, RunSettings("pocketsphinx"))
    assert result.result is None and result.error and "missing.wav" in result.error
    m = compute_metrics([result])
    assert (m.items, m.errors, m.accuracy) == (0, 1, None)
