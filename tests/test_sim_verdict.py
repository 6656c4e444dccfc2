"""Judging a call against its script (ivr/sim/verdict.py): comparisons and the Divergence."""

from __future__ import annotations

import pytest

from ivr.sim.verdict import Divergence, lookup, same_value, text_ratio, vars_problem


def test_lookup_dotted_names() -> None:
    values = {"balance": {"available": "1024.00"}, "a.b": 1, "n": None}
    assert lookup(values, "balance.available") == (True, "1024.00")
    assert lookup(values, "a.b") == (True, 1)
    assert lookup(values, "n") == (True, None)
    assert lookup(values, "balance.missing") == (False, None)
    assert lookup(values, "balance.available.x") == (False, None)


@pytest.mark.parametrize(
    ("actual", "expected", "same"),
    [
        ("1024.00", "1024.00", True),
        (1024, "1024.00", True),
        ("62220212", 62220212, True),
        (True, "true", True),
        (False, True, False),
        (None, "null", True),
        (None, "x", False),
        ("abc", "abd", False),
    ],
)
def test_same_value_compares_as_strings_and_numbers(
    actual: object, expected: object, same: bool
) -> None:
    assert same_value(actual, expected) is same


def test_text_ratio_ignores_case_and_punctuation() -> None:
    assert text_ratio("Please enter your PIN", "please enter your pin.") == 1.0
    assert text_ratio("Please enter your PIN", "Please enter your PIN now") > 0.8
    assert text_ratio("Please enter your PIN", "Your balance is ten yuan") < 0.5
    assert text_ratio("hello", "") == 0.0


def test_divergence_format_as_in_the_testing_doc() -> None:
    div = Divergence(
        file="tests/scripts/balance.yaml",
        line=9,
        step=4,
        what="expect ask_pin",
        message="expected prompt 'ask_pin', got 'ask_account.no_match'",
        t=12.4,
        node="ask_account",
        actual_text="Sorry, that account number is not valid.",
    )
    assert div.format() == (
        "tests/scripts/balance.yaml:9 step 4 (expect ask_pin)\n"
        "  at t=12.40s in node ask_account: expected prompt 'ask_pin', got "
        "'ask_account.no_match'\n"
        '  ("Sorry, that account number is not valid.")'
    )
    outcome = Divergence("s.yaml", 12, None, "outcome queued", "expected outcome 'queued'")
    assert outcome.format() == "s.yaml:12 (outcome queued)\n  expected outcome 'queued'"


def test_vars_problem_names_the_first_difference() -> None:
    values = {"balance": {"available": "1024.00"}, "segment": "retail"}
    assert vars_problem({"balance.available": 1024, "segment": "retail"}, values) is None
    assert vars_problem({"segment": "corporate"}, values) == (
        "expected segment = 'corporate', got 'retail'"
    )
    assert (
        vars_problem({"account": "1"}, values) == "expected account = '1', but account is not set"
    )
