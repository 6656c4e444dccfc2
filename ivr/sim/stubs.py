"""Stubbed actions for call scripts (docs/TESTING.md "Stubs"): no backend needed.

A script's ``stubs:`` (and the ``stubs.yaml`` shared by the scripts of a folder) say what an
action answers instead of running it: a JSON ``result``, an HTTP ``status``, a transport
``error`` (``timeout``, ``connection refused``, ...) and a ``latency`` on the virtual clock, so a
lookup takes time and the caller can type ahead while it runs. A stub is keyed by the action's
node (``get_balance``, or ``verify-customer.check_credentials``) or by its name (a webhook's URL
path such as ``/balance``, a Python action's ``module:function``); ``when`` picks a reply by the
request's fields (the rendered webhook body and params, or the Python action's args).

:class:`StubActionRunner` is the engine's ActionRunner for one simulated call: a stubbed action
answers on the call's clock; any other action runs for real through the fallback runner, and a
webhook whose backend cannot be reached is remembered, so the script's failure reads "backend
down" instead of a prompt mismatch.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.core.clock import Clock, TimerHandle
from ivr.engine.actions import render_value
from ivr.engine.runtime import ActionDone, ActionResult, ActionRunner
from ivr.flow.model import ActionNode, FlowSet
from ivr.flow.template import compile_template

#: ``error:`` value that makes a stub time out after the node's ``timeout``
TIMEOUT = "timeout"
#: the error texts of ivr.engine.actions that mean "nobody answered at that address"
_UNREACHABLE_PREFIXES = ("connection refused", "host not found", "connection failed")


@dataclass(frozen=True)
class StubReply:
    """What a stubbed action answers; ``where`` is ``file:line`` of its definition."""

    result: Any = None
    status: int = 200
    error: str | None = None
    latency: float = 0.0
    where: str = ""


@dataclass(frozen=True)
class StubRule:
    """Replies for one key, used when every ``when`` field equals the request's (as text).

    ``replies`` answer in turn, one per run of the action; the last one repeats.
    """

    key: str
    replies: tuple[StubReply, ...]
    when: dict[str, str] = field(default_factory=dict)
    where: str = ""

    def matches(self, request: Mapping[str, Any]) -> bool:
        return all(_text(request.get(name)) == value for name, value in self.when.items())


@dataclass(frozen=True)
class StubSet:
    """Rules by key, in the order they are tried (a script's own before its folder's)."""

    rules: tuple[StubRule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def then(self, other: StubSet) -> StubSet:
        """These rules first, then ``other``'s."""
        return StubSet(self.rules + other.rules)

    def keys(self) -> set[str]:
        return {rule.key for rule in self.rules}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def action_keys(flow_id: str, node: ActionNode, scope: Mapping[str, Any] | None = None
                ) -> list[str]:  # fmt: skip
    """The keys a stub may use for ``node``, most specific first: ``flow.node``, the node id,
    then its name (the webhook URL's path, rendered with ``scope`` when given, or the Python
    action's ``module:function``)."""
    keys = [f"{flow_id}.{node.id}", node.id]
    if node.python:
        keys.append(node.python)
    elif node.webhook is not None:
        url = node.webhook.url
        if scope is not None:
            try:
                url = compile_template(url).render(scope, speak=False)
            except Exception:  # a template the real action would refuse too
                return keys
        path = urllib.parse.urlsplit(url).path if scope is not None else _template_path(url)
        if path:
            keys.append(path)
    return keys


def _template_path(url: str) -> str:
    """The literal path at the end of a URL template (``{config.bank_api}/verify``: ``/verify``)."""
    tail = url.rsplit("}", 1)[-1]
    return tail if tail.startswith("/") else urllib.parse.urlsplit(tail).path


def unknown_keys(stubs: StubSet, flows: FlowSet) -> list[StubRule]:
    """Rules whose key names no action node of ``flows`` (a typo would silently stub nothing)."""
    known: set[str] = set()
    for flow_id, flow in flows.flows.items():
        for node in flow.nodes.values():
            if isinstance(node, ActionNode):
                known.update(action_keys(flow_id, node))
    return [rule for rule in stubs.rules if rule.key not in known]


def request_fields(node: ActionNode, scope: Mapping[str, Any]) -> dict[str, Any]:
    """What ``when`` compares: the rendered webhook params and body, or the Python args."""
    try:
        if node.webhook is not None:
            fields: dict[str, Any] = {}
            for raw in (node.webhook.params, node.webhook.body):
                rendered = render_value(raw, scope) if raw else None
                if isinstance(rendered, Mapping):
                    fields.update(rendered)
            return fields
        rendered = render_value(dict(node.args), scope)
        return dict(rendered) if isinstance(rendered, Mapping) else {}
    except Exception:  # a bad template: no field matches, the rule without `when` still does
        return {}


def reply_result(reply: StubReply, timeout: float) -> tuple[float, ActionResult]:
    """(virtual seconds until the answer, the result the flow gets), as the real action would
    judge that reply: a transport error or a non-2xx status takes ``on_error`` with the reply's
    data kept, a 2xx reply carrying ``error`` too."""
    if reply.error == TIMEOUT or reply.latency > timeout:
        return timeout, ActionResult(False, None, f"timeout after {timeout:g}s", timeout)
    delay = reply.latency
    if reply.error is not None:
        return delay, ActionResult(False, None, reply.error, delay)
    data = {} if reply.result is None else reply.result
    if not 200 <= reply.status < 300:
        return delay, ActionResult(False, data, f"HTTP {reply.status}", delay)
    if isinstance(data, Mapping) and data.get("error"):
        return delay, ActionResult(False, data, f"error: {data['error']}", delay)
    return delay, ActionResult(True, data, None, delay)


@dataclass(frozen=True)
class Unreachable:
    """An unstubbed webhook whose backend did not answer: which action, where, why."""

    action: str
    host: str
    error: str


class _Timer:
    """The handle of a stubbed action waiting for its latency; cancel drops the answer."""

    def __init__(self) -> None:
        self.handle: TimerHandle | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()


class StubActionRunner:
    """The ActionRunner of one simulated call.

    Args:
        stubs: the script's rules (its own, then its folder's).
        flows: the flows (to name a node's flow in ``flow.node`` keys).
        clock: the call's clock; a stub's latency passes on it.
        fallback: runs actions no rule matches (the real webhook or function).
    """

    def __init__(self, stubs: StubSet, flows: FlowSet, clock: Clock,
                 fallback: ActionRunner) -> None:  # fmt: skip
        self.stubs = stubs
        self.clock = clock
        self.fallback = fallback
        self._flow_of = {id(node): flow_id for flow_id, flow in flows.flows.items()
                         for node in flow.nodes.values()}  # fmt: skip
        self._turns: dict[int, int] = {}  # rule (by position) -> replies given so far
        self.unreachable: list[Unreachable] = []

    def run(self, node: ActionNode, scope: Mapping[str, Any], done: ActionDone) -> TimerHandle:
        flow_id = self._flow_of.get(id(node), "")
        keys = action_keys(flow_id, node, scope)
        found = self._rule(keys, node, scope)
        if found is None:
            return self.fallback.run(node, scope, self._watch(node, scope, keys[0], done))
        index, rule = found
        turn = self._turns.get(index, 0)
        self._turns[index] = turn + 1
        delay, result = reply_result(rule.replies[min(turn, len(rule.replies) - 1)], node.timeout)
        timer = _Timer()
        timer.handle = self.clock.call_later(delay, lambda: None if timer.cancelled
                                             else done(result))  # fmt: skip
        return timer

    def _rule(self, keys: Iterable[str], node: ActionNode, scope: Mapping[str, Any]
              ) -> tuple[int, StubRule] | None:  # fmt: skip
        fields: dict[str, Any] | None = None
        for key in keys:  # the most specific key that has a matching rule wins
            for index, rule in enumerate(self.stubs.rules):
                if rule.key != key:
                    continue
                if rule.when and fields is None:
                    fields = request_fields(node, scope)
                if rule.matches(fields or {}):
                    return index, rule
        return None

    def _watch(self, node: ActionNode, scope: Mapping[str, Any], name: str,
               done: ActionDone) -> ActionDone:  # fmt: skip
        """``done``, noting first whether the real webhook's backend was unreachable."""

        def watched(result: ActionResult) -> None:
            error = result.error or ""
            if node.webhook is not None and error.startswith(_UNREACHABLE_PREFIXES):
                self.unreachable.append(Unreachable(name, _host(node, scope), error))
            done(result)

        return watched


def _host(node: ActionNode, scope: Mapping[str, Any]) -> str:
    """``scheme://host:port`` of the webhook: never its path, query or user:password (secrets)."""
    assert node.webhook is not None
    try:
        parts = urllib.parse.urlsplit(compile_template(node.webhook.url).render(scope, speak=False))
        port = f":{parts.port}" if parts.port else ""
    except Exception:
        return "its backend"
    return f"{parts.scheme}://{parts.hostname}{port}" if parts.hostname else "its backend"


__all__ = [
    "TIMEOUT",
    "StubActionRunner",
    "StubReply",
    "StubRule",
    "StubSet",
    "Unreachable",
    "action_keys",
    "reply_result",
    "request_fields",
    "unknown_keys",
]
