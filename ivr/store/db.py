"""Call records and step events in SQLite (WAL), written as they happen.

The store is an event sink: :meth:`CallStore.sink` is called on the engine's event loop and only
puts the event on a queue. One writer thread takes everything queued, writes it in one
transaction and commits, so a crash loses at most the step in flight and the loop never waits on
the disk. The engine masks secrets before events exist; as a second line of defence the store
drops every data key an event names in ``data["secret_keys"]``.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ivr.engine import events as ev
from ivr.engine.events import Event

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id TEXT PRIMARY KEY,
    flow TEXT, flow_version TEXT, caller TEXT, called TEXT, transport TEXT,
    started_at REAL, ended_at REAL, duration REAL,
    outcome TEXT, last_node TEXT, language TEXT,
    -- filled by the agent queue (a later part): time in queue, answer, abandonment
    queue TEXT, queued_at REAL, queue_wait REAL, answered_at REAL, agent TEXT,
    abandoned_in_queue INTEGER
);
CREATE TABLE IF NOT EXISTS events (
    call_id TEXT NOT NULL, seq INTEGER NOT NULL, t REAL, kind TEXT NOT NULL,
    node TEXT, flow TEXT, data TEXT,
    PRIMARY KEY (call_id, seq)
);
CREATE INDEX IF NOT EXISTS events_kind_node ON events (kind, flow, node);
CREATE TABLE IF NOT EXISTS survey (
    call_id TEXT NOT NULL, question TEXT NOT NULL, answer INTEGER,
    PRIMARY KEY (call_id, question)
);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
"""

# Migrations from version N to N+1, run in order on open (none yet: version 1 is the first).
_MIGRATIONS: dict[int, str] = {}

_STOP = object()


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection with the store's settings (WAL, NORMAL sync), schema created or migrated."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    while version and version < SCHEMA_VERSION:
        conn.executescript(_MIGRATIONS[version])
        version += 1
        conn.execute(f"PRAGMA user_version={version}")
    return conn


class CallStore:
    """The call-record store; use :meth:`sink` as a session's event sink.

    Args:
        path: the SQLite file (created with its folder when missing).
        threaded: write from one background thread (the default, for the engine); False writes
            in the caller's thread at once (tools and tests).
    """

    def __init__(self, path: str | Path, *, threaded: bool = True) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._closed = False
        self._queue: queue.Queue[object] | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        if threaded:
            self._queue = queue.Queue()
            self._thread = threading.Thread(target=self._writer, name="ivr-store", daemon=True)
            self._thread.start()

    # --- the sink -------------------------------------------------------------------------

    def sink(self, event: Event) -> None:
        """Record ``event``; never blocks on the disk in threaded mode."""
        if self._closed:
            return
        if self._queue is not None:
            self._queue.put(event)
        else:
            self._write([event])

    def write_many(self, events: Iterable[Event]) -> None:
        """Record many events (for tools that replay finished calls)."""
        for event in events:
            self.sink(event)

    def flush(self) -> None:
        """Wait until every event given so far is committed."""
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.join()
        if self.error is not None:
            raise RuntimeError(f"call store {self.path}: {self.error}") from self.error

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        if self._closed:
            return
        if self._queue is not None and self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
        self._closed = True
        self._conn.close()

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing --------------------------------------------------------------------------

    def _writer(self) -> None:
        assert self._queue is not None
        while True:
            batch = [self._queue.get()]
            while True:  # take everything already queued: one transaction per burst
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            events = [item for item in batch if isinstance(item, Event)]
            try:
                self._write_batch(events)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if stop:
                return

    def _write_batch(self, events: list[Event]) -> None:
        """One transaction for the batch; if it fails, event by event so that one bad event
        loses only itself (and is reported by :meth:`flush`)."""
        if not events:
            return
        try:
            self._write(events)
        except Exception:
            for event in events:
                try:
                    self._write([event])
                except Exception as exc:  # keep serving; flush() reports it
                    self.error = exc

    def _write(self, events: list[Event]) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO events (call_id, seq, t, kind, node, flow, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [_event_row(e) for e in events],
            )
            for event in events:
                _apply_to_call(conn, event)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    secret = data.get("secret_keys")
    if not secret:
        return data
    return {k: v for k, v in data.items() if k not in secret and k != "secret_keys"}


def _event_row(event: Event) -> tuple[Any, ...]:
    data = _clean(event.data)
    return (
        event.call_id,
        event.seq,
        event.t,
        event.kind,
        event.node,
        data.get("flow"),
        json.dumps(data, ensure_ascii=False, default=str, separators=(",", ":")),
    )


def _apply_to_call(conn: sqlite3.Connection, event: Event) -> None:
    """Keep the one-row-per-call summary up to date."""
    d = event.data
    if event.kind == ev.CALL_START:
        conn.execute(
            "INSERT OR REPLACE INTO calls (call_id, flow, flow_version, caller, called, "
            "transport, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (event.call_id, d.get("flow"), d.get("flow_version"), d.get("caller"),
             d.get("called"), d.get("transport"), d.get("wall")),
        )
    elif event.kind == ev.CALL_END:
        conn.execute(
            "UPDATE calls SET outcome = ?, duration = ?, ended_at = started_at + ?, "
            "last_node = ?, language = ? WHERE call_id = ?",
            (d.get("outcome"), d.get("duration"), d.get("duration"), d.get("last_node"),
             d.get("language"), event.call_id),
        )
    elif event.kind == ev.QUEUE:
        conn.execute(
            "UPDATE calls SET queue = ?, queued_at = started_at + ? WHERE call_id = ?",
            (d.get("queue"), event.t, event.call_id),
        )
    elif event.kind == ev.SURVEY:
        conn.execute(
            "INSERT OR REPLACE INTO survey (call_id, question, answer) VALUES (?, ?, ?)",
            (event.call_id, d.get("question"), d.get("answer")),
        )
