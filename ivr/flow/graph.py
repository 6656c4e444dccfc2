"""A picture of a flow: Mermaid, Graphviz DOT, or a self-contained HTML page with inline SVG.

:func:`build_graph` turns a :class:`~ivr.flow.model.Flow` into boxes and labelled arrows once;
each output format only draws that. Every way out of a node (``Node.targets()``) is an arrow
labelled with its branch (``choice 1``, ``no_input``, ``if segment == 'corporate'``); arrows
between the same two nodes are merged into one with the labels joined by `` / ``. A built-in
command target (``repeat``, ``back``, ``restart``, ``hangup``) gets a small box of its own under
each node that uses it, because ``repeat`` and ``back`` mean something only relative to that
node. A target that is not a node is drawn as a "missing" box, so a broken flow still draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ivr.flow.model import (
    BUILTIN_COMMANDS,
    ActionNode,
    BranchNode,
    CollectNode,
    EnqueueNode,
    Flow,
    HangupNode,
    HoursNode,
    LanguageNode,
    MenuNode,
    Node,
    Prompt,
    RecognizeNode,
    RecordNode,
    SetNode,
    SubflowNode,
    SurveyNode,
    TransferNode,
)

# category -> (fill, stroke, dashed): shared by the Mermaid, DOT and SVG drawings and the legend.
STYLES: dict[str, tuple[str, str, bool]] = {
    "start": ("#e3f2fd", "#1565c0", False),
    "input": ("#ffffff", "#455a64", False),
    "logic": ("#f3e5f5", "#6a1b9a", False),
    "terminal": ("#ffebee", "#c62828", False),
    "builtin": ("#eceff1", "#607d8b", True),
    "missing": ("#fff3e0", "#e65100", True),
}
LEGEND = {
    "start": "start node",
    "input": "waits for the caller (menu, collect, ...)",
    "logic": "no input (say, set, branch, action, ...)",
    "terminal": "ends the flow (hangup, transfer, enqueue, return)",
    "builtin": "built-in command (repeat, back, restart, hangup)",
    "missing": "target that is not a node of this flow",
}
PROMPT_CHARS = 60  # prompt text kept in a label (the HTML page wraps and trims it further)


@dataclass(frozen=True)
class GraphNode:
    """One box: a flow node, a built-in command used by one node, or a missing target."""

    key: str  # drawing id: n0, n1, ... (flow ids such as "end" would break Mermaid)
    id: str  # the flow node id, built-in name, or missing target name
    kind: str  # node type, "builtin" or "missing"
    category: str  # a key of STYLES
    detail: str = ""  # a short fact for the type ("into account, 8-19 digits")
    prompt: str = ""  # the main prompt's text in the default language, trimmed


@dataclass(frozen=True)
class GraphEdge:
    source: str  # GraphNode.key
    target: str
    label: str


@dataclass
class Graph:
    """Boxes in breadth-first order from the start node (unreachable ones last), and arrows."""

    flow_id: str
    description: str
    start: str  # key of the start box
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)
    globals: list[str] = field(default_factory=list)  # "0 → agent", "agent (say: ...) → agent"

    def node(self, key: str) -> GraphNode:
        return next(n for n in self.nodes if n.key == key)


def build_graph(flow: Flow) -> Graph:
    """The boxes and arrows of ``flow``."""
    order = _bfs_order(flow)
    keys = {node_id: f"n{i}" for i, node_id in enumerate(order)}
    graph = Graph(flow.id, flow.description, keys.get(flow.start, ""))
    graph.nodes = [_graph_node(keys[i], flow.nodes[i], flow) for i in order]
    extra: dict[str, GraphNode] = {}
    for node_id in order:
        merged: dict[str, list[str]] = {}
        for label, target, _pos in flow.nodes[node_id].targets():
            key = keys.get(target) or _extra_node(extra, keys[node_id], target, len(order)).key
            merged.setdefault(key, []).append(label)
        for key, labels in merged.items():
            graph.edges.append(GraphEdge(keys[node_id], key, " / ".join(labels)))
    graph.nodes.extend(extra.values())
    graph.globals = [_global_line(name, cmd.say, cmd.target) for name, cmd in flow.globals.items()]
    return graph


def _bfs_order(flow: Flow) -> list[str]:
    order: list[str] = []
    seen: set[str] = set()
    roots = [flow.start, *flow.nodes]
    for root in roots:
        if root in seen or root not in flow.nodes:
            continue
        queue = [root]
        seen.add(root)
        while queue:
            node_id = queue.pop(0)
            order.append(node_id)
            for _label, target, _pos in flow.nodes[node_id].targets():
                if target in flow.nodes and target not in seen:
                    seen.add(target)
                    queue.append(target)
    return order


def _extra_node(extra: dict[str, GraphNode], source: str, target: str, base: int) -> GraphNode:
    builtin = target in BUILTIN_COMMANDS
    name = f"{source}:{target}" if builtin else f"?{target}"
    if name not in extra:
        extra[name] = GraphNode(
            key=f"n{base + len(extra)}",
            id=target,
            kind="builtin" if builtin else "missing",
            category="builtin" if builtin else "missing",
            detail="built-in" if builtin else "not a node",
        )
    return extra[name]


def _global_line(name: str, say: dict[str, tuple[str, ...]], target: str | None) -> str:
    phrases = [p for lang_phrases in say.values() for p in lang_phrases]
    spoken = f" (say: {', '.join(phrases)})" if phrases else ""
    return f"{name}{spoken} → {target or 'off'}"


def _graph_node(key: str, node: Node, flow: Flow) -> GraphNode:
    kind = node.kind
    if node.id == flow.start:
        category = "start"
    elif node.ENDS_FLOW:
        category = "terminal"
    elif node.WAITS_FOR_CALLER:
        category = "input"
    else:
        category = "logic"
    return GraphNode(key, node.id, kind, category, _detail(node), _prompt_text(node, flow))


def _prompt_text(node: Node, flow: Flow) -> str:
    prompt = getattr(node, "prompt", None)
    if isinstance(node, SurveyNode) and node.questions:
        prompt = node.questions[0].prompt
    if not isinstance(prompt, Prompt):
        return ""
    texts = []
    for part in prompt.parts:
        text = part.text.get(flow.default_language) or next(iter(part.text.values()), "")
        texts.append(text or (f"[audio {part.audio}]" if part.audio else ""))
    return _trim(" ".join(t for t in texts if t), PROMPT_CHARS)


def _detail(node: Node) -> str:
    if isinstance(node, MenuNode):
        return _count(len(node.choices), "choice")
    if isinstance(node, CollectNode):
        secret = ", secret" if node.secret else ""
        return f"into {node.into}, {node.min}-{node.max} digits{secret}"
    if isinstance(node, RecognizeNode):
        grammar = node.grammar if isinstance(node.grammar, str) else "phrases"
        return f"{grammar} into {node.into}"
    if isinstance(node, LanguageNode):
        return ", ".join(f"{k}: {v}" for k, v in node.choices.items())
    if isinstance(node, SetNode):
        return "set " + ", ".join(node.vars)
    if isinstance(node, BranchNode):
        return _count(len(node.when), "condition")
    if isinstance(node, ActionNode):
        if node.webhook is not None:
            return f"{node.webhook.method} {node.webhook.url}"
        return f"python {node.python}"
    if isinstance(node, SubflowNode):
        return f"flow {node.flow}"
    if isinstance(node, HoursNode):
        return f"calendar {node.calendar}"
    if isinstance(node, TransferNode):
        return f"to {node.to}"
    if isinstance(node, EnqueueNode):
        return f"queue {node.queue}, priority {node.priority}"
    if isinstance(node, RecordNode):
        return f"into {node.into}, max {node.max_seconds:g} s"
    if isinstance(node, SurveyNode):
        return _count(len(node.questions), "question")
    if isinstance(node, HangupNode):
        return f"outcome {node.outcome}"
    return ""


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _trim(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --- Mermaid -----------------------------------------------------------------------------------

_MERMAID_SHAPES = {
    "input": ('["', '"]'),
    "start": ('["', '"]'),
    "logic": ('("', '")'),
    "terminal": ('(["', '"])'),
    "builtin": ('(("', '"))'),
    "missing": ('>"', '"]'),
}


def _mermaid_text(text: str) -> str:
    """Mermaid entity codes for characters that would end or confuse a quoted label."""
    text = text.replace("#", "#35;")
    for char, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#amp;")):
        text = text.replace(char, code)
    return text


def node_lines(node: GraphNode) -> list[str]:
    """The lines of a box: id, type (and detail), prompt."""
    head = node.kind if not node.detail else f"{node.kind} · {node.detail}"
    if node.category in ("builtin", "missing"):
        head = node.detail
    lines = [node.id, head]
    if node.prompt:
        lines.append(f"“{node.prompt}”")
    return lines


def to_mermaid(flow: Flow, graph: Graph | None = None) -> str:
    """Mermaid ``flowchart TD`` source for ``flow``."""
    graph = graph or build_graph(flow)
    out = ["flowchart TD", f"    %% flow {graph.flow_id}"]
    for node in graph.nodes:
        left, right = _MERMAID_SHAPES[node.category]
        label = "<br/>".join(_mermaid_text(line) for line in node_lines(node))
        out.append(f"    {node.key}{left}{label}{right}")
    for edge in graph.edges:
        out.append(f'    {edge.source} -->|"{_mermaid_text(edge.label)}"| {edge.target}')
    if graph.globals:
        lines = ["Global commands", *graph.globals]
        out.append(f'    globals["{"<br/>".join(_mermaid_text(x) for x in lines)}"]')
        out.append("    class globals note")
    styles = {**STYLES, "note": ("#fffde7", "#f9a825", False)}
    for category, (fill, stroke, dashed) in styles.items():
        dash = ",stroke-dasharray:4 3" if dashed else ""
        out.append(f"    classDef {category} fill:{fill},stroke:{stroke},color:#212121{dash}")
    by_category: dict[str, list[str]] = {}
    for node in graph.nodes:
        by_category.setdefault(node.category, []).append(node.key)
    for category, keys in by_category.items():
        out.append(f"    class {','.join(keys)} {category}")
    return "\n".join(out) + "\n"


# --- DOT ---------------------------------------------------------------------------------------

_DOT_SHAPES = {"builtin": "ellipse", "missing": "octagon", "terminal": "box"}


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(flow: Flow, graph: Graph | None = None) -> str:
    """Graphviz DOT source for ``flow`` (``dot -Tsvg``)."""
    graph = graph or build_graph(flow)
    out = [
        f'digraph "{_dot_text(graph.flow_id)}" {{',
        f'    graph [rankdir=TB, labelloc=t, fontname="Helvetica", '
        f'label="{_dot_text(graph.flow_id)}"];',
        '    node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '    edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in graph.nodes:
        fill, stroke, dashed = STYLES[node.category]
        style = "rounded,filled" + (",dashed" if dashed else "")
        width = 2 if node.category in ("start", "terminal") else 1
        label = "\\n".join(_dot_text(line) for line in node_lines(node))
        shape = _DOT_SHAPES.get(node.category, "box")
        out.append(
            f'    {node.key} [label="{label}", shape={shape}, style="{style}", '
            f'fillcolor="{fill}", color="{stroke}", penwidth={width}];'
        )
    for edge in graph.edges:
        out.append(f'    {edge.source} -> {edge.target} [label="{_dot_text(edge.label)}"];')
    if graph.globals:
        text = "".join(_dot_text(line) + "\\l" for line in ["Global commands", *graph.globals])
        out.append(
            f'    globals [shape=note, style=filled, fillcolor="#fffde7", label="{text}"];'
        )
    out.append("}")
    return "\n".join(out) + "\n"


# --- HTML --------------------------------------------------------------------------------------


def to_html(flow: Flow, graph: Graph | None = None) -> str:
    """A self-contained HTML page: inline SVG drawing, legend, Mermaid source. No network."""
    from ivr.flow import graph_svg  # here: graph_svg draws with this module's styles

    graph = graph or build_graph(flow)
    return graph_svg.render_page(graph, to_mermaid(flow, graph), flow.languages)


_FORMATS = {"mermaid": to_mermaid, "dot": to_dot, "html": to_html}
FORMATS = tuple(_FORMATS)


def render(flow: Flow, fmt: str) -> str:
    """``flow`` drawn in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in _FORMATS:
        raise ValueError(f"unknown graph format {fmt!r} (known: {', '.join(FORMATS)})")
    return _FORMATS[fmt](flow, None)

