"""Grammars written on one line (``ivr asr``, evaluation manifests) or taken from a flow node.

Spec syntax: items separated by ``|``; each item is

* a phrase, which is also its choice key: ``balance | lost card | agent``;
* ``key=phrase/phrase/...``, several phrases for one choice: ``card=lost card/stolen card``
  (without ``key=`` the first phrase is the key: ``lost card/stolen card``);
* a built-in: ``@digits`` (1..20 digits), ``@digits:4`` (exactly 4), ``@digits:4-16``,
  ``@yes_no`` or ``@amount``; at most one per spec, and it may be mixed with choices.

Phrases are lower-cased and their spaces folded; they may hold letters of any script, digits,
apostrophes and hyphens. :func:`format_grammar_spec` writes a :class:`Grammar` back as a spec.

What a flow node listens for is the engine's to say: :mod:`ivr.host.grammars`.
"""

from __future__ import annotations

import re
from typing import cast

from ivr.asr.base import Builtin, Grammar

BUILTINS: tuple[Builtin, ...] = ("digits", "yes_no", "amount")
MAX_DIGITS = 64
_PHRASE = re.compile(r"^[\w' -]+$")  # \w: letters of any script, digits, underscore
_DIGIT_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_RESERVED = "|=/@"


class GrammarSpecError(ValueError):
    """A grammar spec (or ``FLOW:NODE`` reference) that cannot be turned into a grammar."""


def parse_grammar_spec(text: str, language: str = "en") -> Grammar:
    """The grammar that ``text`` describes (see the module docstring for the syntax).

    Raises:
        GrammarSpecError: an empty spec or item, an unknown or repeated built-in, a bad digit
            range, a repeated choice key or phrase, or a phrase with characters other than
            letters, digits, apostrophes, hyphens and spaces.
    """
    if not text.strip():
        raise GrammarSpecError("empty grammar spec: give phrases ('balance | agent') or a "
                               "built-in (@digits, @digits:4, @digits:4-16, @yes_no, @amount)")
    choices: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}  # phrase -> the key it belongs to
    builtin: Builtin | None = None
    bounds: tuple[int | None, int | None] = (None, None)
    for number, raw in enumerate(text.split("|"), start=1):
        item = raw.strip()
        if not item:
            raise GrammarSpecError(f"item {number} of {text!r} is empty (two '|' in a row?)")
        if item.startswith("@"):
            if builtin is not None:
                raise GrammarSpecError(f"{item!r}: only one built-in per grammar (already "
                                       f"@{builtin})")
            builtin, bounds = _parse_builtin(item)
            continue
        key, phrases = _parse_choice(item)
        if key in choices:
            raise GrammarSpecError(f"choice {key!r} appears twice in {text!r}")
        for phrase in phrases:
            if phrase in owner:
                raise GrammarSpecError(f"phrase {phrase!r} is in both {owner[phrase]!r} and "
                                       f"{key!r}: the recognizer could not tell them apart")
            owner[phrase] = key
        choices[key] = phrases
    return Grammar(language=language, choices=choices, builtin=builtin,
                   min_digits=bounds[0], max_digits=bounds[1])


def _parse_builtin(item: str) -> tuple[Builtin, tuple[int | None, int | None]]:
    name, _, arg = item[1:].partition(":")
    name = name.strip()
    if name not in BUILTINS:
        known = ", ".join(f"@{b}" for b in BUILTINS)
        raise GrammarSpecError(f"unknown built-in {item!r} (built-ins: {known})")
    builtin = cast(Builtin, name)
    if not arg:
        if item.endswith(":"):
            raise GrammarSpecError(f"{item!r}: give a digit count after ':' (@digits:4)")
        return builtin, (None, None)
    if builtin != "digits":
        raise GrammarSpecError(f"{item!r}: only @digits takes a length (@digits:4, "
                               "@digits:4-16)")
    match = _DIGIT_RANGE.match(arg.strip())
    if match is None:
        raise GrammarSpecError(f"{item!r}: the length must be N or N-M (@digits:4, "
                               "@digits:4-16)")
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else low
    if not 1 <= low <= high <= MAX_DIGITS:
        raise GrammarSpecError(f"{item!r}: need 1 <= N <= M <= {MAX_DIGITS}")
    return builtin, (low, high)


def _parse_choice(item: str) -> tuple[str, tuple[str, ...]]:
    key, eq, body = item.partition("=")
    if not eq:
        key, body = "", item
    elif "=" in body:
        raise GrammarSpecError(f"{item!r}: one '=' per choice (key=phrase/phrase)")
    key = key.strip()
    if eq and (not key or "/" in key or key.startswith("@")):
        raise GrammarSpecError(f"{item!r}: the choice key before '=' must be non-empty, "
                               "without '/' and not start with '@'")
    phrases: list[str] = []
    for raw in body.split("/"):
        phrase = " ".join(raw.split()).lower()
        if not phrase:
            raise GrammarSpecError(f"{item!r}: an empty phrase (a '/' too many?)")
        if not _PHRASE.match(phrase) or "_" in phrase:
            raise GrammarSpecError(f"phrase {phrase!r}: only letters, digits, apostrophes, "
                                   "hyphens and spaces")
        if phrase not in phrases:
            phrases.append(phrase)
    return key or phrases[0], tuple(phrases)


def format_grammar_spec(grammar: Grammar) -> str:
    """``grammar`` as a spec that :func:`parse_grammar_spec` reads back to an equal grammar
    (phrases lower-cased, spaces folded).

    Raises:
        GrammarSpecError: a key or phrase holds one of ``| = / @`` and cannot be written.
    """
    items: list[str] = []
    if grammar.builtin is not None:
        item = f"@{grammar.builtin}"
        low, high = grammar.min_digits, grammar.max_digits
        if grammar.builtin == "digits" and (low is not None or high is not None):
            low, high = low or 1, high or MAX_DIGITS
            item += f":{low}" if low == high else f":{low}-{high}"
        items.append(item)
    for key, phrases in grammar.choices.items():
        for text in (key, *phrases):
            if any(c in text for c in _RESERVED):
                raise GrammarSpecError(f"{text!r} holds one of {' '.join(_RESERVED)}: it "
                                       "cannot be written as a spec")
        norm = [" ".join(p.split()).lower() for p in phrases]
        items.append(norm[0] if norm == [key] else f"{key}={'/'.join(norm)}")
    return " | ".join(items)


# --- flow references ------------------------------------------------------------------------


def split_flow_ref(ref: str) -> tuple[str, str]:
    """``FLOW:NODE`` -> ``(FLOW, NODE)`` (split at the last ':', so paths may hold ':')."""
    flow, sep, node = ref.rpartition(":")
    if not sep or not flow.strip() or not node.strip():
        raise GrammarSpecError(f"{ref!r}: write FLOW:NODE (a flow file, folder or id, then a "
                               "node id), e.g. flows/bank-main.yaml:main_menu")
    return flow.strip(), node.strip()
