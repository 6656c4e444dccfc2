"""Validators for collected digits: Luhn, or a Python function from the actions path."""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def load_function(spec: str, actions_path: Path | None) -> Callable[..., Any]:
    """``module:function`` imported with ``actions_path`` first on the import path."""
    module_name, _, func_name = spec.partition(":")
    if actions_path is not None and str(actions_path) not in sys.path:
        sys.path.insert(0, str(actions_path))
    module = importlib.import_module(module_name)
    func = getattr(module, func_name)
    if not callable(func):
        raise TypeError(f"{spec} is not a function")
    return func


def validate(rule: str, value: str, session: Session) -> bool:
    """Apply ``luhn`` or ``python:module:function``; a crashing validator rejects the entry."""
    if rule == "luhn":
        return luhn_ok(value)
    if rule.startswith("python:"):
        try:
            func = load_function(rule[len("python:"):], session.runtime.actions_path)
            return bool(func(value))
        except Exception as exc:
            log.error("call %s: validator %s failed: %s", session.call_id, rule,
                      type(exc).__name__)
            return False
    return False
