"""Stage 1 of flow loading: safe YAML that keeps positions and keeps keys as text.

PyYAML's default resolvers follow YAML 1.1, where ``no:``, ``on:`` and ``yes`` are booleans,
``1:`` is an integer key, ``17:30`` is the number 1050 and ``2026-10-01`` is a date. In a flow
those are a confirm node's ``no`` branch, menu key ``"1"``, a time and a date string, so the
loader uses the YAML 1.2 core schema instead: only ``true``/``false`` are booleans, no
timestamps, no sexagesimal numbers, no ``<<`` merge keys. Mapping keys are always the text as
written.

The result is plain data (dicts, lists, scalars) plus a :class:`Positions` side table keyed by
JSON pointer (``/nodes/welcome/menu/prompt``), so the later stages, which only see plain data, can
still say ``file:line:col``. Duplicate keys are reported (at the second one) but do not stop the
stages after this one; a syntax error does (:class:`~ivr.flow.errors.YamlError`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ivr.flow.errors import Diagnostic, Severity, YamlError
from ivr.flow.model import Pos

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_STR = "tag:yaml.org,2002:str"
_KNOWN_TAGS = {
    "tag:yaml.org,2002:" + name for name in ("str", "int", "float", "bool", "null", "map", "seq")
}
_HINTS = {
    "mapping values are not allowed here": (
        "a ':' inside a value needs quotes, or the line is indented wrongly"
    ),
    "mapping values are not allowed in this context": (
        "a ':' inside a value needs quotes, or the line is indented wrongly"
    ),
}
_TAB_HINT = "tabs cannot indent YAML; use spaces"

# Limits that keep a hostile or broken file from taking unbounded time and memory: aliases let
# a few lines stand for billions of values ("billion laughs": 3 GB and a MemoryError before).
#: Characters in one file (a large flow is some tens of kB).
MAX_TEXT = 1 << 20
#: Values (scalars, mappings, lists) built from one file, each alias counted as often as used.
MAX_VALUES = 100_000
#: Mappings and lists inside each other.
MAX_DEPTH = 64


_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_NULL_TAG = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


def resolve_plain(value: str) -> str:
    """The YAML 1.2 core schema tag of a plain (unquoted) scalar."""
    if not value:
        return _NULL_TAG
    first = value[0]
    if first in "tTfF":
        return _BOOL_TAG if _BOOL.match(value) else _STR
    if first in "~nN":
        return _NULL_TAG if _NULL.match(value) else _STR
    if first in "-+0123456789.":
        if _INT.match(value):
            return _INT_TAG
        if _FLOAT.match(value):
            return _FLOAT_TAG
    return _STR


class _CoreResolver:
    """Replaces PyYAML's YAML 1.1 resolver (and its unused path-resolver bookkeeping, which
    costs a Python call per node) with the YAML 1.2 core schema."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            return resolve_plain(value) if implicit[0] else _STR
        return _SEQ if kind is SequenceNode else _MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


class FlowLoader(_CoreResolver, yaml.SafeLoader):
    """A SafeLoader with YAML 1.2 core scalars (see the module docstring)."""


if yaml.__with_libyaml__:  # the C parser is several times faster; resolution is ours

    class _FastFlowLoader(_CoreResolver, yaml.CSafeLoader):
        """The same resolution over libyaml."""

    _LOADER: Any = _FastFlowLoader
else:  # pragma: no cover - libyaml is in the PyYAML wheels
    _LOADER = FlowLoader


# --- JSON pointers -----------------------------------------------------------------------------


def child(pointer: str, key: str | int) -> str:
    """The pointer of ``key`` inside the value at ``pointer`` (RFC 6901 escaping)."""
    if isinstance(key, int):
        return f"{pointer}/{key}"
    if "~" in key or "/" in key:
        key = key.replace("~", "~0").replace("/", "~1")
    return f"{pointer}/{key}"


def pointer(*parts: str | int) -> str:
    """A JSON pointer from path parts: ``pointer("nodes", "welcome")`` -> ``/nodes/welcome``."""
    out = ""
    for part in parts:
        out = child(out, part)
    return out


def parent(ptr: str) -> str:
    """The pointer one level up ("" for the document itself)."""
    return ptr[: ptr.rfind("/")] if ptr else ""


def unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


# --- positions ---------------------------------------------------------------------------------


@dataclass
class Positions:
    """Where each value of a document sits: pointer -> (key line, key col, value line, col).

    Lines and columns are 1-based. List items have no key: their key position is the item's.
    """

    file: str
    table: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    text: str = ""
    _lines: list[str] | None = field(default=None, repr=False)

    def __contains__(self, ptr: str) -> bool:
        return ptr in self.table

    def _entry(self, ptr: str) -> tuple[int, int, int, int]:
        # A value that is not in the table (a default, a removed duplicate) is shown at the
        # nearest enclosing value that is.
        while ptr not in self.table and ptr:
            ptr = parent(ptr)
        return self.table.get(ptr, (1, 1, 1, 1))

    def key(self, ptr: str) -> Pos:
        """Position of the key naming the value at ``ptr`` (for unknown keys, missing fields)."""
        line, col, _, _ = self._entry(ptr)
        return Pos(self.file, line, col)

    def value(self, ptr: str) -> Pos:
        """Position of the value at ``ptr`` (for wrong values and unknown targets)."""
        _, _, line, col = self._entry(ptr)
        return Pos(self.file, line, col)

    def inside(self, ptr: str, offset: int) -> Pos:
        """Position of character ``offset`` (0-based) of the scalar at ``ptr``.

        Exact for one-line plain and quoted scalars (escapes aside); a block scalar (``|``,
        ``>``) points at its indicator.
        """
        pos = self.value(ptr)
        if self._lines is None:
            self._lines = self.text.splitlines()
        lines = self._lines
        if not 0 < pos.line <= len(lines):
            return pos
        first = lines[pos.line - 1][pos.col - 1 : pos.col]
        if first in ("|", ">"):
            return pos
        shift = 1 if first in ("'", '"') else 0
        return Pos(self.file, pos.line, pos.col + shift + offset)


@dataclass
class Document:
    """A parsed YAML file: plain data, positions, and the problems found while reading it."""

    data: Any
    positions: Positions
    source: str
    text: str
    diagnostics: list[Diagnostic] = field(default_factory=list)


# --- loading -----------------------------------------------------------------------------------


def load_yaml(text: str, source: str = "<memory>") -> Document:
    """Parse ``text`` into plain data plus positions.

    Args:
        text: the YAML source.
        source: the file name used in positions and messages.

    Returns:
        The document; duplicate keys and unsupported tags are in ``diagnostics`` (errors).

    Raises:
        YamlError: the text is not YAML (with the position of the problem).
    """
    if len(text) > MAX_TEXT:
        line = text.count("\n", 0, MAX_TEXT) + 1
        col = MAX_TEXT - (text.rfind("\n", 0, MAX_TEXT) + 1) + 1
        raise YamlError([Diagnostic(Pos(source, line, col), f"the file is longer than "
                                    f"{MAX_TEXT} characters", stage="yaml")])  # fmt: skip
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        raise YamlError([_syntax_diagnostic(exc, source, text)]) from None
    except yaml.YAMLError as exc:  # reader errors (bad characters) carry no mark
        raise YamlError([Diagnostic(Pos(source, 1, 1), str(exc), stage="yaml")]) from None
    finally:
        loader.dispose()
    positions = Positions(source, text=text)
    builder = _Builder(positions)
    data = None
    if node is not None:
        positions.table[""] = (1, 1, node.start_mark.line + 1, node.start_mark.column + 1)
        try:
            data = builder.value(node, "")
        except _TooManyValues as exc:
            raise YamlError([Diagnostic(Pos(source, *exc.where), f"more than {MAX_VALUES} "
                                        "values, counting every use of an alias (an alias "
                                        "bomb?)", stage="yaml")]) from None  # fmt: skip
    return Document(data, positions, source, text, builder.diagnostics)


def _syntax_diagnostic(exc: yaml.MarkedYAMLError, source: str, text: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    lines = text.splitlines()
    at = lines[line - 1][col - 1 : col] if 0 < line <= len(lines) else ""
    problem = exc.problem or "not valid YAML"
    message = f"YAML syntax: {problem}"
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    hint = _TAB_HINT if at == "\t" else _HINTS.get(problem)
    if hint:
        message += f"; {hint}"
    return Diagnostic(Pos(source, line, col), message, stage="yaml")


class _TooManyValues(Exception):
    """The file stands for more than MAX_VALUES values; ``where`` is (line, col) of the key or
    list item being built when the count passed it."""

    def __init__(self, where: tuple[int, int]) -> None:
        super().__init__(where)
        self.where = where


class _Builder:
    """Turns composed YAML nodes into plain data, filling the position table on the way."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.table = positions.table
        self.diagnostics: list[Diagnostic] = []
        self._active: set[int] = set()  # nodes being built: catches recursive aliases
        self._values = 0
        self._depth = 0
        self._where = (1, 1)  # the key or item being built, for the MAX_VALUES error
        self._built: set[int] = set()  # mappings and lists built once: again means an alias
        self._in_alias = 0  # > 0 while expanding an alias: _where stays at its use

    def error(self, node: Node, message: str) -> None:
        pos = Pos(self.positions.file, node.start_mark.line + 1, node.start_mark.column + 1)
        self.diagnostics.append(Diagnostic(pos, message, Severity.ERROR, stage="yaml"))

    def value(self, node: Node, ptr: str) -> Any:
        self._values += 1
        if self._values > MAX_VALUES:
            raise _TooManyValues(self._where)
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if id(node) in self._active:
            self.error(node, "an alias refers to the mapping or list that contains it")
            return None
        if self._depth >= MAX_DEPTH:
            self.error(node, f"mappings and lists are nested more than {MAX_DEPTH} deep")
            return None
        alias = id(node) in self._built
        self._built.add(id(node))
        self._active.add(id(node))
        self._depth += 1
        self._in_alias += alias
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, ptr)
            if isinstance(node, SequenceNode):
                return self.sequence(node, ptr)
            return None
        finally:
            self._in_alias -= alias
            self._depth -= 1
            self._active.discard(id(node))

    def _at(self, line: int, col: int) -> None:
        """The key or item being built is at ``line``:``col`` (kept at an alias's use)."""
        if not self._in_alias:
            self._where = (line, col)

    def scalar(self, node: ScalarNode) -> Any:
        tag, text = node.tag, node.value
        if tag == _STR:
            return text
        if tag == "tag:yaml.org,2002:int":
            return _to_int(text)
        if tag == "tag:yaml.org,2002:float":
            return _to_float(text)
        if tag == "tag:yaml.org,2002:bool":
            if text.lower() not in ("true", "false"):
                self.error(node, f"'{text}' is not true or false")
            return text.lower() == "true"
        if tag == "tag:yaml.org,2002:null":
            return None
        self.error(node, f"unsupported YAML tag {tag}")
        return text

    def sequence(self, node: SequenceNode, ptr: str) -> list[Any]:
        self._check_tag(node)
        out = []
        table = self.table
        for index, item in enumerate(node.value):
            item_ptr = f"{ptr}/{index}"
            line, col = item.start_mark.line + 1, item.start_mark.column + 1
            table[item_ptr] = (line, col, line, col)
            self._at(line, col)
            out.append(self.value(item, item_ptr))
        return out

    def mapping(self, node: MappingNode, ptr: str) -> dict[str, Any]:
        self._check_tag(node)
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        table = self.table
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, "a key must be plain text, not a list or mapping")
                continue
            key = key_node.value  # the text as written: `no:` is "no", `1:` is "1"
            kmark = key_node.start_mark
            if key in first_line:
                self.error(key_node, _duplicate_message(ptr, key, first_line[key]))
                continue
            first_line[key] = kmark.line + 1
            key_ptr = child(ptr, key)
            vmark = value_node.start_mark
            table[key_ptr] = (kmark.line + 1, kmark.column + 1, vmark.line + 1, vmark.column + 1)
            self._at(kmark.line + 1, kmark.column + 1)
            out[key] = self.value(value_node, key_ptr)
        return out

    def _check_tag(self, node: Node) -> None:
        if node.tag not in _KNOWN_TAGS:
            self.error(node, f"unsupported YAML tag {node.tag}")


def _duplicate_message(ptr: str, key: str, first: int) -> str:
    what = {"/nodes": "node id", "/globals": "global command", "/prompts": "prompt id"}.get(
        ptr, "key"
    )
    if ptr == "/calendars":
        what = "calendar"
    return f"duplicate {what} '{key}' (first defined at line {first})"


def _to_int(text: str) -> int:
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text)


def _to_float(text: str) -> float:
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return float("-inf") if lowered.startswith("-") else float("inf")
    if lowered == ".nan":
        return float("nan")
    return float(text)
