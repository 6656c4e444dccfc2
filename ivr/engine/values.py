"""Computing variable values written in a flow: literals, templates and ``= expressions``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ivr.flow.expr import compile_expr
from ivr.flow.template import compile_template


def compute(raw: Any, scope: Mapping[str, Any]) -> Any:
    """``"= a + 1"`` is evaluated, any other string is a template, other values are literals.

    Containers are computed item by item (webhook bodies, action args).
    """
    if isinstance(raw, str):
        if raw.startswith("="):
            return compile_expr(raw[1:].strip()).evaluate(scope)
        template = compile_template(raw)
        if template.is_constant:
            return raw.replace("{{", "{").replace("}}", "}")
        return template.render(scope, speak=False)
    if isinstance(raw, dict):
        return {k: compute(v, scope) for k, v in raw.items()}
    if isinstance(raw, list | tuple):
        return [compute(v, scope) for v in raw]
    return raw


def truthy(expr: str, scope: Mapping[str, Any]) -> bool:
    return bool(compile_expr(expr).evaluate(scope))
