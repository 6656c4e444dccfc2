"""How a call is judged against its script: the Divergence record and the comparisons.

Variables are compared as strings (numbers also by value, so 1024 matches "1024.00"); prompt
texts by :class:`difflib.SequenceMatcher` ratio after normalising case, punctuation and spaces.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ivr.core.events import MASK
from ivr.engine.speech import normalise


@dataclass(frozen=True)
class Divergence:
    """Where and how a call left its script."""

    file: str
    line: int
    step: int | None  # 1-based step number; None for the script itself (outcome, call)
    what: str  # the step as written ("expect ask_pin") or "outcome", "script"
    message: str  # expected vs actual
    t: float | None = None  # virtual seconds since the call started
    node: str | None = None
    expected: str | None = None
    actual: str | None = None  # e.g. the prompt id that came instead
    actual_text: str | None = None  # the text of that prompt

    def where(self) -> str:
        step = f" step {self.step}" if self.step is not None else ""
        return f"{self.file}:{self.line}{step} ({self.what})"

    def detail(self) -> str:
        """The lines under the FAIL line (docs/TESTING.md)."""
        head = []
        if self.t is not None:
            head.append(f"at t={self.t:.2f}s")
        if self.node:
            head.append(f"in node {self.node}")
        text = f"{' '.join(head)}: {self.message}" if head else self.message
        lines = [f"  {text}"]
        if self.actual_text:
            lines.append(f'  ("{self.actual_text}")')
        return "\n".join(lines)

    def format(self) -> str:
        return f"{self.where()}\n{self.detail()}"


def lookup(values: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    """(found, value) for a dotted name; a flat key with dots wins over nesting."""
    if dotted in values:
        return True, values[dotted]
    value: Any = values
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def same_value(actual: Any, expected: Any) -> bool:
    """Values compared as strings (numbers also by value, so 1024 matches "1024.00")."""
    if actual is None or expected is None:
        return str(actual if actual is not None else expected).lower() in ("none", "null", "")
    if isinstance(actual, bool) or isinstance(expected, bool):
        return str(actual).lower() == str(expected).lower()
    if str(actual) == str(expected):
        return True
    try:
        return float(str(actual)) == float(str(expected))
    except ValueError:
        return False


def text_ratio(expected: str, actual: str) -> float:
    """Similarity of two prompt texts after normalising case, punctuation and spaces."""
    return difflib.SequenceMatcher(None, normalise(expected), normalise(actual)).ratio()


def vars_problem(expected: Mapping[str, Any], values: Mapping[str, Any],
                 is_secret: Callable[[str], bool] = lambda name: False) -> str | None:  # fmt: skip
    """The first variable that differs, as a message; None when all match.

    A secret variable (``is_secret``: a PIN, a card number) is never shown, neither the value
    the script expected nor the one the call had: failures go to the terminal and JUnit files.
    """
    for name, want in expected.items():
        found, got = lookup(values, name)
        secret = is_secret(name)
        shown = MASK if secret else repr(str(want))
        if not found:
            return f"expected {name} = {shown}, but {name} is not set"
        if not same_value(got, want):
            if secret:
                return f"expected {name} = {MASK}, got another value (secret: not shown)"
            return f"expected {name} = {shown}, got {str(got)!r}"
    return None
