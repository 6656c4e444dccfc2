"""Prompt and value templates: ``{name}``, ``{name|format}``, ``{{``/``}}`` literals.

API:
    compile_template(text: str) -> Template    # raises TemplateError with a column offset
    Template.source: str
    Template.names: frozenset[str]             # dotted variable names it reads
    Template.is_constant: bool
    Template.render(scope: Mapping[str, Any], language: str = "en", speak: bool = True) -> str
        speak=True applies say-as formats for the language; speak=False renders plain values
        (for webhook bodies, transfer targets, set values).

A name is one or more identifiers joined by dots (``balance.available``); spaces around the name
and the format are allowed (``{ amount | amount }``). Formats are those of
:mod:`ivr.flow.sayas`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeAlias

from ivr.flow.expr import lookup
from ivr.flow.sayas import FORMATS, say_as


class TemplateError(ValueError):
    """A template was refused.

    Attributes:
        message: what is wrong.
        col: 0-based character offset in the template text.
    """

    def __init__(self, message: str, col: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.col = col


@dataclass(frozen=True)
class Field:
    """One ``{name|format}`` placeholder."""

    name: str
    format: str | None
    col: int


Piece: TypeAlias = str | Field


@dataclass(frozen=True, eq=False)
class Template:
    """A parsed template: literal text and fields, in order."""

    source: str
    pieces: tuple[Piece, ...]

    @cached_property
    def names(self) -> frozenset[str]:
        """Every dotted variable name the template reads."""
        return frozenset(p.name for p in self.pieces if isinstance(p, Field))

    @cached_property
    def is_constant(self) -> bool:
        """True when the template has no fields (its text is the same for every call)."""
        return not any(isinstance(p, Field) for p in self.pieces)

    def render(self, scope: Mapping[str, Any], language: str = "en", speak: bool = True) -> str:
        """The text with every field filled in from ``scope``.

        Args:
            scope: variables; dotted names reach into nested mappings; unknown names are empty.
            language: the language formats speak in (``en``, ``zh``; others read as English).
            speak: True for what a caller hears (formats applied); False for plain values
                (``str(value)``, formats ignored) as webhook bodies and transfer targets need.

        A value that its format cannot read (``{pin|digits}`` holding a mask such as ``****``,
        ``{amount|amount}`` holding ``"n/a"``) is spoken as plain text: a prompt must never fail
        a call.
        """
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                out.append(_value_text(lookup(scope, piece.name), piece.format, language, speak))
        return "".join(out)


#: The most characters one field adds to spoken text: a value from a webhook reply or a caller
#: (a 1 MB "name") must not become minutes of synthesis on the call's time.
MAX_SPOKEN_FIELD = 200


def _value_text(value: Any, fmt: str | None, language: str, speak: bool) -> str:
    if value is None:
        return ""
    if speak and isinstance(value, str):
        value = value[:MAX_SPOKEN_FIELD]
    if speak and fmt is not None:
        try:
            return say_as(value, fmt, language)
        except ValueError:
            pass
    text = str(value)
    return text[:MAX_SPOKEN_FIELD] if speak else text


@functools.lru_cache(maxsize=4096)
def compile_template(text: str) -> Template:
    """Parse ``text``; cached, so the engine may compile per prompt played.

    Raises:
        TemplateError: an unclosed ``{``, a lone ``}``, an empty or malformed name, an unknown
            format; ``col`` points at the offending character.
    """
    pieces: list[Piece] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
        elif ch == "}":
            raise TemplateError("single '}' (write '}}' for a literal brace)", i)
        elif ch == "{":
            end = _field_end(text, i)
            if literal:
                pieces.append("".join(literal))
                literal = []
            pieces.append(_parse_field(text, i, end))
            i = end + 1
        else:
            literal.append(ch)
            i += 1
    if literal:
        pieces.append("".join(literal))
    return Template(source=text, pieces=tuple(pieces))


def _field_end(text: str, start: int) -> int:
    """Index of the ``}`` closing the field opened at ``start``."""
    for j in range(start + 1, len(text)):
        if text[j] == "}":
            return j
        if text[j] == "{":
            raise TemplateError("'{' inside a field (write '{{' for a literal brace)", j)
    raise TemplateError("unclosed '{' (write '{{' for a literal brace)", start)


def _parse_field(text: str, start: int, end: int) -> Field:
    inner = text[start + 1 : end]
    name_part, bar, fmt_part = inner.partition("|")
    name = name_part.strip()
    name_col = start + 1 + (len(name_part) - len(name_part.lstrip()))
    if not name:
        raise TemplateError("empty variable name in '{}'", start)
    for offset, part in _segments(name):
        if not part.isidentifier():
            raise TemplateError(f"bad variable name {name!r}", name_col + offset)
        if part.startswith("__"):  # {x.__class__}: no attributes, only variables and fields
            raise TemplateError(f"'{part}' is not a variable or field: templates read "
                                "variables and record fields only", name_col + offset)
    fmt: str | None = None
    if bar:
        fmt = fmt_part.strip()
        fmt_col = start + 1 + len(name_part) + 1 + (len(fmt_part) - len(fmt_part.lstrip()))
        if fmt not in FORMATS:
            known = ", ".join(sorted(FORMATS))
            raise TemplateError(f"unknown format {fmt!r} (known: {known})", fmt_col)
    return Field(name=name, format=fmt, col=start)


def _segments(name: str) -> list[tuple[int, str]]:
    """(offset, part) for each dot-separated part of ``name``."""
    out, offset = [], 0
    for part in name.split("."):
        out.append((offset, part))
        offset += len(part) + 1
    return out


__all__ = ["Field", "Template", "TemplateError", "compile_template"]
