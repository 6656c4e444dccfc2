"""Horizontal stacked bar charts as inline SVG, for the console's report page.

Drawn here as text (no script, no library, nothing fetched): the console's
Content-Security-Policy allows neither inline styles nor scripts from elsewhere, so colours are
presentation attributes and every label is escaped (called numbers and flow names come from
callers and authors). A chart shows at most :data:`MAX_BARS` rows, the busiest; the table
beside it has them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#3b7dd8", "#d8573b", "#c48a00", "#2a9d5c", "#7b5ea7")
MAX_BARS = 20
WIDTH, ROW, LABEL, PAD = 720, 22, 150, 8


def legend(names: Sequence[str]) -> str:
    """Colour swatches with their names."""
    items = "".join(
        f'<span><svg class="swatch" width="12" height="12"><rect width="12" height="12" '
        f'fill="{PALETTE[i % len(PALETTE)]}"/></svg> {escape(name)}</span>'
        for i, name in enumerate(names))
    return f'<div class="legend">{items}</div>'


def bars_chart(key: str, rows: Sequence[tuple[str, Sequence[float]]],
               series: Sequence[str]) -> str:  # fmt: skip
    """One bar per row, its parts stacked in the order of ``series``, scaled to the longest.

    Args:
        key: Names the chart (``data-chart``).
        rows: (label, one value per series).
        series: The parts' names, for the legend and the bars' tooltips.
    """
    shown = sorted(rows, key=lambda r: -sum(r[1]))[:MAX_BARS]
    shown.sort(key=lambda r: r[0])
    top = max((sum(values) for _, values in shown), default=0) or 1
    plot = WIDTH - LABEL - 2 * PAD - 40
    height = PAD * 2 + ROW * max(1, len(shown))
    bars = []
    for n, (label, values) in enumerate(shown):
        y = PAD + n * ROW
        x = float(LABEL)
        text = escape(label if len(label) <= 22 else label[:21] + "…")
        bars.append(f'<text x="{LABEL - 6}" y="{y + ROW * 0.65:.1f}" font-size="11" '
                    f'text-anchor="end">{text}</text>')
        for i, value in enumerate(values):
            width = plot * value / top
            if width <= 0:
                continue
            bars.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="{ROW - 6}" '
                f'fill="{PALETTE[i % len(PALETTE)]}" data-series="{escape(series[i])}" '
                f'data-value="{value:g}"><title>{escape(label)}: {value:g} '
                f"{escape(series[i])}</title></rect>")  # fmt: skip
            x += width
        bars.append(f'<text x="{x + 4:.1f}" y="{y + ROW * 0.65:.1f}" font-size="11">'
                    f"{sum(values):g}</text>")
    more = len(rows) - len(shown)
    note = f"<p>The {MAX_BARS} busiest of {len(rows)}; the table has every one.</p>" if more else ""
    return (legend(series) + f'<svg data-chart="{escape(key)}" width="{WIDTH}" '
            f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">{"".join(bars)}</svg>'
            + note)
