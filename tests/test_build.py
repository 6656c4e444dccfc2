"""Stage 3: plain data -> model dataclasses (prompt ids, defaults, calendars, phrases, globals)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.flow.build import build_flow, merge_defaults
from ivr.flow.loader import load_flow, load_text
from ivr.flow.model import (
    CollectNode,
    Defaults,
    EnqueueNode,
    Flow,
    HoursNode,
    LanguageNode,
    MenuNode,
    Pos,
    RecognizeNode,
    SayNode,
    SurveyNode,
)
from ivr.flow.yamlload import load_yaml

GOOD = Path(__file__).parent / "flows" / "good"


def flow(text: str) -> Flow:
    return load_text(textwrap.dedent(text), "t.yaml")


@pytest.fixture(scope="module")
def bank() -> Flow:
    return load_flow(GOOD / "bank.yaml")


def test_prompt_ids_follow_the_rules(bank: Flow) -> None:
    menu = bank.nodes["main_menu"]
    assert isinstance(menu, MenuNode)
    assert menu.prompt.id == "main_menu"
    assert [p.id for p in menu.opts.no_input.reprompts] == [
        "main_menu.no_input",
        "main_menu.no_input.2",
    ]
    assert [p.then_prompt for p in menu.opts.no_input.reprompts] == [True, False]
    assert [p.id for p in menu.opts.no_match.reprompts] == ["sorry"]  # {ref: sorry}
    assert menu.opts.no_input.reprompts[0].parts[0].text == {
        "en": "Please press 1 or 2.",
        "zh": "请按1或2。",
    }


def test_multi_part_prompt_keeps_library_ids_and_numbers_the_rest(bank: Flow) -> None:
    prompt = bank.nodes["choose_language"].prompt  # type: ignore[attr-defined]
    assert prompt.id == "choose_language"
    assert [(p.id, p.audio) for p in prompt.parts] == [
        ("jingle", "bank_jingle"),
        ("choose_language.part2", None),
    ]


def test_explicit_id_wins_and_survey_questions_are_named_after_the_node() -> None:
    f = flow("""
        flow: t
        start: a
        nodes:
          a: {say: {prompt: {id: hello_v2, en: "Hello."}, next: s}}
          s:
            survey:
              questions: [{id: nps, prompt: "Rate us.", scale: 9}]
              next: b
          b: {hangup: {}}
    """)
    assert f.nodes["a"].prompt.id == "hello_v2"  # type: ignore[attr-defined]
    assert f.nodes["a"].prompt.parts[0].id == "hello_v2"  # type: ignore[attr-defined]
    survey = f.nodes["s"]
    assert isinstance(survey, SurveyNode)
    assert survey.questions[0].prompt.id == "s.nps"


def test_string_prompt_is_the_default_language() -> None:
    doc = load_yaml("flow: t\nlanguages: [zh]\nstart: a\nnodes:\n  a: {hangup: {prompt: 你好}}\n")
    built = build_flow(doc).flow
    assert built.nodes["a"].prompt.parts[0].text == {"zh": "你好"}  # type: ignore[attr-defined]


def test_defaults_merge_platform_then_ivr_yaml_then_flow(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text(
        "languages: [en]\ntimers: {no_input_timeout: 7, max_no_match: 4, confidence: 0.6}\n"
    )
    config = load_config(tmp_path / "ivr.yaml")
    text = "flow: t\nstart: a\ndefaults: {no_input_timeout: 9, escalate: a}\nnodes:\n" \
           "  a: {hangup: {}}\n"
    f = load_text(text, "t.yaml", config)
    assert f.defaults == Defaults(no_input_timeout=9.0, max_no_match=4, confidence=0.6,
                                  escalate="a")
    assert load_text(text, "t.yaml").defaults.max_no_match == 3  # platform value


def test_bad_ivr_yaml_timers_are_reported(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text("timers: {no_input_timout: 7, barge_in: maybe}\n")
    config = load_config(tmp_path / "ivr.yaml")
    with pytest.raises(Exception) as info:
        load_text("flow: t\nstart: a\nnodes:\n  a: {hangup: {}}\n", "t.yaml", config)
    text = str(info.value)
    assert "ivr.yaml timers: unknown setting 'no_input_timout'" in text
    assert "'barge_in' has the wrong type" in text


def test_merge_defaults_converts_numbers() -> None:
    merged, problems = merge_defaults(Defaults(), {"end_silence": 1, "terminator": "*"})
    assert merged.end_silence == 1.0 and isinstance(merged.end_silence, float)
    assert merged.terminator == "*" and problems == []


def test_calendar_parsed_with_breaks_ranges_holidays_and_overrides(bank: Flow) -> None:
    cal = bank.calendars["branches"]
    assert cal.timezone == "Asia/Shanghai"
    assert cal.weekly[0] == ((540, 720), (780, 1020))
    assert cal.weekly[4] == cal.weekly[0]
    assert cal.weekly[5] == ((540, 720),)
    assert 6 not in cal.weekly  # sunday not listed: closed
    assert cal.holidays == frozenset({"2026-10-01", "2026-10-02"})
    assert cal.overrides == {"2026-12-24": ((540, 720),), "2026-12-31": ()}
    hours = bank.nodes["check_hours"]
    assert isinstance(hours, HoursNode) and hours.holiday == "holiday_msg"


def test_phrases_plain_list_serves_every_language_mapping_falls_back(bank: Flow) -> None:
    menu = bank.nodes["main_menu"]
    assert isinstance(menu, MenuNode)
    by_key = {c.key: c for c in menu.choices}
    assert by_key["loans"].say == {"en": ("loan", "repay loan"), "zh": ("loan", "repay loan")}
    assert by_key["loans"].dtmf is None and by_key["loans"].set == {"topic": "loans"}
    assert by_key["1"].say == {"en": ("balance", "my balance"), "zh": ("余额",)}
    assert by_key["2"].dtmf == "2" and by_key["2"].goto == "lost_card" and by_key["2"].say == {}
    f = flow("""
        flow: t
        languages: [en, zh, yue]
        start: m
        globals: {agent: {say: {en: [agent], zh: [人工]}, goto: m}}
        nodes:
          m:
            recognize: {prompt: {en: x, zh: x, yue: x}, grammar: [yes please], into: v, next: z,
                        no_input: {goto: z}, no_match: {goto: z}}
          z: {hangup: {}}
    """)
    assert f.globals["agent"].say == {"en": ("agent",), "zh": ("人工",), "yue": ("agent",)}
    node = f.nodes["m"]
    assert isinstance(node, RecognizeNode)
    assert node.grammar == {"en": ("yes please",), "zh": ("yes please",), "yue": ("yes please",)}


def test_globals_model_flow_and_node_overrides() -> None:
    f = flow("""
        flow: t
        start: a
        globals: {"0": z, "*": repeat}
        nodes:
          a:
            menu:
              prompt: "Press 1."
              choices: {"1": b}
              globals: {"*": null, "9": z}
              no_input: {goto: z}
              no_match: {goto: z}
          b:
            collect: {prompt: "PIN.", into: pin, secret: true, next: c, no_input: {goto: z},
                      no_match: {goto: z}}
          c:
            collect: {prompt: "PIN.", into: pin2, secret: true, globals: {"0": z}, next: d,
                      no_input: {goto: z}, no_match: {goto: z}}
          d:
            confirm: {prompt: "Sure?", yes: z, no: a, globals: false, no_input: {goto: z},
                      no_match: {goto: z}}
          z: {hangup: {}}
    """)
    assert f.globals["0"].key == "0" and f.globals["0"].target == "z"
    assert f.globals["0"].pos == Pos("t.yaml", 4, 16)
    a = f.nodes["a"]
    assert isinstance(a, MenuNode)
    assert a.opts.globals is not None and a.opts.globals["*"].target is None
    assert a.opts.globals["9"].target == "z" and not a.opts.globals_off
    b, c = f.nodes["b"], f.nodes["c"]
    assert isinstance(b, CollectNode) and isinstance(c, CollectNode)
    assert b.opts.globals_off and b.opts.globals == {}  # secret: globals off by default
    assert not c.opts.globals_off and c.opts.globals is not None  # unless the node sets them
    assert f.nodes["d"].opts.globals_off  # type: ignore[attr-defined]


def test_node_fields_and_positions() -> None:
    f = flow("""
        flow: t
        start: a
        nodes:
          a:
            prompt: {prompt: "Hi.", next: b}
          b:
            collect: {prompt: "Digits.", into: d, next: c, no_input: {goto: c},
                      no_match: {goto: c}}
          c:
            enqueue: {queue: q, priority: "= 3 + 4", skills: [cards]}
    """)
    a = f.nodes["a"]
    assert isinstance(a, SayNode) and a.barge_in is False  # alias of say; say defaults off
    assert a.pos == Pos("t.yaml", 5, 3) and a.next_pos == Pos("t.yaml", 6, 35)
    b = f.nodes["b"]
    assert isinstance(b, CollectNode) and (b.min, b.max, b.terminator) == (1, 32, None)
    assert b.opts.no_input.goto == "c" and b.opts.no_input.pos == Pos("t.yaml", 8, 69)
    c = f.nodes["c"]
    assert isinstance(c, EnqueueNode) and c.priority == "= 3 + 4" and c.skills == ("cards",)


def test_language_node_and_transfer_allow_merge(tmp_path: Path) -> None:
    (tmp_path / "ivr.yaml").write_text('transfer_allow: ["sip:*@a.example", "+86*"]\n')
    config = load_config(tmp_path / "ivr.yaml")
    f = load_text(textwrap.dedent("""
        flow: t
        languages: [en, zh]
        start: l
        transfer_allow: ["+86*", "sip:x@b.example"]
        nodes:
          l:
            language: {prompt: {en: "1 English", zh: "2 中文"}, choices: {"1": en, "2": zh},
                       next: z, no_match: {goto: z}}
          z: {hangup: {}}
    """), "t.yaml", config)
    node = f.nodes["l"]
    assert isinstance(node, LanguageNode) and node.choices == {"1": "en", "2": "zh"}
    assert f.transfer_allow == ("+86*", "sip:x@b.example", "sip:*@a.example")


def test_digest_is_sha256_of_the_text() -> None:
    import hashlib

    text = "flow: t\nstart: a\nnodes:\n  a: {hangup: {}}\n"
    assert load_text(text, "t.yaml").digest == hashlib.sha256(text.encode()).hexdigest()
