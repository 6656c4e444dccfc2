"""``ivr asr recognize`` and ``ivr asr eval`` (ivr/cli/cmd_asr.py), in-process on real audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asr_helpers import ROOT, build_tiny

from ivr.cli.main import main

RESULT_KEYS = {"path", "text", "choice", "confidence", "outcome", "speech_start", "speech_end",
               "decided_at", "audio_seconds", "decode_seconds", "backend", "language",
               "grammar"}
METRIC_KEYS = {"items", "errors", "in_grammar", "correct", "accuracy", "false_rejects",
               "false_reject_rate", "oog", "false_accepts", "false_accept_rate",
               "digit_strings", "digit_error_rate", "latency_p50", "latency_p95", "decided",
               "decided_in_audio", "decided_in_audio_rate",
               "audio_seconds", "decode_seconds", "rtf"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("asr-cli"), conditions=("ulaw",))


def asr(*args: str) -> int:
    return main(["-c", str(ROOT / "ivr.yaml"), "asr", *args])


def test_recognize_prints_one_json_object(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav = tiny.parent / "audio" / "tts-yes-ulaw.wav"
    code = asr("recognize", "--grammar", "@yes_no", "--backend", "pocketsphinx", str(wav))
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result = json.loads(out)
    assert set(result) == RESULT_KEYS
    assert (result["grammar"], result["language"], result["backend"]) == ("@yes_no", "en",
                                                                           "pocketsphinx")
    assert result["outcome"] in ("match", "nomatch", "nospeech")
    assert code == (0 if result["outcome"] == "match" else 1)
    assert result["audio_seconds"] > 2.0


def test_recognize_with_choices_from_a_flow(tiny: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    wav = tiny.parent / "audio" / "tts-balance-ulaw.wav"
    flow = ROOT / "flows" / "bank-main.yaml"
    code = asr("recognize", "--choices-from", f"{flow}:main_menu", "--end-silence", "0.6",
               str(wav))
    result = json.loads(capsys.readouterr().out)
    assert "global:agent=agent/operator/representative" in result["grammar"]
    assert result["choice"] in (None, "1", "2", "3", "4", "global:agent")
    assert code == (0 if result["outcome"] == "match" else 1)


def test_recognize_at_a_language_node_offers_the_names_of_its_languages(
    tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The engine's own listen spec: English names for an English recognizer ("中文" it could
    # not hear), and the node's DTMF-only choices now answer to speech as well.
    wav = tiny.parent / "audio" / "tts-yes-ulaw.wav"
    flow = ROOT / "flows" / "bank-main.yaml"
    code = asr("recognize", "--choices-from", f"{flow}:choose_language", "--backend",
               "pocketsphinx", str(wav))
    result = json.loads(capsys.readouterr().out)
    assert result["grammar"].startswith("en=english | zh=chinese/mandarin | global:agent=")
    assert code in (0, 1)


@pytest.mark.parametrize(("args", "message"), [
    (["--grammar", "a || b"], "grammar: item 2"),
    (["--grammar", "@digits:0"], "1 <= N <= M"),
    (["--grammar", "yes", "--choices-from", "bank-main:main_menu"], "exactly one of"),
    ([], "exactly one of"),
    (["--choices-from", "bank-main"], "FLOW:NODE"),
    (["--choices-from", "bank-main:goodbye"], "does not wait for the caller"),
    (["--grammar", "yes", "--end-silence", "0"], "--end-silence must be positive"),
])
def test_recognize_usage_errors(tiny: Path, capsys: pytest.CaptureFixture[str],
                                args: list[str], message: str) -> None:
    wav = tiny.parent / "audio" / "tts-yes-ulaw.wav"
    assert asr("recognize", *args, str(wav)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_recognize_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert asr("recognize", "--grammar", "yes", str(tmp_path / "none.wav")) == 2
    assert "no such file" in capsys.readouterr().err


def test_recognize_not_a_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio")
    assert asr("recognize", "--grammar", "yes", "--backend", "pocketsphinx", str(bad)) == 2
    assert "cannot read" in capsys.readouterr().err


def test_eval_json(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    per_item = tmp_path / "results.jsonl"
    code = asr("eval", str(tiny), "--json", "--backend", "pocketsphinx", "--results",
               str(per_item))
    body = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"manifest", "items", "settings", "overall", "by_condition", "by_kind",
            "by_condition_kind", "backends", "errors"} <= set(body)
    assert body["items"] == 6 and body["errors"] == []
    assert set(body["overall"]) == METRIC_KEYS
    assert list(body["by_condition"]) == ["ulaw"]
    assert set(body["by_kind"]) == {"digit", "digits", "command", "yes_no", "oog"}
    assert body["by_kind"]["oog"]["accuracy"] is None  # no in-grammar items there
    lines = [json.loads(line) for line in per_item.read_text().splitlines()]
    assert len(lines) == 6
    assert all({"item", "result", "correct"} <= set(line) for line in lines)
    assert sum(line["correct"] for line in lines) == body["overall"]["correct"]


def test_eval_table(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert asr("eval", str(tiny), "--backend", "pocketsphinx") == 0
    out = capsys.readouterr().out
    assert "6 items, backend pocketsphinx" in out
    assert "condition ulaw" in out and "kind digits" in out


def test_eval_items_that_cannot_run_fail_the_command(
        tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = json.loads(tiny.read_text().splitlines()[0])
    line["audio"] = str(tiny.parent / "audio" / "gone.wav")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    assert asr("eval", str(manifest), "--json", "--backend", "pocketsphinx") == 1
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    assert body["overall"]["errors"] == 1 and body["overall"]["items"] == 0
    assert "gone.wav" in captured.err


def test_eval_bad_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"audio": "a.wav"}\n')
    assert asr("eval", str(manifest)) == 2
    assert "m.jsonl:1: missing 'grammar'" in capsys.readouterr().err
    assert asr("eval", str(tmp_path / "none.jsonl")) == 2
    assert asr("eval", str(manifest), "--jobs", "0") == 2


def test_asr_without_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert asr() == 2
    assert "recognize or eval" in capsys.readouterr().err


def test_recognize_and_eval_through_the_speech_gate(tiny: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """--gate opens the recognizer only for speech: the same decisions on the tiny set, with
    the recognizer's times shifted back to the file's."""
    wav = tiny.parent / "audio" / "tts-balance-ulaw.wav"
    runs = []
    for extra in ([], ["--gate"]):
        asr("recognize", "--grammar", "balance | card=lost card/stolen card", "--backend",
            "pocketsphinx", *extra, str(wav))
        runs.append(json.loads(capsys.readouterr().out))
    plain, gated = runs
    assert (gated["outcome"], gated["choice"]) == (plain["outcome"], plain["choice"])
    assert gated["speech_start"] == pytest.approx(plain["speech_start"], abs=0.05)
    assert gated["decided_at"] == pytest.approx(plain["decided_at"], abs=0.05)
    assert asr("eval", str(tiny), "--json", "--backend", "pocketsphinx", "--gate") == 0
    body = json.loads(capsys.readouterr().out)
    assert body["settings"]["gate"] is True and body["errors"] == []
