"""Digit validators: Luhn and Python functions from the actions path."""

from pathlib import Path

import pytest

from ivr.engine.actions import load_action as load_function
from ivr.engine.validators import luhn_ok


@pytest.mark.parametrize(
    ("digits", "ok"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True),
     ("0", True), ("", False), ("12a4", False)],
)
def test_luhn(digits: str, ok: bool) -> None:
    assert luhn_ok(digits) is ok


def test_load_function_from_actions_path(tmp_path: Path) -> None:
    (tmp_path / "my_checks_mod.py").write_text("def even(v):\n    return int(v) % 2 == 0\n")
    func = load_function("my_checks_mod:even", tmp_path)
    assert func("4") is True and func("5") is False


def test_load_function_rejects_non_callables(tmp_path: Path) -> None:
    (tmp_path / "my_consts_mod.py").write_text("LIMIT = 3\n")
    with pytest.raises(TypeError):
        load_function("my_consts_mod:LIMIT", tmp_path)
