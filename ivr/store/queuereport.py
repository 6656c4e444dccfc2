"""Per-queue and per-agent figures over the call records and the agents' record (docs/ACD.md,
"Reports").

A queue's figures count *entries*: every ``queue`` event of a call of the report's window opens
one (a call sent on to a second queue by an exit counts once in each). An entry ends in exactly
one way, read from the call's events in order:

- answered: ``agent_connected`` (its ``queue_wait`` is the time to answer; ``agent_done``'s
  ``talk`` the talk time);
- abandoned: the caller hung up while waiting (a ``hangup`` carrying ``queue_wait``); short when
  the wait was under the short-abandon threshold;
- an exit: ``queue_exit`` with its reason (``max_wait``, ``no_agents``, ``full``, ``key``,
  ``no_queue``); ``callback`` when a ``callback`` event follows the key exit;
- ``moved``: a supervisor moved the caller to another queue (``queue_moved``); an entry in
  that queue opens there;
- ``other``: the call ended without any of these (an engine error); or still waiting when the
  call has not ended.

Handle time is talk plus the agent's wrap-up: the ``wrap_up`` span of the answering agent that
began when the call ended (within :data:`WRAP_UP_MATCH` seconds) in ``agent_states``; without
one (an agent with no wrap-up time, a store without the agents' record) it is the talk alone.

Agents' times come from ``agent_states`` alone, within the period: an agent's state at the
period's start is their last row before it, and a state lasts until their next row (or the end
of the period: ``until``, or now when that is earlier or not given).
"""

from __future__ import annotations

import bisect
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ivr.acd.model import AgentState

DEFAULT_SERVICE_LEVEL = 20.0  # seconds, when neither ivr.yaml nor the command line says
DEFAULT_SHORT_ABANDON = 5.0  # seconds: hang-ups sooner than this are not counted as abandons
HANDED_OFF = "asterisk_queue"  # ivr.engine.queueing's (the store does not import the engine)
WRAP_UP_MATCH = 2.0  # seconds between a call's end and its agent's wrap-up starting
MAX_WRAP_UP = 86_400.0  # the agents' record is read this far past the period (a wrap-up's end)

BUSY = frozenset({AgentState.ON_CALL, AgentState.WRAP_UP})
NOT_STAFFED = frozenset({AgentState.LOGGED_OUT, AgentState.PAUSED})


@dataclass
class Entry:
    """One call's stay in one queue."""

    queue: str
    call_id: str = ""
    end: str = ""  # answered | abandoned | an exit reason | callback | other | "" (waiting)
    wait: float | None = None
    agent: str | None = None
    talk: float | None = None
    ended_at: float | None = None  # wall clock, the end of the agent's call


@dataclass
class QueueStats:
    """The figures of one queue (see the module docstring)."""

    queue: str
    service_level_threshold: float
    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0  # every hang-up while waiting, short ones included
    short_abandoned: int = 0
    callbacks: int = 0
    exits: dict[str, int] = field(default_factory=dict)  # unanswered, by reason
    waiting: int = 0  # calls still in the queue
    wait_total: float = 0.0  # of the answered
    handled: int = 0  # answered calls whose talk time is known
    handle_total: float = 0.0
    talk_total: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        offered = self.offered
        return {
            "queue": self.queue,
            "offered": offered,
            "answered": self.answered,
            "answer_rate": ratio(self.answered, offered),
            "service_level": ratio(self.answered_in_time, offered),
            "service_level_threshold": self.service_level_threshold,
            "answered_in_threshold": self.answered_in_time,
            "average_speed_of_answer": mean(self.wait_total, self.answered),
            "average_handle_time": mean(self.handle_total, self.handled),
            "average_talk_time": mean(self.talk_total, self.handled),
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "abandon_rate": ratio(self.abandoned - self.short_abandoned, offered),
            "callbacks": self.callbacks,
            "callback_rate": ratio(self.callbacks, offered),
            "exits": dict(sorted(self.exits.items())),
            "waiting": self.waiting,
        }


@dataclass
class AgentStats:
    """The figures of one agent (see the module docstring)."""

    agent: str
    answered: int = 0
    handled: int = 0
    handle_total: float = 0.0
    staffed_time: float = 0.0  # logged in and not paused
    busy_time: float = 0.0  # on a call or in wrap-up
    paused_time: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "answered": self.answered,
            "average_handle_time": mean(self.handle_total, self.handled),
            "occupancy": ratio(self.busy_time, self.staffed_time),
            "staffed_time": round(self.staffed_time, 3),
            "busy_time": round(self.busy_time, 3),
            "paused_time": round(self.paused_time, 3),
        }


def ratio(part: float, whole: float) -> float:
    """``part / whole`` rounded to 4 places; 0.0 for an empty whole (the manager's report's
    figures round the same way, ivr/store/managers.py)."""
    return round(part / whole, 4) if whole else 0.0


def mean(total: float, count: int) -> float:
    """``total / count`` rounded to 3 places; 0.0 for no items."""
    return round(total / count, 3) if count else 0.0


# The queue's events of every call of the window that entered a queue, read by primary key.
_ENTRIES = """
SELECT e.call_id, c.started_at, c.outcome, e.t, e.kind,
    json_extract(e.data, '$.queue'), json_extract(e.data, '$.agent'),
    json_extract(e.data, '$.queue_wait'), json_extract(e.data, '$.talk'),
    json_extract(e.data, '$.reason'), json_extract(e.data, '$.by')
FROM calls c JOIN events e ON e.call_id = c.call_id
WHERE {cond} AND c.queue IS NOT NULL
    AND e.kind IN ('queue', 'agent_connected', 'agent_done', 'queue_exit', 'callback', 'hangup',
        'queue_moved')
ORDER BY e.call_id, e.seq
"""


def read_entries(conn: sqlite3.Connection, cond: str, args: list[object]) -> list[Entry]:
    """Every queue entry of the calls matching ``cond``, with how it ended."""
    entries: list[Entry] = []
    call = None
    open_: Entry | None = None  # waiting now
    last: Entry | None = None  # the call's latest entry
    connected: Entry | None = None  # with an agent now
    outcome = None
    for (call_id, started, call_outcome, t, kind, queue, agent, wait, talk, reason,
         by) in conn.execute(_ENTRIES.format(cond=cond), args):  # fmt: skip
        if call_id != call:
            _close(open_, outcome)
            call, open_, last, connected, outcome = call_id, None, None, None, call_outcome
        if kind == "queue":
            if open_ is not None:  # never left the previous one: lost track of it
                open_.end = "other"
            open_ = last = Entry(queue or "", call_id)
            entries.append(open_)
        elif kind == "agent_connected" and open_ is not None:
            open_.end, open_.wait, open_.agent = "answered", wait, agent
            connected, open_ = open_, None
        elif kind == "agent_done" and connected is not None:
            connected.talk = talk
            connected.ended_at = started + t if started is not None and t is not None else None
            connected = None
        elif kind == "queue_exit" and open_ is not None:
            open_.end, open_.wait = reason or "other", wait
            open_ = None
        elif kind == "queue_moved" and open_ is not None and queue and queue != open_.queue:
            # A supervisor moved the caller: the entry ends here unanswered ("moved") and one
            # in the new queue opens; its wait, like the caller's, counts from the first join.
            open_.end, open_.wait = "moved", wait
            open_ = last = Entry(queue, call_id)
            entries.append(open_)
        elif kind == "callback" and last is not None and last.end in ("key", ""):
            last.end = "callback"  # the key exit the caller left by was a callback's
            if last is open_:
                open_ = None
        elif kind == "hangup" and open_ is not None and wait is not None and by == "caller":
            open_.end, open_.wait = "abandoned", wait
            open_ = None
    _close(open_, outcome)
    return entries


def _close(entry: Entry | None, outcome: str | None) -> None:
    """A call's entry nothing ended: still waiting, or lost with the call (``other``). A call
    handed to an Asterisk queue (outcome ``asterisk_queue``) still waits there until the
    queue's events end its record (docs/ASTERISK.md)."""
    if entry is not None and outcome is not None and outcome != HANDED_OFF:
        entry.end = "other"


@dataclass
class Timeline:
    """One agent's rows of the agents' record, in order."""

    at: list[float] = field(default_factory=list)
    state: list[str] = field(default_factory=list)

    def wrap_up_after(self, ended_at: float) -> float | None:
        """The length of the wrap-up that began when a call ended at ``ended_at``, or None."""
        i = bisect.bisect_left(self.at, ended_at - WRAP_UP_MATCH)
        while i < len(self.at) and self.at[i] <= ended_at + WRAP_UP_MATCH:
            if self.state[i] == AgentState.WRAP_UP:
                return self.at[i + 1] - self.at[i] if i + 1 < len(self.at) else None
            i += 1
        return None

    def times(self, start: float, end: float) -> tuple[float, float, float]:
        """Seconds staffed (logged in, not paused), busy and paused within [start, end)."""
        staffed = busy = paused = 0.0
        for i, (at, state) in enumerate(zip(self.at, self.state, strict=True)):
            until = self.at[i + 1] if i + 1 < len(self.at) else end
            span = min(until, end) - max(at, start)
            if span <= 0:
                continue
            if state == AgentState.PAUSED:
                paused += span
            elif state not in NOT_STAFFED:
                staffed += span
                if state in BUSY:
                    busy += span
        return staffed, busy, paused


_AGENTS = """
WITH RECURSIVE a(agent) AS (
    SELECT MIN(agent) FROM agent_states
    UNION ALL
    SELECT (SELECT MIN(agent) FROM agent_states WHERE agent > a.agent) FROM a
    WHERE a.agent IS NOT NULL
)
SELECT agent FROM a WHERE agent IS NOT NULL
"""
# From the agent's last row at or before the start (their state then) to ``stop``.
_TIMELINE = """
SELECT at, state FROM agent_states
WHERE agent = :agent AND at < :stop AND at >= coalesce(
    (SELECT MAX(at) FROM agent_states WHERE agent = :agent AND at <= :start), :start)
ORDER BY at, rowid
"""


def read_timelines(conn: sqlite3.Connection, start: float | None,
                   stop: float | None) -> dict[str, Timeline]:  # fmt: skip
    """Every agent's rows from their state at ``start`` (the beginning: None) to ``stop``."""
    timelines: dict[str, Timeline] = {}
    # One index probe per agent (a loose scan), not a scan of the whole history.
    for (agent,) in conn.execute(_AGENTS).fetchall():
        line = Timeline()
        bounds = {"agent": agent, "start": -math.inf if start is None else start,
                  "stop": math.inf if stop is None else stop}  # fmt: skip
        for at, state in conn.execute(_TIMELINE, bounds):
            line.at.append(at)
            line.state.append(state)
        if line.at:
            timelines[agent] = line
    return timelines


def queue_figures(
    conn: sqlite3.Connection,
    cond: str,
    args: list[object],
    *,
    since: float | None,
    until: float | None,
    now: float,
    service_levels: Mapping[str, float] | None = None,
    service_level: float = DEFAULT_SERVICE_LEVEL,
    short_abandon: float = DEFAULT_SHORT_ABANDON,
) -> tuple[list[QueueStats], list[AgentStats]]:
    """Per-queue figures of the calls matching ``cond`` and per-agent figures for the period
    ``[since, min(until, now))`` (see the module docstring)."""
    service_levels = service_levels or {}
    end = now if until is None else min(until, now)
    timelines = read_timelines(conn, since, None if until is None else until + MAX_WRAP_UP)
    queues: dict[str, QueueStats] = {}
    agents: dict[str, AgentStats] = {}
    for entry in read_entries(conn, cond, args):
        q = queues.get(entry.queue)
        if q is None:
            threshold = service_levels.get(entry.queue, service_level)
            q = queues[entry.queue] = QueueStats(entry.queue, threshold)
        q.offered += 1
        wait = entry.wait or 0.0
        if entry.end == "answered":
            q.answered += 1
            q.wait_total += wait
            q.answered_in_time += wait <= q.service_level_threshold
            a = None
            if entry.agent is not None:
                a = agents.setdefault(entry.agent, AgentStats(entry.agent))
                a.answered += 1
            if entry.talk is not None:
                handle = entry.talk + _wrap_up(timelines, entry)
                q.handled += 1
                q.handle_total += handle
                q.talk_total += entry.talk
                if a is not None:
                    a.handled += 1
                    a.handle_total += handle
        elif entry.end == "abandoned":
            q.abandoned += 1
            q.short_abandoned += wait < short_abandon
        elif entry.end == "":
            q.waiting += 1
        else:
            q.exits[entry.end] = q.exits.get(entry.end, 0) + 1
            q.callbacks += entry.end == "callback"
    for agent, line in timelines.items():
        start = since if since is not None else line.at[0]
        staffed, busy, paused = line.times(start, end)
        if staffed or paused or agent in agents:
            a = agents.setdefault(agent, AgentStats(agent))
            a.staffed_time, a.busy_time, a.paused_time = staffed, busy, paused
    return sorted(queues.values(), key=lambda q: q.queue), sorted(agents.values(),
                                                                   key=lambda a: a.agent)


def handle_time(timelines: dict[str, Timeline], entry: Entry) -> float | None:
    """An answered entry's handle time (talk plus the agent's wrap-up), None when its talk time
    is unknown (the agent's call has not ended)."""
    if entry.talk is None:
        return None
    return entry.talk + _wrap_up(timelines, entry)


def _wrap_up(timelines: dict[str, Timeline], entry: Entry) -> float:
    line = timelines.get(entry.agent or "")
    if line is None or entry.ended_at is None:
        return 0.0
    return line.wrap_up_after(entry.ended_at) or 0.0


def service_levels_of(config: object) -> dict[str, float]:
    """Each queue's service-level threshold from ivr.yaml's ``acd.queues`` (a mapping of name to
    queue, or a sequence of queues with a ``name``), when the configuration has one."""
    queues = getattr(getattr(config, "acd", None), "queues", None)
    if queues is None:
        return {}
    items: list[tuple[object, object]]
    if isinstance(queues, Mapping):
        items = list(queues.items())
    else:
        try:
            items = [(getattr(q, "name", None), q) for q in queues]
        except TypeError:
            return {}
    out: dict[str, float] = {}
    for name, spec in items:
        seconds = getattr(spec, "service_level", None)
        if isinstance(name, str) and isinstance(seconds, int | float) \
                and not isinstance(seconds, bool):  # fmt: skip
            out[name] = float(seconds)
    return out
