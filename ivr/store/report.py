"""KPIs over the call records: containment, transfer/queue rates, abandonment, per-node funnel.

Definitions (what a contact-centre manager reads):
- containment: calls the flow finished itself (outcome ``self_service`` or ``closed``) over all
  ended calls;
- transfer rate / queue rate: outcomes ``transferred`` / ``queued`` over ended calls;
- abandonment in the IVR: the caller hung up inside the flow (``abandoned``) over ended calls;
- per node: visits, no-input and no-match counts and rates (per visit), calls that entered the
  node, and calls that ended there (the funnel's drop-off), split into abandoned and other.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from ivr.engine import events as ev

CONTAINED = ("self_service", "closed")


@dataclass
class NodeStats:
    flow: str
    node: str
    visits: int = 0
    calls: int = 0  # distinct calls that entered the node
    no_input: int = 0
    no_match: int = 0
    ended_here: int = 0
    abandoned_here: int = 0

    @property
    def no_input_rate(self) -> float:
        return self.no_input / self.visits if self.visits else 0.0

    @property
    def no_match_rate(self) -> float:
        return self.no_match / self.visits if self.visits else 0.0


@dataclass
class SurveyStats:
    question: str
    responses: int
    average: float | None
    skipped: int


@dataclass
class Report:
    flow: str | None
    since: str | None
    until: str | None
    calls: int = 0
    ended: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    average_duration: float = 0.0
    nodes: list[NodeStats] = field(default_factory=list)
    survey: list[SurveyStats] = field(default_factory=list)

    def rate(self, *outcomes: str) -> float:
        return sum(self.outcomes.get(o, 0) for o in outcomes) / self.ended if self.ended else 0.0

    @property
    def containment(self) -> float:
        return self.rate(*CONTAINED)

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["containment"] = round(self.containment, 4)
        out["transfer_rate"] = round(self.rate("transferred"), 4)
        out["queue_rate"] = round(self.rate("queued"), 4)
        out["abandonment"] = round(self.rate("abandoned"), 4)
        out["nodes"] = [
            {
                **asdict(n),
                "no_input_rate": round(n.no_input_rate, 4),
                "no_match_rate": round(n.no_match_rate, 4),
            }
            for n in self.nodes
        ]
        return out


def _epoch(date: str | None) -> float | None:
    if not date:
        return None
    moment = datetime.fromisoformat(date)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def build_report(
    conn: sqlite3.Connection,
    flow: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Report:
    """Every KPI for the calls of ``flow`` (all flows when None) started in [since, until)."""
    where: list[str] = ["1 = 1"]
    args: list[object] = []
    if flow:
        where.append("c.flow = ?")
        args.append(flow)
    for op, value in ((">=", _epoch(since)), ("<", _epoch(until))):
        if value is not None:
            where.append(f"c.started_at {op} ?")
            args.append(value)
    cond = " AND ".join(where)
    report = Report(flow, since, until)
    report.calls = conn.execute(f"SELECT COUNT(*) FROM calls c WHERE {cond}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT outcome, COUNT(*), AVG(duration) FROM calls c WHERE {cond} "
        "AND outcome IS NOT NULL GROUP BY outcome",
        args,
    ).fetchall()
    report.outcomes = {outcome: count for outcome, count, _ in rows}
    report.ended = sum(report.outcomes.values())
    if report.ended:
        report.average_duration = sum(n * (avg or 0.0) for _, n, avg in rows) / report.ended
    report.nodes = _node_stats(conn, cond, args)
    report.survey = _survey_stats(conn, cond, args)
    return report


def _node_stats(conn: sqlite3.Connection, cond: str, args: list[object]) -> list[NodeStats]:
    stats: dict[tuple[str, str], NodeStats] = {}
    first_seen: dict[tuple[str, str], float] = {}
    query = (
        f"SELECT e.flow, e.node, e.kind, COUNT(*), COUNT(DISTINCT e.call_id), MIN(e.t) "
        f"FROM events e JOIN calls c ON c.call_id = e.call_id WHERE {cond} "
        "AND e.kind IN ('node_enter', 'no_input', 'no_match') AND e.node IS NOT NULL "
        "GROUP BY e.flow, e.node, e.kind"
    )
    for flow, node, kind, count, calls, first in conn.execute(query, args):
        key = (flow or "", node)
        item = stats.setdefault(key, NodeStats(flow or "", node))
        if kind == ev.NODE_ENTER:
            item.visits, item.calls = count, calls
            first_seen[key] = first
        elif kind == "no_input":
            item.no_input = count
        else:
            item.no_match = count
    ended = (
        f"SELECT c.flow, c.last_node, c.outcome, COUNT(*) FROM calls c WHERE {cond} "
        "AND c.outcome IS NOT NULL AND c.last_node IS NOT NULL GROUP BY c.flow, c.last_node, "
        "c.outcome"
    )
    for flow, node, outcome, count in conn.execute(ended, args):
        item = stats.setdefault((flow or "", node), NodeStats(flow or "", node))
        item.ended_here += count
        if outcome == "abandoned":
            item.abandoned_here += count
    return sorted(stats.values(), key=lambda s: (s.flow, first_seen.get((s.flow, s.node), 1e18),
                                                 -s.visits, s.node))


def _survey_stats(conn: sqlite3.Connection, cond: str, args: list[object]) -> list[SurveyStats]:
    query = (
        "SELECT s.question, COUNT(s.answer), AVG(s.answer), SUM(s.answer IS NULL) "
        f"FROM survey s JOIN calls c ON c.call_id = s.call_id WHERE {cond} "
        "GROUP BY s.question ORDER BY s.question"
    )
    return [
        SurveyStats(q, n, round(avg, 2) if avg is not None else None, skipped or 0)
        for q, n, avg, skipped in conn.execute(query, args)
    ]


def _pct(value: float) -> str:
    return f"{100 * value:5.1f} %"


def format_text(report: Report) -> str:
    """The report as aligned text tables."""
    scope = report.flow or "all flows"
    window = f" from {report.since or '-'} to {report.until or '-'}" if (
        report.since or report.until) else ""
    lines = [
        f"Calls: {report.calls} ({scope}{window}), ended: {report.ended}, "
        f"average duration {report.average_duration:.1f} s",
        f"  containment (self-service)  {_pct(report.containment)}",
        f"  transferred                 {_pct(report.rate('transferred'))}",
        f"  queued for an agent         {_pct(report.rate('queued'))}",
        f"  abandoned in the IVR        {_pct(report.rate('abandoned'))}",
        f"  failed                      {_pct(report.rate('failed'))}",
        "  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(report.outcomes.items())),
        "",
        f"{'flow':<16} {'node':<24} {'visits':>6} {'calls':>6} {'no-input':>9} "
        f"{'no-match':>9} {'ended here':>10} {'abandoned':>9}",
    ]
    for n in report.nodes:
        lines.append(
            f"{n.flow:<16} {n.node:<24} {n.visits:>6} {n.calls:>6} "
            f"{_pct(n.no_input_rate):>9} {_pct(n.no_match_rate):>9} {n.ended_here:>10} "
            f"{n.abandoned_here:>9}"
        )
    if report.survey:
        lines += ["", f"{'survey question':<24} {'responses':>9} {'average':>8} {'skipped':>8}"]
        for s in report.survey:
            avg = "-" if s.average is None else f"{s.average:.2f}"
            lines.append(f"{s.question:<24} {s.responses:>9} {avg:>8} {s.skipped:>8}")
    return "\n".join(lines)


def format_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False)
