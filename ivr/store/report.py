"""KPIs over the call records: outcome rates, per-node input problems, drop-off funnel, survey,
and the agent queue's figures per queue and per agent (:mod:`ivr.store.queuereport`).

Definitions (docs/FLOWS.md, "Call outcomes"; docs/ACD.md, "Reports"); every rate is over the
calls that *ended*, so a call still in progress counts in ``calls`` only:

- containment: outcome ``self_service`` or ``closed`` (the flow finished the call itself) and
  no agent answered (a flow may go on to a survey after the agent: that call is not contained);
- transfer rate, abandonment in the IVR, abandonment in a queue, failure rate: outcomes
  ``transferred``, ``abandoned`` (the caller hung up inside the flow), ``abandoned_in_queue``
  (hung up waiting for an agent) and ``failed``;
- queue rate: calls that entered an agent queue (whatever became of them); agent rate: calls an
  agent answered (whatever the outcome);
- per node: visits (every entry, repeats included), calls that entered it at least once,
  ``no_input`` / ``no_match`` events and their rate per visit, calls that ended there and, of
  those, the ones the caller hung up (the funnel's drop-off);
- survey: per question, answers given, their average, and questions skipped.

A call belongs to the window when it *started* in ``[since, until)``. Times without an offset
are UTC; an ``until`` that is a bare date includes that whole day. The agents' times are those
of the period itself (see :mod:`ivr.store.queuereport`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ivr.store.managers import Definitions, ManagerReport, build_managers
from ivr.store.queuereport import (
    DEFAULT_SERVICE_LEVEL,
    DEFAULT_SHORT_ABANDON,
    AgentStats,
    QueueStats,
    queue_figures,
)
from ivr.store.reporthtml import format_html as render_html
from ivr.store.reporttables import format_csv as render_csv
from ivr.store.reporttables import format_manager_text

CONTAINED = ("self_service", "closed")


@dataclass
class Summary:
    """Call counts and outcomes of a set of calls."""

    calls: int = 0
    ended: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    average_duration: float = 0.0  # seconds, over ended calls
    contained: int = 0  # ended self_service or closed, no agent answered
    queued: int = 0  # ended calls that entered an agent queue
    answered_by_agent: int = 0  # ended calls an agent answered

    def rate(self, *outcomes: str) -> float:
        """The share of ended calls with one of ``outcomes`` (0.0 when none ended)."""
        return self.share(sum(self.outcomes.get(o, 0) for o in outcomes))

    def share(self, count: int) -> float:
        """``count`` over the ended calls (0.0 when none ended)."""
        return count / self.ended if self.ended else 0.0

    @property
    def containment(self) -> float:
        return self.share(self.contained)

    def add(self, other: Summary) -> None:
        """Count ``other``'s calls in this summary too (the average duration apart)."""
        self.calls += other.calls
        self.ended += other.ended
        self.contained += other.contained
        self.queued += other.queued
        self.answered_by_agent += other.answered_by_agent
        for outcome, count in other.outcomes.items():
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count

    def rates(self) -> dict[str, float]:
        """The headline rates, rounded for display and JSON."""
        return {
            "containment": round(self.containment, 4),
            "transfer_rate": round(self.rate("transferred"), 4),
            "queue_rate": round(self.share(self.queued), 4),
            "agent_rate": round(self.share(self.answered_by_agent), 4),
            "abandonment": round(self.rate("abandoned"), 4),
            "queue_abandonment": round(self.rate("abandoned_in_queue"), 4),
            "failure_rate": round(self.rate("failed"), 4),
        }


@dataclass
class FlowSummary(Summary):
    """The summary of one flow's calls (the flow the call started in)."""

    flow: str = ""


@dataclass
class NodeStats:
    """One node of one flow; ``flow`` is the node's own flow (a sub-flow's for its nodes)."""

    flow: str
    node: str
    visits: int = 0
    calls: int = 0  # distinct calls that entered the node
    no_input: int = 0
    no_match: int = 0
    ended_here: int = 0  # calls whose last node this was, whatever the outcome
    abandoned_here: int = 0  # ... of which the caller hung up (outcome abandoned)
    first_visit: float = 0.0  # average event number (seq) of a call's first entry: funnel order

    @property
    def no_input_rate(self) -> float:
        return self.no_input / self.visits if self.visits else 0.0

    @property
    def no_match_rate(self) -> float:
        return self.no_match / self.visits if self.visits else 0.0

    @property
    def drop_off_rate(self) -> float:
        """Calls the caller hung up here over the calls that entered."""
        return self.abandoned_here / self.calls if self.calls else 0.0


@dataclass
class SurveyStats:
    """Answers to one survey question."""

    question: str
    responses: int
    average: float | None
    skipped: int


@dataclass
class Report(Summary):
    """Every KPI for the calls of ``flow`` (all flows when None) started in the window."""

    flow: str | None = None
    since: str | None = None
    until: str | None = None
    by_flow: list[FlowSummary] = field(default_factory=list)
    nodes: list[NodeStats] = field(default_factory=list)
    survey: list[SurveyStats] = field(default_factory=list)
    short_abandon: float = DEFAULT_SHORT_ABANDON
    queues: list[QueueStats] = field(default_factory=list)
    agents: list[AgentStats] = field(default_factory=list)
    include_qa: bool = False
    managers: ManagerReport | None = None  # the managers' figures (ivr/store/managers.py)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON, rates included."""
        out = asdict(replace(self, managers=None))  # the managers' figures have their own
        out["managers"] = self.managers.as_dict() if self.managers is not None else None
        out.update(self.rates())
        out["abandoned_in_ivr"] = self.outcomes.get("abandoned", 0)
        out["abandoned_in_queue"] = self.outcomes.get("abandoned_in_queue", 0)
        out["by_flow"] = [{**asdict(f), **f.rates()} for f in self.by_flow]
        out["nodes"] = [
            {
                **asdict(n),
                "first_visit": round(n.first_visit, 2),
                "no_input_rate": round(n.no_input_rate, 4),
                "no_match_rate": round(n.no_match_rate, 4),
                "drop_off_rate": round(n.drop_off_rate, 4),
            }
            for n in self.nodes
        ]
        out["queues"] = [q.as_dict() for q in self.queues]
        out["agents"] = [a.as_dict() for a in self.agents]
        return out


def parse_moment(text: str | None, *, end_of_day: bool = False) -> float | None:
    """An ISO date or date-time as epoch seconds (UTC unless it has an offset).

    With ``end_of_day``, a bare date means the end of that day (the next midnight).

    Raises:
        ValueError: ``text`` is not an ISO date.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO date or date-time: {text!r}") from None
    if end_of_day and _is_bare_date(text):
        moment += timedelta(days=1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _is_bare_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def build_report(
    conn: sqlite3.Connection,
    flow: str | None = None,
    since: str | None = None,
    until: str | None = None,
    *,
    service_levels: Mapping[str, float] | None = None,
    service_level: float = DEFAULT_SERVICE_LEVEL,
    short_abandon: float = DEFAULT_SHORT_ABANDON,
    now: float | None = None,
    include_qa: bool = False,
    definitions: Definitions | None = None,
) -> Report:
    """Compute every KPI for the calls of ``flow`` started in ``[since, until)``.

    Args:
        service_levels: Per queue, the service-level threshold in seconds (ivr.yaml's);
            ``service_level`` for the other queues.
        short_abandon: Hang-ups in a queue sooner than this many seconds are short abandons,
            counted apart and not in the abandon rate.
        now: The end of an agent's last state when the period reaches the present (tests).
        include_qa: Count QA calls (``ivr test``'s) too; production figures leave them out.
        definitions: What counts as satisfied, resolved, authenticated; the trend interval.

    Raises:
        ValueError: ``since`` or ``until`` is not an ISO date.
    """
    where = ["1 = 1"]
    args: list[object] = []
    if flow:
        where.append("c.flow = ?")
        args.append(flow)
    start, end = parse_moment(since), parse_moment(until, end_of_day=True)
    for op, value in ((">=", start), ("<", end)):
        if value is not None:
            where.append(f"c.started_at {op} ?")
            args.append(value)
    qa_left_out = 0
    if not include_qa:
        qa_left_out = conn.execute(
            f"SELECT COUNT(*) FROM calls c WHERE {' AND '.join(where)} AND c.qa != 0", args
        ).fetchone()[0]
        where.append("c.qa = 0")
    cond = " AND ".join(where)
    report = Report(flow=flow, since=since, until=until, short_abandon=short_abandon,
                    include_qa=include_qa)
    by_flow = _summaries(conn, cond, args)
    for item in by_flow:
        report.add(item)
    if report.ended:
        total = sum(f.average_duration * f.ended for f in by_flow)
        report.average_duration = round(total / report.ended, 3)
    report.by_flow = by_flow
    report.nodes = _node_stats(conn, cond, args)
    report.survey = _survey_stats(conn, cond, args)
    report.queues, report.agents = queue_figures(
        conn, cond, args, since=start, until=end, now=time.time() if now is None else now,
        service_levels=service_levels, service_level=service_level, short_abandon=short_abandon)
    # Refusals have no flow: a report of one flow leaves them out (its answer rate is 100 %).
    report.managers = build_managers(
        conn, cond, args, start=start, end=end, include_qa=include_qa, qa_left_out=qa_left_out,
        definitions=definitions, service_levels=service_levels, service_level=service_level,
        short_abandon=short_abandon, with_refused=not flow)
    return report


def node_figures(conn: sqlite3.Connection, since: str | None = None, until: str | None = None,
                 *, include_qa: bool = False) -> list[NodeStats]:  # fmt: skip
    """The per-node figures of :func:`build_report` alone (the console's flow heat map reads
    them often; the whole report would compute every other figure too), same window rules.

    Raises:
        ValueError: ``since`` or ``until`` is not an ISO date.
    """
    where: list[str] = ["1 = 1"]
    args: list[object] = []
    start, end = parse_moment(since), parse_moment(until, end_of_day=True)
    for op, value in ((">=", start), ("<", end)):
        if value is not None:
            where.append(f"c.started_at {op} ?")
            args.append(value)
    if not include_qa:
        where.append("c.qa = 0")
    return _node_stats(conn, " AND ".join(where), args)


def _summaries(conn: sqlite3.Connection, cond: str, args: list[object]) -> list[FlowSummary]:
    query = (
        "SELECT COALESCE(c.flow, ''), c.outcome, COUNT(*), AVG(c.duration), "
        "SUM(c.queue IS NOT NULL), SUM(c.answered_at IS NOT NULL) FROM calls c "
        f"WHERE {cond} GROUP BY 1, 2 ORDER BY 1"
    )
    flows: dict[str, FlowSummary] = {}
    durations: dict[str, float] = {}
    for flow, outcome, count, avg, queued, answered in conn.execute(query, args):
        item = flows.setdefault(flow, FlowSummary(flow=flow))
        item.calls += count
        if outcome is not None:
            item.ended += count
            item.outcomes[outcome] = count
            item.queued += queued
            item.answered_by_agent += answered
            if outcome in CONTAINED:
                item.contained += count - answered
            durations[flow] = durations.get(flow, 0.0) + count * (avg or 0.0)
    for flow, item in flows.items():
        if item.ended:
            item.average_duration = round(durations[flow] / item.ended, 3)
    return list(flows.values())


# Per call and node first (visits, problems, first entry), then summed over calls: this reads
# each selected call's events by primary key, so a narrow time window stays fast.
_NODES = """
SELECT flow, node, SUM(visits > 0), SUM(visits), SUM(no_input), SUM(no_match), AVG(first)
FROM (
    SELECT COALESCE(e.flow, '') AS flow, e.node AS node,
        SUM(e.kind = 'node_enter') AS visits, SUM(e.kind = 'no_input') AS no_input,
        SUM(e.kind = 'no_match') AS no_match,
        MIN(CASE WHEN e.kind = 'node_enter' THEN e.seq END) AS first
    FROM calls c JOIN events e ON e.call_id = c.call_id
    WHERE {cond} AND e.node IS NOT NULL AND e.kind IN ('node_enter', 'no_input', 'no_match')
    GROUP BY e.call_id, e.flow, e.node
)
GROUP BY flow, node
"""

_ENDED = """
SELECT COALESCE(c.last_flow, c.flow, ''), c.last_node, COUNT(*), SUM(c.outcome = 'abandoned')
FROM calls c WHERE {cond} AND c.outcome IS NOT NULL AND c.last_node IS NOT NULL
GROUP BY 1, 2
"""


def _node_stats(conn: sqlite3.Connection, cond: str, args: list[object]) -> list[NodeStats]:
    stats: dict[tuple[str, str], NodeStats] = {}
    for flow, node, calls, visits, no_input, no_match, first in conn.execute(
        _NODES.format(cond=cond), args
    ):
        stats[flow, node] = NodeStats(
            flow, node, visits, calls, no_input, no_match, first_visit=first or 0.0
        )
    for flow, node, ended, abandoned in conn.execute(_ENDED.format(cond=cond), args):
        item = stats.setdefault((flow, node), NodeStats(flow, node))
        item.ended_here, item.abandoned_here = ended, abandoned
    # The funnel reads in call order: nodes entered early first, the busier one on a tie.
    return sorted(
        stats.values(),
        key=lambda s: (s.flow, not s.visits, s.first_visit, -s.visits, s.node),
    )


def _survey_stats(conn: sqlite3.Connection, cond: str, args: list[object]) -> list[SurveyStats]:
    query = (
        "SELECT s.question, COUNT(s.answer), AVG(s.answer), SUM(s.answer IS NULL) "
        f"FROM calls c JOIN survey s ON s.call_id = c.call_id WHERE {cond} "
        "GROUP BY s.question ORDER BY s.question"
    )
    return [
        SurveyStats(q, n, round(avg, 2) if avg is not None else None, skipped or 0)
        for q, n, avg, skipped in conn.execute(query, args)
    ]


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _count_rate(count: int, rate: float) -> str:
    return f"{count} ({_pct(rate)})"


def format_text(report: Report, *, managers: bool = True) -> str:
    """The report as aligned text tables (``managers``: with the managers' sections)."""
    scope = f"flow {report.flow}" if report.flow else "all flows"
    if report.since or report.until:
        scope += f", started from {report.since or 'the start'} until {report.until or 'now'}"
    lines = [
        f"Calls: {report.calls} ({scope}); ended: {report.ended}; "
        f"average duration {report.average_duration:.1f} s",
        *_rate_lines(report),
        "  outcomes: " + (", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items()))
                          or "none"),
    ]
    if len(report.by_flow) > 1:
        lines += ["", f"{'flow':<20} {'calls':>6} {'ended':>6} {'contained':>10} "
                  f"{'transferred':>11} {'agent':>7} {'abandoned':>9} {'in queue':>8} "
                  f"{'failed':>7}"]
        for f in report.by_flow:
            lines.append(
                f"{f.flow:<20} {f.calls:>6} {f.ended:>6} {_pct(f.containment):>10} "
                f"{_pct(f.rate('transferred')):>11} {_pct(f.share(f.answered_by_agent)):>7} "
                f"{_pct(f.rate('abandoned')):>9} {_pct(f.rate('abandoned_in_queue')):>8} "
                f"{_pct(f.rate('failed')):>7}"
            )
    if report.nodes:
        lines += ["", f"{'flow':<16} {'node':<22} {'visits':>6} {'calls':>6} {'no-input':>14} "
                  f"{'no-match':>14} {'ended here':>10} {'hung up here':>14}"]
        for n in report.nodes:
            lines.append(
                f"{n.flow:<16} {n.node:<22} {n.visits:>6} {n.calls:>6} "
                f"{_count_rate(n.no_input, n.no_input_rate):>14} "
                f"{_count_rate(n.no_match, n.no_match_rate):>14} {n.ended_here:>10} "
                f"{_count_rate(n.abandoned_here, n.drop_off_rate):>14}"
            )
    lines += _queue_lines(report)
    if report.survey:
        lines += ["", f"{'survey question':<24} {'responses':>9} {'average':>8} {'skipped':>8}"]
        for s in report.survey:
            avg = "-" if s.average is None else f"{s.average:.2f}"
            lines.append(f"{s.question:<24} {s.responses:>9} {avg:>8} {s.skipped:>8}")
    if report.managers is not None and managers:
        lines.append(format_manager_text(report.managers))
    return "\n".join(lines)


def format_html(report: Report) -> str:
    """The report as one self-contained HTML page with inline SVG charts."""
    assert report.managers is not None, "build_report computes the managers' figures"
    scope = f"flow {report.flow}" if report.flow else "all flows"
    if report.since or report.until:
        scope += f", {report.since or 'the start'} to {report.until or 'now'}"
    return render_html(f"IVR report: {scope}", report.managers,
                       format_text(report, managers=False))


def format_csv(report: Report) -> str:
    """The report as long-form CSV (``section,label,figure,value``; the JSON's raw values)."""
    return render_csv(report.as_dict())


def _rate_lines(summary: Summary) -> list[str]:
    rows = (
        ("containment (self-service)", summary.containment),
        ("transferred", summary.rate("transferred")),
        ("entered an agent queue", summary.share(summary.queued)),
        ("answered by an agent", summary.share(summary.answered_by_agent)),
        ("abandoned in the IVR", summary.rate("abandoned")),
        ("abandoned in a queue", summary.rate("abandoned_in_queue")),
        ("failed", summary.rate("failed")),
    )
    return [f"  {label:<28}{_pct(rate):>8}" for label, rate in rows]


def _queue_lines(report: Report) -> list[str]:
    """The queues' and the agents' tables (times in seconds)."""
    lines: list[str] = []
    if report.queues:
        lines += ["", f"{'queue':<14} {'offered':>7} {'answered':>14} {'service level':>20} "
                  f"{'ASA s':>7} {'AHT s':>7} {'abandoned':>9} {'short':>5} {'abandon rate':>12} "
                  f"{'callbacks':>14} {'waiting':>7}"]
        exits = []
        for q in report.queues:
            d = q.as_dict()
            level = f"{_pct(d['service_level'])} ({d['service_level_threshold']:g} s)"
            lines.append(
                f"{q.queue:<14} {q.offered:>7} "
                f"{_count_rate(q.answered, d['answer_rate']):>14} {level:>20} "
                f"{d['average_speed_of_answer']:>7.1f} {d['average_handle_time']:>7.1f} "
                f"{q.abandoned:>9} {q.short_abandoned:>5} {_pct(d['abandon_rate']):>12} "
                f"{_count_rate(q.callbacks, d['callback_rate']):>14} {q.waiting:>7}"
            )
            if q.exits:
                exits.append(f"{q.queue}: " + ", ".join(f"{k} {v}" for k, v in
                                                         sorted(q.exits.items())))
        lines.append(f"  abandon rate: the abandoned but the short ones (under "
                     f"{report.short_abandon:g} s), over offered")
        if exits:
            lines.append("  left unanswered by an exit: " + "; ".join(exits))
    if report.agents:
        lines += ["", f"{'agent':<14} {'answered':>8} {'AHT s':>7} {'occupancy':>9} "
                  f"{'staffed s':>10} {'busy s':>10} {'paused s':>10}"]
        for a in report.agents:
            d = a.as_dict()
            lines.append(
                f"{a.agent:<14} {a.answered:>8} {d['average_handle_time']:>7.1f} "
                f"{_pct(d['occupancy']):>9} {a.staffed_time:>10.1f} {a.busy_time:>10.1f} "
                f"{a.paused_time:>10.1f}"
            )
    return lines


def format_json(report: Report) -> str:
    """The report as indented JSON (rates as fractions, durations in seconds)."""
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False)
