"""Webhook nodes against ivr.yaml's ``webhook_allow`` (``ivr validate``, ``ivr lint``).

During a call a webhook whose host is not in the allow-list is refused before any request is
made (:mod:`ivr.flow.webhookurl`); this says so before the flow goes live:

- no ``webhook_allow`` at all while some flow has a webhook: a warning (once), because then the
  webhooks may reach any host - a URL built from what a caller said could, too;
- a URL whose scheme, host and port are fixed by the flow and ``config.*`` values (the usual
  ``{config.bank_api}/accounts/{account}``) and are not in the list: an error at the node, since
  every call would take its error exit. A host that depends on the call is judged in the call.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from ivr.flow.errors import Diagnostic, Severity
from ivr.flow.expr import lookup
from ivr.flow.model import ActionNode, Flow
from ivr.flow.template import TemplateError, compile_template
from ivr.flow.webhookurl import host_allowed, parse_rule

__all__ = ["check_webhooks"]


def check_webhooks(flows: Iterable[Flow], allow: tuple[str, ...] | None,
                   config_vars: Mapping[str, Any], config_file: str = "ivr.yaml"
                   ) -> list[Diagnostic]:  # fmt: skip
    """Problems of the webhook nodes of ``flows`` against ``allow`` (None: not set)."""
    found = [node for flow in flows for node in flow.nodes.values()
             if isinstance(node, ActionNode) and node.webhook is not None]
    if not found:
        return []
    if allow is None:
        return [Diagnostic(found[0].pos, f"{config_file} sets no webhook_allow, so webhooks "
                           "may reach any host; list the hosts they call (docs/SECURITY.md)",
                           Severity.WARNING)]
    rules = [rule for rule in map(parse_rule, allow) if rule is not None]
    listed = ", ".join(allow) if allow else "empty"
    out = []
    for node in found:
        assert node.webhook is not None
        origin = fixed_origin(node.webhook.url, config_vars)
        if origin is not None and not host_allowed(origin, rules):
            out.append(Diagnostic(node.pos, f"node '{node.id}': webhook {origin} is not in "
                                  f"webhook_allow ({listed}), so every call would be refused"))
    return out


def fixed_origin(url: str, config_vars: Mapping[str, Any]) -> str | None:
    """``scheme://host:port`` of the URL template ``url`` when the flow's own text and
    ``config.*`` values fix it; None when a value of the call takes part in it (or a config
    value is missing: reported elsewhere)."""
    try:
        pieces = compile_template(url).pieces
    except TemplateError:
        return None  # reported with the other templates
    prefix, whole = "", True
    for piece in pieces:
        if _origin_complete(prefix):
            break
        if isinstance(piece, str):
            prefix += piece
        elif piece.name.startswith("config."):
            value = lookup({"config": dict(config_vars)}, piece.name)
            if value is None:
                return None
            prefix += str(value)
        else:
            whole = False
            break
    if not (whole or _origin_complete(prefix)):
        return None
    parts = urllib.parse.urlsplit(prefix)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else prefix


def _origin_complete(prefix: str) -> bool:
    """The text so far holds ``scheme://netloc`` and something after it (``/``, ``?``, ``#``)."""
    scheme, sep, rest = prefix.partition("://")
    return bool(scheme and sep) and any(ch in rest for ch in "/?#")
