"""Grammar specs (ivr/asr/spec.py): parsing, errors, writing back, and grammars from flows."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.asr.base import Grammar
from ivr.asr.spec import (
    GrammarSpecError,
    format_grammar_spec,
    parse_grammar_spec,
    split_flow_ref,
)
from ivr.config import load_config
from ivr.host.grammars import grammar_from_flow

ROOT = Path(__file__).resolve().parent.parent

FLOW = """\
flow: shop
languages: [en, zh]
start: menu
globals:
  "0": agent
  agent: {say: {en: [agent, operator], zh: [人工]}, goto: agent}
nodes:
  menu:
    menu:
      prompt: {en: "Say orders or returns.", zh: "请说订单或退货。"}
      choices:
        "1": {say: {en: [orders, my orders], zh: [订单]}, goto: ask_code}
        "2": {say: {en: [returns], zh: [退货]}, goto: sure}
  sure:
    confirm: {prompt: {en: "Sure?", zh: "确定吗？"}, yes: bye, no: menu}
  ask_code:
    recognize:
      prompt: {en: "Say the amount.", zh: "请说金额。"}
      grammar: amount
      into: amount
      next: bye
  agent:
    transfer: {to: "sip:desk@example.com", on_fail: bye}
  bye:
    hangup: {prompt: {en: "Bye.", zh: "再见。"}}
"""


def test_phrases_are_their_own_keys() -> None:
    g = parse_grammar_spec("balance | Lost  Card | agent")
    assert g == Grammar("en", {"balance": ("balance",), "lost card": ("lost card",),
                               "agent": ("agent",)})


def test_keys_with_synonyms_and_language() -> None:
    g = parse_grammar_spec("card=lost card/stolen card | balance", "ko")
    assert g.language == "ko"
    assert g.choices == {"card": ("lost card", "stolen card"), "balance": ("balance",)}
    assert parse_grammar_spec("lost card/stolen card").choices == {
        "lost card": ("lost card", "stolen card")}


@pytest.mark.parametrize(("spec", "builtin", "low", "high"), [
    ("@digits", "digits", None, None), ("@digits:4", "digits", 4, 4),
    ("@digits:4-16", "digits", 4, 16), ("@yes_no", "yes_no", None, None),
    ("@amount", "amount", None, None),
])
def test_builtins(spec: str, builtin: str, low: int | None, high: int | None) -> None:
    g = parse_grammar_spec(spec)
    assert (g.builtin, g.min_digits, g.max_digits, g.choices) == (builtin, low, high, {})


def test_builtin_mixed_with_phrases() -> None:
    g = parse_grammar_spec("@yes_no | agent=agent/operator")
    assert g.builtin == "yes_no"
    assert g.choices == {"agent": ("agent", "operator")}


@pytest.mark.parametrize(("spec", "message"), [
    ("", "empty grammar spec"),
    ("  ", "empty grammar spec"),
    ("a || b", "item 2 of"),
    ("@digit", "unknown built-in '@digit'"),
    ("@digits:", "give a digit count"),
    ("@digits:0", "1 <= N <= M"),
    ("@digits:5-4", "1 <= N <= M"),
    ("@digits:four", "N or N-M"),
    ("@yes_no:2", "only @digits takes a length"),
    ("@digits | @yes_no", "only one built-in"),
    ("a | a", "choice 'a' appears twice"),
    ("x=hello | y=hi/hello", "'hello' is in both 'x' and 'y'"),
    ("=hello", "choice key before '='"),
    ("a=b=c", "one '=' per choice"),
    ("a=x//y", "an empty phrase"),
    ("hello!", "only letters, digits, apostrophes"),
    ("snake_case", "only letters, digits, apostrophes"),
])
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(GrammarSpecError, match=message.replace("|", r"\|")):
        parse_grammar_spec(spec)


@pytest.mark.parametrize("spec", [
    "balance | card=lost card/stolen card", "@digits:4-16 | agent", "@digits:3", "@amount",
    "that's all | 잔액 | 余额",
])
def test_format_reads_back_to_the_same_grammar(spec: str) -> None:
    g = parse_grammar_spec(spec)
    assert parse_grammar_spec(format_grammar_spec(g)) == g


def test_format_refuses_what_a_spec_cannot_hold() -> None:
    with pytest.raises(GrammarSpecError, match="cannot be written"):
        format_grammar_spec(Grammar("en", {"a": ("this/that",)}))


def test_split_flow_ref() -> None:
    assert split_flow_ref("flows/bank-main.yaml:main_menu") == ("flows/bank-main.yaml",
                                                                "main_menu")
    with pytest.raises(GrammarSpecError, match="FLOW:NODE"):
        split_flow_ref("main_menu")


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "shop.yaml").write_text(FLOW, encoding="utf-8")
    return flows


def test_flow_menu_includes_spoken_global_commands(shop: Path) -> None:
    g = grammar_from_flow(shop / "shop.yaml", "menu", "en")
    assert g.choices == {"1": ("orders", "my orders"), "2": ("returns",),
                         "global:agent": ("agent", "operator")}
    assert g.builtin is None
    zh = grammar_from_flow(shop, "menu", "zh")  # a folder: the node's flow is found
    assert zh.language == "zh"
    assert zh.choices["1"] == ("订单",)


def test_flow_builtins(shop: Path) -> None:
    assert grammar_from_flow(shop, "sure").builtin == "yes_no"
    assert grammar_from_flow(shop, "ask_code").builtin == "amount"


def test_flow_errors(shop: Path) -> None:
    with pytest.raises(GrammarSpecError, match="has no node 'nope'"):
        grammar_from_flow(shop / "shop.yaml", "nope")
    with pytest.raises(GrammarSpecError, match=r"\(hangup\) does not wait"):
        grammar_from_flow(shop / "shop.yaml", "bye")
    with pytest.raises(GrammarSpecError, match="has no language 'ko'"):
        grammar_from_flow(shop / "shop.yaml", "menu", "ko")
    with pytest.raises(GrammarSpecError, match="in no flow of"):
        grammar_from_flow(shop, "nope")
    with pytest.raises(GrammarSpecError, match="no such flow file"):
        grammar_from_flow(shop / "missing.yaml", "menu")


def test_bank_flow_by_id() -> None:
    config = load_config(ROOT / "ivr.yaml")
    g = grammar_from_flow("bank-main", "main_menu", "en", config)
    assert g.choices["2"] == ("lost card", "stolen card", "block my card")
    assert g.choices["global:agent"] == ("agent", "operator", "representative")
    # a collect node listens for the spoken global commands only
    assert grammar_from_flow("verify-customer", "ask_account", "en", config).choices == {
        "global:agent": ("agent", "operator", "representative")}
