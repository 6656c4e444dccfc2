"""The console's report page: the managers' figures of ``ivr report`` for a period picked on the
page, with charts, and the same report to download as CSV or HTML.

One source of truth: the page computes the report with :func:`ivr.store.report.build_report`
(the managers' figures of :mod:`ivr.store.managers`, the queues' and agents' of
:mod:`ivr.store.queuereport`), shows the managers' tables as
:func:`ivr.store.reporttables.manager_tables` makes them for the text report (cell for cell),
draws the interval charts of ``ivr report --format html`` and adds bar charts per language,
called number, flow and queue. A download is ``ivr report --format csv|html`` of the same
options, byte for byte.

The period comes from the request (``since``, ``until``: ISO dates or date-times, UTC unless
they carry an offset, a bare ``until`` includes that day; ``interval`` 15, 60 or ``day``; a
``flow``; ``qa=1`` to count QA calls): each is bounded in length and checked, a bad one is a
400 naming it. Reports are computed on a thread, at most :data:`MAX_AT_ONCE` at a time, so a
burst of requests cannot take the console's loop or the machine's cores.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from html import escape

from aiohttp import web

from ivr.config import Config
from ivr.console.auth import Session
from ivr.console.charts import bars_chart
from ivr.store.db import StoreError, connect
from ivr.store.managers import DAY, Definitions, Figures
from ivr.store.queuereport import DEFAULT_SERVICE_LEVEL, DEFAULT_SHORT_ABANDON, service_levels_of
from ivr.store.report import Report, build_report, format_csv, format_html, parse_moment
from ivr.store.reporthtml import calls_chart, rates_chart
from ivr.store.reporttables import Table, interval_name, manager_tables, pct, rate_of

INTERVALS = {"15": 15, "60": 60, "day": DAY}
MAX_PARAM = 64  # characters of any one query parameter
MAX_AT_ONCE = 2  # reports computed at the same time (each reads the store on a thread)
DOWNLOADS = {"csv": ("text/csv", format_csv), "html": ("text/html", format_html)}

SessionOf = Callable[[web.Request], Session | None]


class PeriodError(ValueError):
    """A query parameter the report cannot take (named in the message)."""


@dataclass(frozen=True)
class Period:
    """What a report covers: ``ivr report``'s ``--since``, ``--until``, ``--interval``,
    ``--flow`` and ``--include-qa``."""

    since: str
    until: str
    interval: str = "60"
    flow: str = ""
    include_qa: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str], today: dt.date) -> Period:
        """The period a request asks for (today, per hour, by default).

        Raises:
            PeriodError: a parameter too long, not a date, or not one of the choices.
        """
        values = {}
        for name in ("since", "until", "interval", "flow", "qa"):
            value = query.get(name, "").strip()
            if len(value) > MAX_PARAM or any(ord(c) < 32 for c in value):
                raise PeriodError(f"{name}: at most {MAX_PARAM} printable characters")
            values[name] = value
        period = cls(values["since"] or today.isoformat(), values["until"] or today.isoformat(),
                     values["interval"] or "60", values["flow"], values["qa"] in ("1", "on"))
        for name, end_of_day in (("since", False), ("until", True)):
            try:
                parse_moment(getattr(period, name), end_of_day=end_of_day)
            except (ValueError, OverflowError):
                raise PeriodError(f"{name}: not an ISO date or date-time "
                                  f"(YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None  # fmt: skip
        if period.interval not in INTERVALS:
            raise PeriodError(f"interval: one of {', '.join(INTERVALS)}")
        return period

    def query(self, **changes: str | bool) -> str:
        """This period (with ``changes``) as a query string for a link."""
        period = replace(self, **changes)  # type: ignore[arg-type]
        items = {"since": period.since, "until": period.until, "interval": period.interval}
        if period.flow:
            items["flow"] = period.flow
        if period.include_qa:
            items["qa"] = "1"
        return urllib.parse.urlencode(items)

    def scope(self) -> str:
        """The words ``ivr report --format html`` titles the page with."""
        scope = f"flow {self.flow}" if self.flow else "all flows"
        return f"{scope}, {self.since} to {self.until}"


def compute(config: Config, period: Period) -> Report:
    """The report of ``period``, exactly as ``ivr report`` computes it with the same options
    (the service-level thresholds of ivr.yaml, the default short-abandon time).

    Raises:
        StoreError, sqlite3.Error: the store cannot be read.
    """
    conn = connect(config.store_path)
    try:
        return build_report(
            conn, period.flow or None, period.since, period.until,
            service_levels=service_levels_of(config), service_level=DEFAULT_SERVICE_LEVEL,
            short_abandon=DEFAULT_SHORT_ABANDON, include_qa=period.include_qa,
            definitions=Definitions(interval=INTERVALS[period.interval]))  # fmt: skip
    finally:
        conn.close()


# --- tables the text report prints as fixed columns --------------------------------------------


def queue_table(report: Report) -> Table:
    """The queues' figures with the text report's cells."""
    rows = []
    for q in report.queues:
        d = q.as_dict()
        rows.append((q.queue, str(q.offered), f"{q.answered} ({pct(d['answer_rate'])})",
                     f"{pct(d['service_level'])} ({d['service_level_threshold']:g} s)",
                     f"{d['average_speed_of_answer']:.1f}", f"{d['average_handle_time']:.1f}",
                     str(q.abandoned), str(q.short_abandoned), pct(d["abandon_rate"]),
                     f"{q.callbacks} ({pct(d['callback_rate'])})", str(q.waiting)))
    return Table("queues", "Per queue", ("queue", "offered", "answered", "service level",
                                         "ASA s", "AHT s", "abandoned", "short", "abandon rate",
                                         "callbacks", "waiting"), tuple(rows))  # fmt: skip


def agent_table(report: Report) -> Table:
    """The agents' figures with the text report's cells."""
    rows = tuple(
        (a.agent, str(a.answered), f"{a.as_dict()['average_handle_time']:.1f}",
         pct(a.as_dict()["occupancy"]), f"{a.staffed_time:.1f}", f"{a.busy_time:.1f}",
         f"{a.paused_time:.1f}")
        for a in report.agents
    )
    return Table("agents", "Per agent", ("agent", "answered", "AHT s", "occupancy",
                                         "staffed s", "busy s", "paused s"), rows)  # fmt: skip


def flow_outcome_table(report: Report) -> Table:
    """Calls and outcomes per flow (the text report's flow table)."""
    rows = tuple(
        (f.flow or "-", str(f.calls), str(f.ended), rate_of(f.containment, f.ended),
         rate_of(f.rate("transferred"), f.ended), rate_of(f.share(f.answered_by_agent), f.ended),
         rate_of(f.rate("abandoned"), f.ended), rate_of(f.rate("abandoned_in_queue"), f.ended))
        for f in report.by_flow
    )
    return Table("flow-outcomes", "Calls per flow", ("flow", "calls", "ended", "contained",
                                                     "transferred", "agent", "abandoned",
                                                     "in queue"), rows)  # fmt: skip


# --- the page ---------------------------------------------------------------------------------


def table_html(table: Table) -> str:
    """A :class:`Table` as an HTML table (``data-table`` names it for tests and scripts)."""
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in table.rows)  # fmt: skip
    return (f'<section class="wide"><h2>{escape(table.title)}</h2>'
            f'<table data-table="{escape(table.key)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></section>")


def group_charts(report: Report) -> list[str]:
    """Bar charts per language, called number, flow and queue."""
    m = report.managers
    assert m is not None
    charts = []

    def split(groups: Sequence[Figures]) -> list[tuple[str, list[float]]]:
        return [(g.label or "-", [g.answered, g.refused]) for g in groups]

    if m.by_language:
        charts.append(("Calls per language", bars_chart(
            "languages", split(m.by_language), ("answered", "refused"))))
    if m.by_called:
        charts.append(("Calls per called number", bars_chart(
            "called", split(m.by_called), ("answered", "refused"))))
    if report.by_flow:
        charts.append(("Calls per flow", bars_chart(
            "flows", [(f.flow or "-", [f.contained, f.ended - f.contained, f.calls - f.ended])
                      for f in report.by_flow], ("contained", "not contained", "in progress"))))
    if report.queues:
        charts.append(("Queue entries per queue", bars_chart(
            "queues", [(q.queue, [q.answered, q.abandoned - q.short_abandoned,
                                  q.offered - q.answered - q.abandoned + q.short_abandoned])
                       for q in report.queues], ("answered", "abandoned", "other"))))
    return [f'<section><h2>{escape(title)}</h2>{svg}</section>' for title, svg in charts]


def picker(period: Period, flows: Sequence[str]) -> str:
    """The period picker: a GET form (nothing changes on the server: no CSRF token needed)."""
    options = "".join(
        f'<option value="{key}"{" selected" if key == period.interval else ""}>'
        f"{escape(interval_name(minutes))}</option>" for key, minutes in INTERVALS.items())
    flow_options = "".join(f'<option value="{escape(f)}">' for f in flows)
    today = dt.datetime.now(dt.UTC).date()
    quick = [("today", today, today), ("yesterday", today - dt.timedelta(days=1),
                                        today - dt.timedelta(days=1)),
             ("last 7 days", today - dt.timedelta(days=6), today),
             ("last 30 days", today - dt.timedelta(days=29), today)]  # fmt: skip
    links = " ".join(
        f'<a href="/reports?{escape(period.query(since=a.isoformat(), until=b.isoformat()))}">'
        f"{name}</a>" for name, a, b in quick)
    checked = " checked" if period.include_qa else ""
    return f"""<form id="period" method="get" action="/reports">
<label>From <input name="since" value="{escape(period.since)}" maxlength="{MAX_PARAM}"
 placeholder="YYYY-MM-DD"></label>
<label>to <input name="until" value="{escape(period.until)}" maxlength="{MAX_PARAM}"
 placeholder="YYYY-MM-DD (the whole day)"></label>
<label>per <select name="interval">{options}</select></label>
<label>flow <input name="flow" value="{escape(period.flow)}" list="flows" maxlength="{MAX_PARAM}"
 placeholder="all flows"></label><datalist id="flows">{flow_options}</datalist>
<label><input type="checkbox" name="qa" value="1"{checked}> QA calls</label>
<button type="submit">Show</button>
<span class="quick">{links}</span>
<span class="downloads">Download:
<a id="download-csv" href="/reports/download?format=csv&amp;{escape(period.query())}">CSV</a>
<a id="download-html" href="/reports/download?format=html&amp;{escape(period.query())}">HTML</a>
</span></form>"""


def header(user: Session, here: str) -> str:
    """The console's header with its pages (the queue page for supervisors)."""
    pages = [("/", "Wallboard"), ("/reports", "Reports")]
    if user.user.may("supervisor"):
        pages.append(("/queues", "Queues"))
    nav = " ".join(f'<a href="{href}"{" class=here" if href == here else ""}>{name}</a>'
                   for href, name in pages)  # fmt: skip
    return (f'<header><h1>ivr {escape(here.strip("/") or "wallboard")}</h1><nav>{nav}</nav>'
            f"<span>{escape(user.user.name)} ({escape(user.user.role)})</span></header>")


def render(report: Report, period: Period, user: Session) -> str:
    """The whole report page."""
    m = report.managers
    assert m is not None
    tables = manager_tables(m)
    parts = [picker(period, sorted({f.flow for f in report.by_flow if f.flow})),
             f'<p class="scope">IVR report: {escape(period.scope())} (UTC); '
             f"{report.calls} calls</p>", table_html(tables[0])]
    if m.intervals:
        name = escape(interval_name(m.definitions.interval))
        parts.append(f"<section><h2>Calls per interval ({name}, UTC)</h2>"
                     f"{calls_chart(m.intervals)}</section>")
        parts.append(f"<section><h2>Rates per interval ({name}, UTC)</h2>"
                     f"{rates_chart(m.intervals)}</section>")
    parts += group_charts(report)
    parts += [table_html(t) for t in tables[1:]]
    for extra in (flow_outcome_table(report), queue_table(report), agent_table(report)):
        if extra.rows:
            parts.append(table_html(extra))
    if m.include_qa:
        parts.append("<p>QA calls included.</p>")
    elif m.qa_left_out:
        parts.append(f"<p>QA calls left out: {m.qa_left_out}.</p>")
    return page("ivr reports", user, "/reports", "\n".join(parts))


def page(title: str, user: Session, here: str, body: str) -> str:
    """A console page around ``body`` (styles from the package, no inline style or script)."""
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title>"
            '<link rel="stylesheet" href="/static/console.css">'
            '<link rel="stylesheet" href="/static/reports.css"></head>'
            f'<body class="reports">{header(user, here)}<main>{body}</main></body></html>\n')


# --- the routes -------------------------------------------------------------------------------


class Reports:
    """The report routes (added to the console's app by :func:`routes`)."""

    def __init__(self, config: Config, session_of: SessionOf) -> None:
        self.config = config
        self.session_of = session_of
        self._slots = asyncio.Semaphore(MAX_AT_ONCE)

    async def _report(self, request: web.Request) -> tuple[Period, Report] | web.Response:
        try:
            period = Period.from_query(request.query, dt.datetime.now(dt.UTC).date())
        except PeriodError as exc:
            return web.Response(status=400, text=f"bad report period: {exc}")
        async with self._slots:
            try:
                report = await asyncio.to_thread(compute, self.config, period)
            except (StoreError, sqlite3.Error) as exc:
                return web.Response(status=503, text=f"the call store cannot be read: {exc}")
        return period, report

    async def page(self, request: web.Request) -> web.StreamResponse:
        session = self.session_of(request)
        if session is None:
            raise web.HTTPSeeOther("/login")
        result = await self._report(request)
        if isinstance(result, web.Response):
            return result
        period, report = result
        return web.Response(text=render(report, period, session), content_type="text/html")

    async def download(self, request: web.Request) -> web.StreamResponse:
        if self.session_of(request) is None:
            return web.json_response({"error": "log in first"}, status=401)
        fmt = request.query.get("format", "")
        if fmt not in DOWNLOADS:
            return web.Response(status=400, text="format: csv or html")
        result = await self._report(request)
        if isinstance(result, web.Response):
            return result
        period, report = result
        content_type, render_as = DOWNLOADS[fmt]
        text = render_as(report)
        name = f"ivr-report-{_safe(period.since)}-{_safe(period.until)}.{fmt}"
        return web.Response(
            text=text if text.endswith("\n") else text + "\n", content_type=content_type,
            headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _safe(text: str) -> str:
    """A date for a file name: digits and dashes only."""
    return "".join(c if c.isdigit() else "-" for c in text)[:20]


def routes(config: Config, session_of: SessionOf) -> list[web.RouteDef]:
    """The report page and its downloads."""
    reports = Reports(config, session_of)
    return [web.get("/reports", reports.page), web.get("/reports/download", reports.download)]
