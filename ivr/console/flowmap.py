"""The flow heat map: a flow drawn as a graph with a day's traffic on every node.

The boxes and arrows are the flow graph of ``ivr graph`` (:mod:`ivr.flow.graph`: every
``Node.targets()`` an arrow, the node traits its category), placed by the same layered layout
(:mod:`ivr.flow.graph_layout`, rows by longest path from the start once loops are cut) and its
arrows routed by the same drawing (:mod:`ivr.flow.graph_svg`); this module only draws the boxes
differently: filled with a heat colour for the chosen figure (visits, no-input, no-match or
hang-ups), a line of numbers under the prompt, a link (a sub-flow node opens its flow, any
other node its details), and what a search finds marked.

Everything from a flow (ids, prompt texts, conditions) is written through :func:`html.escape`:
flows are written by operators and are not trusted to be well-behaved HTML.
"""

from __future__ import annotations

import html
import itertools
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from ivr.flow.graph import GraphNode, build_graph, node_lines
from ivr.flow.graph_layout import LINE_H, PAD, Box, Layout, Route, layout
from ivr.flow.graph_svg import _Drawing, box_lines, fit
from ivr.flow.model import Flow, Node, Prompt, SubflowNode

# The figures a map can be coloured by: query value -> label.
METRICS = {"visits": "visits", "no_input": "no-input", "no_match": "no-match",
           "hangups": "hang-ups"}  # fmt: skip
# Heat scale stops (share of the busiest node -> colour): pale, yellow, orange, red.
_STOPS = ((0.0, (255, 247, 214)), (0.35, (254, 217, 118)), (0.7, (253, 141, 60)),
          (1.0, (200, 30, 40)))  # fmt: skip
_IDLE = "#f1f3f5"  # no traffic at all
MAX_FIND = 100  # characters of a search
Branches = Mapping[tuple[str, str], int]  # (node id, target) -> times the branch was taken


@dataclass(frozen=True)
class Traffic:
    """One node's figures for the period (those of ``ivr report``'s per-node table)."""

    visits: int = 0
    calls: int = 0
    no_input: int = 0
    no_match: int = 0
    ended: int = 0
    hangups: int = 0  # calls the caller hung up at this node (outcome abandoned)

    def value(self, metric: str) -> int:
        return int(getattr(self, metric))

    def line(self) -> str:
        return (f"{self.visits} in · {self.no_input} NI · {self.no_match} NM · "
                f"{self.hangups} hung up")  # fmt: skip


def heat_colour(share: float) -> str:
    """The fill for ``share`` (0..1) of the busiest node's figure."""
    share = min(max(share, 0.0), 1.0)
    for (a, ca), (b, cb) in itertools.pairwise(_STOPS):
        if share <= b:
            f = (share - a) / (b - a)
            rgb = [round(x + (y - x) * f) for x, y in zip(ca, cb, strict=True)]
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#c81e28"


def prompt_texts(node: Node) -> list[tuple[str, dict[str, str]]]:
    """Every prompt a node may play as (prompt id, language -> text), parts joined."""
    out = []
    for prompt in _node_prompts(node):
        texts: dict[str, list[str]] = {}
        for part in prompt.parts:
            for lang, text in part.text.items():
                texts.setdefault(lang, []).append(text)
            if part.audio and not part.text:
                texts.setdefault("audio", []).append(f"[{part.audio}]")
        out.append((prompt.id, {lang: " ".join(t) for lang, t in texts.items()}))
    return out


def _node_prompts(node: Node) -> list[Prompt]:
    prompts = node.prompts()
    own = getattr(node, "prompt", None)  # a transfer's or hang-up's optional prompt
    if isinstance(own, Prompt) and own not in prompts:
        prompts.insert(0, own)
    return prompts


def search_text(node: Node) -> str:
    """What a search looks in: the id and every prompt's text in every language, lower case."""
    words = [node.id] + [t for _id, texts in prompt_texts(node) for t in texts.values()]
    return " ".join(" ".join(words).split()).lower()


def node_href(flow: Flow, node_id: str) -> str:
    """Where a click on a node goes: a sub-flow's own map, else the node's details."""
    node = flow.nodes.get(node_id)
    if isinstance(node, SubflowNode):
        return "/flows/" + urllib.parse.quote(node.flow, safe="")
    return "#n-" + urllib.parse.quote(node_id, safe="")


class _HeatDrawing(_Drawing):
    """The flow drawing of ``ivr graph``, with heat-coloured boxes that link somewhere."""

    def __init__(self, flow: Flow, placed: Layout, traffic: Mapping[str, Traffic], metric: str,
                 found: set[str], branches: Branches, now: Mapping[str, int]) -> None:  # fmt: skip
        super().__init__(placed)
        self.now = now
        self.flow = flow
        self.traffic = traffic
        self.metric = metric
        self.found = found
        self.top = max((t.value(metric) for t in traffic.values()), default=0)
        self.branches = branches
        self.top_branch = max(branches.values(), default=0)

    def _path(self, d: str, route: Route, cls: str, spots: Sequence[tuple[float, float]]) -> None:
        """An arrow as the plain drawing has it, thicker the more calls took it, its label
        led by that count (``12× choice 1``)."""
        source, target = self.boxes[route.edge.source].node, self.boxes[route.edge.target].node
        count = self.branches.get((source.id, target.id), 0) if source and target else 0
        if count:
            route = replace(route, edge=replace(route.edge, label=f"{count}× {route.edge.label}"))
            cls += f" taken w{1 + round(4 * count / self.top_branch)}"
        super()._path(d, route, cls, spots)
        if count:  # an arrowhead of its own size: the plain one grows with the stroke
            arrow = next(i for i in range(len(self.parts) - 1, -1, -1)
                         if self.parts[i].startswith("<path"))  # fmt: skip
            self.parts[arrow] = self.parts[arrow].replace('"url(#arrow)"', '"url(#arrow-taken)"')

    def box(self, box: Box, is_start: bool) -> None:
        node = box.node
        if node is None:
            return
        if node.category in ("builtin", "missing"):
            super().box(box, is_start)
            return
        self.parts.append(self._heat_box(box, node))
        if is_start:  # a short arrow from nowhere, as the plain drawing has
            x = box.x + 14
            self.parts.append(f'<path class="edge" d="M{x:.1f},{box.y - 30:.1f} '
                              f'L{x:.1f},{box.y:.1f}" marker-end="url(#arrow)"/>')

    def _heat_box(self, box: Box, node: GraphNode) -> str:
        traffic = self.traffic.get(node.id, Traffic())
        value = traffic.value(self.metric)
        share = value / self.top if self.top else 0.0
        fill = heat_colour(share) if traffic.visits else _IDLE
        dark = share > 0.8
        flow_node = self.flow.nodes[node.id]
        classes = ["node", "heat", node.category] + (["found"] if node.id in self.found else [])
        if dark:
            classes.append("dark")
        tip = "\n".join([*node_lines(node), traffic.line(),
                         *(f"{pid} [{lang}]: {text}" for pid, texts in prompt_texts(flow_node)
                           for lang, text in texts.items())])  # fmt: skip
        attrs = {"class": " ".join(classes), "id": f"node-{node.key}", "data-node": node.id,
                 "data-kind": node.kind, "data-visits": str(traffic.visits),
                 "data-no-input": str(traffic.no_input), "data-no-match": str(traffic.no_match),
                 "data-hangups": str(traffic.hangups), "data-find": search_text(flow_node)}
        attr_text = " ".join(f'{k}="{html.escape(v)}"' for k, v in attrs.items())
        stroke = "#0b5394" if node.category == "start" else "#455a64"
        width = 2.2 if node.category in ("start", "terminal") else 1.2
        radius = box.h / 2 if node.category == "terminal" else 6
        out = [f'<a href="{html.escape(node_href(self.flow, node.id))}">',
               f"<g {attr_text}><title>{html.escape(tip)}</title>",
               f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
               f'rx="{min(radius, 18):.1f}" fill="{fill}" stroke="{stroke}" '
               f'stroke-width="{width}"/>']  # fmt: skip
        lines = box.lines
        for i, line in enumerate(lines):
            cls = ("id", "kind")[i] if i < 2 else "prompt"
            if i == len(lines) - 1:
                cls = "figures"
            y = box.y + PAD + LINE_H * (i + 1) - 4
            out.append(f'<text class="{cls}" x="{box.cx:.1f}" y="{y:.1f}">'
                       f"{html.escape(line)}</text>")  # fmt: skip
        calls_now = self.now.get(node.id, 0)
        if calls_now:  # a badge on the corner: calls at this node right now
            x, y = box.x + box.w - 4, box.y + 4
            out.append(f'<g class="now" data-now="{calls_now}"><title>{calls_now} call(s) here '
                       f'now</title><circle cx="{x:.1f}" cy="{y:.1f}" r="11" fill="#2b6cb0" '
                       f'stroke="#fff" stroke-width="2"/><text x="{x:.1f}" y="{y + 4:.1f}">'
                       f"{calls_now}</text></g>")  # fmt: skip
        out.append("</g></a>")
        return "".join(out)


def _lines(traffic: Mapping[str, Traffic]) -> Callable[[GraphNode, float], list[str]]:
    def lines_of(node: GraphNode, width: float) -> list[str]:
        lines = box_lines(node, width)
        if node.category in ("builtin", "missing"):
            return lines
        return [*lines, fit(traffic.get(node.id, Traffic()).line(), width - 2 * PAD)]

    return lines_of


def found_nodes(flow: Flow, find: str) -> set[str]:
    """Ids of the nodes whose id or prompt text (any language) holds ``find`` (case folded)."""
    needle = " ".join(find[:MAX_FIND].split()).lower()
    if not needle:
        return set()
    return {node_id for node_id, node in flow.nodes.items() if needle in search_text(node)}


def heat_svg(flow: Flow, traffic: Mapping[str, Traffic], metric: str = "visits",
             find: str = "", branches: Branches | None = None,
             now: Mapping[str, int] | None = None) -> str:  # fmt: skip
    """The flow as an ``<svg>`` heat map of ``metric`` (a key of :data:`METRICS`); arrows
    carry how often their branch was taken (``branches``), nodes the calls at them ``now``."""
    if metric not in METRICS:
        raise ValueError(f"unknown figure {metric!r}")
    graph = build_graph(flow)
    placed = layout(graph, _lines(traffic))
    drawing = _HeatDrawing(flow, placed, traffic, metric, found_nodes(flow, find), branches or {},
                           now or {})
    drawing.arrows(placed.routes)
    for row in placed.rows:
        for box in row:
            drawing.box(box, box.key == graph.start)
    width, height = drawing.right, drawing.bottom
    defs = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            'fill="#546e7a"/></marker><marker id="arrow-taken" viewBox="0 0 10 10" refX="9" '
            'refY="5" markerWidth="13" markerHeight="13" markerUnits="userSpaceOnUse" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#37474f"/></marker>'
            "</defs>")  # fmt: skip
    return (f'<svg id="map" role="img" aria-label="flow {html.escape(flow.id)}" '
            f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'data-width="{width:.0f}" data-height="{height:.0f}">{defs}\n'
            + "\n".join(drawing.parts) + "\n</svg>")  # fmt: skip
