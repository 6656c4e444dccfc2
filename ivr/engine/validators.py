"""Validators for collected digits: Luhn, or a Python function from the actions path."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ivr.engine.actions import load_action

if TYPE_CHECKING:
    from ivr.engine.session import Session

log = logging.getLogger("ivr.engine")


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check used by card and many account numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def validate(rule: str, value: str, session: Session) -> bool:
    """Apply ``luhn`` or ``python:module:function``; a crashing validator rejects the entry."""
    if rule == "luhn":
        return luhn_ok(value)
    if rule.startswith("python:"):
        try:
            func = load_action(rule[len("python:"):], session.runtime.actions_path)
            return bool(func(value))
        except Exception as exc:
            log.error("call %s: validator %s failed: %s", session.call_id, rule,
                      type(exc).__name__)
            return False
    return False
