"""The HTML of the flow heat map, the flow list, the call list and a call's timeline.

Built here as text (no template engine): every value from a flow, a call record or a request
goes through :func:`e` (``html.escape``, quotes included) or, in a URL, :func:`u`. The pages
carry no inline script or style (the console's Content-Security-Policy forbids both); the
SVG's colours are presentation attributes, which that policy allows. Without JavaScript they
still work: a node's details open by ``:target``, searching and the day are plain GET forms;
the scripts (``flowmap.js``) add zoom and search as you type.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from ivr.console.flowmap import (
    METRICS,
    Branches,
    Traffic,
    found_nodes,
    heat_colour,
    heat_svg,
    node_href,
    prompt_texts,
)
from ivr.console.timeline import Row, when
from ivr.flow.model import Flow, SubflowNode


def e(value: object) -> str:
    """``value`` as HTML text or attribute value."""
    return html.escape(str(value), quote=True)


def u(value: object) -> str:
    """``value`` as one URL path segment (escaped for an attribute too)."""
    return e(urllib.parse.quote(str(value), safe=""))


def page(title: str, body: str, scripts: Sequence[str] = (), wide: bool = False,
         refresh: int = 0) -> str:  # fmt: skip
    """A console page with the navigation bar (reloaded every ``refresh`` seconds if > 0)."""
    tags = "".join(f'<script src="/static/{e(s)}" defer></script>' for s in scripts)
    if refresh > 0:  # a meta refresh is no script: the Content-Security-Policy allows it
        tags += f'<meta http-equiv="refresh" content="{int(refresh)}">'
    cls = ' class="wide"' if wide else ""
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{e(title)}</title>"
            '<link rel="stylesheet" href="/static/console.css">'
            f'<link rel="stylesheet" href="/static/explore.css">{tags}</head>\n'
            f"<body{cls}><header><h1>{e(title)}</h1><nav>"
            '<a href="/">Wallboard</a> <a href="/flows">Flows</a> <a href="/calls">Calls</a>'
            f"</nav></header>\n{body}\n</body></html>\n")  # fmt: skip


def query(**params: object) -> str:
    """A query string of the non-empty ``params``."""
    kept = {k: "1" if v is True else v for k, v in params.items() if v not in ("", None, False)}
    return e("?" + urllib.parse.urlencode(kept))


# --- flows ------------------------------------------------------------------------------------


def flows_index(flows: Mapping[str, Flow], calls: Mapping[str, int], day: str, qa: bool,
                errors: int) -> str:  # fmt: skip
    rows = []
    for flow_id in sorted(flows):
        flow = flows[flow_id]
        rows.append(f'<tr data-flow="{e(flow_id)}"><td><a href="/flows/{u(flow_id)}'
                    f'{query(day=day, qa=qa)}">{e(flow_id)}</a></td><td>{e(flow.description)}</td>'
                    f'<td class="num">{len(flow.nodes)}</td>'
                    f'<td class="num">{calls.get(flow_id, 0)}</td></tr>')  # fmt: skip
    body = (f"{_flow_errors(errors)}<section><h2>Flows · calls started {e(day)}"
            f"{' (QA calls included)' if qa else ''}</h2><table id=\"flows\"><thead><tr>"
            "<th>Flow</th><th>Description</th><th>Nodes</th><th>Calls</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></section>")  # fmt: skip
    return page("Flows", f"<main class=\"single\">{body}</main>")


def _flow_errors(errors: int) -> str:
    if not errors:
        return ""
    return (f'<p class="warning">The flows folder has {errors} error(s) now: the map shows the '
            "last good version, which the server keeps answering with.</p>")  # fmt: skip


def flow_page(flow: Flow, traffic: Mapping[str, Traffic], *, day: str, metric: str, qa: bool,
              find: str, errors: int, branches: Branches | None = None,
              now: Mapping[str, int] | None = None) -> str:  # fmt: skip
    """The heat map page of ``flow``."""
    toolbar = _toolbar(flow, day, metric, qa, find)
    svg = heat_svg(flow, traffic, metric, find, branches, now)
    found = found_nodes(flow, find)
    found_note = ""
    if find:
        names = ", ".join(f'<a href="{e(node_href(flow, n))}">{e(n)}</a>' for n in sorted(found))
        found_note = (f'<p id="found">{len(found)} node(s) match “{e(find[:100])}”'
                      f"{': ' + names if names else ''}</p>")  # fmt: skip
    details = "".join(_node_detail(flow, node_id, traffic.get(node_id, Traffic()))
                      for node_id in flow.nodes)  # fmt: skip
    body = (f"{_flow_errors(errors)}{toolbar}{found_note}<div class=\"flowmap\">"
            f'<div class="map-wrap" id="map-wrap">{svg}</div>'
            '<aside class="details"><p class="hint">Click a node for its figures, prompts '
            f"(every language) and ways out; a sub-flow node opens its flow.</p>{details}"
            f"</aside></div>{_legend(traffic, metric)}{_gone(flow, traffic)}")  # fmt: skip
    return page(f"Flow {flow.id}", body, ["flowmap.js"], wide=True)


def _toolbar(flow: Flow, day: str, metric: str, qa: bool, find: str) -> str:
    options = "".join(f'<option value="{e(k)}"{" selected" if k == metric else ""}>{e(v)}'
                      "</option>" for k, v in METRICS.items())  # fmt: skip
    checked = " checked" if qa else ""
    return (f'<form class="toolbar" method="get" action="/flows/{u(flow.id)}">'
            f'<label>Day <input type="date" name="day" value="{e(day)}"></label>'
            f'<label>Colour by <select name="by">{options}</select></label>'
            f'<label><input type="checkbox" name="qa" value="1"{checked}> QA calls too</label>'
            f'<label>Find <input type="search" id="find" name="find" value="{e(find)}" '
            'placeholder="node id or prompt text" maxlength="100"></label>'
            '<button type="submit">Show</button>'
            '<span class="zoom"><button type="button" id="zoom-out" title="zoom out">−</button>'
            '<button type="button" id="zoom-fit" title="fit">fit</button>'
            '<button type="button" id="zoom-in" title="zoom in">+</button></span>'
            f"<span class=\"meta\">{e(flow.description)}</span></form>")  # fmt: skip


def _node_detail(flow: Flow, node_id: str, traffic: Traffic) -> str:
    node = flow.nodes[node_id]
    rate = (lambda n: f" ({n / traffic.visits:.0%} of visits)") if traffic.visits else \
        (lambda n: "")  # fmt: skip
    figures = (f"<dl><dt>visits</dt><dd>{traffic.visits}</dd><dt>calls</dt>"
               f"<dd>{traffic.calls}</dd><dt>no-input</dt><dd>{traffic.no_input}"
               f"{rate(traffic.no_input)}</dd><dt>no-match</dt><dd>{traffic.no_match}"
               f"{rate(traffic.no_match)}</dd><dt>calls ended here</dt><dd>{traffic.ended}</dd>"
               f"<dt>hung up here</dt><dd>{traffic.hangups}</dd></dl>")  # fmt: skip
    prompts = []
    for prompt_id, texts in prompt_texts(node):
        langs = "".join(f'<li><b lang="{e(lang)}">{e(lang)}</b> <span lang="{e(lang)}">'
                        f"{e(text)}</span></li>" for lang, text in texts.items())  # fmt: skip
        prompts.append(f"<li><code>{e(prompt_id)}</code><ul>{langs}</ul></li>")
    ways = "".join(f'<li>{e(label)} → <a href="{e(node_href(flow, target))}">{e(target)}</a>'
                   "</li>" if target in flow.nodes else f"<li>{e(label)} → {e(target)}</li>"
                   for label, target, _pos in node.targets())  # fmt: skip
    sub = ""
    if isinstance(node, SubflowNode):
        sub = f'<p>Runs the flow <a href="/flows/{u(node.flow)}">{e(node.flow)}</a>.</p>'
    return (f'<section class="detail" id="n-{e(node_id)}"><h2>{e(node_id)} '
            f"<small>{e(node.kind)}</small></h2>{sub}{figures}"
            + (f"<h3>Prompts</h3><ul class=\"prompts\">{''.join(prompts)}</ul>" if prompts else "")
            + (f"<h3>Ways out</h3><ul>{ways}</ul>" if ways else "")
            + "</section>")  # fmt: skip


def _legend(traffic: Mapping[str, Traffic], metric: str) -> str:
    top = max((t.value(metric) for t in traffic.values()), default=0)
    steps = "".join(f'<span class="swatch" title="{round(top * s)}">'
                    f'<svg width="28" height="14"><rect width="28" height="14" '
                    f'fill="{heat_colour(s)}"/></svg></span>' for s in (0.0, 0.25, 0.5, 0.75, 1.0))
    return (f'<p class="legend">Colour: {e(METRICS[metric])}, 0 {steps} {top} (the busiest '
            "node); grey: no visits. Numbers on a node: visits · NI no-input · NM no-match · "
            "callers who hung up there. On an arrow: the calls that took it (thicker: more). "
            "A blue badge: calls at that node now."
            "</p>")  # fmt: skip


def _gone(flow: Flow, traffic: Mapping[str, Traffic]) -> str:
    gone = sorted(n for n in traffic if n not in flow.nodes)
    if not gone:
        return ""
    items = "".join(f"<li>{e(n)}: {e(traffic[n].line())}</li>" for n in gone)
    return (f"<section><h2>Nodes in the records, no longer in the flow</h2><ul>{items}</ul>"
            "</section>")


# --- calls ------------------------------------------------------------------------------------


def call_list(calls: Sequence[Mapping[str, Any]], form: Mapping[str, str],
              outcomes: Sequence[str]) -> str:  # fmt: skip
    """The call search form and its results."""
    options = "".join(f'<option value="{e(o)}"{" selected" if o == form.get("outcome") else ""}>'
                      f"{e(o)}</option>" for o in ["", *outcomes])  # fmt: skip
    rows = "".join(_call_row(c) for c in calls) or '<tr><td colspan="8">no calls</td></tr>'
    body = ('<main class="single"><section><form class="toolbar" method="get" action="/calls">'
            f'<label>Caller, number or call id <input type="search" name="q" '
            f'value="{e(form.get("q", ""))}" maxlength="64"></label>'
            f'<label>Outcome <select name="outcome">{options}</select></label>'
            f'<label>Flow <input name="flow" value="{e(form.get("flow", ""))}" maxlength="64">'
            f'</label><label>Day <input type="date" name="day" value="{e(form.get("day", ""))}">'
            '</label><button type="submit">Find</button></form>'
            '<table id="call-list"><thead><tr><th>Started (UTC)</th><th>Caller</th>'
            "<th>Called</th><th>Flow</th><th>Duration</th><th>Outcome</th><th>Last node</th>"
            f"<th></th></tr></thead><tbody>{rows}</tbody></table></section></main>")  # fmt: skip
    return page("Calls", body)


def _call_row(c: Mapping[str, Any]) -> str:
    duration = f"{c['duration']:.0f} s" if isinstance(c.get("duration"), int | float) else "–"
    outcome = c.get("outcome") or "in progress"
    tag = '<span class="tag">QA</span>' if c.get("qa") else ""
    return (f'<tr data-call="{e(c["call_id"])}"><td><a href="/calls/{u(c["call_id"])}">'
            f"{e(when(c.get('started_at')) or c['call_id'])}</a></td>"
            f"<td>{e(c.get('caller') or '')}</td><td>{e(c.get('called') or '')}</td>"
            f"<td>{e(c.get('flow') or '')}</td><td class=\"num\">{e(duration)}</td>"
            f"<td>{e(outcome)}</td><td>{e(c.get('last_node') or '')}</td>"
            f"<td>{tag}</td></tr>")  # fmt: skip


def timeline_page(call: Mapping[str, Any], rows: Sequence[Row], truncated: bool) -> str:
    """A call's timeline."""
    call_id = str(call["call_id"])
    facts = [("call", call_id), ("started (UTC)", when(call.get("started_at"))),
             ("caller", call.get("caller")), ("called", call.get("called")),
             ("flow", call.get("flow")), ("outcome", call.get("outcome") or "in progress"),
             ("duration", f"{call['duration']:.1f} s" if isinstance(call.get("duration"),
                                                                     int | float) else "–"),
             ("language", call.get("language")), ("queue", call.get("queue")),
             ("agent", call.get("agent")), ("QA call", "yes" if call.get("qa") else "no")]
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v if v is not None else '–')}</dd>" for k, v in facts)
    items = "".join(_event_row(call_id, r) for r in rows)
    more = '<p class="warning">Only the first events are shown.</p>' if truncated else ""
    live = not call.get("outcome")
    note = '<p class="hint">In progress: this page reloads every 3 s.</p>' if live else ""
    shown = sorted({r.category for r in rows})
    filters = "".join(f'<label><input type="checkbox" id="f-{e(c)}" checked> {e(c)}</label>'
                      for c in shown)  # fmt: skip
    body = (f'<main class="single"><section><dl class="facts">{dl}</dl>{note}</section>'
            f'<section><h2>Timeline</h2><p class="filters">Show: {filters}</p>'
            '<table id="timeline"><thead><tr><th>Time (UTC)</th>'
            "<th>+s</th><th>Node</th><th>Event</th><th>What</th></tr></thead>"
            f"<tbody>{items}</tbody></table>{more}</section></main>")  # fmt: skip
    return page(f"Call {call_id[:40]}", body, refresh=3 if live else 0)


def _event_row(call_id: str, r: Row) -> str:
    node = ""
    if r.node:
        href = f"/flows/{u(r.flow)}#n-{u(r.node)}" if r.flow else ""
        node = f'<a href="{href}">{e(r.node)}</a>' if href else e(r.node)
    what = e(r.text)
    if r.recording:
        what += (f' <audio controls preload="none" src="/calls/{u(call_id)}/recordings/'
                 f'{r.recording}"></audio>')  # fmt: skip
    return (f'<tr class="ev {e(r.category)}" data-kind="{e(r.kind)}"><td>{e(r.at)}</td>'
            f'<td class="num">{r.t:.2f}</td><td>{node}</td><td>{e(r.kind)}</td>'
            f"<td>{what}</td></tr>")  # fmt: skip
