"""The managers' figures: one computation, plain data for every renderer (text, JSON, CSV,
HTML, and later the web console). Definitions: docs/REPORTS.md.

Every figure is computed here from the call records of a window (calls by ``started_at``,
refusals by ``at``); the renderers only format. One pass reads each call's row, its survey
answers, the few event kinds the figures need (``queue``, ``transfer``, ``var_set``,
``node_enter`` of the authentication flow, ``action``) and its queue entries
(:func:`ivr.store.queuereport.read_entries`, so service level, speed of answer and handle time
are the queue report's own), then adds the call to its groups: the whole window, its interval,
its language and its called number.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ivr.store.queuereport import (
    DEFAULT_SERVICE_LEVEL,
    DEFAULT_SHORT_ABANDON,
    MAX_WRAP_UP,
    Entry,
    Timeline,
    handle_time,
    mean,
    ratio,
    read_entries,
    read_timelines,
)

CONTAINED = ("self_service", "closed")
DAY = 1440  # minutes: an interval of one day
INTERVALS = (15, 60, DAY)
UNKNOWN = "-"  # the language of a call that has none recorded (refused, still in progress)
PERCENTILES = (50, 90, 99)
MAX_INTERVALS = 5000  # trend rows with the quiet intervals filled in (a 15-minute year: no)


@dataclass(frozen=True)
class Definitions:
    """What counts as what (each a documented default, each a command-line option).

    Attributes:
        csat_question: The survey question whose answers make CSAT.
        csat_satisfied: Answers at or above this count as satisfied (4 on a 1-5 scale: the
            "top two boxes", 4 and 5).
        fcr_question: The survey question whose answers make first-contact resolution.
        fcr_yes: The answer that means "resolved" (1: "press 1 for yes").
        auth_flow: The sub-flow that authenticates callers: a call that entered it attempted.
        auth_var: The variable the authentication sets true on success.
        interval: Minutes per trend interval: 15, 60 or 1440 (a day, UTC).
    """

    csat_question: str = "satisfaction"
    csat_satisfied: int = 4
    fcr_question: str = "resolved"
    fcr_yes: int = 1
    auth_flow: str = "verify-customer"
    auth_var: str = "verified"
    interval: int = 60


@dataclass
class Figures:
    """The headline figures of a group of calls (the window, an interval, a language ...)."""

    label: str = ""
    offered: int = 0  # answered + refused
    answered: int = 0  # calls the IVR answered (a call record)
    refused: int = 0  # refused before an answer (503, 404, 486 ...)
    ended: int = 0
    contained: int = 0  # ended self_service or closed, no agent answered
    opted_out: int = 0  # ended calls that went to an agent queue or a transfer
    queue_offered: int = 0  # queue entries
    queue_answered: int = 0
    answered_in_time: int = 0  # within the queue's service-level threshold
    abandoned: int = 0  # hung up in a queue, short abandons excepted
    wait_total: float = 0.0
    handled: int = 0
    handle_total: float = 0.0
    csat_responses: int = 0
    csat_satisfied: int = 0
    fcr_responses: int = 0
    fcr_yes: int = 0
    duration_p50: float | None = None
    duration_p90: float | None = None
    duration_p99: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The counts and the rates derived from them (fractions, seconds)."""
        return {
            "label": self.label,
            "offered": self.offered,
            "answered": self.answered,
            "refused": self.refused,
            "answer_rate": ratio(self.answered, self.offered),
            "ended": self.ended,
            "containment": ratio(self.contained, self.ended),
            "opt_out_rate": ratio(self.opted_out, self.ended),
            "queue_offered": self.queue_offered,
            "service_level": ratio(self.answered_in_time, self.queue_offered),
            "average_speed_of_answer": mean(self.wait_total, self.queue_answered),
            "average_handle_time": mean(self.handle_total, self.handled),
            "queue_abandon_rate": ratio(self.abandoned, self.queue_offered),
            "csat": ratio(self.csat_satisfied, self.csat_responses),
            "csat_responses": self.csat_responses,
            "fcr": ratio(self.fcr_yes, self.fcr_responses),
            "fcr_responses": self.fcr_responses,
            "duration_p50": self.duration_p50,
            "duration_p90": self.duration_p90,
            "duration_p99": self.duration_p99,
        }


@dataclass
class FlowFigures:
    """Per flow the call started in: opting out to a person, and authentication."""

    flow: str
    ended: int = 0
    opted_out: int = 0
    auth_attempted: int = 0
    auth_succeeded: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "opt_out_rate": ratio(self.opted_out, self.ended),
            "auth_success_rate": ratio(self.auth_succeeded, self.auth_attempted),
        }


@dataclass
class WebhookFigures:
    """One webhook action node (or every one: ``node`` "")."""

    flow: str
    node: str
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        return {
            "flow": self.flow,
            "node": self.node,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": ratio(self.errors, self.requests),
            "latency_average": mean(sum(lat), len(lat)),
            "latency_p50": percentile(lat, 50),
            "latency_p90": percentile(lat, 90),
            "latency_max": round(lat[-1], 4) if lat else None,
        }


@dataclass
class ManagerReport:
    """Everything the managers' sections show, as computed by :func:`build_managers`."""

    definitions: Definitions
    include_qa: bool
    qa_left_out: int  # QA calls and refusals in the window that the figures leave out
    overall: Figures
    intervals: list[Figures]
    by_language: list[Figures]
    by_called: list[Figures]
    flows: list[FlowFigures]
    webhooks: WebhookFigures  # every webhook together
    webhook_nodes: list[WebhookFigures]
    refusals: dict[str, int]  # "404 No flow for this number": count

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON (and the CSV's rows)."""
        return {
            "definitions": asdict(self.definitions),
            "include_qa": self.include_qa,
            "qa_left_out": self.qa_left_out,
            "overall": self.overall.as_dict(),
            "intervals": [f.as_dict() for f in self.intervals],
            "by_language": [f.as_dict() for f in self.by_language],
            "by_called": [f.as_dict() for f in self.by_called],
            "flows": [f.as_dict() for f in self.flows],
            "webhooks": self.webhooks.as_dict(),
            "webhook_nodes": [w.as_dict() for w in self.webhook_nodes],
            "refusals": dict(self.refusals),
        }


def percentile(ordered: list[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of sorted values (None when empty): the smallest
    value with at least ``p`` % of the values at or below it."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def interval_start(at: float, minutes: int) -> float:
    """The start of the UTC interval ``at`` falls in (intervals divide the day evenly)."""
    return math.floor(at / (minutes * 60)) * minutes * 60.0


def interval_label(at: float, minutes: int) -> str:
    """The UTC interval ``at`` falls in: ``2026-03-02`` (a day) or ``2026-03-02 09:15``."""
    moment = datetime.fromtimestamp(interval_start(at, minutes), UTC)
    return moment.strftime("%Y-%m-%d" if minutes >= DAY else "%Y-%m-%d %H:%M")


def fill_intervals(groups: list[Figures], starts: list[float], minutes: int) -> list[Figures]:
    """``groups`` (sorted, one per interval with calls) with the quiet intervals between the
    first and the last added as zeros, so that a trend shows the gaps; left as they are when
    that would make more than :data:`MAX_INTERVALS` rows."""
    if not starts:
        return groups
    first, last = min(starts), max(starts)
    count = round((last - first) / (minutes * 60)) + 1
    if count > MAX_INTERVALS:
        return groups
    have = {g.label: g for g in groups}
    labels = [interval_label(first + i * minutes * 60, minutes) for i in range(count)]
    return [have.get(label) or Figures(label=label) for label in labels]


@dataclass
class _Call:
    """What one call brings to the figures."""

    started_at: float | None
    flow: str
    called: str
    language: str
    outcome: str | None
    duration: float | None
    agent_answered: bool
    opted_out: bool = False
    auth_attempted: bool = False
    auth_succeeded: bool = False
    csat: int | None = None
    fcr: int | None = None
    entries: list[Entry] = field(default_factory=list)


_CALLS = """
SELECT c.call_id, c.started_at, COALESCE(c.flow, ''), COALESCE(c.called, ''), c.language,
    c.outcome, c.duration, c.answered_at IS NOT NULL
FROM calls c WHERE {cond}
"""
_SURVEY = """
SELECT s.call_id, s.question, s.answer FROM calls c JOIN survey s ON s.call_id = c.call_id
WHERE {cond} AND s.question IN (?, ?) AND s.answer IS NOT NULL
"""
# Read by each selected call's primary key, like the funnel (no index on kind).
_EVENTS = """
SELECT e.call_id, e.kind, COALESCE(e.flow, ''), e.node, json_extract(e.data, '$.name'),
    json_extract(e.data, '$.value'), json_extract(e.data, '$.ok'),
    json_extract(e.data, '$.duration'), json_extract(e.data, '$.via')
FROM calls c JOIN events e ON e.call_id = c.call_id
WHERE {cond} AND (e.kind IN ('queue', 'transfer', 'var_set', 'action')
    OR (e.kind = 'node_enter' AND e.flow = ?))
ORDER BY e.call_id, e.seq
"""


def _read_calls(conn: sqlite3.Connection, cond: str, args: list[object],
                d: Definitions) -> dict[str, _Call]:  # fmt: skip
    calls = {
        call_id: _Call(started, flow, called, language or UNKNOWN, outcome, duration,
                       bool(answered))
        for call_id, started, flow, called, language, outcome, duration, answered
        in conn.execute(_CALLS.format(cond=cond), args)
    }
    query = _SURVEY.format(cond=cond)
    for call_id, question, answer in conn.execute(query, [*args, d.csat_question,
                                                          d.fcr_question]):  # fmt: skip
        call = calls[call_id]
        if question == d.csat_question:
            call.csat = int(answer)
        if question == d.fcr_question:
            call.fcr = int(answer)
    return calls


def _read_events(conn: sqlite3.Connection, cond: str, args: list[object], d: Definitions,
                 calls: dict[str, _Call]) -> dict[tuple[str, str], WebhookFigures]:  # fmt: skip
    """Opt-outs and authentication onto the calls; the webhook figures per node."""
    hooks: dict[tuple[str, str], WebhookFigures] = {}
    for call_id, kind, flow, node, name, value, ok, duration, via in conn.execute(
        _EVENTS.format(cond=cond), [*args, d.auth_flow]
    ):
        call = calls[call_id]
        if kind in ("queue", "transfer"):
            call.opted_out = True
        elif kind == "node_enter" and flow == d.auth_flow:
            call.auth_attempted = True
        elif kind == "var_set" and name == d.auth_var and value in (1, True, "true"):
            call.auth_succeeded = True
        elif kind == "action" and via == "webhook":
            hook = hooks.setdefault((flow, node or ""), WebhookFigures(flow, node or ""))
            hook.requests += 1
            hook.errors += not ok
            if isinstance(duration, int | float):
                hook.latencies.append(float(duration))
    return hooks


class _Groups:
    """Figures by a key, with the durations kept apart until the percentiles are taken."""

    def __init__(self) -> None:
        self.figures: dict[str, Figures] = {}
        self.durations: dict[str, list[float]] = {}

    def get(self, key: str) -> Figures:
        item = self.figures.get(key)
        if item is None:
            item = self.figures[key] = Figures(label=key)
        return item

    def add_call(self, key: str, call: _Call, d: Definitions, sl: _Thresholds,
                 timelines: dict[str, Timeline]) -> None:  # fmt: skip
        f = self.get(key)
        f.offered += 1
        f.answered += 1
        if call.outcome is not None:
            f.ended += 1
            f.contained += call.outcome in CONTAINED and not call.agent_answered
            f.opted_out += call.opted_out
            if call.duration is not None:
                self.durations.setdefault(key, []).append(float(call.duration))
        if call.csat is not None:
            f.csat_responses += 1
            f.csat_satisfied += call.csat >= d.csat_satisfied
        if call.fcr is not None:
            f.fcr_responses += 1
            f.fcr_yes += call.fcr == d.fcr_yes
        for entry in call.entries:
            _add_entry(f, entry, sl, timelines)

    def add_refused(self, key: str, count: int) -> None:
        f = self.get(key)
        f.offered += count
        f.refused += count

    def done(self) -> list[Figures]:
        for key, f in self.figures.items():
            ordered = sorted(self.durations.get(key, ()))
            f.duration_p50, f.duration_p90, f.duration_p99 = (
                percentile(ordered, p) for p in PERCENTILES)
        return [self.figures[k] for k in sorted(self.figures)]


@dataclass(frozen=True)
class _Thresholds:
    service_levels: Mapping[str, float]
    service_level: float
    short_abandon: float


def _add_entry(f: Figures, entry: Entry, sl: _Thresholds, timelines: dict[str, Timeline]) -> None:
    """One queue entry, counted as :func:`ivr.store.queuereport.queue_figures` counts it."""
    f.queue_offered += 1
    wait = entry.wait or 0.0
    if entry.end == "answered":
        f.queue_answered += 1
        f.wait_total += wait
        f.answered_in_time += wait <= sl.service_levels.get(entry.queue, sl.service_level)
        handle = handle_time(timelines, entry)
        if handle is not None:
            f.handled += 1
            f.handle_total += handle
    elif entry.end == "abandoned":
        f.abandoned += wait >= sl.short_abandon


def _refused_rows(conn: sqlite3.Connection, start: float | None,
                  end: float | None) -> list[tuple[float, str, int, str, int, int]]:  # fmt: skip
    """(at, called, status, reason, count, qa) of the refusals in ``[start, end)``."""
    where, args = ["1 = 1"], []
    for op, value in ((">=", start), ("<", end)):
        if value is not None:
            where.append(f"at {op} ?")
            args.append(value)
    rows = conn.execute(
        "SELECT at, COALESCE(called, ''), status, COALESCE(reason, ''), count, qa FROM refused "
        f"WHERE {' AND '.join(where)} ORDER BY at", args)
    return rows.fetchall()


def build_managers(
    conn: sqlite3.Connection,
    cond: str,
    args: list[object],
    *,
    start: float | None,
    end: float | None,
    include_qa: bool,
    qa_left_out: int = 0,
    definitions: Definitions | None = None,
    service_levels: Mapping[str, float] | None = None,
    service_level: float = DEFAULT_SERVICE_LEVEL,
    short_abandon: float = DEFAULT_SHORT_ABANDON,
    with_refused: bool = True,
) -> ManagerReport:
    """The managers' figures of the calls matching ``cond`` (QA calls already filtered there)
    and of the refusals in ``[start, end)``.

    Args:
        qa_left_out: Calls the caller's ``cond`` left out as QA (shown, so nobody wonders).
        with_refused: Count the refusals (not for a report of one flow: they have none).
    """
    d = definitions or Definitions()
    calls = _read_calls(conn, cond, args, d)
    hooks = _read_events(conn, cond, args, d, calls)
    for entry in read_entries(conn, cond, args):
        calls[entry.call_id].entries.append(entry)
    timelines = read_timelines(conn, start, None if end is None else end + MAX_WRAP_UP)
    sl = _Thresholds(service_levels or {}, service_level, short_abandon)
    overall, intervals, languages, numbers = _Groups(), _Groups(), _Groups(), _Groups()
    flows: dict[str, FlowFigures] = {}
    starts: list[float] = []
    for call in calls.values():
        overall.add_call("", call, d, sl, timelines)
        if call.started_at is not None:
            starts.append(interval_start(call.started_at, d.interval))
            intervals.add_call(interval_label(call.started_at, d.interval), call, d, sl,
                               timelines)  # fmt: skip
        languages.add_call(call.language, call, d, sl, timelines)
        numbers.add_call(call.called, call, d, sl, timelines)
        _add_flow(flows, call)
    refusals: dict[str, int] = {}
    qa_refused = 0
    rows = _refused_rows(conn, start, end) if with_refused else []
    for at, called, status, reason, count, qa in rows:
        if qa and not include_qa:
            qa_refused += count
            continue
        starts.append(interval_start(at, d.interval))
        for groups, key in ((overall, ""), (intervals, interval_label(at, d.interval)),
                            (languages, UNKNOWN), (numbers, called)):  # fmt: skip
            groups.add_refused(key, count)
        name = f"{status} {reason}".strip()
        refusals[name] = refusals.get(name, 0) + count
    [total] = overall.done() or [Figures()]
    all_hooks = WebhookFigures("", "")
    for hook in hooks.values():
        all_hooks.requests += hook.requests
        all_hooks.errors += hook.errors
        all_hooks.latencies += hook.latencies
    return ManagerReport(
        definitions=d, include_qa=include_qa, qa_left_out=qa_left_out + qa_refused,
        overall=total, intervals=fill_intervals(intervals.done(), starts, d.interval),
        by_language=languages.done(),
        by_called=numbers.done(), flows=[flows[k] for k in sorted(flows)], webhooks=all_hooks,
        webhook_nodes=[hooks[k] for k in sorted(hooks)],
        refusals=dict(sorted(refusals.items())),
    )  # fmt: skip


def _add_flow(flows: dict[str, FlowFigures], call: _Call) -> None:
    item = flows.setdefault(call.flow, FlowFigures(call.flow))
    if call.outcome is not None:
        item.ended += 1
        item.opted_out += call.opted_out
    item.auth_attempted += call.auth_attempted
    item.auth_succeeded += call.auth_attempted and call.auth_succeeded
