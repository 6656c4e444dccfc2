"""A simple layered layout of a flow graph, for the HTML page's SVG (no Graphviz needed).

1. Rows: a depth-first walk from the start box cuts the arrows that close a loop (re-prompts,
   "anything else?" back to the main menu); every other box then goes one row under the lowest
   box that leads to it (longest path). Plain breadth-first depth was tried first: on the bank
   flow it put the shared "anything else?" menu high up and drew a dozen arrows climbing back
   to it; with longest-path rows the page reads top to bottom and only the real loops climb.
2. An arrow that skips rows gets a narrow invisible waypoint in every row it crosses, so it
   keeps a lane of its own instead of running through boxes (the usual Sugiyama trick).
3. Order within a row: discovery order, then barycenter sweeps (down, up, down) that pull each
   box under the mean x of its neighbours in the row above or below.
4. Rows are centred; arrows back up the flow are routed by the drawing (graph_svg) in lanes to
   the right of the rows they span.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.flow.graph import Graph, GraphEdge, GraphNode

BOX_W, SMALL_W, WAYPOINT_W = 230.0, 120.0, 14.0
LINE_H, PAD = 15.0, 9.0
GAP_X, GAP_Y, MARGIN, TOP = 30.0, 96.0, 20.0, 50.0
Rect = tuple[float, float, float, float]  # x, y, w, h


@dataclass(eq=False)
class Box:
    """A box in the drawing, or a waypoint of a long arrow (``node`` is None)."""

    key: str
    node: GraphNode | None
    row: int
    lines: list[str] = field(default_factory=list)
    x: float = 0.0
    y: float = 0.0
    w: float = BOX_W
    h: float = 0.0

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def rect(self) -> Rect:
        return (self.x, self.y, self.w, self.h)


@dataclass
class Route:
    """How one arrow runs: ``down`` through its waypoints, ``back`` up, ``same`` row or ``self``."""

    edge: GraphEdge
    kind: str
    waypoints: list[Box] = field(default_factory=list)


@dataclass
class Layout:
    rows: list[list[Box]]
    boxes: dict[str, Box]
    routes: list[Route]
    content_width: float = 0.0  # the widest row
    height: float = 0.0

    @property
    def width(self) -> float:
        return self.content_width + 2 * MARGIN

    def right_of(self, first_row: int, last_row: int) -> float:
        """The rightmost x of anything in rows ``first_row..last_row``."""
        rows = self.rows[min(first_row, last_row) : max(first_row, last_row) + 1]
        return max((b.x + b.w for row in rows for b in row), default=MARGIN)


def assign_rows(graph: Graph) -> dict[str, int]:
    """Row of every box: the longest path from the start once the loops are cut.

    A depth-first walk from the start (targets in their written order) marks the arrows that
    close a loop (retries, "anything else?" back to the menu); without them the graph has no
    cycle, and each box goes one row under the lowest box leading to it.
    """
    succ: dict[str, list[str]] = {}
    for edge in graph.edges:
        succ.setdefault(edge.source, []).append(edge.target)
    reachable = set(_loop_edges([graph.start], succ)[1]) if graph.start else set()
    loops, _seen = _loop_edges([graph.start, *(n.key for n in graph.nodes)], succ)
    preds: dict[str, list[str]] = {n.key: [] for n in graph.nodes}
    for edge in graph.edges:
        # an unreachable box (a flow error, still drawn) must not push reachable ones down
        orphan_in = edge.source not in reachable and edge.target in reachable
        if (edge.source, edge.target) not in loops and not orphan_in:
            preds[edge.target].append(edge.source)
    row: dict[str, int] = {}
    pending = [n.key for n in graph.nodes]
    while pending:  # Kahn-style: a box is placed once all its (non-loop) sources are
        ready = [k for k in pending if all(p in row for p in preds[k])] or pending
        for key in ready:
            row[key] = max((row[p] + 1 for p in preds[key] if p in row), default=0)
        pending = [k for k in pending if k not in row]
    below = max((row[k] for k in reachable), default=-1) + 1
    return {k: r if k in reachable or not reachable else r + below for k, r in row.items()}


def _loop_edges(
    roots: list[str], succ: dict[str, list[str]]
) -> tuple[set[tuple[str, str]], dict[str, int]]:
    """Arrows that go back to a box on the current depth-first path, and the boxes seen."""
    loops: set[tuple[str, str]] = set()
    state: dict[str, int] = {}  # 1 on the path, 2 done
    for root in roots:
        if root in state:
            continue
        stack = [(root, iter(succ.get(root, [])))]
        state[root] = 1
        while stack:
            key, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[key] = 2
                stack.pop()
            elif state.get(child) == 1:
                loops.add((key, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ.get(child, []))))
    return loops, state


def layout(graph: Graph, lines_of: Callable[[GraphNode, float], list[str]]) -> Layout:
    """Place every box; ``lines_of(node, width)`` gives the text lines of a box."""
    depth = assign_rows(graph)
    rows: list[list[Box]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    boxes: dict[str, Box] = {}
    for node in graph.nodes:
        width = SMALL_W if node.category in ("builtin", "missing") else BOX_W
        lines = lines_of(node, width)
        box = Box(node.key, node, depth[node.key], lines, w=width, h=2 * PAD + LINE_H * len(lines))
        rows[box.row].append(box)
        boxes[box.key] = box
    routes = [_route(edge, boxes, rows) for edge in graph.edges]
    result = Layout(rows, boxes, routes)
    _order(result)
    _place(result)
    return result


def _route(edge: GraphEdge, boxes: dict[str, Box], rows: list[list[Box]]) -> Route:
    src, dst = boxes[edge.source], boxes[edge.target]
    if src is dst:
        return Route(edge, "self")
    if src.row == dst.row:
        return Route(edge, "same")
    if src.row > dst.row:
        return Route(edge, "back")
    route = Route(edge, "down")
    for row in range(src.row + 1, dst.row):
        waypoint = Box(f"{edge.source}>{edge.target}@{row}", None, row, w=WAYPOINT_W)
        rows[row].append(waypoint)
        route.waypoints.append(waypoint)
    return route


def _chains(layout: Layout) -> list[tuple[Box, Box]]:
    """(upper, lower) pairs of every downward arrow segment, through the waypoints."""
    pairs: list[tuple[Box, Box]] = []
    for route in layout.routes:
        if route.kind == "down":
            chain = [layout.boxes[route.edge.source], *route.waypoints,
                     layout.boxes[route.edge.target]]
            pairs.extend(itertools.pairwise(chain))
    return pairs


def _order(layout: Layout) -> None:
    pairs = _chains(layout)
    above: dict[int, list[Box]] = {}
    below: dict[int, list[Box]] = {}
    for upper, lower in pairs:
        above.setdefault(id(lower), []).append(upper)
        below.setdefault(id(upper), []).append(lower)
    for sweep, neighbours in ((1, above), (-1, below), (1, above)):
        _place(layout)
        order = layout.rows[1:] if sweep == 1 else layout.rows[-2::-1]
        for row in order:
            def centre(box: Box, nb: dict[int, list[Box]] = neighbours) -> float:
                near = nb.get(id(box))
                return sum(b.cx for b in near) / len(near) if near else box.cx

            row.sort(key=centre)
            _place_row(row, layout)


def _place_row(row: list[Box], layout: Layout) -> None:
    width = sum(b.w for b in row) + GAP_X * max(len(row) - 1, 0)
    x = MARGIN + (layout.content_width - width) / 2
    for box in row:
        box.x = x
        x += box.w + GAP_X


def _place(layout: Layout) -> None:
    """x and y of every box; the width is that of the widest row."""
    widths = [sum(b.w for b in row) + GAP_X * max(len(row) - 1, 0) for row in layout.rows]
    layout.content_width = max(widths, default=BOX_W)
    y = MARGIN + TOP
    for row in layout.rows:
        _place_row(row, layout)
        height = max((b.h for b in row if b.node is not None), default=LINE_H)
        for box in row:
            box.y = y
            if box.node is None:
                box.h = height
        y += height + GAP_Y
    layout.height = y - GAP_Y + MARGIN
