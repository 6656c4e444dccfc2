"""Regular expressions in flows (``matches()``, a collect's ``pattern``), run by RE2.

The caller controls the text a flow matches (their caller ID, what they typed). Python's ``re``
backtracks: ``matches(call.caller, '^(\\+?[0-9]+)+$')`` against a 30-character caller ID took
22 s of CPU on the engine's one thread. RE2 matches in time linear in the text, whatever the
pattern; what it cannot do that way (back-references, look-around) it refuses, so
``ivr validate`` refuses it too. Patterns and the memory RE2 may use for one are bounded.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

#: Longer patterns are refused: a flow's patterns are short.
MAX_PATTERN = 1000
#: Memory RE2 may use for one compiled pattern (bytes); past it, compiling fails.
MAX_MEMORY = 8 << 20


class RegexError(ValueError):
    """A pattern RE2 refuses (or one too long); the message says why."""


@functools.lru_cache(maxsize=512)
def compile_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2 (Python-like syntax: ``\\d``, ``(?:...)``, ``(?i)`` ...).

    Raises:
        RegexError: too long, or not a pattern RE2 runs (syntax, back-references,
            look-around).
    """
    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False  # RE2 would write to stderr; the error is ours to report
    options.max_mem = MAX_MEMORY
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise RegexError(f"{detail} (patterns run in linear time: no back-references or "
                         "look-around)") from None


def search(pattern: str, text: str) -> bool:
    """True when ``pattern`` matches somewhere in ``text`` (anchor with ^ and $ for all of it)."""
    return compile_regex(pattern).search(text) is not None
