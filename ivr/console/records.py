"""What the heat map and the call timelines read from the call store (SQLite, read-only use).

Each function opens the store with :func:`ivr.store.db.connect` on the thread it runs on (the
console calls them through ``asyncio.to_thread``) and closes it again: the console never holds
a connection a writer could wait on. Every query is bounded (``LIMIT``), every value from a
request is a bound parameter, never SQL text.

Secrets: the events are read as the store wrote them, already masked by the engine (a secret
``collect`` is ``****``) and without any ``secret_keys`` field; nothing here can un-mask them.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.console.flowmap import Traffic
from ivr.store.db import connect
from ivr.store.report import node_figures

MAX_CALLS = 200  # rows of one call list
MAX_EVENTS = 5000  # events of one timeline (a call stuck in a loop stops here)
MAX_QUERY = 64  # characters of a search term
LIVE_WITHIN = 6 * 3600.0  # a call without an end older than this is no live call (a crash's)
CALL_COLUMNS = ("call_id", "flow", "caller", "called", "transport", "started_at", "duration",
                "outcome", "last_node", "last_flow", "language", "queue", "agent", "qa")


@contextmanager
def _store(path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


def day_bounds(day: str | None) -> str:
    """``day`` as an ISO date (today, UTC, as ``ivr report`` reads a bare date, when None).

    Raises:
        ValueError: not an ISO date.
    """
    if not day:
        return dt.datetime.now(dt.UTC).date().isoformat()
    return dt.date.fromisoformat(day[:10]).isoformat()


def flow_traffic(path: Path, flow: str, day: str, include_qa: bool) -> dict[str, Traffic]:
    """Per node of ``flow`` (the node's own flow: a sub-flow's nodes count every call that went
    through them), the figures of calls started on ``day``."""
    with _store(path) as conn:
        stats = node_figures(conn, day, day, include_qa=include_qa)
    return {s.node: Traffic(s.visits, s.calls, s.no_input, s.no_match, s.ended_here,
                            s.abandoned_here) for s in stats if s.flow == flow}  # fmt: skip


def flow_calls(path: Path, day: str, include_qa: bool) -> dict[str, int]:
    """Calls started on ``day`` per flow they started in."""
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()
    qa = "" if include_qa else " AND qa = 0"
    with _store(path) as conn:
        rows = conn.execute("SELECT flow, COUNT(*) FROM calls WHERE started_at >= ? AND "
                            f"started_at < ?{qa} GROUP BY flow", (start, start + 86400))
        return {str(flow): int(n) for flow, n in rows}


def flow_branches(path: Path, flow: str, day: str, include_qa: bool) -> dict[tuple[str, str], int]:
    """How often each (node, target) way out of ``flow``'s nodes was taken by calls started on
    ``day`` (the ``match`` events: the branch a node took)."""
    start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp()
    qa = "" if include_qa else " AND c.qa = 0"
    with _store(path) as conn:
        rows = conn.execute(
            "SELECT e.node, json_extract(e.data, '$.target'), COUNT(*) FROM calls c "
            "JOIN events e ON e.call_id = c.call_id WHERE c.started_at >= ? AND "
            f"c.started_at < ?{qa} AND e.kind = 'match' AND e.flow = ? GROUP BY 1, 2",
            (start, start + 86400, flow))
        return {(str(node), str(target)): int(n) for node, target, n in rows}


@dataclass
class CallQuery:
    """A search of the calls: every field optional; ``text`` matches caller, called number or
    a call id's start."""

    text: str = ""
    outcome: str = ""
    flow: str = ""
    day: str = ""
    include_qa: bool = True  # a QA call is a call too; the list marks it
    limit: int = 50

    def where(self) -> tuple[str, list[object]]:
        conds: list[str] = []
        args: list[object] = []
        if self.text:
            like = _like(self.text[:MAX_QUERY])
            conds.append("(caller LIKE ? ESCAPE '\\' OR called LIKE ? ESCAPE '\\' "
                         "OR call_id LIKE ? ESCAPE '\\')")
            args += [f"%{like}%", f"%{like}%", f"{like}%"]
        for column, value in (("outcome", self.outcome), ("flow", self.flow)):
            if value:
                conds.append(f"{column} = ?")
                args.append(value[:MAX_QUERY])
        if self.day:
            start = dt.datetime.fromisoformat(day_bounds(self.day)).replace(tzinfo=dt.UTC)
            conds.append("started_at >= ? AND started_at < ?")
            args += [start.timestamp(), start.timestamp() + 86400]
        if not self.include_qa:
            conds.append("qa = 0")
        return (" AND ".join(conds) or "1 = 1"), args


def _like(text: str) -> str:
    """``text`` with LIKE's wildcards taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_calls(path: Path, query: CallQuery) -> list[dict[str, Any]]:
    """The newest calls matching ``query`` (at most :data:`MAX_CALLS`)."""
    cond, args = query.where()
    limit = min(max(query.limit, 1), MAX_CALLS)
    with _store(path) as conn:
        rows = conn.execute(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE {cond} "
                            "ORDER BY started_at DESC LIMIT ?", [*args, limit]).fetchall()
    return [_call(row) for row in rows]


def outcomes(path: Path) -> list[str]:
    """The outcomes the store knows (for the search form)."""
    with _store(path) as conn:
        rows = conn.execute("SELECT DISTINCT outcome FROM calls WHERE outcome IS NOT NULL "
                            "ORDER BY 1 LIMIT 50")
        return [str(r[0]) for r in rows]


def _call(row: tuple[Any, ...]) -> dict[str, Any]:
    call = dict(zip(CALL_COLUMNS, row, strict=True))
    call["qa"] = bool(call["qa"])
    return call


@dataclass
class Timeline:
    """One call: its summary row and every event in order."""

    call: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False


def timeline(path: Path, call_id: str) -> Timeline | None:
    """The call ``call_id`` and its events (None: no such call)."""
    with _store(path) as conn:
        row = conn.execute(f"SELECT {', '.join(CALL_COLUMNS)} FROM calls WHERE call_id = ?",
                           (call_id,)).fetchone()
        if row is None:
            return None
        rows = conn.execute("SELECT seq, t, kind, node, flow, data FROM events WHERE call_id = ? "
                            "ORDER BY seq LIMIT ?", (call_id, MAX_EVENTS + 1)).fetchall()
    result = Timeline(_call(row), truncated=len(rows) > MAX_EVENTS)
    for seq, t, kind, node, flow, data in rows[:MAX_EVENTS]:
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {}
        result.events.append({"seq": seq, "t": t, "kind": kind, "node": node, "flow": flow,
                              "data": parsed if isinstance(parsed, dict) else {}})
    return result


def recording_path(path: Path, call_id: str, number: int, folder: Path) -> Path | None:
    """The file of the call's ``number``-th recording (1-based, in event order), only if it is
    a regular ``.wav`` file inside ``folder`` once every link is resolved; else None.

    The path comes from the store's own ``recording`` event, never from a request: a request
    names the call and the number only.
    """
    if not 1 <= number <= MAX_EVENTS:  # also keeps SQLite's OFFSET within its integers
        return None
    with _store(path) as conn:
        row = conn.execute(
            "SELECT json_extract(data, '$.path') FROM events WHERE call_id = ? AND "
            "kind = 'recording' ORDER BY seq LIMIT 1 OFFSET ?", (call_id, number - 1)).fetchone()
    if row is None or not isinstance(row[0], str) or not row[0]:
        return None
    try:
        base = folder.resolve(strict=True)
        file = Path(row[0]).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not file.is_relative_to(base) or file.suffix.lower() != ".wav" or not file.is_file():
        return None
    return file


def live_calls(path: Path, count: int) -> list[dict[str, Any]]:
    """The ``count`` newest calls without an end (the calls in progress the engine metrics
    count), each with the node it is at; older than :data:`LIVE_WITHIN` never (a crash's)."""
    if count <= 0:
        return []
    since = time.time() - LIVE_WITHIN
    with _store(path) as conn:
        rows = conn.execute(
            "SELECT c.call_id, c.flow, c.caller, c.called, c.started_at, c.qa, "
            "(SELECT e.node FROM events e WHERE e.call_id = c.call_id AND e.kind = 'node_enter' "
            "ORDER BY e.seq DESC LIMIT 1), "
            "(SELECT e.flow FROM events e WHERE e.call_id = c.call_id AND e.kind = 'node_enter' "
            "ORDER BY e.seq DESC LIMIT 1) "
            "FROM calls c WHERE c.outcome IS NULL AND c.started_at >= ? "
            "ORDER BY c.started_at DESC LIMIT ?", (since, min(count, MAX_CALLS))).fetchall()
    return [{"call_id": r[0], "flow": r[1], "caller": r[2], "called": r[3], "started_at": r[4],
             "qa": bool(r[5]), "node": r[6], "node_flow": r[7]} for r in rows]  # fmt: skip
