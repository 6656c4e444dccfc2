"""Checks on a flow's call graph: unreachable nodes, dead ends, endless loops, trapped callers.

The graph has an edge for every way a call can move: each node's targets, the escalation of input
nodes after their last failure, and the global commands active in each input node. Built-in
targets become edges too: ``repeat`` to the node itself, ``restart`` to ``start``, ``back`` to
``start`` (an approximation: the previous input node is only known during the call), and
``hangup`` ends the call.

A strongly connected set of nodes that nothing leaves and where nothing ends the call traps the
call: without an input node inside it is an endless loop (control passes round without waiting
for the caller), with one it is a dead end (the caller can only hang up).
"""

from __future__ import annotations

from collections.abc import Iterator

from ivr.flow.errors import Diagnostic, Severity
from ivr.flow.model import (
    Flow,
    GlobalCommand,
    InputOptions,
    LanguageNode,
    Node,
    SubflowNode,
)
from ivr.flow.yamlload import Positions

END = "<end>"  # the pseudo node for "the call ends here"


def check_graph(
    flow: Flow, positions: Positions, partial: dict[str, set[str]] | None = None
) -> list[Diagnostic]:
    """Unreachable nodes (warnings), dead ends, endless loops and trapped input nodes.

    Args:
        flow: the built flow.
        positions: the document's position table.
        partial: when some nodes could not be built (schema errors), their likely targets
            (node ids found in them): then only the unreachable-node warnings are given, so
            that lint still shows them next to the errors; the traps need the whole graph.
    """
    graph = _edges(flow)
    if partial is not None:
        graph.update(partial)
    reachable = _reachable(flow, graph)
    out: list[Diagnostic] = []
    for node_id, node in flow.nodes.items():
        if node_id not in reachable:
            out.append(Diagnostic(node.pos, f"node '{node_id}' is never reached from start "
                                  f"'{flow.start}'", Severity.WARNING, stage="semantic"))
    if partial is not None:
        return out
    out.extend(_traps(flow, graph, reachable))
    out.extend(_trapped_inputs(flow))
    return out


# --- the graph ---------------------------------------------------------------------------------


def _edges(flow: Flow) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for node_id, node in flow.nodes.items():
        targets = {t for _, t, _ in node.targets()}
        if node.ESCALATES:
            targets.update(_escalations(flow, node))
        opts = getattr(node, "opts", None)
        if isinstance(opts, InputOptions):
            targets.update(c.target for c in _active_globals(flow, opts) if c.target)
        if node.ENDS_FLOW or isinstance(node, SubflowNode):
            targets.add(END)  # a sub-flow may end the call too
        graph[node_id] = {_resolve(flow, node_id, t) for t in targets}
    return graph


def _resolve(flow: Flow, node_id: str, target: str) -> str:
    if target in flow.nodes:
        return target
    return {"repeat": node_id, "restart": flow.start, "back": flow.start}.get(target, END)


def _escalation_target(flow: Flow, goto: str | None) -> str:
    if goto:
        return goto
    if flow.defaults.escalate:
        return flow.defaults.escalate
    return "agent" if "agent" in flow.nodes else "hangup"  # the engine hangs up ("failed")


def _escalations(flow: Flow, node: Node) -> Iterator[str]:
    opts: InputOptions = node.opts  # type: ignore[attr-defined]
    if isinstance(node, LanguageNode) and not opts.no_input.goto:
        pass  # silence keeps the default language and takes next (already an edge)
    else:
        yield _escalation_target(flow, opts.no_input.goto)
    yield _escalation_target(flow, opts.no_match.goto)


def _active_globals(flow: Flow, opts: InputOptions) -> list[GlobalCommand]:
    if opts.globals_off:
        return []
    merged = dict(flow.globals)
    merged.update(opts.globals or {})
    return list(merged.values())


def _reachable(flow: Flow, graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [flow.start] if flow.start in graph else []
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id not in graph:
            continue
        seen.add(node_id)
        todo.extend(graph[node_id] - seen)
    return seen


# --- traps: strongly connected sets nothing leaves ---------------------------------------------


def _traps(flow: Flow, graph: dict[str, set[str]], reachable: set[str]) -> list[Diagnostic]:
    out = []
    order = {node_id: index for index, node_id in enumerate(flow.nodes)}
    for component in _components({n: graph[n] for n in reachable}):
        members = set(component)
        leaves = any(t not in members for n in component for t in graph[n])
        single = len(component) == 1 and component[0] not in graph[component[0]]
        if leaves or single:
            continue
        first = min(component, key=order.__getitem__)
        names = _names(sorted(component, key=order.__getitem__))
        node = flow.nodes[first]
        if not any(_waits(flow.nodes[n]) for n in component):
            verb = "passes" if len(component) == 1 else "pass"
            message = (f"endless loop: {names} {verb} the call round without ever waiting for "
                       "the caller or ending the call")
        else:
            message = (f"dead end: once the call reaches {names} it can never end (no hangup, "
                       "transfer, enqueue, return or escalation leads out)")
        out.append(Diagnostic(node.pos, message, Severity.ERROR, stage="semantic"))
    return out


def _names(ids: list[str]) -> str:
    quoted = [f"'{i}'" for i in ids[:6]]
    more = f" and {len(ids) - 6} more" if len(ids) > 6 else ""
    if len(quoted) == 1:
        return f"node {quoted[0]}"
    return "nodes " + ", ".join(quoted) + more


def _components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative: flows can be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in graph:
                    continue  # END or a node outside the analysed part
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
    return result


def _waits(node: Node) -> bool:
    """Whether the caller is involved while the node runs (time passes, they can act): a cycle
    through such a node is a dead end at worst, never a busy loop. A sub-flow runs nodes of
    its own."""
    return node.WAITS_FOR_CALLER or isinstance(node, SubflowNode)


# --- input nodes with no way out after their last failure --------------------------------------


def _trapped_inputs(flow: Flow) -> list[Diagnostic]:
    if flow.defaults.escalate or "agent" in flow.nodes:
        return []
    out = []
    for node in flow.nodes.values():
        opts = node.input_options
        if not node.ESCALATES or opts is None:
            continue
        missing = []
        if not opts.no_input.goto and not isinstance(node, LanguageNode):
            missing.append("no_input")
        if not opts.no_match.goto:
            missing.append("no_match")
        if missing:
            labels = " and ".join(missing)
            out.append(Diagnostic(
                node.pos,
                f"node '{node.id}': after the last {labels} the caller would be cut off: give "
                f"{labels} a goto:, set defaults.escalate, or add an 'agent' node",
                Severity.ERROR, stage="semantic"))
    return out

