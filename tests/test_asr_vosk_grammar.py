"""Grammars for the Vosk decoder and reading its words back: pure functions, no model."""

from __future__ import annotations

import pytest

from ivr.asr.base import AsrError, Grammar
from ivr.asr.vosk_grammar import (
    builtin_words,
    compile_grammar,
    interpret,
    parse_english_amount,
    parse_korean_amount,
    parse_mandarin_amount,
)

BANK = Grammar("ko", {"balance": ("잔액", "잔액 조회"), "agent": ("상담원", "상담원 연결")})


@pytest.mark.parametrize(("words", "value"), [
    ("삼 만 오 천 원", 35000),
    ("만 원", 10000),
    ("천 이 백", 1200),
    ("십 오", 15),
    ("일 억 이 천 만", 120_000_000),
    ("구 백 구 십 구 원", 999),
    ("이 삼", None),  # a digit string, not a number
    ("백 천", None),  # multipliers must fall
    ("원", None),
    ("", None),
])  # fmt: skip
def test_korean_amounts(words: str, value: int | None) -> None:
    assert parse_korean_amount(words.split()) == value


def test_other_languages_amounts() -> None:
    assert parse_mandarin_amount(["三万五千", "元"]) == 35000
    assert parse_mandarin_amount(["两", "百"]) == 200
    assert parse_english_amount(["two", "hundred", "and", "fifty", "dollars"]) == 250
    assert parse_english_amount(["three", "thousand", "twenty"]) == 3020
    assert parse_english_amount(["dollars"]) is None
    assert parse_english_amount(["fifty", "lots"]) is None


def test_choices_split_into_phrases_of_one_key() -> None:
    compiled = compile_grammar(BANK)
    assert compiled.phrases == ("잔액", "잔액 조회", "상담원", "상담원 연결")
    assert interpret(compiled, ["잔액", "조회"]) == "balance"
    assert interpret(compiled, ["상담원", "상담원", "연결"]) == "agent"  # said twice
    assert interpret(compiled, ["잔액", "상담원"]) is None  # two choices: ambiguous
    assert interpret(compiled, ["조회"]) is None  # part of a phrase
    assert interpret(compiled, []) is None


def test_yes_no_and_choices_mixed() -> None:
    compiled = compile_grammar(Grammar("ko", {"agent": ("상담원",)}, builtin="yes_no"))
    assert interpret(compiled, ["네"]) == "yes"
    assert interpret(compiled, ["아니요"]) == "no"
    assert interpret(compiled, ["상담원"]) == "agent"
    assert interpret(compiled, ["네", "아니요"]) is None
    assert "네" in compiled.builtin_phrases and "네" not in compiled.phrases


def test_digits_within_bounds() -> None:
    compiled = compile_grammar(Grammar("ko", builtin="digits", min_digits=3, max_digits=4))
    assert interpret(compiled, ["공", "일", "이"]) == "012"
    assert interpret(compiled, ["영", "일", "이", "구"]) == "0129"
    assert interpret(compiled, ["일", "이"]) is None
    assert interpret(compiled, ["일", "이", "삼", "사", "오"]) is None
    assert interpret(compiled, ["일", "이", "하나"]) is None
    default = compile_grammar(Grammar("ko", builtin="digits"))
    assert (default.min_digits, default.max_digits) == (1, 20)


def test_amount_value_format() -> None:
    compiled = compile_grammar(Grammar("ko", builtin="amount"))
    assert interpret(compiled, ["이", "백", "오", "십", "원"]) == "250.00"
    assert "원" in compiled.builtin_phrases


def test_english_words_are_lower_cased() -> None:
    compiled = compile_grammar(Grammar("en", {"card": ("Lost  Card",)}, builtin="yes_no"))
    assert compiled.phrases == ("lost card",)
    assert interpret(compiled, ["lost", "card"]) == "card"
    assert interpret(compiled, ["yeah"]) == "yes"


def test_grammar_errors() -> None:
    with pytest.raises(AsrError, match="empty grammar"):
        compile_grammar(Grammar("ko"))
    with pytest.raises(AsrError, match="under two choices"):
        compile_grammar(Grammar("ko", {"a": ("잔액",), "b": ("잔액",)}))
    with pytest.raises(AsrError, match=r"no built-in grammars.*'fr'"):
        builtin_words("fr")
    assert builtin_words("ko-KR") is builtin_words("ko")
