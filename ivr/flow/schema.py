"""Stage 2 of flow loading: the JSON Schema (``schema.json``, shipped in the package).

Every violation becomes a :class:`~ivr.flow.errors.Diagnostic` at the position of the offending
key or value, in words an ops person understands ("node 'welcome': unknown key 'promt' (did you
mean 'prompt'?)").

Speed: jsonschema walks a 1,000-node flow in ~80 ms, most of it per-value bookkeeping. Valid
flows are the common case (every reload, every CI run), so a checker compiled from the same
schema (:mod:`ivr.flow.schemacheck`, ~10x faster) answers "valid?" first, and jsonschema runs
only when the answer is no, to name every violation.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from ivr.flow.errors import Diagnostic
from ivr.flow.model import Pos
from ivr.flow.schemacheck import compile_schema
from ivr.flow.yamlload import Document, Positions, child, unescape

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "empty",
}
_BOOL_LOOKALIKES = {"yes", "no", "on", "off", "y", "n", "Yes", "No", "On", "Off", "YES", "NO"}
_PROMPT_KEYS_HINT = "expected audio, ref, id, then_prompt or a language code such as en"


@functools.cache
def flow_schema() -> dict[str, Any]:
    """The flow JSON Schema (draft 2020-12), as shipped in the package."""
    text = resources.files("ivr.flow").joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(flow_schema())


@functools.cache
def _fast_check() -> Callable[[Any], bool]:
    return compile_schema(flow_schema())


@functools.cache
def _fast_node_entry() -> Callable[[Any], bool]:
    """Checks ``{node_id: body}`` against the schema of ``nodes`` (id pattern and body)."""
    schema = flow_schema()
    return compile_schema({**schema["properties"]["nodes"], "$defs": schema["$defs"]})


def _narrowed(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with only the nodes that fail, so jsonschema need not walk the good ones.

    The schema has no constraint across nodes, so the errors are the same as for the whole.
    One node is kept when none fails, so that ``nodes`` stays non-empty.
    """
    nodes = data.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        return data
    entry = _fast_node_entry()
    failing = {key: body for key, body in nodes.items() if not entry({key: body})}
    return {**data, "nodes": failing or dict([next(iter(nodes.items()))])}


@dataclass
class SchemaReport:
    """What the schema stage found: diagnostics, and the pointers of the offending values."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    pointers: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.diagnostics


def check_schema(doc: Document) -> SchemaReport:
    """Validate a loaded document against the flow schema.

    Returns:
        Every violation (stage ``schema``), sorted by position; empty when the flow fits.
    """
    report = SchemaReport()
    if doc.data is not None and _fast_check()(doc.data):
        return report
    if not isinstance(doc.data, dict):
        what = "empty" if doc.data is None else f"{_kind(doc.data)}"
        pos = doc.positions.value("")
        report.diagnostics.append(
            Diagnostic(pos, f"a flow file must be a mapping (flow:, start:, nodes:), not {what}",
                       stage="schema")
        )
        report.pointers.append("")
        return report
    seen: set[tuple[Pos, str]] = set()
    for error in _validator().iter_errors(_narrowed(doc.data)):
        ptr = "".join(child("", p) for p in error.absolute_path)
        for pos, message in _translate(error, ptr, doc.positions):
            if (pos, message) not in seen:
                seen.add((pos, message))
                report.diagnostics.append(Diagnostic(pos, message, stage="schema"))
                report.pointers.append(ptr)
    order = sorted(range(len(report.diagnostics)), key=lambda i: _sort_key(report.diagnostics[i]))
    report.diagnostics = [report.diagnostics[i] for i in order]
    report.pointers = [report.pointers[i] for i in order]
    return report


def _sort_key(diag: Diagnostic) -> tuple[int, int, str]:
    return (diag.pos.line, diag.pos.col, diag.message)


# --- turning jsonschema errors into sentences --------------------------------------------------


def _translate(error: ValidationError, ptr: str, pos: Positions) -> list[tuple[Pos, str]]:
    keyword = str(error.validator)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if "propertyNames" in error.schema_path:
        return [_bad_key(error, ptr, pos)]
    handler = _HANDLERS.get(keyword)
    if handler is not None:
        return handler(error, ptr, pos, schema)
    return [(pos.value(ptr), f"{where(ptr)}: {error.message}")]


def _additional(
    error: ValidationError, ptr: str, pos: Positions, schema: dict[str, Any]
) -> list[tuple[Pos, str]]:
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    out = []
    for key in _extras(instance, known, patterns):
        out.append((pos.key(child(ptr, key)), _unknown_key(ptr, key, known, instance, patterns)))
    return out


def _extras(instance: dict[str, Any], known: list[str], patterns: list[str]) -> Iterable[str]:
    for key in instance:
        if key not in known and not any(re.search(p, key) for p in patterns):
            yield key


def _unknown_key(
    ptr: str, key: str, known: list[str], instance: dict[str, Any], patterns: list[str]
) -> str:
    if _is_node(ptr):
        types = [k for k in instance if k in known]
        fields = _NODE_FIELDS.get(types[0], ()) if len(types) == 1 else ()
        if key in fields:
            return f"{where(ptr)}: '{key}' belongs inside '{types[0]}:' (indent it under it)"
        return f"{where(ptr)}: unknown node type '{key}'{did_you_mean(key, known)}"
    if patterns and "audio" in known:
        suggestion = did_you_mean(key, known) or f" ({_PROMPT_KEYS_HINT})"
        return f"{where(ptr)}: unknown key '{key}' in a prompt{suggestion}"
    return f"{where(ptr)}: unknown key '{key}'{did_you_mean(key, known)}"


def _required(
    error: ValidationError, ptr: str, pos: Positions, schema: dict[str, Any]
) -> list[tuple[Pos, str]]:
    instance = error.instance if isinstance(error.instance, dict) else {}
    missing = [name for name in _list(error.validator_value) if name not in instance]
    return [(pos.key(ptr), f"{where(ptr)}: missing field '{name}'") for name in missing]


def _type(
    error: ValidationError, ptr: str, pos: Positions, schema: dict[str, Any]
) -> list[tuple[Pos, str]]:
    instance = error.instance
    if _is_node(ptr) and instance is None:
        return [(pos.key(ptr), f"{where(ptr)} is empty: give it a node type such as say: or menu:")]
    expected = error.validator_value
    names = [expected] if isinstance(expected, str) else _list(expected)
    words = _or([_TYPE_WORDS.get(n, n) for n in names if n != "null"])
    message = f"{where(ptr)}: {_field(ptr)} must be {words}, not {_kind(instance)}"
    if "boolean" in names and isinstance(instance, str) and instance in _BOOL_LOOKALIKES:
        message += " (write true or false)"
    return [(pos.value(ptr), message)]


def _enum(
    error: ValidationError, ptr: str, pos: Positions, schema: dict[str, Any]
) -> list[tuple[Pos, str]]:
    options = [str(v) for v in _list(error.validator_value)]
    found = error.instance
    suggestion = did_you_mean(str(found), options) if isinstance(found, str) else ""
    message = f"{where(ptr)}: {_field(ptr)} must be one of {', '.join(options)}, not {found!r}"
    return [(pos.value(ptr), message + suggestion)]


def _pattern(
    error: ValidationError, ptr: str, pos: Positions, schema: dict[str, Any]
) -> list[tuple[Pos, str]]:
    hint = schema.get("patternErrorMessage") or f"must match {error.validator_value}"
    return [(pos.value(ptr), f"{where(ptr)}: {_field(ptr)} {hint} (found {error.instance!r})")]


def _bad_key(error: ValidationError, ptr: str, pos: Positions) -> tuple[Pos, str]:
    key = str(error.instance)
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = schema.get("patternErrorMessage") or f"must match {schema.get('pattern')}"
    section = unescape(ptr[1:]) if ptr.count("/") == 1 else where(ptr)  # "nodes", "vars", ...
    return (pos.key(child(ptr, key)), f"{section}: '{key}' is not allowed here: {hint}")


def _count(
    error: ValidationError, ptr: str, pos: Positions, schema: dict[str, Any]
) -> list[tuple[Pos, str]]:
    keyword = str(error.validator)
    if _is_node(ptr):
        known = list(schema.get("properties", {}))
        if keyword == "maxProperties":
            types = [k for k in _list(error.instance) if k in known]
            if len(types) < 2:
                return []  # one type plus unknown keys: the unknown keys are reported
            return [(pos.key(ptr), f"{where(ptr)}: exactly one node type expected, "
                     f"found {_and(types)}")]
        return [(pos.key(ptr), f"{where(ptr)} has no type: write one of {', '.join(known)}")]
    if keyword in ("minProperties", "minItems", "minLength"):
        if error.validator_value == 1:
            return [(pos.value(ptr), f"{where(ptr)}: {_field(ptr)} must not be empty")]
        return [(pos.value(ptr), f"{where(ptr)}: {_field(ptr)} needs at least "
                 f"{error.validator_value} entries")]
    return [(pos.value(ptr), f"{where(ptr)}: {error.message}")]


def _bound(
    error: ValidationError, ptr: str, pos: Positions, schema: dict[str, Any]
) -> list[tuple[Pos, str]]:
    words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than",
             "exclusiveMaximum": "less than"}[str(error.validator)]
    message = f"{where(ptr)}: {_field(ptr)} must be {words} {error.validator_value}, " \
              f"not {error.instance}"
    return [(pos.value(ptr), message)]


def _unique(
    error: ValidationError, ptr: str, pos: Positions, schema: dict[str, Any]
) -> list[tuple[Pos, str]]:
    return [(pos.value(ptr), f"{where(ptr)}: {_field(ptr)} lists the same value twice")]


_Handler = Callable[[ValidationError, str, Positions, dict[str, Any]], list[tuple[Pos, str]]]
_HANDLERS: dict[str, _Handler] = {
    "additionalProperties": _additional,
    "required": _required,
    "type": _type,
    "enum": _enum,
    "pattern": _pattern,
    "minProperties": _count,
    "maxProperties": _count,
    "minItems": _count,
    "minLength": _count,
    "minimum": _bound,
    "maximum": _bound,
    "exclusiveMinimum": _bound,
    "exclusiveMaximum": _bound,
    "uniqueItems": _unique,
}


def _node_fields() -> dict[str, tuple[str, ...]]:
    nodes = flow_schema()["$defs"]["node"]["properties"]
    return {name: tuple(body.get("properties", {})) for name, body in nodes.items()}


_NODE_FIELDS: dict[str, tuple[str, ...]] = _node_fields()


# --- words -------------------------------------------------------------------------------------


def where(ptr: str) -> str:
    """A pointer in words: ``/nodes/main/menu/choices/1`` -> ``node 'main', choice '1'``."""
    parts = [unescape(p) for p in ptr.split("/")[1:]]
    if not parts:
        return "the flow"
    head = parts[0]
    if head == "nodes" and len(parts) >= 2:
        return f"node '{parts[1]}'" + _inside_node(parts[3:])
    if len(parts) >= 2 and head in _SECTIONS:
        return f"{_SECTIONS[head]} '{parts[1]}'"
    if len(parts) == 1:
        return "the flow"
    return head


_SECTIONS = {
    "globals": "global command",
    "prompts": "prompt",
    "calendars": "calendar",
    "vars": "variable",
}


def _inside_node(rest: list[str]) -> str:
    if len(rest) >= 2 and rest[0] == "choices":
        return f", choice '{rest[1]}'"
    if len(rest) >= 2 and rest[0] == "questions" and rest[1].isdigit():
        return f", question {int(rest[1]) + 1}"
    if len(rest) >= 2 and rest[0] == "when" and rest[1].isdigit():
        return f", condition {int(rest[1]) + 1}"
    if len(rest) >= 1 and rest[0] in ("no_input", "no_match", "globals", "webhook"):
        return f", {rest[0]}"
    return ""


def _field(ptr: str) -> str:
    parts = [unescape(p) for p in ptr.split("/")[1:]]
    if not parts:
        return "the flow"
    last = parts[-1]
    if last.isdigit() and len(parts) >= 2:
        return f"item {int(last) + 1} of '{parts[-2]}'"
    return f"'{last}'"


def _is_node(ptr: str) -> bool:
    return ptr.startswith("/nodes/") and ptr.count("/") == 2


def _list(value: Any) -> list[Any]:
    """jsonschema types some error fields as "Any or Unset"; iterate them safely."""
    return list(value) if isinstance(value, list | tuple | dict | set) else []


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest option, or ''."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _or(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
