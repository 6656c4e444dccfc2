"""Which nodes and branches of each flow the scripts exercised.

Totals come from the FlowSet: every node; every branch, that is every label of a node's
:meth:`~ivr.flow.model.Node.targets` (``choice 1``, ``no_input``, ``next``, ``if ...``, ``else``,
``open``, ...) plus every global command of the flow (``global 0``, ``global agent``).

What was taken comes from the events, the way the engine emits them:
- a node is covered by a NODE_ENTER of it (``data["flow"]`` names its flow);
- a branch by a MATCH at the node whose ``data["branch"]`` is the label;
- a global command by a GLOBAL event whose ``data["command"]`` is its name;
- a sub-flow node's ``next`` by the call coming back: its sub-flow's ``return`` node is entered
  and the next node entered is the sub-flow node's ``next`` (the engine goes there directly,
  without a MATCH).
MATCH labels that are not in ``targets()`` (an escalation to the default target, the engine's
``call`` into a sub-flow) are not branches of the flow and are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ivr.core import events as ev
from ivr.core.events import Event
from ivr.flow.model import FlowSet, SubflowNode

GLOBALS = "(global)"  # the pseudo node that global-command branches belong to


@dataclass
class FlowCoverage:
    """Coverage of one flow; branches are ``(node id, label)`` pairs."""

    flow: str
    nodes: list[str]
    branches: list[tuple[str, str]]
    nodes_covered: set[str] = field(default_factory=set)
    branches_covered: set[tuple[str, str]] = field(default_factory=set)

    @property
    def missing_nodes(self) -> list[str]:
        return [n for n in self.nodes if n not in self.nodes_covered]

    @property
    def missing_branches(self) -> list[tuple[str, str]]:
        return [b for b in self.branches if b not in self.branches_covered]

    @property
    def node_percent(self) -> float:
        return _percent(len(self.nodes_covered), len(self.nodes))

    @property
    def branch_percent(self) -> float:
        return _percent(len(self.branches_covered), len(self.branches))


@dataclass
class CoverageReport:
    flows: dict[str, FlowCoverage]

    @property
    def node_percent(self) -> float:
        covered = sum(len(f.nodes_covered) for f in self.flows.values())
        return _percent(covered, sum(len(f.nodes) for f in self.flows.values()))

    @property
    def branch_percent(self) -> float:
        covered = sum(len(f.branches_covered) for f in self.flows.values())
        return _percent(covered, sum(len(f.branches) for f in self.flows.values()))


def _percent(part: int, whole: int) -> float:
    return 100.0 if whole == 0 else 100.0 * part / whole


def empty_report(flows: FlowSet) -> CoverageReport:
    """Every node and branch of every flow, none covered."""
    report = {}
    for flow_id, flow in sorted(flows.flows.items()):
        branches: list[tuple[str, str]] = []
        for node_id, node in flow.nodes.items():
            for label, _target, _pos in node.targets():
                if (node_id, label) not in branches:
                    branches.append((node_id, label))
        for name, command in flow.globals.items():
            if command.target is not None:
                branches.append((GLOBALS, f"global {name}"))
        report[flow_id] = FlowCoverage(flow_id, list(flow.nodes), branches)
    return CoverageReport(report)


@dataclass
class _CallState:
    """Per call: the last node entered (flow, id), and sub-flow calls waiting to return."""

    last: tuple[str, str] | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)  # (flow, subflow node id)
    returning: tuple[str, str] | None = None


def compute_coverage(flows: FlowSet, events: Iterable[Event]) -> CoverageReport:
    """Coverage of ``flows`` by ``events`` (of any number of calls, each call's in order)."""
    report = empty_report(flows)
    calls: dict[str, _CallState] = {}
    for event in events:
        state = calls.setdefault(event.call_id, _CallState())
        flow_id = event.data.get("flow") or (state.last[0] if state.last else None)
        cov = report.flows.get(str(flow_id)) if flow_id is not None else None
        if event.kind == ev.NODE_ENTER and event.node is not None:
            _entered(flows, report, state, str(flow_id), event.node)
        elif cov is not None and event.kind == ev.MATCH and event.node is not None:
            cov.branches_covered.add((event.node, str(event.data.get("branch"))))
        elif cov is not None and event.kind == ev.GLOBAL:
            cov.branches_covered.add((GLOBALS, f"global {event.data.get('command')}"))
    for cov in report.flows.values():  # labels that are not branches of the flow do not count
        cov.branches_covered &= set(cov.branches)
    return report


def _entered(
    flows: FlowSet, report: CoverageReport, state: _CallState, flow_id: str, node_id: str
) -> None:
    cov = report.flows.get(flow_id)
    if cov is not None and node_id in cov.nodes:
        cov.nodes_covered.add(node_id)
    if state.returning is not None:
        parent_flow, sub_node = state.returning
        state.returning = None
        node = flows.flows[parent_flow].nodes.get(sub_node) if parent_flow in flows.flows else None
        parent = report.flows.get(parent_flow)
        if isinstance(node, SubflowNode) and node.next == node_id and parent is not None:
            parent.branches_covered.add((sub_node, "next"))
    flow = flows.flows.get(flow_id)
    node = flow.nodes.get(node_id) if flow is not None else None
    if isinstance(node, SubflowNode):
        state.calls.append((flow_id, node_id))
    elif node is not None and node.kind == "return" and state.calls:
        state.returning = state.calls.pop()
    state.last = (flow_id, node_id)


def format_coverage(report: CoverageReport, *, missing: bool = True) -> str:
    """A table: per flow, nodes and branches covered, then what is missing."""
    width = max([len("flow"), *(len(f) for f in report.flows)])
    lines = [f"{'flow':<{width}}  {'nodes':>14}  {'branches':>14}"]
    for cov in report.flows.values():
        nodes = f"{len(cov.nodes_covered)}/{len(cov.nodes)} {cov.node_percent:3.0f}%"
        branches = f"{len(cov.branches_covered)}/{len(cov.branches)} {cov.branch_percent:3.0f}%"
        lines.append(f"{cov.flow:<{width}}  {nodes:>14}  {branches:>14}")
        if missing and cov.missing_nodes:
            lines.append(f"  missing nodes: {', '.join(cov.missing_nodes)}")
        if missing and cov.missing_branches:
            text = ", ".join(f"{n}: {label}" for n, label in cov.missing_branches)
            lines.append(f"  missing branches: {text}")
    lines.append(f"total: nodes {report.node_percent:.1f}%, branches {report.branch_percent:.1f}%")
    return "\n".join(lines)
