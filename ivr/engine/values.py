"""Computing variable values written in a flow: literals, templates and ``= expressions``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivr.engine.actions import render_value
from ivr.flow.expr import compile_expr
from ivr.flow.template import compile_template


def compute(raw: Any, scope: Mapping[str, Any]) -> Any:
    """``"= a + 1"`` is evaluated; anything else is filled in as a webhook body would be
    (templates rendered, ``"{name}"`` alone keeping the variable's type, containers item by item).
    """
    if isinstance(raw, str) and raw.startswith("="):
        return compile_expr(raw[1:].strip()).evaluate(scope)
    return render_value(raw, scope)


def truthy(expr: str, scope: Mapping[str, Any]) -> bool:
    return bool(compile_expr(expr).evaluate(scope))


def names_read(raw: Any) -> set[str]:
    """The dotted variable names a flow value reads (an expression's, a template's, inside
    containers too): a value computed from a secret is a secret."""
    if isinstance(raw, str):
        if raw.startswith("="):
            return set(compile_expr(raw[1:].strip()).names)
        return set(compile_template(raw).names)
    if isinstance(raw, Mapping):
        return {n for item in raw.values() for n in names_read(item)}
    if isinstance(raw, list | tuple):
        return {n for item in raw for n in names_read(item)}
    return set()
