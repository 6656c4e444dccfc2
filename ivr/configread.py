"""Reading a YAML settings file against a schema, with ``file:line:col`` for every problem.

:class:`Reader` wraps a document parsed by :mod:`ivr.flow.yamlload` (YAML 1.2 core schema,
positions by JSON pointer). Each getter takes a pointer, checks the value's type and range,
records a :class:`ConfigProblem` at the value's position when it is wrong, and returns the
default instead, so one pass finds every problem. :meth:`Reader.section` reports unknown keys
(with "did you mean"). ``ivr.config`` describes ivr.yaml with it.

``${NAME}`` and ``${NAME:-default}`` expand in text values after parsing, so a value from the
environment can never change the YAML structure and positions stay those of the file. A value
that came from the environment is never printed in a message (it may be a secret): messages
name the reference as written instead. An expanded value in a number or true/false setting is
read as YAML would read it unquoted (``workers: ${IVR_WORKERS:-2}`` is the number 2).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ivr.flow.model import Pos
from ivr.flow.yamlload import Document, child, resolve_plain, unescape

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_PLAIN_TOKEN = re.compile(r"[^\s,\]}#]+")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # a key that is absent (or null: YAML's ``key:`` with no value)


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` with environment values (an unset or empty
    variable gives the default, or nothing)."""
    env = os.environ if environ is None else environ

    def repl(match: re.Match[str]) -> str:
        value = env.get(match.group("name"))
        if value is None or value == "":
            return match.group("default") or ""
        return value

    return _ENV_REF.sub(repl, text)


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a settings file, printed as ``file:line:col: message``."""

    pos: Pos
    message: str

    def __str__(self) -> str:
        if not self.pos.line:
            return f"{self.pos.file}: {self.message}"
        return f"{self.pos}: {self.message}"


class Reader:
    """Typed, positioned access to a parsed document; problems collect in :attr:`problems`.

    Args:
        doc: the parsed file (its duplicate-key and tag problems are taken over).
        environ: the environment ``${NAME}`` references expand from.
    """

    def __init__(self, doc: Document, environ: Mapping[str, str]) -> None:
        self.positions = doc.positions
        self.problems = [ConfigProblem(d.pos, d.message) for d in doc.diagnostics]
        self.written: dict[str, str] = {}  # pointer -> text with ${...} as written in the file
        self.environ = environ  # where ${NAME} references expand from
        self.data = self._expand(doc.data, "")

    def _expand(self, value: Any, ptr: str) -> Any:
        if isinstance(value, str) and "${" in value:
            self.written[ptr] = value
            return expand_env(value, self.environ)
        if isinstance(value, dict):
            return {k: self._expand(v, child(ptr, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._expand(v, child(ptr, i)) for i, v in enumerate(value)]
        return value

    # --- reporting -------------------------------------------------------------------------

    def name(self, ptr: str) -> str:
        """``/sip/register/expires`` -> ``sip.register.expires``; list items as ``languages[1]``."""
        out, value = "", self.data
        for part in ptr.split("/")[1:]:
            key = unescape(part)
            if isinstance(value, list):
                out += f"[{key}]"
                value = value[int(key)] if int(key) < len(value) else None
            else:
                out += f".{key}" if out else key
                value = value.get(key) if isinstance(value, dict) else None
        return out

    def problem(self, ptr: str, message: str, *, at_key: bool = False) -> None:
        """Record ``message`` at the value of ``ptr`` (or at its key)."""
        pos = self.positions.key(ptr) if at_key else self.positions.value(ptr)
        self.problems.append(ConfigProblem(pos, message))

    def wrong(self, ptr: str, value: Any, expected: str) -> None:
        """Record "NAME must be EXPECTED, not VALUE" at the value of ``ptr``."""
        self.problem(ptr, f"{self.name(ptr)} must be {expected}, not {self.show(ptr, value)}")

    def show(self, ptr: str, value: Any) -> str:
        """How a wrong value is named in a message: never an expanded environment value."""
        if ptr in self.written:
            return f"the value of {self.written[ptr][:60]}"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return f"'{value[:60]}'" if value else "empty text"
        if isinstance(value, dict):
            return "a mapping"
        if isinstance(value, list):
            return "a list"
        return repr(value)

    # --- structure -------------------------------------------------------------------------

    def get(self, ptr: str) -> Any:
        """The value at ``ptr``, or :data:`MISSING` when absent or null."""
        value = self.data
        for part in ptr.split("/")[1:]:
            if isinstance(value, dict):
                value = value.get(unescape(part), MISSING)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return MISSING
        return MISSING if value is None else value

    def section(self, ptr: str, keys: Iterable[str]) -> bool:
        """Check that ``ptr`` holds a mapping with only ``keys``; False when it is absent or
        not a mapping (then its settings take their defaults)."""
        value = self.get(ptr)
        if value is MISSING:
            return False
        name = self.name(ptr) or "the file"
        if not isinstance(value, dict):
            self.problem(ptr, f"{name} must be a mapping of settings, not {self.show(ptr, value)}")
            return False
        known = list(keys)
        where = f" in {self.name(ptr)}" if ptr else ""
        for key in value:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(known)}"
                self.problem(child(ptr, key), f"unknown key '{key}'{where} ({hint})", at_key=True)
        return True

    def mapping(self, ptr: str) -> dict[str, Any]:
        """A mapping whose keys are free (``vars:``, ``timers:``); {} when absent."""
        value = self.get(ptr)
        if value is MISSING:
            return {}
        if not isinstance(value, dict):
            self.wrong(ptr, value, "a mapping")
            return {}
        return value

    # --- scalars ---------------------------------------------------------------------------

    def text(self, ptr: str, default: str) -> str:
        """Text; a number is taken as the text written (``username: 1001``)."""
        value = self.get(ptr)
        if value is MISSING:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            written = self._token(ptr)
            if written is not None and written != str(value):
                self.problem(ptr, f"{self.name(ptr)}: write '{written}' in quotes (unquoted it is "
                                  f"the number {value})")  # fmt: skip
                return default
            return str(value)
        self.wrong(ptr, value, "text")
        return default

    def optional_text(self, ptr: str) -> str | None:
        return None if self.get(ptr) is MISSING else self.text(ptr, "")

    def integer(self, ptr: str, default: int, minimum: int | None = None,
                maximum: int | None = None) -> int:  # fmt: skip
        value = self._typed(ptr)
        if value is MISSING:
            return default
        if not isinstance(value, int) or isinstance(value, bool):
            self.wrong(ptr, value, "a whole number")
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.wrong(ptr, value, _range(minimum, maximum))
            return default
        return value

    def number(self, ptr: str, default: float, minimum: float = 0.0) -> float:
        value = self._typed(ptr)
        if value is MISSING:
            return default
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.wrong(ptr, value, "a number")
            return default
        if value < minimum:
            self.wrong(ptr, value, f"{minimum:g} or more")
            return default
        return float(value)

    def boolean(self, ptr: str, default: bool) -> bool:
        value = self._typed(ptr)
        if value is MISSING:
            return default
        if not isinstance(value, bool):
            self.wrong(ptr, value, "true or false")
            return default
        return value

    def choice(self, ptr: str, default: str, choices: tuple[str, ...],
               pattern: re.Pattern[str] | None = None) -> str:  # fmt: skip
        """One of ``choices`` (or text matching ``pattern``), with "did you mean" when wrong."""
        value = self.get(ptr)
        if value is MISSING:
            return default
        if isinstance(value, str) and (value in choices or (pattern and pattern.fullmatch(value))):
            return value
        close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6) if isinstance(
            value, str) and ptr not in self.written else []  # fmt: skip
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        self.problem(ptr, f"{self.name(ptr)} must be one of {', '.join(choices)}, not "
                          f"{self.show(ptr, value)}{hint}")  # fmt: skip
        return default

    def text_list(self, ptr: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(ptr)
        if value is MISSING:
            return default
        if not isinstance(value, list):
            self.wrong(ptr, value, "a list")
            return default
        out = [self.text(child(ptr, i), "") for i in range(len(value))]
        return tuple(item for item in out if item)

    def _typed(self, ptr: str) -> Any:
        """The value, with text expanded from the environment read as a plain YAML scalar."""
        value = self.get(ptr)
        if ptr not in self.written or not isinstance(value, str):
            return value
        text = value.strip()
        tag = resolve_plain(text).rsplit(":", 1)[-1]
        if tag == "int" and re.fullmatch(r"[-+]?[0-9]+", text):
            return int(text)
        if tag in ("int", "float"):
            try:
                return float(text)
            except ValueError:
                return value
        if tag == "bool":
            return text.lower() == "true"
        return MISSING if tag == "null" else value

    def _token(self, ptr: str) -> str | None:
        """The plain scalar as written at ``ptr``'s position (None when it cannot be found)."""
        pos = self.positions.value(ptr)
        lines = self.positions.text.splitlines()
        if not 0 < pos.line <= len(lines):
            return None
        match = _PLAIN_TOKEN.match(lines[pos.line - 1], pos.col - 1)
        return match.group(0) if match else None


def syntax_problem(pos: Pos, message: str, text: str) -> ConfigProblem:
    """A YAML syntax error of ``text`` as a problem, with a hint for an unquoted ``${...}``."""
    lines = text.splitlines()
    if 0 < pos.line <= len(lines) and "${" in lines[pos.line - 1] and "flow" in message:
        message += "; a ${...} inside { } or [ ] needs quotes"
    return ConfigProblem(pos, message)


def _range(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{minimum} to {maximum}"
    return f"{minimum} or more" if minimum is not None else f"{maximum} or less"
