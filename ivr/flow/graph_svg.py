"""The HTML page of a flow graph: an inline SVG drawn here, with no script and no network.

The boxes are placed by :mod:`ivr.flow.graph_layout`. Arrows going down are S-curves from the
bottom of one box to the top of the other (through the waypoints of a long arrow), spread along
the box edges in the order of their far ends so that they do not cross at the box. Arrows going
back up (retries, "anything else?" loops) are dashed: they drop into the gap under their box,
run right to a lane of their own beside the rows they span, climb, and come into the top of
their target. Labels sit on their arrow near its start, where they overlap no box and no other
label if such a place exists.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence

from ivr.flow.graph import LEGEND, STYLES, Graph, GraphNode, node_lines
from ivr.flow.graph_layout import GAP_Y, LINE_H, MARGIN, PAD, Box, Layout, Rect, Route, layout

FONT = 11.0
LABEL_CHARS = 34
Point = tuple[float, float]


def text_width(text: str, size: float = FONT) -> float:
    """Estimated width in px: wide (CJK) characters count one em, others a little over half."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size * 0.6 for c in text)


def fit(text: str, width: float, size: float = FONT) -> str:
    """``text`` trimmed with an ellipsis to ``width`` px."""
    if text_width(text, size) <= width:
        return text
    while text and text_width(text + "…", size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def wrap(text: str, width: float, max_lines: int) -> list[str]:
    """Greedy word wrap (character wrap for text without spaces, such as Chinese)."""
    lines: list[str] = []
    current = ""
    for i, ch in enumerate(text):
        if text_width(current + ch) <= width:
            current += ch
            continue
        cut = current.rfind(" ")
        if ch != " " and cut > 0:
            lines.append(current[:cut])
            current = current[cut + 1 :] + ch
        else:
            lines.append(current)
            current = ch.strip()
        if len(lines) == max_lines:
            rest = current + text[i + 1 :]
            if rest.strip():
                lines[-1] = fit(f"{lines[-1]} {rest}", width)
            return [line.strip() for line in lines]
    if current.strip():
        lines.append(current)
    return [line.strip() for line in lines]


def box_lines(node: GraphNode, width: float) -> list[str]:
    """The text lines of a box ``width`` px wide: id, type and detail, up to two prompt lines."""
    lines = node_lines(node)
    head = [fit(line, width - 2 * PAD) for line in lines[:2]]
    prompt = wrap(lines[2], width - 2 * PAD, 2) if len(lines) > 2 else []
    return head + prompt


# --- drawing -----------------------------------------------------------------------------------


def _bezier(p: Sequence[Point], t: float) -> Point:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = p
    u = 1 - t
    a, b, c, d = u**3, 3 * u * u * t, 3 * u * t * t, t**3
    return (a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3)


def overlaps(a: Rect, b: Rect) -> bool:
    """True if two rectangles (x, y, w, h) overlap."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _s_curve(a: Point, b: Point) -> tuple[Point, Point, Point, Point]:
    bend = max(24.0, (b[1] - a[1]) / 2)
    return (a, (a[0], a[1] + bend), (b[0], b[1] - bend), b)


def _rounded(points: Sequence[Point], radius: float = 8.0) -> str:
    """An SVG path through ``points`` with rounded corners."""
    d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
    for prev, cur, nxt in zip(points, points[1:], points[2:], strict=False):
        ends = []
        for other in (prev, nxt):
            dx, dy = other[0] - cur[0], other[1] - cur[1]
            length = max(abs(dx) + abs(dy), 1e-9)  # segments are horizontal or vertical
            r = min(radius, length / 2)
            ends.append((cur[0] + dx / length * r, cur[1] + dy / length * r))
        d.append(f"L{ends[0][0]:.1f},{ends[0][1]:.1f} Q{cur[0]:.1f},{cur[1]:.1f} "
                 f"{ends[1][0]:.1f},{ends[1][1]:.1f}")
    d.append(f"L{points[-1][0]:.1f},{points[-1][1]:.1f}")
    return " ".join(d)


class _Drawing:
    """Builds the SVG elements, remembering where labels already sit."""

    def __init__(self, placed: Layout) -> None:
        self.layout = placed
        self.boxes = placed.boxes
        self.taken: list[Rect] = [b.rect for b in self.boxes.values() if b.node is not None]
        self.parts: list[str] = []
        self.right = placed.width
        self.bottom = placed.height
        self.lanes = 0  # back arrows drawn so far: each gets its own lane and gap offsets

    def arrows(self, routes: Sequence[Route]) -> None:
        far: dict[int, tuple[float, float]] = {}  # route id -> x of the far end seen from each end
        lane_of: dict[int, float] = {}
        for route in routes:
            src, dst = self.boxes[route.edge.source], self.boxes[route.edge.target]
            if route.kind == "back":
                lane_of[id(route)] = self.layout.right_of(dst.row, src.row) + 16 + 13 * self.lanes
                self.lanes += 1
                far[id(route)] = (lane_of[id(route)], lane_of[id(route)])
            elif route.kind == "down":
                first = route.waypoints[0] if route.waypoints else dst
                last = route.waypoints[-1] if route.waypoints else src
                far[id(route)] = (first.cx, last.cx)
        out_x = self._slots(routes, far, "source", 0)
        in_x = self._slots([r for r in routes if r.kind != "same"], far, "target", 1)
        for i, route in enumerate(routes):
            if route.kind == "down":
                self._down(route, out_x[id(route)], in_x[id(route)])
            elif route.kind == "back":
                self._back(route, out_x[id(route)], in_x[id(route)], lane_of[id(route)], i)
            elif route.kind == "same":
                self._same(route, out_x[id(route)], i)
            else:
                self._loop(route)

    def _slots(
        self, routes: Sequence[Route], far: dict[int, tuple[float, float]], end: str, side: int
    ) -> dict[int, float]:
        """x of each arrow's end on a box edge, spread in the order of the arrows' far ends."""
        groups: dict[str, list[Route]] = {}
        for route in routes:
            if route.kind != "self":
                groups.setdefault(getattr(route.edge, end), []).append(route)
        slots: dict[int, float] = {}
        for key, group in groups.items():
            box = self.boxes[key]
            other = "target" if end == "source" else "source"
            group.sort(key=lambda r: far.get(id(r), (self.boxes[getattr(r.edge, other)].cx,) * 2)
                       [side])
            for i, route in enumerate(group):
                slots[id(route)] = box.x + box.w * (i + 1) / (len(group) + 1)
        return slots

    def _down(self, route: Route, x1: float, x2: float) -> None:
        src, dst = self.boxes[route.edge.source], self.boxes[route.edge.target]
        stops = [(x1, src.bottom)]
        for wp in route.waypoints:
            stops += [(wp.cx, wp.y), (wp.cx, wp.bottom)]
        stops.append((x2, dst.y))
        d = [f"M{x1:.1f},{src.bottom:.1f}"]
        curves = []
        for i in range(0, len(stops), 2):
            curve = _s_curve(stops[i], stops[i + 1])
            curves.append(curve)
            d.append("C" + " ".join(f"{x:.1f},{y:.1f}" for x, y in curve[1:]))
            if i + 2 < len(stops):
                d.append(f"L{stops[i + 2][0]:.1f},{stops[i + 2][1]:.1f}")
        first = curves[0]
        spots = [_bezier(first, t) for t in (0.3, 0.45, 0.2, 0.6, 0.12, 0.75)]
        self._path(" ".join(d), route, "down", spots)

    def _back(self, route: Route, x1: float, x2: float, lane: float, index: int) -> None:
        src, dst = self.boxes[route.edge.source], self.boxes[route.edge.target]
        drop = src.bottom + 14 + (index * 9) % (GAP_Y - 40)
        rise = dst.y - 14 - (index * 9) % (GAP_Y - 40)
        points = [(x1, src.bottom), (x1, drop), (lane, drop), (lane, rise), (x2, rise), (x2, dst.y)]
        self.right = max(self.right, lane + MARGIN)
        self.bottom = max(self.bottom, drop + MARGIN)
        spots = [(x1 + (lane - x1) * f, drop) for f in (0.25, 0.45, 0.65, 0.1, 0.85)]
        spots += [(lane, rise + (drop - rise) * f) for f in (0.5, 0.3, 0.7)]
        self._path(_rounded(points), route, "back", spots)

    def _same(self, route: Route, x1: float, index: int) -> None:
        src, dst = self.boxes[route.edge.source], self.boxes[route.edge.target]
        drop = src.bottom + 14 + (index * 9) % (GAP_Y - 40)
        x2 = dst.cx + (10 if dst.x > src.x else -10)
        points = [(x1, src.bottom), (x1, drop), (x2, drop), (x2, dst.bottom)]
        self.bottom = max(self.bottom, drop + MARGIN)
        spots = [(x1 + (x2 - x1) * f, drop) for f in (0.5, 0.3, 0.7)]
        self._path(_rounded(points), route, "back", spots)

    def _loop(self, route: Route) -> None:
        box = self.boxes[route.edge.source]
        x, y = box.x + box.w, box.y + box.h / 2
        curve = ((x, y - 8), (x + 45, y - 34), (x + 45, y + 34), (x, y + 8))
        d = f"M{x:.1f},{y - 8:.1f} C" + " ".join(f"{a:.1f},{b:.1f}" for a, b in curve[1:])
        self.right = max(self.right, x + 45 + MARGIN)
        self._path(d, route, "back", [(x + 40, y)])

    def _path(self, d: str, route: Route, cls: str, spots: Sequence[Point]) -> None:
        title = html.escape(route.edge.label)
        self.parts.append(
            f'<path class="edge {cls}" d="{d}" marker-end="url(#arrow)"><title>{title}</title>'
            "</path>"
        )
        text = fit(route.edge.label, text_width("x" * LABEL_CHARS, 10), 10)
        w, h = text_width(text, 10) + 8, 14.0
        rects = [(x - w / 2, y - h / 2, w, h) for x, y in spots]
        rect = next((r for r in rects if not any(overlaps(r, t) for t in self.taken)), rects[0])
        self.taken.append(rect)
        x, y, w, h = rect
        self.right = max(self.right, x + w + MARGIN)
        self.bottom = max(self.bottom, y + h + MARGIN)
        self.parts.append(
            f'<g class="label"><title>{title}</title><rect x="{x:.1f}" y="{y:.1f}" '
            f'width="{w:.1f}" height="{h:.1f}" rx="3"/><text x="{x + w / 2:.1f}" '
            f'y="{y + h - 3.5:.1f}">{html.escape(text)}</text></g>'
        )

    def box(self, box: Box, is_start: bool) -> None:
        node = box.node
        if node is None:
            return
        fill, stroke, dashed = STYLES[node.category]
        radius = box.h / 2 if node.category in ("builtin", "terminal") else 6
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        width = 2.2 if node.category in ("start", "terminal") else 1.2
        tip = html.escape("\n".join(node_lines(node)))
        out = [
            f'<g class="node {node.category}" id="node-{node.key}"><title>{tip}</title>',
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
            f'rx="{radius:.1f}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>',
        ]
        for i, line in enumerate(box.lines):
            cls = ("id", "kind")[i] if i < 2 else "prompt"
            y = box.y + PAD + LINE_H * (i + 1) - 4
            text = html.escape(line)
            out.append(f'<text class="{cls}" x="{box.cx:.1f}" y="{y:.1f}">{text}</text>')
        out.append("</g>")
        self.parts.extend(out)
        if is_start:  # a short arrow from nowhere, left of where arrows come in
            x = box.x + 14
            self.parts.append(
                f'<path class="edge" d="M{x:.1f},{box.y - 30:.1f} L{x:.1f},{box.y:.1f}" '
                'marker-end="url(#arrow)"/>'
            )


def render_svg(graph: Graph) -> str:
    """The flow as an ``<svg>`` element (no namespace URL: HTML5 parsers supply it)."""
    placed = layout(graph, box_lines)
    drawing = _Drawing(placed)
    drawing.arrows(placed.routes)
    for row in placed.rows:
        for box in row:
            drawing.box(box, box.key == graph.start)
    width, height = drawing.right, drawing.bottom
    defs = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#546e7a"/></marker></defs>'
    )
    return (
        f'<svg role="img" aria-label="flow {html.escape(graph.flow_id)}" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">{defs}\n'
        + "\n".join(drawing.parts)
        + "\n</svg>"
    )


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans", "Noto Sans CJK SC",
       sans-serif; margin: 20px; color: #212121; background: #fafafa; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.meta { margin: 0 0 12px; color: #546e7a; font-size: 13px; }
.panel { display: flex; flex-wrap: wrap; gap: 28px; margin-bottom: 12px; font-size: 12px; }
.panel h2 { font-size: 13px; margin: 0 0 4px; }
.panel ul { list-style: none; margin: 0; padding: 0; }
.panel li { margin: 2px 0; }
.sw { display: inline-block; width: 22px; height: 12px; border: 1.5px solid; border-radius: 3px;
      vertical-align: middle; margin-right: 6px; }
.sw.dashed { border-style: dashed; }
.diagram { overflow: auto; background: #fff; border: 1px solid #cfd8dc; border-radius: 6px; }
svg text { font-size: 11px; text-anchor: middle; fill: #263238; }
svg text.id { font-weight: 700; font-size: 12px; }
svg text.kind { fill: #546e7a; }
svg text.prompt { font-style: italic; }
svg path.edge { fill: none; stroke: #546e7a; stroke-width: 1.3; }
svg path.edge.back { stroke-dasharray: 6 4; stroke: #78909c; }
svg g.label rect { fill: #ffffff; fill-opacity: 0.92; stroke: #cfd8dc; stroke-width: 0.6; }
svg g.label text { font-size: 10px; fill: #37474f; }
details { margin-top: 14px; font-size: 12px; }
pre { background: #eceff1; padding: 10px; overflow: auto; }
"""


def _legend() -> str:
    items = []
    for category, text in LEGEND.items():
        fill, stroke, dashed = STYLES[category]
        cls = "sw dashed" if dashed else "sw"
        items.append(
            f'<li><span class="{cls}" style="background:{fill};border-color:{stroke}"></span>'
            f"{html.escape(text)}</li>"
        )
    items.append("<li>— solid arrow: onward; - - dashed arrow: back up the flow</li>")
    return "<div><h2>Legend</h2><ul>" + "".join(items) + "</ul></div>"


def render_page(graph: Graph, mermaid: str, languages: Sequence[str]) -> str:
    """The whole HTML document for ``graph``; ``mermaid`` goes in a collapsed section."""
    title = html.escape(graph.flow_id)
    meta = [f"{len([n for n in graph.nodes if n.kind not in ('builtin', 'missing')])} nodes"]
    meta.append(f"languages: {', '.join(languages)}")
    if graph.description:
        meta.insert(0, graph.description)
    panels = [_legend()]
    if graph.globals:
        lines = "".join(f"<li>{html.escape(g)}</li>" for g in graph.globals)
        panels.append(f"<div><h2>Global commands</h2><ul>{lines}</ul></div>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Flow {title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>Flow {title}</h1>\n<p class=\"meta\">{html.escape(' · '.join(meta))}</p>\n"
        f'<div class="panel">{"".join(panels)}</div>\n'
        f'<div class="diagram">\n{render_svg(graph)}\n</div>\n'
        "<details><summary>Mermaid source</summary>\n"
        f"<pre>{html.escape(mermaid)}</pre>\n</details>\n</body>\n</html>\n"
    )
