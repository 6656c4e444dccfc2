"""Stage 4: semantic checks, driven by the fixture flows in tests/flows/{good,bad,warn}.

Each bad or warn fixture starts with ``# expect: LINE:COL text`` lines; the test checks that a
diagnostic containing ``text`` is reported at exactly that line and column.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from ivr.config import load_config
from ivr.flow.errors import Diagnostic, SchemaError, SemanticError, Severity
from ivr.flow.loader import Loaded, check_files, check_text, load_text

FLOWS = Path(__file__).parent / "flows"
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$")


def expectations(path: Path) -> list[tuple[int, int, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = EXPECT.match(line)
        if match:
            out.append((int(match.group(1)), int(match.group(2)), match.group(3).strip()))
    return out


@pytest.fixture(scope="module")
def checked() -> dict[Path, Loaded]:
    """Every fixture folder checked as one flow set (sub-flows resolve across its files)."""
    out: dict[Path, Loaded] = {}
    for folder in ("good", "bad", "warn"):
        files = sorted((FLOWS / folder).glob("*.yaml"))
        out.update(zip(files, check_files(files), strict=True))
    return out


def _found(diagnostics: list[Diagnostic], line: int, col: int, text: str) -> bool:
    return any(d.pos.line == line and d.pos.col == col and text in d.message for d in diagnostics)


BAD = sorted((FLOWS / "bad").glob("*.yaml"))
WARN = sorted((FLOWS / "warn").glob("*.yaml"))


def test_there_are_enough_bad_fixtures_and_each_says_what_it_expects() -> None:
    assert len(BAD) >= 14
    assert all(expectations(path) for path in BAD)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_flow_reports_each_expected_error_at_its_position(
    path: Path, checked: dict[Path, Loaded]
) -> None:
    loaded = checked[path]
    assert loaded.errors, f"{path.name} was accepted"
    for line, col, text in expectations(path):
        assert _found(loaded.diagnostics, line, col, text), (
            f"{path.name}: expected {line}:{col} {text!r}; got:\n"
            + "\n".join(str(d) for d in loaded.diagnostics)
        )


@pytest.mark.parametrize("path", WARN, ids=lambda p: p.stem)
def test_warning_flows_load_and_report_each_expected_warning(
    path: Path, checked: dict[Path, Loaded]
) -> None:
    loaded = checked[path]
    assert loaded.flow is not None and loaded.errors == []
    assert len(loaded.warnings) == len(expectations(path))
    for line, col, text in expectations(path):
        assert _found(loaded.warnings, line, col, text), "\n".join(map(str, loaded.diagnostics))


@pytest.mark.parametrize("path", sorted((FLOWS / "good").glob("*.yaml")), ids=lambda p: p.stem)
def test_good_flows_have_no_errors_and_no_warnings(
    path: Path, checked: dict[Path, Loaded]
) -> None:
    assert checked[path].diagnostics == []
    assert checked[path].flow is not None


def test_good_flows_use_every_node_type_between_them(checked: dict[Path, Loaded]) -> None:
    from ivr.flow.model import NODE_TYPES

    kinds = {
        node.kind
        for path, loaded in checked.items()
        if path.parent.name == "good" and loaded.flow
        for node in loaded.flow.nodes.values()
    }
    assert kinds == set(NODE_TYPES)


def test_one_file_with_several_faults_reports_all_of_them(checked: dict[Path, Loaded]) -> None:
    path = FLOWS / "bad" / "several_faults.yaml"
    loaded = checked[path]
    expected = expectations(path)
    assert len(expected) == 5
    assert len(loaded.errors) == 5
    stages = {d.stage for d in loaded.errors}
    assert stages == {"schema", "semantic"}  # the schema error did not hide the others


# --- individual rules --------------------------------------------------------------------------


def problems(text: str, config_dir: Path | None = None) -> list[str]:
    config = load_config(config_dir / "ivr.yaml") if config_dir else None
    loaded = check_text(textwrap.dedent(text), "t.yaml", config)
    return [f"{d.pos.line}:{d.pos.col} {d.severity.value}: {d.message}" for d in loaded.diagnostics]


LOOPING_MENU = """
flow: t
start: main
{extra}
nodes:
  main:
    menu:
      prompt: "Press 1 for news."
      choices: {{"1": news}}
  news:
    say: {{prompt: "No news.", next: main}}
{agent}
"""


def test_menu_without_escalation_is_an_error_until_there_is_a_way_out() -> None:
    trapped = problems(LOOPING_MENU.format(extra="", agent=""))
    assert any("caller would be cut off" in p for p in trapped)
    with_agent = LOOPING_MENU.format(extra="", agent="  agent: {enqueue: {queue: q}}")
    assert problems(with_agent) == []  # escalation goes to the agent node
    escalate = LOOPING_MENU.format(extra="defaults: {escalate: bye}", agent="  bye: {hangup: {}}")
    assert problems(escalate) == []


def test_dead_end_and_endless_loop_are_told_apart() -> None:
    dead = problems("""
        flow: t
        start: a
        defaults: {escalate: a}
        nodes:
          a: {menu: {prompt: "1 again.", choices: {"1": b}}}
          b: {goto: a}
    """)
    assert dead == ["6:3 error: dead end: once the call reaches nodes 'a', 'b' it can never end "
                    "(no hangup, transfer, enqueue, return or escalation leads out)"]
    loop = problems("""
        flow: t
        start: a
        nodes:
          a: {goto: a}
    """)
    assert loop == ["5:3 error: endless loop: node 'a' passes the call round without ever "
                    "waiting for the caller or ending the call"]


def test_a_loop_with_an_exit_is_fine() -> None:
    assert problems("""
        flow: t
        start: a
        vars: {n: 0}
        nodes:
          a: {set: {vars: {n: "= n + 1"}, next: b}}
          b: {branch: {when: [{if: "n < 3", goto: a}], else: c}}
          c: {hangup: {}}
    """) == []


def test_global_command_is_a_way_out_of_a_menu_loop() -> None:
    assert problems("""
        flow: t
        start: a
        globals: {"0": bye}
        defaults: {escalate: a}
        nodes:
          a: {menu: {prompt: "1 again.", choices: {"1": a}}}
          bye: {hangup: {}}
    """) == []


def test_transfer_allow_list_from_flow_and_config(tmp_path: Path) -> None:
    text = """
        flow: t
        start: a
        nodes:
          a: {transfer: {to: "+8695588", on_fail: b}}
          b: {hangup: {}}
    """
    assert problems(text) == []  # no ivr.yaml and no list in the flow: nothing to judge by
    (tmp_path / "ivr.yaml").write_text("transfer_allow: []\n")
    assert problems(text, tmp_path) == [
        "5:22 error: node 'a': transfer target '+8695588' is not in transfer_allow (nothing is "
        "allowed); add it to the flow's or ivr.yaml's list"
    ]
    (tmp_path / "ivr.yaml").write_text('transfer_allow: ["+86955*"]\n')
    assert problems(text, tmp_path) == []


def test_templates_and_expressions_everywhere_are_compiled() -> None:
    found = problems("""
        flow: t
        start: a
        nodes:
          a:
            action:
              webhook: {url: "{base/x", body: {n: "= 1 +"}, headers: {H: "{ok}"}}
              set: {v: "= result..x"}
              next: b
              on_error: b
          b: {hangup: {prompt: "Bye {name|nosuchformat}."}}
    """)
    # the unclosed brace; the end of "1 +"; the second dot; the unknown format's name
    assert [p.split(" error: ")[0] for p in found] == ["7:23", "7:49", "8:26", "11:35"]
    assert all("does not parse" in p for p in found)


def test_schema_errors_in_one_node_do_not_hide_problems_in_others() -> None:
    found = problems("""
        flow: t
        start: a
        nodes:
          a: {say: {prompt: "Hi.", nxt: b}}
          b: {say: {prompt: "Hi.", next: c}}
          c: {say: {prompt: "Hi.", next: nowhere}}
    """)
    assert found == [
        "5:7 error: node 'a': missing field 'next'",
        "5:28 error: node 'a': unknown key 'nxt' (did you mean 'next'?)",
        "7:34 error: node 'c': next goes to unknown node 'nowhere'",
    ]


def test_errors_outside_nodes_stop_before_the_model() -> None:
    with pytest.raises(SchemaError) as info:
        load_text("flow: t\nstart: a\nlanguages: en\nnodes:\n  a: {goto: nowhere}\n", "t.yaml")
    assert [d.message for d in info.value.diagnostics] == [
        "the flow: 'languages' must be a list, not text 'en'"
    ]


def test_node_override_of_an_unknown_global_and_language_choices() -> None:
    found = problems("""
        flow: t
        languages: [en]
        start: l
        nodes:
          l:
            language:
              prompt: "1 English, 2 French."
              choices: {"1": en, "2": fr}
              globals: {"5": null}
              next: z
              no_match: {goto: z}
          z: {hangup: {}}
    """)
    assert found == [
        "9:31 error: node 'l': 'fr' is not one of the flow's languages (en)",
        "10:17 warning: node 'l', global '5' switches off a command the flow does not have",
    ]


LANGUAGE_SAY = """
    flow: t
    languages: [en, zh]
    start: l
    nodes:
      l:
        language:
          prompt: {{en: "1 English, 2 Chinese.", zh: "1 英语，2 中文。"}}
          choices:
            "1": en
            "2": zh
    {choices}
          next: z
          no_match: {{goto: z}}
      z: {{hangup: {{}}}}
"""


def test_language_choice_say_clashes_are_errors_at_the_phrase() -> None:
    found = problems(LANGUAGE_SAY.format(choices="""
            "3": {language: fr}
            "4": {language: zh, say: {en: [putonghua, Mandarin]}}
            "5": {language: zh, say: {en: [putonghua]}}
            "6": {language: en, say: {zh: [中文]}}
            "7": {language: en, say: [english language]}
    """))
    assert found == [
        "13:25 error: node 'l': 'fr' is not one of the flow's languages (en, zh)",
        "14:51 error: node 'l': choice '4' phrase 'Mandarin' is also a phrase of choice '2' (zh)",
        "15:40 error: node 'l': choice '5' phrase 'putonghua' is also a phrase of choice '4' (zh)",
        "16:40 error: node 'l': choice '6' phrase '中文' is also a phrase of choice '2' (zh)",
    ]


def test_language_choice_in_the_long_form_must_name_its_language() -> None:
    found = problems(LANGUAGE_SAY.format(choices="""
            "3": {say: [french]}
            "4": {language: fr, sya: [french]}
    """))
    assert found == ["13:9 error: node 'l', choice '3': missing field 'language'",
                     "14:29 error: node 'l', choice '4': unknown key 'sya' (did you mean 'say'?)"]


def test_prompt_text_in_an_undeclared_language_is_a_warning() -> None:
    found = problems("""
        flow: t
        start: a
        nodes:
          a: {hangup: {prompt: {en: "Bye.", fr: "Au revoir."}}}
    """)
    assert found == ["5:24 warning: prompt 'a' has text in 'fr', which is not one of the flow's "
                     "languages (en)"]


def test_semantic_errors_raise_semantic_error_with_all_diagnostics() -> None:
    with pytest.raises(SemanticError) as info:
        load_text("flow: t\nstart: a\nnodes:\n  a: {goto: b}\n  b: {goto: c}\n", "t.yaml")
    assert all(d.severity is Severity.ERROR for d in info.value.diagnostics)
    assert "unknown node 'c'" in str(info.value)


def test_warnings_are_shown_next_to_schema_errors_inside_nodes() -> None:
    found = problems("""
        flow: t
        languages: [en]
        start: a
        nodes:
          a: {say: {prompt: "Hi.", next: e, bogus: 1}}
          e: {say: {prompt: "Hi.", next: b}}
          b: {hangup: {}}
          c: {hangup: {}}
    """)
    # 'e' and 'b' follow the broken node 'a' (its targets are read from its raw data).
    assert found == ["6:37 error: node 'a': unknown key 'bogus'",
                     "9:3 warning: node 'c' is never reached from start 'a'"]


def test_warnings_are_shown_next_to_schema_errors_outside_nodes() -> None:
    found = problems("""
        flow: t
        languages: [en]
        start: a
        bogus: 1
        nodes:
          a: {hangup: {}}
          c: {say: {prompt: {en: "x", fr: "y"}, next: a}}
    """)
    assert found == [
        "5:1 error: the flow: unknown key 'bogus'",
        "8:3 warning: node 'c' is never reached from start 'a'",
        "8:21 warning: prompt 'c' has text in 'fr', which is not one of the flow's languages (en)"]


def test_an_empty_translation_is_an_error() -> None:
    found = problems("""
        flow: t
        languages: [en, zh]
        start: a
        nodes:
          a: {hangup: {prompt: {en: "Goodbye.", zh: ""}}}
    """)
    assert found == ["6:24 error: prompt 'a' has empty zh text (callers in that language would "
                     "hear nothing)"]


def test_a_template_reaching_for_attributes_is_an_error() -> None:
    found = problems("""
        flow: t
        languages: [en]
        start: a
        nodes:
          a: {hangup: {prompt: "Balance {balance.__class__}."}}
    """)
    assert len(found) == 1 and found[0].startswith("6:")
    assert "'__class__' is not a variable or field" in found[0]
