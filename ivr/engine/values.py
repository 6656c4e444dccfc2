"""Computing variable values written in a flow: literals, templates and ``= expressions``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivr.engine.actions import render_value
from ivr.flow.expr import compile_expr


def compute(raw: Any, scope: Mapping[str, Any]) -> Any:
    """``"= a + 1"`` is evaluated; anything else is filled in as a webhook body would be
    (templates rendered, ``"{name}"`` alone keeping the variable's type, containers item by item).
    """
    if isinstance(raw, str) and raw.startswith("="):
        return compile_expr(raw[1:].strip()).evaluate(scope)
    return render_value(raw, scope)


def truthy(expr: str, scope: Mapping[str, Any]) -> bool:
    return bool(compile_expr(expr).evaluate(scope))
