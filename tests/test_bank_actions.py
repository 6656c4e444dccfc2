"""flows/actions/bank_actions.py: the bank flow's Python actions."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

ACTIONS = Path(__file__).resolve().parents[1] / "flows" / "actions"


@pytest.fixture(scope="module")
def bank_actions() -> ModuleType:
    if str(ACTIONS) not in sys.path:
        sys.path.insert(0, str(ACTIONS))
    return importlib.import_module("bank_actions")


@pytest.mark.parametrize(
    ("number", "segment"),
    [
        ("+8610888812345", "corporate"),
        ("+86106660001", "corporate"),
        ("0086 21-5555 0101", "small_business"),
        ("sip:+8675512345678@pbx.example", "small_business"),
        ("+8613800000001", "retail"),
        ("13800000001", "retail"),
    ],
)
def test_segment_for_number(bank_actions: ModuleType, number: str, segment: str) -> None:
    assert bank_actions.segment_for_number({"number": number})["segment"] == segment


@pytest.mark.parametrize("number", ["", "anonymous", "sip:anonymous@anonymous.invalid", "12"])
def test_withheld_number_raises(bank_actions: ModuleType, number: str) -> None:
    with pytest.raises(ValueError, match="withheld"):
        bank_actions.segment_for_number({"number": number})


def test_normalise_number(bank_actions: ModuleType) -> None:
    assert bank_actions.normalise_number(" 0086 (21) 5555-0101 ") == "+862155550101"
