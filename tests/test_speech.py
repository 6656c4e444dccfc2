"""The engine's own reading of recognised text: phrases, yes/no, digits, amounts."""

import pytest

from ivr.engine.speech import (
    is_no,
    is_yes,
    match_phrase,
    normalise,
    spoken_amount,
    spoken_digits,
)

CHOICES = {
    "1": ("balance", "my balance", "account balance"),
    "2": ("lost card", "stolen card"),
    "loans": ("loan", "repay loan", "还贷款"),
}


def test_normalise_folds_case_punctuation_and_spaces() -> None:
    assert normalise("  My  BALANCE, please! ") == "my balance please"


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("balance", "1"),
        ("Balance.", "1"),
        ("I want my balance please", "1"),
        ("I lost my card", None),  # "lost card" is not in the sentence as words
        ("my card was a stolen card", "2"),
        ("I'd like to repay loan", "loans"),  # longest contained phrase wins over "loan"
        ("我想还贷款", "loans"),
        ("weather", None),
        ("", None),
    ],
)
def test_match_phrase(said: str, expected: str | None) -> None:
    assert match_phrase(said, CHOICES) == expected


def test_yes_and_no_in_both_languages() -> None:
    assert is_yes("Yes") and is_yes("对") and is_yes("okay")
    assert is_no("nope") and is_no("不是")
    assert not is_yes("no") and not is_no("yes") and not is_yes("maybe")


@pytest.mark.parametrize(
    ("said", "expected"),
    [("6222", "6222"), ("six two two two", "6222"), ("六二二二", "6222"), ("six twenty", None)],
)
def test_spoken_digits(said: str, expected: str | None) -> None:
    assert spoken_digits(said) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("1500", "1500.00"),
        ("1,500.5", "1500.50"),
        ("one thousand five hundred", "1500.00"),
        ("two hundred and twelve", "212.00"),
        ("一千五百", "1500.00"),
        ("两万零三十元", "20030.00"),
        ("十二", "12.00"),
        ("a lot", None),
    ],
)
def test_spoken_amount(said: str, expected: str | None) -> None:
    assert spoken_amount(said) == expected
