"""Stage 1: the YAML loader keeps positions and keeps keys as text."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from ivr.flow.errors import YamlError
from ivr.flow.model import Pos
from ivr.flow.yamlload import (
    MAX_DEPTH,
    MAX_TEXT,
    MAX_VALUES,
    FlowLoader,
    child,
    load_yaml,
    parent,
    pointer,
    resolve_plain,
)


def load(text: str) -> object:
    return load_yaml(textwrap.dedent(text), "f.yaml").data


def test_no_yes_on_off_and_digit_keys_stay_strings() -> None:
    data = load("""
        confirm: {yes: a, no: b}
        on: 1
        off: 2
        1: one
        0: zero
        3.5: x
        true: t
    """)
    assert data == {
        "confirm": {"yes": "a", "no": "b"},
        "on": 1,
        "off": 2,
        "1": "one",
        "0": "zero",
        "3.5": "x",
        "true": "t",
    }
    assert all(isinstance(key, str) for key in data)  # type: ignore[union-attr]


def test_only_true_and_false_are_booleans() -> None:
    data = load("""
        a: yes
        b: no
        c: on
        d: off
        e: y
        f: true
        g: false
        h: True
    """)
    assert data == {"a": "yes", "b": "no", "c": "on", "d": "off", "e": "y", "f": True,
                    "g": False, "h": True}


def test_times_and_dates_stay_text_numbers_are_numbers() -> None:
    data = load("""
        time: 17:30
        date: 2026-10-01
        int: 42
        neg: -3
        float: 0.5
        hex: 0x1F
        null1: ~
        null2:
        text: '5'
    """)
    assert data == {"time": "17:30", "date": "2026-10-01", "int": 42, "neg": -3, "float": 0.5,
                    "hex": 31, "null1": None, "null2": None, "text": "5"}


@pytest.mark.parametrize(
    ("text", "tag"),
    [("true", "bool"), ("FALSE", "bool"), ("yes", "str"), ("null", "null"), ("", "null"),
     ("none", "str"), ("12", "int"), ("1.5e3", "float"), (".inf", "float"), ("1_000", "str"),
     ("12:30", "str"), ("+8613800000001", "int"), ("2026-10-01", "str")],
)
def test_resolve_plain_follows_the_yaml_1_2_core_schema(text: str, tag: str) -> None:
    assert resolve_plain(text) == f"tag:yaml.org,2002:{tag}"


def test_the_safe_loader_subclass_works_with_yaml_load() -> None:
    data = yaml.load("no: yes\nt: 17:30\n", Loader=FlowLoader)  # a SafeLoader subclass
    assert data == {"no": "yes", "t": "17:30"}


def test_positions_of_keys_and_values_are_one_based() -> None:
    doc = load_yaml("flow: x\nnodes:\n  welcome:\n    say: {prompt: hi, next: b}\n", "f.yaml")
    pos = doc.positions
    assert pos.key("/flow") == Pos("f.yaml", 1, 1)
    assert pos.value("/flow") == Pos("f.yaml", 1, 7)
    assert pos.key("/nodes/welcome") == Pos("f.yaml", 3, 3)
    assert pos.key("/nodes/welcome/say/next") == Pos("f.yaml", 4, 23)
    assert pos.value("/nodes/welcome/say/next") == Pos("f.yaml", 4, 29)


def test_list_items_have_positions_and_missing_pointers_use_the_parent() -> None:
    doc = load_yaml("langs:\n  - en\n  - zh\n", "f.yaml")
    assert doc.positions.value("/langs/1") == Pos("f.yaml", 3, 5)
    assert doc.positions.key("/langs/1") == Pos("f.yaml", 3, 5)
    assert doc.positions.value("/langs/7/deeper") == doc.positions.value("/langs")


def test_inside_points_at_a_character_of_plain_and_quoted_scalars() -> None:
    doc = load_yaml('a: "x + y"\nb: x + y\nc: |\n  x + y\n', "f.yaml")
    assert doc.positions.inside("/a", 2) == Pos("f.yaml", 1, 7)  # after the quote
    assert doc.positions.inside("/b", 2) == Pos("f.yaml", 2, 6)
    assert doc.positions.inside("/c", 2) == Pos("f.yaml", 3, 4)  # block scalar: its indicator


def test_duplicate_keys_are_reported_at_the_second_and_the_first_is_kept() -> None:
    doc = load_yaml("nodes:\n  a: 1\n  b: 2\n  a: 3\nx: 1\nx: 2\n", "f.yaml")
    assert doc.data == {"nodes": {"a": 1, "b": 2}, "x": 1}
    messages = [(d.pos.line, d.pos.col, d.message) for d in doc.diagnostics]
    assert messages == [
        (4, 3, "duplicate node id 'a' (first defined at line 2)"),
        (6, 1, "duplicate key 'x' (first defined at line 5)"),
    ]
    assert all(d.stage == "yaml" for d in doc.diagnostics)


def test_keys_that_differ_only_in_quoting_are_duplicates() -> None:
    doc = load_yaml('globals:\n  "0": agent\n  0: repeat\n', "f.yaml")
    assert [d.message for d in doc.diagnostics] == [
        "duplicate global command '0' (first defined at line 2)"
    ]


def test_syntax_error_raises_yaml_error_with_position() -> None:
    with pytest.raises(YamlError) as info:
        load_yaml("a:\n  b: c\n  d: : e\n", "bad.yaml")
    (diag,) = info.value.diagnostics
    assert diag.pos == Pos("bad.yaml", 3, 6)
    assert "YAML syntax" in diag.message and diag.stage == "yaml"


def test_tabs_get_a_hint() -> None:
    with pytest.raises(YamlError) as info:
        load_yaml("a:\n\tb: c\n", "tab.yaml")
    assert "use spaces" in info.value.diagnostics[0].message


def test_recursive_alias_is_an_error_not_a_hang() -> None:
    doc = load_yaml("a: &x [1, *x]\n", "f.yaml")
    assert any("alias" in d.message for d in doc.diagnostics)


def test_unsupported_tags_are_reported() -> None:
    doc = load_yaml("a: !!binary aGVsbG8=\nb: !custom x\n", "f.yaml")
    assert [d.pos.line for d in doc.diagnostics] == [1, 2]


def test_non_scalar_keys_are_reported() -> None:
    doc = load_yaml("? [a, b]\n: c\n", "f.yaml")
    assert doc.diagnostics and "plain text" in doc.diagnostics[0].message


def test_empty_text_is_none() -> None:
    assert load_yaml("", "f.yaml").data is None


def test_pointer_helpers_escape_slash_and_tilde() -> None:
    assert pointer("nodes", "a/b", "c~d", 2) == "/nodes/a~1b/c~0d/2"
    assert child("", "x") == "/x"
    assert parent("/nodes/a") == "/nodes"
    assert parent("/nodes") == ""


def _bomb(levels: int) -> str:
    lines = ['flow: bomb', 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_with_its_position_not_a_memory_error() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml(_bomb(10), "bomb.yaml")  # 9**10 values: 3 GB before
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.pos.file == "bomb.yaml" and 3 <= diagnostic.pos.line <= 11
    assert f"more than {MAX_VALUES} values" in diagnostic.message
    assert load_yaml(_bomb(4)).data["a3"][0][0][0][0] == "lol"  # a modest use of aliases is fine


def test_nesting_deeper_than_the_limit_is_an_error_at_its_position() -> None:
    text = "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    doc = load_yaml(text, "deep.yaml")
    assert [(d.pos.line, d.pos.col) for d in doc.diagnostics] == [(1, 3 + MAX_DEPTH)]
    assert f"nested more than {MAX_DEPTH} deep" in doc.diagnostics[0].message


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    text = "flow: big\n" + "# padding\n" * (MAX_TEXT // 10)
    with pytest.raises(YamlError) as caught:
        load_yaml(text, "big.yaml")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.pos.line > 1 and "longer than" in diagnostic.message
