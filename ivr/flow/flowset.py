"""Checks across the flows of one set: unique flow ids and sub-flows that exist and return."""

from __future__ import annotations

from collections.abc import Sequence

from ivr.flow.build import BuildResult
from ivr.flow.errors import Diagnostic, Severity
from ivr.flow.model import ReturnNode, SubflowNode
from ivr.flow.schema import did_you_mean
from ivr.flow.yamlload import child


def check_flowset(results: Sequence[BuildResult]) -> list[Diagnostic]:
    """Problems that only show when the flows are loaded together."""
    out: list[Diagnostic] = []
    flows: dict[str, BuildResult] = {}
    for result in results:
        flow = result.flow
        first = flows.setdefault(flow.id, result)
        if first is not result:
            out.append(Diagnostic(result.positions.value("/flow"),
                                  f"flow id '{flow.id}' is already used by {first.flow.source}",
                                  stage="semantic"))
    for result in results:
        for node in result.flow.nodes.values():
            if isinstance(node, SubflowNode):
                out.extend(_subflow(result, node, flows))
    return out


def _subflow(
    result: BuildResult, node: SubflowNode, flows: dict[str, BuildResult]
) -> list[Diagnostic]:
    pos = result.positions.value(child(result.node_ptr(node.id), "flow"))
    called = flows.get(node.flow)
    if called is None:
        message = f"node '{node.id}': unknown sub-flow '{node.flow}'" + did_you_mean(
            node.flow, flows
        )
        return [Diagnostic(pos, message, stage="semantic")]
    if not any(isinstance(n, ReturnNode) for n in called.flow.nodes.values()):
        message = (f"node '{node.id}': sub-flow '{node.flow}' has no return node, so the call "
                   f"never comes back to '{node.next}'")
        return [Diagnostic(pos, message, Severity.WARNING, stage="semantic")]
    return []
