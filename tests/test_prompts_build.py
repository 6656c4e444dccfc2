"""ivr.tts.build and ``ivr prompts build | list``: every flow prompt rendered ahead, once."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tts_helpers import read, write_tone

from ivr.cli.main import main
from ivr.flow.loader import load_flowset
from ivr.flow.model import FlowSet, Prompt
from ivr.flow.template import compile_template
from ivr.tts.build import build_prompts, collect_prompts, render_dynamic
from ivr.tts.cache import PromptCache
from ivr.tts.engine import Synthesizer, TTSUnavailable

REPO_FLOWS = Path(__file__).resolve().parent.parent / "flows"

TINY = """\
flow: tiny
languages: [en, zh]
start: hello
prompts:
  sorry: {en: "Sorry.", zh: "对不起。"}
nodes:
  hello:
    menu:
      prompt: {en: "Press 1.", zh: "请按1。"}
      choices: {"1": bye}
      no_input: {reprompt: {ref: sorry}, goto: bye}
      no_match: {reprompt: [{en: "Say again.", zh: "请再说一遍。"}, {ref: sorry}], goto: bye}
  bye:
    hangup: {prompt: {en: "Bye {name}.", zh: "再见{name}。"}}
"""


def _config(tmp_path: Path, flows: Path) -> Path:
    """An ivr.yaml for the flows at ``flows`` with the prompts in ``tmp_path/prompts``."""
    path = tmp_path / "ivr.yaml"
    path.write_text(
        f"flows_dir: {flows}\nprompts_dir: {tmp_path / 'prompts'}\nlanguages: [en, zh]\n"
        'transfer_allow: ["sip:*@agents.bank.example"]\n',
        encoding="utf-8",
    )
    return path


def _tiny(tmp_path: Path, text: str = TINY) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "tiny.yaml").write_text(text, encoding="utf-8")
    return _config(tmp_path, flows)


def _counts(out: str) -> dict[str, int]:
    """``rendered 68 texts`` ... -> {"rendered": 68, ...} from the build summary."""
    found = re.findall(r"^\s+(rendered|cached|recorded|dynamic)\s+(\d+)", out, re.MULTILINE)
    return {word: int(n) for word, n in found}


# --- an enumeration of the flow model independent of ivr.tts.build --------------------------


def _prompts_in(obj: Any) -> Iterator[Prompt]:
    """Every Prompt reachable from ``obj`` through dataclass fields, mappings and sequences."""
    if isinstance(obj, Prompt):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _prompts_in(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _prompts_in(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _prompts_in(value)


def _expected(flowset: FlowSet) -> set[tuple[str, str, str, str, bool]]:
    """(flow, played id, language, text, dynamic) for every prompt part in every language."""
    out = set()
    for flow in flowset.flows.values():
        for prompt in _prompts_in(flow):
            for lang in flow.languages:
                for part in prompt.parts:
                    played = prompt.id if len(prompt.parts) == 1 else part.id
                    source = part.text.get(lang, next(iter(part.text.values()), ""))
                    template = compile_template(source)
                    text = source if not template.is_constant else template.render({}, lang)
                    out.add((flow.id, played, lang, text, not template.is_constant))
    return out


@pytest.fixture(scope="module")
def bank() -> FlowSet:
    flowset, _ = load_flowset(REPO_FLOWS)
    return flowset


def test_collect_finds_every_prompt_of_the_bank_flows(bank: FlowSet) -> None:
    items = collect_prompts(bank)
    got = [(i.flow, i.id, i.language, i.text, i.dynamic) for i in items]
    assert len(got) == len(set(got))  # each prompt once
    assert set(got) == _expected(bank)
    ids = {(i.id, i.language) for i in items if i.flow == "bank-main"}
    for prompt_id in ("sorry", "main_menu", "main_menu.no_input.2", "survey.satisfaction",
                      "survey.resolved", "fraud_desk", "general_queue", "goodbye", "voicemail"):
        assert {(prompt_id, "en"), (prompt_id, "zh")} <= ids, prompt_id
    say_balance = next(i for i in items if i.id == "say_balance" and i.language == "en")
    assert say_balance.dynamic
    assert say_balance.text == "Your available balance is {balance.available|amount}."


def test_full_bank_build_renders_every_constant_prompt_once(
    tmp_path: Path, bank: FlowSet, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = _expected(bank)
    constant = {(lang, text) for _, _, lang, text, dynamic in expected if not dynamic}
    dynamic = [e for e in expected if e[4]]
    config = str(_config(tmp_path, REPO_FLOWS))

    assert main(["-c", config, "prompts", "build"]) == 0
    out = capsys.readouterr().out
    assert _counts(out) == {"rendered": len(constant), "cached": 0, "recorded": 0,
                            "dynamic": len(dynamic)}
    assert {lang for lang, _ in constant} == {"en", "zh"}
    cache = PromptCache(tmp_path / "prompts")
    assert len(list(cache.cache_dir.glob("*.wav"))) == len(constant)
    for flow_id, prompt_id, lang, text, is_dynamic in expected:
        if is_dynamic:
            continue
        path = cache.lookup(prompt_id, lang, text)
        assert path is not None, (flow_id, prompt_id, lang)
        audio = read(path)
        assert (audio.rate, audio.channels, audio.width) == (8000, 1, 2)
        assert audio.seconds > 0.5 and audio.rms > 500, (prompt_id, lang)

    # Nothing changed: nothing is rendered again.
    assert main(["-c", config, "prompts", "build"]) == 0
    assert _counts(capsys.readouterr().out) == {"rendered": 0, "cached": len(constant),
                                                "recorded": 0, "dynamic": len(dynamic)}

    assert main(["-c", config, "prompts", "list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == len(expected) + 1
    assert listing[-1] == (f"0 recorded, {len(expected) - len(dynamic)} cached, 0 missing, "
                           f"{len(dynamic)} dynamic ({len(expected)} prompts)")


def test_a_changed_text_is_the_only_one_rendered_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_tiny(tmp_path))
    assert main(["-c", config, "prompts", "build"]) == 0
    # Constant texts: Press 1 / Sorry / Say again, in two languages; "Bye {name}" is dynamic.
    assert _counts(capsys.readouterr().out) == {"rendered": 6, "cached": 0, "recorded": 0,
                                                "dynamic": 2}
    _tiny(tmp_path, TINY.replace('en: "Press 1."', 'en: "Press one."'))
    assert main(["-c", config, "prompts", "build"]) == 0
    assert _counts(capsys.readouterr().out) == {"rendered": 1, "cached": 5, "recorded": 0,
                                                "dynamic": 2}
    assert main(["-c", config, "prompts", "build", "--force"]) == 0
    assert _counts(capsys.readouterr().out)["rendered"] == 6


def test_a_recording_replaces_rendering(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_tiny(tmp_path))
    write_tone(tmp_path / "prompts" / "en" / "hello.wav", rate=44100)
    assert main(["-c", config, "prompts", "build"]) == 0
    assert _counts(capsys.readouterr().out) == {"rendered": 5, "cached": 0, "recorded": 1,
                                                "dynamic": 2}
    converted = list((tmp_path / "prompts" / "cache").glob("rec-*.wav"))
    assert len(converted) == 1 and read(converted[0]).rate == 8000

    assert main(["-c", config, "prompts", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[:-1]]
    sources = {(row[1], row[2]): row[3] for row in rows}
    assert sources[("hello", "en")] == "recorded"
    assert sources[("hello", "zh")] == "cached"
    assert sources[("bye", "en")] == "dynamic"
    assert sources[("hello.no_match", "zh")] == "cached"


def test_list_shows_missing_prompts_before_a_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_tiny(tmp_path))
    assert main(["-c", config, "prompts", "list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "0 recorded, 0 cached, 6 missing, 2 dynamic (8 prompts)"
    assert "'Bye {name}.'" in out
    assert not (tmp_path / "prompts").exists()  # listing renders nothing


def test_audio_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flow = TINY.replace('prompt: {en: "Press 1.", zh: "请按1。"}',
                        "prompt: [{audio: jingle}, {audio: hello_rec, en: Hello., zh: 你好。}]")
    config = str(_tiny(tmp_path, flow))
    assert main(["-c", config, "prompts", "build"]) == 1
    captured = capsys.readouterr()
    assert "prompt hello.part1 (en): no recording and no text to synthesize" in captured.err
    assert "no recording hello_rec.wav; using the text" in captured.out

    write_tone(tmp_path / "prompts" / "jingle.wav")
    assert main(["-c", config, "prompts", "build"]) == 0
    counts = _counts(capsys.readouterr().out)
    assert counts["recorded"] == 2  # the jingle, in both languages
    assert counts["cached"] == 6  # rendered by the first run (Hello./你好。 among them)


def test_a_broken_recording_fails_the_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_tiny(tmp_path))
    bad = tmp_path / "prompts" / "zh" / "hello.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"RIFF....WAVEjunk")
    assert main(["-c", config, "prompts", "build"]) == 1
    err = capsys.readouterr().err
    assert "prompt hello (zh)" in err and "not a PCM WAV" in err
    assert "1 prompt could not be made ready" in err


def test_flow_errors_and_missing_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_tiny(tmp_path, TINY.replace("goto: bye}", "goto: nowhere}", 1)))
    assert main(["-c", config, "prompts", "build"]) == 1
    assert "fix the flows first" in capsys.readouterr().err
    assert main(["-c", config, "prompts", "list", "--flows", str(tmp_path / "none")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_flows_option_overrides_the_configured_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_config(tmp_path, tmp_path / "not-used"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "tiny.yaml").write_text(TINY, encoding="utf-8")
    assert main(["-c", config, "prompts", "list", "--flows", str(other)]) == 0
    assert "(8 prompts)" in capsys.readouterr().out


def test_build_without_espeak_stops_with_the_fix(tmp_path: Path) -> None:
    flowset, _ = load_flowset(_tiny(tmp_path).parent / "flows")
    cache = PromptCache(tmp_path / "prompts", Synthesizer(library="libespeak-ng-not-here.so.1"))
    with pytest.raises(TTSUnavailable, match="apt-get install espeak-ng"):
        build_prompts(flowset, cache)


def test_render_dynamic_fills_the_cache_by_text(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path / "prompts")
    text = compile_template("您的可用余额为{balance|amount}。").render({"balance": 1024.5}, "zh")
    path = render_dynamic(text, "zh", cache)
    assert read(path).rate == 8000
    assert cache.lookup("say_balance", "zh", text) == path
