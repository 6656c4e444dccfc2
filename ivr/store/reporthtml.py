"""The report as one self-contained HTML page: the managers' tables (the same cells as the text
report, :mod:`ivr.store.reporttables`), inline SVG charts drawn here, and the flow, queue and
agent tables as the text report prints them.

No script, no external fetch: the page's Content-Security-Policy forbids both, so it can be
mailed or opened from a share as it is. Every text in it is escaped (flow names, called numbers
and refusal reasons come from authors and callers).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ivr.store.managers import Figures, ManagerReport
from ivr.store.reporttables import Table, interval_name, manager_tables

CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
pre { background: #f8f8f8; padding: 1em; overflow-x: auto; }
svg { display: block; margin: 0.5em 0 1.5em; }
.legend span { display: inline-block; margin-right: 1.5em; }
.legend svg.swatch { display: inline; margin: 0; }
"""
COLOURS = {"answered": "#3b7dd8", "refused": "#d8573b", "answer rate": "#3b7dd8",
           "service level": "#2a9d5c", "CSAT": "#c48a00"}  # fmt: skip
WIDTH, HEIGHT, PAD = 720, 220, 40


def format_html(title: str, m: ManagerReport, detail_text: str) -> str:
    """The whole page. ``detail_text``: the text report's flow, queue and agent tables."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    tables = manager_tables(m)
    parts.append(_table(tables[0]))
    if m.intervals:
        name = interval_name(m.definitions.interval)
        parts.append(f"<h2>Calls per interval ({escape(name)}, UTC)</h2>")
        parts.append(calls_chart(m.intervals))
        parts.append(f"<h2>Rates per interval ({escape(name)}, UTC)</h2>")
        parts.append(rates_chart(m.intervals))
    parts += [_table(t) for t in tables[1:]]
    if m.include_qa:
        parts.append("<p>QA calls included (--include-qa)</p>")
    elif m.qa_left_out:
        parts.append(f"<p>QA calls left out: {m.qa_left_out} (--include-qa counts them)</p>")
    parts.append("<h2>Flows, nodes, queues and agents</h2>")
    parts.append(f'<pre data-table="detail">{escape(detail_text)}</pre>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
        for row in table.rows
    )
    return (f"<h2>{escape(table.title)}</h2><table data-table=\"{escape(table.key)}\">"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")  # fmt: skip


def _legend(names: Sequence[str]) -> str:
    # A class, not a style attribute: the console shows these charts under a CSP that
    # forbids inline styles (the page's own <style> gives the class its look).
    items = "".join(f'<span><svg class="swatch" width="12" height="12">'
                    f'<rect width="12" height="12" fill="{COLOURS[n]}"/></svg> {escape(n)}</span>'
                    for n in names)  # fmt: skip
    return f'<div class="legend">{items}</div>'


def _x_labels(labels: Sequence[str], step: float) -> str:
    # At most ~12 labels, or they run into each other.
    every = max(1, len(labels) // 12)
    return "".join(
        f'<text x="{PAD + step * (i + 0.5):.1f}" y="{HEIGHT - PAD + 14}" font-size="10" '
        f'text-anchor="middle">{escape(label[-5:] if " " in label else label)}</text>'
        for i, label in enumerate(labels) if i % every == 0
    )


def calls_chart(groups: Sequence[Figures]) -> str:
    """Stacked bars per interval: calls answered by the IVR and calls refused."""
    top = max((g.offered for g in groups), default=0) or 1
    step = (WIDTH - 2 * PAD) / max(1, len(groups))
    plot = HEIGHT - 2 * PAD
    bars = []
    for i, g in enumerate(groups):
        x = PAD + step * i + step * 0.1
        answered_h, refused_h = plot * g.answered / top, plot * g.refused / top
        base = HEIGHT - PAD
        bars.append(
            f'<rect x="{x:.1f}" y="{base - answered_h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{answered_h:.1f}" fill="{COLOURS["answered"]}">'
            f"<title>{escape(g.label)}: {g.answered} answered</title></rect>"
            f'<rect x="{x:.1f}" y="{base - answered_h - refused_h:.1f}" '
            f'width="{step * 0.8:.1f}" height="{refused_h:.1f}" fill="{COLOURS["refused"]}">'
            f"<title>{escape(g.label)}: {g.refused} refused</title></rect>"
        )
    axis = (f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
            f'stroke="#888"/><text x="{PAD - 4}" y="{PAD + 4}" font-size="10" '
            f'text-anchor="end">{top}</text>')  # fmt: skip
    return (_legend(["answered", "refused"]) +
            f'<svg data-chart="calls" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">{axis}{"".join(bars)}'
            f"{_x_labels([g.label for g in groups], step)}</svg>")  # fmt: skip


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """The runs of neighbouring values that are not None, with their positions."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, value in enumerate(values):
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, value))
    return [run for run in runs if run]


def rates_chart(groups: Sequence[Figures]) -> str:
    """Lines per interval, 0-100 %: answer rate, service level and CSAT (where measured)."""
    step = (WIDTH - 2 * PAD) / max(1, len(groups))
    plot = HEIGHT - 2 * PAD
    series = {
        "answer rate": [g.as_dict()["answer_rate"] if g.offered else None for g in groups],
        "service level": [g.as_dict()["service_level"] if g.queue_offered else None
                          for g in groups],
        "CSAT": [g.as_dict()["csat"] if g.csat_responses else None for g in groups],
    }  # fmt: skip
    lines = []
    for name, values in series.items():
        colour = COLOURS[name]
        # A line joins neighbouring intervals only: an interval without the figure breaks it
        # (a line across it would draw values nobody measured).
        for run in _runs(values):
            points = [(PAD + step * (i + 0.5), HEIGHT - PAD - plot * v) for i, v in run]
            if len(points) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
                lines.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                             f'stroke-width="2"/>')  # fmt: skip
            lines += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'
                      for x, y in points]  # fmt: skip
    grid = "".join(
        f'<line x1="{PAD}" y1="{HEIGHT - PAD - plot * f:.1f}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD - plot * f:.1f}" stroke="#ddd"/><text x="{PAD - 4}" '
        f'y="{HEIGHT - PAD - plot * f + 4:.1f}" font-size="10" text-anchor="end">'
        f"{int(f * 100)} %</text>"
        for f in (0.0, 0.5, 1.0)
    )
    return (_legend(list(series)) +
            f'<svg data-chart="rates" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">{grid}{"".join(lines)}'
            f"{_x_labels([g.label for g in groups], step)}</svg>")  # fmt: skip
