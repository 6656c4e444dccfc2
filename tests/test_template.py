"""Templates: fields, formats, literal braces, errors with columns, spoken and plain rendering."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.flow.template import Field, TemplateError, compile_template

SCOPE: dict[str, Any] = {
    "first": "Li",
    "last": "Wei",
    "account": "62220212",
    "balance": {"available": "1024.50", "date": "2027-01-04"},
    "open_at": "09:00",
    "count": 3,
    "flag": True,
    "nothing": None,
    "config": {"bank_api": "http://127.0.0.1:8080"},
}


def render(text: str, language: str = "en", speak: bool = True) -> str:
    return compile_template(text).render(SCOPE, language, speak=speak)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Welcome.", "Welcome."),
        ("", ""),
        ("{first} {last}", "Li Wei"),
        ("Hello {first}!", "Hello Li!"),
        ("{ first }", "Li"),
        ("{balance.available}", "1024.50"),
        ("{missing} and {balance.missing} and {nothing}", " and  and "),
        ("{count} calls", "3 calls"),
        ("{{literal}}", "{literal}"),
        ("{{{first}}}", "{Li}"),
        ("a }} b {{ c", "a } b { c"),
        ("{account|digits}", "six two two two zero two one two"),
        ("You have {balance.available|amount}.",
         "You have one thousand twenty-four yuan and fifty fen."),
        ("{balance.date|date}", "January 4, 2027"),
        ("We open at {open_at|time}.", "We open at nine in the morning."),
        ("{count|number} calls", "three calls"),
        ("{ count | number }", "three"),
        ("{missing|amount}", ""),  # an unknown variable is empty, in any format
    ],
)
def test_render_spoken_english(text: str, expected: str) -> None:
    assert render(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("您的余额是{balance.available|amount}。", "您的余额是一千零二十四元五角。"),
        ("{account|digits}", "六二二二零二一二"),
        ("{balance.date|date}", "二〇二七年一月四日"),
        ("{open_at|time}开门", "九点开门"),
        ("{count|number}", "三"),
        ("{first}", "Li"),
    ],
)
def test_render_spoken_mandarin(text: str, expected: str) -> None:
    assert render(text, "zh") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{config.bank_api}/balance", "http://127.0.0.1:8080/balance"),
        ("{account|digits}", "62220212"),  # digits leaves the value as it is
        ("{balance.available|amount}", "1024.50"),  # other formats are ignored too
        ("{count|number}", "3"),
        ("{flag}", "True"),
        ("{nothing}", ""),
        ("{first} {last}", "Li Wei"),
    ],
)
def test_render_plain(text: str, expected: str) -> None:
    assert render(text, "zh", speak=False) == expected


def test_a_value_its_format_cannot_read_is_spoken_as_text() -> None:
    assert render("Account {first|digits}") == "Account Li"
    assert render("{first|amount}") == "Li"


@pytest.mark.parametrize(
    ("text", "col", "message"),
    [
        ("{", 0, "unclosed '{'"),
        ("Hello {name", 6, "unclosed '{'"),
        ("}", 0, "single '}'"),
        ("Hello }", 6, "single '}'"),
        ("{name}}", 6, "single '}'"),
        ("{}", 0, "empty variable name"),
        ("ab {  }", 3, "empty variable name"),
        ("{|amount}", 0, "empty variable name"),
        ("{a{b}", 2, "'{' inside a field"),
        ("{name|}", 6, "unknown format ''"),
        ("{name|money}", 6, "unknown format 'money' (known: amount, date, digits, number, time)"),
        ("x {name | money }", 10, "unknown format 'money'"),
        ("{1abc}", 1, "bad variable name '1abc'"),
        ("{a b}", 1, "bad variable name 'a b'"),
        ("{a.}", 3, "bad variable name 'a.'"),
        ("{ a..b}", 4, "bad variable name 'a..b'"),
        ("{a.b-c}", 3, "bad variable name 'a.b-c'"),
        ("{a|digits|x}", 3, "unknown format 'digits|x'"),
        ("余额{x", 2, "unclosed '{'"),  # columns count characters
    ],
)
def test_errors_have_columns(text: str, col: int, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(text)
    assert info.value.col == col
    assert info.value.message.startswith(message)
    assert str(info.value) == info.value.message


def test_names_and_constants() -> None:
    template = compile_template("{a} {b.c|amount} {a} {{d}}")
    assert template.names == frozenset({"a", "b.c"})
    assert not template.is_constant
    constant = compile_template("Just {{text}}.")
    assert constant.is_constant and constant.names == frozenset()
    assert constant.render({}) == "Just {text}."
    assert template.source == "{a} {b.c|amount} {a} {{d}}"


def test_pieces_keep_fields_in_order_with_their_columns() -> None:
    template = compile_template("Hi {first}, {{x}} {n|number}")
    assert template.pieces == (
        "Hi ",
        Field("first", None, 3),
        ", {x} ",
        Field("n", "number", 18),
    )


def test_compile_is_cached() -> None:
    assert compile_template("{first} again") is compile_template("{first} again")


def test_render_reads_any_mapping_scope() -> None:
    from types import MappingProxyType

    template = compile_template("{a.b}")
    assert template.render(MappingProxyType({"a": MappingProxyType({"b": 1})})) == "1"
    assert template.render({"a": "not a record"}) == ""


def test_a_huge_value_is_cut_when_spoken_but_not_in_plain_values() -> None:
    from ivr.flow.template import MAX_SPOKEN_FIELD, compile_template

    template = compile_template("Thank you, {name}.")
    scope = {"name": "x" * 1_000_000}
    assert len(template.render(scope)) == MAX_SPOKEN_FIELD + len("Thank you, .")
    assert len(template.render(scope, speak=False)) == 1_000_000 + len("Thank you, .")
    digits = compile_template("{ref|digits}").render({"ref": "7" * 1_000_000})
    assert 0 < len(digits) < 10 * MAX_SPOKEN_FIELD
