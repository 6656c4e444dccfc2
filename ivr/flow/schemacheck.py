"""A fast yes/no JSON Schema check compiled into closures, for the keywords the flow schema uses.

jsonschema is thorough and names every violation, but spends ~7 µs per value on bookkeeping.
This module answers only "valid or not" for the draft 2020-12 subset below; when the answer is
"not", :mod:`ivr.flow.schema` runs jsonschema to say why. A keyword this module does not know
makes :func:`compile_schema` fail, so the schema can never silently outgrow the fast path
(tests also compare both on every test flow and on mutations of them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

# Keywords that never affect validity.
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "title", "description", "patternErrorMessage", "errorMessage",
     "default", "examples"}
)
_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


class SchemaCompileError(ValueError):
    """The schema uses a keyword or form this checker does not implement."""


def compile_schema(root: dict[str, Any]) -> Check:
    """A function telling whether an instance is valid against ``root``."""
    return _Compiler(root).compile(root)


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}
        self.compiling: set[str] = set()

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _true
        if schema is False:
            return lambda v: False
        if not isinstance(schema, dict):
            raise SchemaCompileError(f"not a schema: {schema!r}")
        checks: list[Check] = []
        fused = _OBJECT_KEYWORDS.intersection(schema)
        if fused:
            checks.append(self.object_check(schema))
        for keyword in schema:
            if keyword in _ANNOTATIONS or keyword in fused or keyword in ("then", "else"):
                continue
            method = getattr(self, "k_" + keyword.lstrip("$"), None)
            if method is None:
                raise SchemaCompileError(f"keyword {keyword!r} is not supported")
            checks.append(method(schema[keyword], schema))
        return _all(checks)

    # --- references ------------------------------------------------------------------------

    def k_ref(self, ref: str, schema: dict[str, Any]) -> Check:
        if not ref.startswith("#/"):
            raise SchemaCompileError(f"only local references are supported: {ref}")
        if ref in self.refs:
            return self.refs[ref]
        if ref in self.compiling:  # a recursive schema: look the check up when it runs
            refs = self.refs
            return lambda v: refs[ref](v)
        self.compiling.add(ref)
        target: Any = self.root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        compiled = self.compile(target)
        self.compiling.discard(ref)
        self.refs[ref] = compiled
        return compiled

    # --- any type --------------------------------------------------------------------------

    def k_type(self, names: str | list[str], schema: dict[str, Any]) -> Check:
        wanted = [names] if isinstance(names, str) else list(names)
        if len(wanted) == 1:
            return _TYPES[wanted[0]]
        # Fast path on the Python class; bool and float need the exact JSON rules.
        classes = {str: "string", dict: "object", list: "array", type(None): "null"}
        simple = frozenset(c for c, n in classes.items() if n in wanted)
        tests = tuple(_TYPES[n] for n in wanted if n not in classes.values())

        def run(v: Any) -> bool:
            if type(v) in simple:
                return True
            for test in tests:  # noqa: SIM110 - a loop is faster than any() over a generator
                if test(v):
                    return True
            return False

        return run

    def k_enum(self, options: list[Any], schema: dict[str, Any]) -> Check:
        if not all(isinstance(o, str) for o in options):
            raise SchemaCompileError("enum supports strings only")
        allowed = frozenset(options)
        return lambda v: isinstance(v, str) and v in allowed

    def k_const(self, value: Any, schema: dict[str, Any]) -> Check:
        if not isinstance(value, str):
            raise SchemaCompileError("const supports strings only")
        return lambda v: isinstance(v, str) and v == value

    def k_if(self, condition: Any, schema: dict[str, Any]) -> Check:
        test = self.compile(condition)
        then = self.compile(schema.get("then", True))
        other = self.compile(schema.get("else", True))
        return lambda v: then(v) if test(v) else other(v)

    # --- strings ---------------------------------------------------------------------------

    def k_pattern(self, pattern: str, schema: dict[str, Any]) -> Check:
        search = re.compile(pattern).search
        return lambda v: not isinstance(v, str) or search(v) is not None

    def k_minLength(self, limit: int, schema: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, str) or len(v) >= limit

    # --- numbers ---------------------------------------------------------------------------

    def k_minimum(self, limit: float, schema: dict[str, Any]) -> Check:
        return lambda v: not _is_number(v) or v >= limit

    def k_maximum(self, limit: float, schema: dict[str, Any]) -> Check:
        return lambda v: not _is_number(v) or v <= limit

    def k_exclusiveMinimum(self, limit: float, schema: dict[str, Any]) -> Check:
        return lambda v: not _is_number(v) or v > limit

    # --- arrays ----------------------------------------------------------------------------

    def k_items(self, items: Any, schema: dict[str, Any]) -> Check:
        check = self.compile(items)

        def run(v: Any) -> bool:
            if isinstance(v, list):
                for item in v:
                    if not check(item):
                        return False
            return True

        return run

    def k_minItems(self, limit: int, schema: dict[str, Any]) -> Check:
        return lambda v: not isinstance(v, list) or len(v) >= limit

    def k_uniqueItems(self, flag: bool, schema: dict[str, Any]) -> Check:
        if not flag:
            return lambda v: True
        return lambda v: not isinstance(v, list) or _unique(v)

    # --- objects: one pass over the keys for all object keywords together ----------------------

    def object_check(self, schema: dict[str, Any]) -> Check:
        props = {name: self.compile(sub) for name, sub in schema.get("properties", {}).items()}
        patterns = [
            (re.compile(p).search, self.compile(sub))
            for p, sub in schema.get("patternProperties", {}).items()
        ]
        extra = self.compile(schema.get("additionalProperties", True))
        names = self.compile(schema.get("propertyNames", True))
        required = tuple(schema.get("required", ()))
        low = schema.get("minProperties", 0)
        high = schema.get("maxProperties")

        def run(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            if len(v) < low or (high is not None and len(v) > high):
                return False
            for name in required:
                if name not in v:
                    return False
            for key, value in v.items():
                if not names(key):
                    return False
                check = props.get(key)
                if check is not None:
                    if not check(value):
                        return False
                    if not patterns:
                        continue
                matched = check is not None
                for search, sub in patterns:
                    if search(key):
                        matched = True
                        if not sub(value):
                            return False
                if not matched and not extra(value):
                    return False
            return True

        return run


_OBJECT_KEYWORDS = frozenset(
    {"properties", "patternProperties", "additionalProperties", "propertyNames", "required",
     "minProperties", "maxProperties"}
)


def _true(v: Any) -> bool:
    return True


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _true
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda v: first(v) and second(v)

    frozen = tuple(checks)

    def run(v: Any) -> bool:
        for check in frozen:  # noqa: SIM110 - see above
            if not check(v):
                return False
        return True

    return run


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _unique(items: list[Any]) -> bool:
    seen: list[Any] = []
    for item in items:
        # JSON equality: 1 and true differ, 1 and 1.0 do not.
        if any(_json_equal(item, other) for other in seen):
            return False
        seen.append(item)
    return True


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)
