"""Call records and step events in SQLite (WAL), written as they happen.

The store is an event sink: :meth:`CallStore.sink` is called on the engine's event loop and only
appends the event to an in-memory queue (a deque: no lock on the loop's side). One writer thread
takes everything queued and writes it as one statement, which is one transaction (up to
:data:`MAX_BATCH` events each), so the loop never waits on the disk and a crash loses only what
was not yet committed. There is no timer: a quiet store commits every event at once, a busy one
commits bigger batches. ``CallStore(path, threaded=False)`` writes at once in the caller's thread
(tools and tests). The agents' state changes (:meth:`CallStore.agent_sink`, the queue authority's
``on_state`` hook) take the same queue and the same writer.

Secrets: the engine masks them before events exist. As a second line of defence the store drops
every data key that an event names in ``data["secret_keys"]`` (and that list itself), from the
events table and from the call summary alike.

Tables (``PRAGMA user_version`` is the schema version; :data:`MIGRATIONS` upgrades old files):

- ``calls``: one row per call, kept up to date from ``call_start``, ``queue``, ``call_end`` and
  ``hangup`` by triggers on ``events``.
  ``last_flow`` is the flow of ``last_node`` (a sub-flow's node when the call ended there). For
  a caller who hangs up while waiting in the queue sets ``queue_wait`` (seconds from
  ``queued_at``) and ``abandoned_in_queue`` (1); an agent's answer sets ``answered_at``,
  ``agent`` and ``queue_wait``, the end of the agent's call ``talk_time``; ``ring_attempts``
  counts the agents rung; ``queue_exit`` says why a caller left the queue unanswered.
  ``answered_at`` and ``agent`` stay NULL until the agent queue fills them. ``qa`` is 1 for a
  QA call (``call_start`` data ``qa: true``: ``ivr test``'s calls); reports leave those out.
- ``events``: every step, ``data`` as JSON; ``flow`` is the flow of ``node``.
- ``survey``: one row per answered (or skipped: NULL) survey question, from ``survey`` events.
- ``refused``: calls refused before an answer (503, 404, 488, 486 ...), one small row each,
  cleaned and rate-capped (:mod:`ivr.store.refused`), written by :meth:`CallStore.refused`.
- ``agent_states``: the agents' record, one row per state change of an agent (``state`` one of
  ``logged_out``, ``available``, ``ringing``, ``on_call``, ``wrap_up``, ``paused``; ``reason``
  the pause's; ``at`` wall clock), written by :meth:`CallStore.agent_sink`, which the queue
  authority's ``on_state`` hook calls. A state lasts until the agent's next row.

Times: ``started_at``, ``ended_at`` and ``queued_at`` are wall clock (epoch seconds, from the
``wall`` of ``call_start``); ``t`` and ``duration`` are seconds of call time.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ivr.core.events import Event
from ivr.store.refused import INSERT_REFUSED, RateCap, RefusedCall

log = logging.getLogger("ivr.store")

SCHEMA_VERSION = 6

# The call summary is kept by triggers on events, so that one INSERT of a whole batch is the
# whole write (see _INSERT_EVENTS); they read the stored, secret-free data. Upserts, not plain
# updates: a replayed call_start must not wipe the outcome, and a store attached in the middle
# of a call still records how it ended. queued_at is wall clock: the call's start plus t.
_TRIGGERS = """
CREATE TRIGGER events_call_end AFTER INSERT ON events WHEN NEW.kind = 'call_end' BEGIN
    INSERT INTO calls (call_id, outcome, duration, last_node, last_flow, language)
    VALUES (NEW.call_id, json_extract(NEW.data, '$.outcome'),
        json_extract(NEW.data, '$.duration'), json_extract(NEW.data, '$.last_node'),
        json_extract(NEW.data, '$.flow'), json_extract(NEW.data, '$.language'))
    ON CONFLICT (call_id) DO UPDATE SET outcome = excluded.outcome,
        duration = excluded.duration, ended_at = calls.started_at + excluded.duration,
        last_node = excluded.last_node, last_flow = excluded.last_flow,
        language = excluded.language;
END;
CREATE TRIGGER events_queue AFTER INSERT ON events WHEN NEW.kind = 'queue' BEGIN
    UPDATE calls SET queue = json_extract(NEW.data, '$.queue'), queued_at = started_at + NEW.t
    WHERE call_id = NEW.call_id;
END;
CREATE TRIGGER events_survey AFTER INSERT ON events WHEN NEW.kind = 'survey' BEGIN
    INSERT OR REPLACE INTO survey (call_id, question, answer)
    VALUES (NEW.call_id, json_extract(NEW.data, '$.question'),
        json_extract(NEW.data, '$.answer'));
END;
"""

# The call's start, schema version 6: ``qa`` (1) marks a QA call (``ivr test --store``, or a live
# QA call a server with ``sip.test_headers`` saw marked); production reports leave those out.
_CALL_START_TRIGGER = """
CREATE TRIGGER events_call_start AFTER INSERT ON events WHEN NEW.kind = 'call_start' BEGIN
    INSERT INTO calls (call_id, flow, flow_version, caller, called, transport, started_at, qa)
    VALUES (NEW.call_id, json_extract(NEW.data, '$.flow'),
        json_extract(NEW.data, '$.flow_version'), json_extract(NEW.data, '$.caller'),
        json_extract(NEW.data, '$.called'), json_extract(NEW.data, '$.transport'),
        json_extract(NEW.data, '$.wall'), coalesce(json_extract(NEW.data, '$.qa'), 0) != 0)
    ON CONFLICT (call_id) DO UPDATE SET flow = excluded.flow,
        flow_version = excluded.flow_version, caller = excluded.caller,
        called = excluded.called, transport = excluded.transport,
        started_at = excluded.started_at, qa = excluded.qa;
END;
"""

# The call's start before schema version 6 (migration 1 creates it; migration 5 replaces it).
_CALL_START_TRIGGER_V1 = """
CREATE TRIGGER events_call_start AFTER INSERT ON events WHEN NEW.kind = 'call_start' BEGIN
    INSERT INTO calls (call_id, flow, flow_version, caller, called, transport, started_at)
    VALUES (NEW.call_id, json_extract(NEW.data, '$.flow'),
        json_extract(NEW.data, '$.flow_version'), json_extract(NEW.data, '$.caller'),
        json_extract(NEW.data, '$.called'), json_extract(NEW.data, '$.transport'),
        json_extract(NEW.data, '$.wall'))
    ON CONFLICT (call_id) DO UPDATE SET flow = excluded.flow,
        flow_version = excluded.flow_version, caller = excluded.caller,
        called = excluded.called, transport = excluded.transport,
        started_at = excluded.started_at;
END;
"""

# Schema version 6: calls refused before an answer (503 full or draining, 404 no flow, 488 no
# codec, pyVoIP's 486 ...), one small row each: ``at`` wall clock, ``count`` > 1 for refusals
# merged by the store's rate cap (see :class:`RefusedCall`).
_REFUSED = """
CREATE TABLE refused (
    at REAL NOT NULL, call_id TEXT, caller TEXT, called TEXT, status INTEGER NOT NULL,
    reason TEXT, transport TEXT, qa INTEGER NOT NULL DEFAULT 0, count INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX refused_at ON refused (at);
"""
_QA_COLUMN = """
ALTER TABLE calls ADD COLUMN qa INTEGER NOT NULL DEFAULT 0;
DROP TRIGGER events_call_start;
"""

# Schema version 3: a hang-up after the call's end at a queue (the caller gave up waiting)
# carries the time in queue.
_QUEUE_TRIGGERS = """
CREATE TRIGGER events_hangup_in_queue AFTER INSERT ON events
WHEN NEW.kind = 'hangup' AND json_extract(NEW.data, '$.queue_wait') IS NOT NULL BEGIN
    UPDATE calls SET queue_wait = json_extract(NEW.data, '$.queue_wait'),
        abandoned_in_queue = (json_extract(NEW.data, '$.by') = 'caller')
    WHERE call_id = NEW.call_id;
END;
"""

# Schema version 4: the agent queue's steps fill the call's row: ring attempts, the answer
# (answered_at, agent, time in queue), talk time, and why a caller left the queue unanswered.
_AGENT_COLUMNS = """
ALTER TABLE calls ADD COLUMN ring_attempts INTEGER;
ALTER TABLE calls ADD COLUMN talk_time REAL;
ALTER TABLE calls ADD COLUMN queue_exit TEXT;
"""
_AGENT_TRIGGERS = """
CREATE TRIGGER events_agent_ring AFTER INSERT ON events WHEN NEW.kind = 'agent_ring' BEGIN
    UPDATE calls SET ring_attempts = coalesce(ring_attempts, 0) + 1 WHERE call_id = NEW.call_id;
END;
CREATE TRIGGER events_agent_connected AFTER INSERT ON events
WHEN NEW.kind = 'agent_connected' BEGIN
    UPDATE calls SET answered_at = started_at + NEW.t, agent = json_extract(NEW.data, '$.agent'),
        queue_wait = json_extract(NEW.data, '$.queue_wait')
    WHERE call_id = NEW.call_id;
END;
CREATE TRIGGER events_agent_done AFTER INSERT ON events WHEN NEW.kind = 'agent_done' BEGIN
    UPDATE calls SET talk_time = json_extract(NEW.data, '$.talk') WHERE call_id = NEW.call_id;
END;
CREATE TRIGGER events_queue_exit AFTER INSERT ON events WHEN NEW.kind = 'queue_exit' BEGIN
    UPDATE calls SET queue_exit = json_extract(NEW.data, '$.reason'),
        queue_wait = json_extract(NEW.data, '$.queue_wait')
    WHERE call_id = NEW.call_id;
END;
"""

# Schema version 5: the agents' record (occupancy, wrap-up). Read by agent and time: the state an
# agent was in when a report's period begins is that agent's last row before it.
_AGENT_STATES = """
CREATE TABLE agent_states (
    agent TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
    at REAL NOT NULL  -- wall clock, seconds since the epoch
);
CREATE INDEX agent_states_agent_at ON agent_states (agent, at);
"""

# No index on events but its primary key: the reports start from the calls (by started_at) and
# read each call's events by key. An index on (kind, flow, node) cost a third of the write
# speed and made the planner pick a slower plan for a time window.
_SCHEMA = (
    """
CREATE TABLE calls (
    call_id TEXT PRIMARY KEY,
    flow TEXT, flow_version TEXT, caller TEXT, called TEXT, transport TEXT,
    started_at REAL,  -- wall clock, seconds since the epoch
    ended_at REAL, duration REAL, outcome TEXT, last_node TEXT, language TEXT,
    -- the agent queue's: time in queue, answer (filled by the agent queue), abandonment
    queue TEXT, queued_at REAL, queue_wait REAL, answered_at REAL, agent TEXT,
    abandoned_in_queue INTEGER,
    last_flow TEXT,  -- the flow of last_node (a sub-flow's when the call ended in one)
    ring_attempts INTEGER, talk_time REAL, queue_exit TEXT,
    qa INTEGER NOT NULL DEFAULT 0  -- a QA call (ivr test): left out of reports by default
);
CREATE INDEX calls_started ON calls (started_at);
CREATE TABLE events (
    call_id TEXT NOT NULL, seq INTEGER NOT NULL, t REAL, kind TEXT NOT NULL,
    node TEXT, flow TEXT, data TEXT,
    PRIMARY KEY (call_id, seq)
);
CREATE TABLE survey (
    call_id TEXT NOT NULL, question TEXT NOT NULL, answer INTEGER,
    PRIMARY KEY (call_id, question)
);
"""
    + _CALL_START_TRIGGER
    + _TRIGGERS
    + _QUEUE_TRIGGERS
    + _AGENT_TRIGGERS
    + _AGENT_STATES
    + _REFUSED
)

# MIGRATIONS[n] upgrades a version-n file to version n+1, inside the opening transaction.
MIGRATIONS: dict[int, str] = {
    1: """
    ALTER TABLE calls ADD COLUMN last_flow TEXT;
    UPDATE calls SET last_flow = (
        SELECT e.flow FROM events e WHERE e.call_id = calls.call_id AND e.kind = 'node_enter'
        ORDER BY e.seq DESC LIMIT 1
    ) WHERE last_node IS NOT NULL;
    DROP INDEX IF EXISTS events_kind_node;
    """
    + _TRIGGERS
    + _CALL_START_TRIGGER_V1,
    2: _QUEUE_TRIGGERS,
    3: _AGENT_COLUMNS + _AGENT_TRIGGERS,
    4: _AGENT_STATES,
    5: _QA_COLUMN + _CALL_START_TRIGGER + _REFUSED,
}

# A batch goes to SQLite as ONE statement with its rows as one JSON text, not executemany:
# a statement releases the GIL once, executemany releases and re-takes it for every row, and
# a writer thread that must win the GIL back from a busy event loop (every 5 ms switch
# interval) then writes ~200 rows a second: measured, it wrote almost nothing while the
# simulator ran. One statement is also one transaction (autocommit), triggers included.
# Row items: call_id, seq, t, kind, node, data.
_INSERT_EVENTS = (
    "INSERT OR REPLACE INTO events (call_id, seq, t, kind, node, flow, data) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    "json_extract(value, '$[5].flow'), json_extract(value, '$[5]') FROM json_each(?)"
)
# A crash (kill -9, power) leaves the calls in progress without a call_end: at the next start
# each gets one, outcome "interrupted", at the time of its last event, so every call has an end
# and `ivr report` does not count them as still running. The trigger fills the summary row.
_CLOSE_INTERRUPTED = """
INSERT INTO events (call_id, seq, t, kind, node, flow, data)
SELECT e.call_id, MAX(e.seq) + 1, MAX(e.t), 'call_end', NULL, NULL,
    json_object('outcome', 'interrupted', 'duration', COALESCE(MAX(e.t), 0),
        'last_node', (SELECT n.node FROM events n WHERE n.call_id = e.call_id
                      AND n.kind = 'node_enter' ORDER BY n.seq DESC LIMIT 1),
        'flow', (SELECT n.flow FROM events n WHERE n.call_id = e.call_id
                 AND n.kind = 'node_enter' ORDER BY n.seq DESC LIMIT 1),
        'language', NULL)
FROM events e JOIN calls c ON c.call_id = e.call_id
WHERE c.outcome IS NULL
GROUP BY e.call_id
"""
INTERRUPTED = "interrupted"

# Row items: agent, state, reason, at.
_INSERT_AGENT_STATES = (
    "INSERT INTO agent_states (agent, state, reason, at) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?)"
)

# The most events in one statement: encoding them to JSON holds the GIL (the encoder is C and
# never yields), so a backlog must not stall the event loop (1,000 events: about 1 ms); and
# measured here, batches of 300-1,000 write fastest (~135k events/s), 3,000 a third slower.
MAX_BATCH = 1000

# Seconds a refused write keeps the store "failing" (the server refuses calls meanwhile); a
# call admitted after that tries the disk again.
FAILURE_HOLD = 10.0

# default=str: an odd value (a Decimal, a date) is stored as text rather than lost;
# allow_nan=False: SQLite's JSON rejects NaN; better a clear error for that one event.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False
)


AgentStateRow = tuple[str, str, str, float]  # agent, state, reason, at (wall clock)
AgentStateSink = Callable[[str, str, str, float], None]


class StoreError(RuntimeError):
    """The call store could not be opened, or could not write some records."""


def close_interrupted(path: str | Path) -> int:
    """End every call a crash left open (no outcome) with outcome ``interrupted``; call it
    before any engine process of the machine takes calls. Returns how many were closed."""
    conn = connect(path)
    try:
        with conn:
            cursor = conn.execute(_CLOSE_INTERRUPTED)
        closed = max(cursor.rowcount, 0)
    finally:
        conn.close()
    if closed:
        log.warning("call -: %d call(s) left open by an earlier stop were closed as %s",
                    closed, INTERRUPTED)  # fmt: skip
    return closed


def connect(path: str | Path) -> sqlite3.Connection:
    """Open ``path`` with the store's settings (WAL, synchronous=NORMAL) and current schema.

    The file and its folder are created when missing; an older schema is migrated in one
    transaction. Raises StoreError for a file written by a newer ivr.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Autocommit: every statement is its own transaction (a batch is one statement).
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL loses no commit when the process dies (only on power loss, and then
        # the file is still consistent) and spares an fsync per commit.
        conn.execute("PRAGMA synchronous=NORMAL")
        _migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return  # the common case: no write lock taken
    conn.execute("BEGIN IMMEDIATE")  # another process may be creating the same file
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"schema version {version} is newer than this ivr's {SCHEMA_VERSION}")
        if version == 0:
            _run_script(conn, _SCHEMA)
        else:
            for step in range(version, SCHEMA_VERSION):
                _run_script(conn, MIGRATIONS[step])
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    # executescript() would COMMIT first; statement by statement stays in our transaction.
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):  # a trigger body holds ";" too
            if statement.strip(" \n;"):
                conn.execute(statement)
            statement = ""


class CallStore:
    """The call-record store; pass :meth:`sink` to sessions as an event sink, and
    :meth:`agent_sink` to the queue authority as its ``on_state`` hook.

    Args:
        path: the SQLite file (created with its folder when missing).
        threaded: write from one background thread (the default, for the engine); False writes
            each :meth:`sink` / :meth:`write_many` at once in the caller's thread (tools, tests).
    """

    def __init__(self, path: str | Path, *, threaded: bool = True) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._closed = False
        self._errors: list[BaseException] = []
        self._dropped = 0
        # Writes the database refused (disk full, read-only, locked, corrupt): counted and
        # logged loudly; while they fail the server refuses new calls (see ``failing``).
        self.failed_writes = 0
        self._failed_at: float | None = None  # monotonic time of the last refused write
        # Told True at each refused write and False at the first write that goes through after
        # one (from the writer thread): the engine's metrics and /healthz (ivr/host/metrics.py).
        self.on_health: Callable[[bool], None] | None = None
        # Events, agent states and flush markers, in order. deque.append is atomic under the
        # GIL, so the loop's side takes no lock; _wake tells an idle writer there is work.
        self._pending: deque[Event | AgentStateRow | RefusedCall | threading.Event] = deque()
        self._refusals = RateCap()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._writer, name="ivr-store", daemon=True)
            self._thread.start()

    # --- the sink -------------------------------------------------------------------------

    def sink(self, event: Event) -> None:
        """Record ``event``; in threaded mode this only queues it (no disk, no lock)."""
        if self._closed:
            self._drop(1)
        elif self._thread is None:
            self._write_events([event])
        else:
            self._pending.append(event)
            if not self._wake.is_set():
                self._wake.set()

    def agent_sink(self) -> AgentStateSink:
        """The queue authority's ``on_state`` hook: ``(agent id, state, reason, wall time)``
        of every agent state change, recorded like events (queued; no disk, no lock)."""
        return self._agent_state

    def _agent_state(self, agent: str, state: str, reason: str, at: float) -> None:
        row = (agent, str(state), reason, at)  # str(): the authority's states are StrEnums
        if self._closed:
            self._drop(1)
        elif self._thread is None:
            self._write_batch(_INSERT_AGENT_STATES, [row])
        else:
            self._pending.append(row)
            if not self._wake.is_set():
                self._wake.set()

    def refused(self, call: RefusedCall) -> None:
        """Record a call refused before an answer (:mod:`ivr.store.refused`: cleaned, and
        merged beyond the rate cap); queued like events. Safe from any thread."""
        for row in self._refusals.admit(call):
            self._queue_refused(row)

    def _queue_refused(self, row: RefusedCall) -> None:
        if self._closed:
            self._drop(1)
        elif self._thread is None:
            self._write_batch(INSERT_REFUSED, [row.row()])
        else:
            self._pending.append(row)
            if not self._wake.is_set():
                self._wake.set()

    def write_many(self, events: Iterable[Event]) -> None:
        """Record many events (tools that replay finished calls); one transaction when sync."""
        if self._thread is None and not self._closed:
            self._write_events(list(events))
            return
        for event in events:
            self.sink(event)

    def flush(self) -> None:
        """Wait until every event and agent state given so far is committed.

        Raises:
            StoreError: some records since the last flush could not be written (each failed
                one is lost alone; the others are stored). Reported once.
        """
        for row in self._refusals.drain():
            self._queue_refused(row)
        thread = self._thread
        if thread is not None and thread.is_alive():
            marker = threading.Event()
            self._pending.append(marker)
            self._wake.set()
            # The writer sets every marker it takes, even after a failed write; the timeout
            # only guards against a writer thread that died (it would never set it).
            while not marker.wait(1.0) and thread.is_alive():
                pass
        self._raise_errors()

    def close(self) -> None:
        """Write what is queued, stop the writer and close the file; safe to call twice."""
        if self._closed:
            return
        for row in self._refusals.drain():
            self._queue_refused(row)
        self._closed = True  # from now on sink() drops events (logged once)
        if self._thread is not None:
            self._wake.set()
            self._thread.join()
            # An event appended while close() began is still in the queue: write it here.
            self._write_events([e for e in self._pending if isinstance(e, Event)])
            self._write_batch(_INSERT_AGENT_STATES,
                              [r for r in self._pending if type(r) is tuple])  # fmt: skip
            self._write_batch(INSERT_REFUSED,
                              [r.row() for r in self._pending if type(r) is RefusedCall])
            self._pending.clear()
        self._conn.close()
        for exc in self._errors:
            log.error("call store %s: a record was not written: %s", self.path, exc)

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing --------------------------------------------------------------------------

    def _drop(self, count: int) -> None:
        if not self._dropped:
            log.warning("call store %s is closed: dropping records", self.path)
        self._dropped += count

    def _raise_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise StoreError(
                f"call store {self.path}: {len(errors)} record(s) not written: {errors[0]}"
            ) from errors[0]

    def _writer(self) -> None:
        pending, wake = self._pending, self._wake
        while True:
            wake.wait()
            wake.clear()  # before draining: an append after this sets it again
            stopping = self._closed
            batch: list[Event] = []
            states: list[AgentStateRow] = []
            refused: list[tuple[Any, ...]] = []
            markers: list[threading.Event] = []
            refused += [row.row() for row in self._refusals.expired(time.time())]
            while pending:
                item = pending.popleft()
                if type(item) is Event:
                    batch.append(item)
                elif type(item) is tuple:
                    states.append(item)
                elif type(item) is RefusedCall:
                    refused.append(item.row())
                else:
                    markers.append(item)  # type: ignore[arg-type]
            try:
                for start in range(0, len(batch), MAX_BATCH):
                    self._write_events(batch[start : start + MAX_BATCH])
                for start in range(0, len(states), MAX_BATCH):
                    self._write_batch(_INSERT_AGENT_STATES, states[start : start + MAX_BATCH])
                for start in range(0, len(refused), MAX_BATCH):
                    self._write_batch(INSERT_REFUSED, refused[start : start + MAX_BATCH])
            finally:
                for marker in markers:
                    marker.set()
            if stopping:
                return

    def _write_events(self, events: list[Event]) -> None:
        rows = []
        for event in events:
            try:
                rows.append(_row(event))
            except Exception as exc:  # data that is not a mapping: this event alone is lost
                self._errors.append(exc)
        self._write_batch(_INSERT_EVENTS, rows)

    @property
    def failing(self) -> bool:
        """True while the database refuses writes: the last one failed less than
        :data:`FAILURE_HOLD` seconds ago (after that a new call may try again)."""
        failed_at = self._failed_at
        return failed_at is not None and time.monotonic() - failed_at < FAILURE_HOLD

    def _write_batch(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """One transaction for the batch; if it fails, row by row, so that one bad event (or
        agent state) loses only itself (the error is reported by :meth:`flush`)."""
        if not rows:
            return
        try:
            self._write(statement, rows)
            self._written()
        except Exception:
            for row in rows:
                try:
                    self._write(statement, [row])
                except Exception as exc:  # keep serving: the engine must not notice
                    self._errors.append(exc)
                    if isinstance(exc, sqlite3.Error):
                        self._refused(exc)
                else:
                    self._written()

    def _written(self) -> None:
        """A write went through: the store is healthy again if it was not."""
        if self._failed_at is not None:
            self._failed_at = None
            log.warning("call store %s: writing again (%d records lost)", self.path,
                        self.failed_writes)  # fmt: skip
            if self.on_health is not None:
                self.on_health(False)

    def _refused(self, exc: sqlite3.Error) -> None:
        """The database refused a write: count it, say so loudly (once per hold period)."""
        self.failed_writes += 1
        if not self.failing:
            log.error("call store %s: a record could not be written (%s); %d lost so far",
                      self.path, exc, self.failed_writes)  # fmt: skip
        self._failed_at = time.monotonic()
        if self.on_health is not None:
            self.on_health(True)

    def _write(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        # One statement: atomic on its own, the triggers keep the call summary.
        self._conn.execute(statement, (_ENCODER.encode(rows),))


def _row(event: Event) -> tuple[Any, ...]:
    data = event.data
    if "secret_keys" in data:
        data = _without_secrets(data)
    return (event.call_id, event.seq, event.t, event.kind, event.node, data)


def _without_secrets(data: dict[str, Any]) -> dict[str, Any]:
    secret = data.get("secret_keys") or ()
    if isinstance(secret, str):  # one key given as a bare string
        secret = (secret,)
    return {k: v for k, v in data.items() if k not in secret and k != "secret_keys"}
