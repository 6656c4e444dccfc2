"""The managers' figures as tables of display strings, and their text and CSV renderings.

The text report and the HTML page show the same :class:`Table` objects, cell for cell, so a
figure can never read one way on the page and another in the terminal. In text, columns are
separated by at least two spaces and no cell holds two spaces in a row (a reader can split a
row on runs of two spaces). The CSV is long-form (section, label, figure, value) with the raw
values of the JSON: fractions for rates, seconds for times.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.store.managers import DAY, Figures, ManagerReport

GAP = "  "


@dataclass(frozen=True)
class Table:
    """A titled table of display strings; ``key`` names it in the HTML (``data-table``)."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def pct(value: float) -> str:
    """A fraction as a percentage with one decimal: ``0.5833`` -> ``58.3 %``."""
    return f"{100 * value:.1f} %"


def seconds(value: float | None) -> str:
    """Seconds with one decimal; ``-`` for no value."""
    return "-" if value is None else f"{value:.1f}"


def rate_of(rate: float, whole: int) -> str:
    """A rate, or ``-`` when there was nothing to take it over (not a misleading 0.0 %)."""
    return pct(rate) if whole else "-"


def with_count(rate: float, count: int) -> str:
    """A rate and the count it is over: ``80.0 % of 5``; ``-`` when the count is 0."""
    return "-" if not count else f"{pct(rate)} of {count}"


GROUP_COLUMNS = ("offered", "answered", "refused", "answer rate", "containment", "opt-out",
                 "service level", "ASA s", "AHT s", "CSAT", "FCR", "p50 s", "p90 s",
                 "p99 s")  # fmt: skip


def group_cells(f: Figures) -> tuple[str, ...]:
    """One group's row (after its label): the columns of :data:`GROUP_COLUMNS`."""
    d = f.as_dict()
    return (
        str(f.offered), str(f.answered), str(f.refused), rate_of(d["answer_rate"], f.offered),
        rate_of(d["containment"], f.ended), rate_of(d["opt_out_rate"], f.ended),
        with_count(d["service_level"], f.queue_offered),
        seconds(d["average_speed_of_answer"] if f.queue_answered else None),
        seconds(d["average_handle_time"] if f.handled else None),
        with_count(d["csat"], f.csat_responses),
        with_count(d["fcr"], f.fcr_responses), seconds(f.duration_p50),
        seconds(f.duration_p90), seconds(f.duration_p99),
    )  # fmt: skip


def headline(m: ManagerReport) -> Table:
    """The window's figures, one per row."""
    o = m.overall.as_dict()
    hooks = m.webhooks.as_dict()
    d = m.definitions
    rows = [
        ("offered calls", str(o["offered"])),
        ("answered by the IVR", str(o["answered"])),
        ("refused before answer", str(o["refused"])),
        ("answer rate", rate_of(o["answer_rate"], o["offered"])),
        ("containment", rate_of(o["containment"], o["ended"])),
        ("opt-out to an agent", rate_of(o["opt_out_rate"], o["ended"])),
        ("service level", with_count(o["service_level"], o["queue_offered"])),
        ("average speed of answer s", seconds(o["average_speed_of_answer"]
                                              if m.overall.queue_answered else None)),
        ("average handle time s", seconds(o["average_handle_time"] if m.overall.handled
                                          else None)),
        ("queue abandon rate", rate_of(o["queue_abandon_rate"], o["queue_offered"])),
        (f"CSAT ({d.csat_question} >= {d.csat_satisfied})",
         with_count(o["csat"], o["csat_responses"])),
        (f"first-contact resolution ({d.fcr_question} = {d.fcr_yes})",
         with_count(o["fcr"], o["fcr_responses"])),
        ("duration p50 s", seconds(o["duration_p50"])),
        ("duration p90 s", seconds(o["duration_p90"])),
        ("duration p99 s", seconds(o["duration_p99"])),
        ("webhook error rate", with_count(hooks["error_rate"], hooks["requests"])),
        ("webhook latency average s", seconds(hooks["latency_average"] if hooks["requests"]
                                              else None)),
        ("webhook latency p90 s", seconds(hooks["latency_p90"])),
    ]  # fmt: skip
    return Table("headline", "Managers' figures", ("figure", "value"), tuple(rows))


def interval_name(minutes: int) -> str:
    """``day``, ``60 min`` or ``15 min``."""
    return "day" if minutes >= DAY else f"{minutes} min"


def manager_tables(m: ManagerReport) -> list[Table]:
    """Every table of the managers' sections, in the order the reports show them."""
    tables = [headline(m)]
    groups = (
        ("intervals", f"Per interval ({interval_name(m.definitions.interval)}, UTC)", "interval",
         m.intervals),
        ("languages", "Per language", "language", m.by_language),
        ("called", "Per called number", "called", m.by_called),
    )  # fmt: skip
    for key, title, first, items in groups:
        if items:
            tables.append(Table(key, title, (first, *GROUP_COLUMNS),
                                tuple((f.label or "-", *group_cells(f)) for f in items)))
    rows: list[tuple[str, ...]]
    if m.flows:
        rows = []
        for flow in m.flows:
            fd = flow.as_dict()
            rows.append((flow.flow or "-", str(flow.ended),
                         with_count(fd["opt_out_rate"], flow.ended),
                         str(flow.auth_attempted),
                         with_count(fd["auth_success_rate"], flow.auth_attempted)))
        tables.append(Table("flows", "Per flow", ("flow", "ended", "opt-out",
                                                  "auth attempts", "auth success"),
                            tuple(rows)))  # fmt: skip
    if m.webhook_nodes:
        rows = []
        for hook in m.webhook_nodes:
            h = hook.as_dict()
            rows.append((hook.flow or "-", hook.node or "-", str(hook.requests), str(hook.errors),
                         pct(h["error_rate"]), seconds(h["latency_average"]),
                         seconds(h["latency_p50"]), seconds(h["latency_p90"]),
                         seconds(h["latency_max"])))  # fmt: skip
        tables.append(Table("webhooks", "Webhooks", ("flow", "node", "requests", "errors",
                                                     "error rate", "average s", "p50 s", "p90 s",
                                                     "max s"), tuple(rows)))  # fmt: skip
    if m.refusals:
        tables.append(Table("refusals", "Refused before answer", ("status", "calls"),
                            tuple((k, str(v)) for k, v in m.refusals.items())))
    return tables


def format_table(table: Table) -> list[str]:
    """A table as aligned text: the title, the header, the rows."""
    widths = [len(c) for c in table.columns]
    for row in table.rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return GAP.join([first.ljust(widths[0]),
                         *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]).rstrip()

    return [table.title, line(table.columns), *(line(row) for row in table.rows)]


def format_manager_text(m: ManagerReport) -> str:
    """The managers' sections as text (after the flow, queue and agent tables)."""
    lines: list[str] = []
    for table in manager_tables(m):
        lines += ["", *format_table(table)]
    if m.include_qa:
        lines += ["", "QA calls included (--include-qa)"]
    elif m.qa_left_out:
        lines += ["", f"QA calls left out: {m.qa_left_out} (--include-qa counts them)"]
    return "\n".join(lines)


def csv_rows(data: dict[str, Any]) -> Iterator[tuple[str, str, str, object]]:
    """(section, label, figure, value) of a report's JSON data (:meth:`Report.as_dict`)."""
    m = data.get("managers") or {}
    for figure, value in (m.get("overall") or {}).items():
        if figure != "label":
            yield "overall", "", figure, value
    for section, key in (("interval", "intervals"), ("language", "by_language"),
                         ("called", "by_called")):  # fmt: skip
        for group in m.get(key) or []:
            for figure, value in group.items():
                if figure != "label":
                    yield section, group["label"], figure, value
    for flow in m.get("flows") or []:
        for figure, value in flow.items():
            if figure != "flow":
                yield "flow", flow["flow"], figure, value
    for hook in [m["webhooks"], *m["webhook_nodes"]] if m else []:
        label = f"{hook['flow']}/{hook['node']}" if hook["node"] else "all"
        for figure, value in hook.items():
            if figure not in ("flow", "node"):
                yield "webhook", label, figure, value
    for status, count in (m.get("refusals") or {}).items():
        yield "refused", status, "calls", count
    for section, key, name in (("queue", "queues", "queue"), ("agent", "agents", "agent")):
        for item in data.get(key) or []:
            for figure, value in item.items():
                if figure != name and not isinstance(value, dict):
                    yield section, item[name], figure, value


def format_csv(data: dict[str, Any]) -> str:
    """The report as long-form CSV: ``section,label,figure,value`` (empty value: none)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "label", "figure", "value"))
    for section, label, figure, value in csv_rows(data):
        writer.writerow((section, _csv_safe(label), figure, "" if value is None else value))
    return out.getvalue()


def _csv_safe(text: str) -> str:
    # A called number or flow name is caller- or author-supplied: a leading = + - @ would be a
    # formula to a spreadsheet (CSV injection); a quote mark keeps it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
