"""Reading a server's call records while its calls run: the events of one Call-ID, in order.

The server keys a call's records by its own id (never the caller's Call-ID); the Call-ID is
kept in the call's ``call_start`` event, where the reader finds the key.

A live caller on the same machine as ``ivr serve`` reads the server's SQLite store (WAL: readers
never block the writer, and see each committed batch) to learn what the flow did: which prompts
it played, which nodes it entered, how the call ended. The file is opened read-only; it may not
exist yet when the caller starts (the server creates it at start), so opening is retried.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from ivr.core.events import Event

# The server keys records by its own id; the caller knows its Call-ID, kept in call_start.
_BY_SIP_CALL_ID = (
    "SELECT call_id FROM events WHERE kind = 'call_start' "
    "AND json_extract(data, '$.sip_call_id') = ? ORDER BY rowid DESC LIMIT 1"
)
_EVENTS = "SELECT seq, t, kind, node, data FROM events WHERE call_id = ? AND seq > ? ORDER BY seq"
_CALL = (
    "SELECT call_id, flow, flow_version, caller, called, transport, started_at, ended_at, "
    "duration, outcome, last_node, language, queue FROM calls WHERE call_id = ?"
)


class RecordsUnavailable(RuntimeError):
    """The store file does not exist or cannot be read."""


class CallRecords:
    """Read-only access to a call store (``store.path`` of the server's ivr.yaml).

    Blocking (SQLite); from an event loop call it through ``asyncio.to_thread``. One reader at a
    time per instance (a lock keeps concurrent calls apart).

    Args:
        path: The SQLite file the server writes.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._keys: dict[str, str] = {}  # Call-ID -> the server's record key, once seen

    def _key(self, call_id: str) -> str:
        """The record key of the call with SIP Call-ID ``call_id`` (itself until its call_start
        is written, and for stores keyed by Call-ID). Under the lock."""
        key = self._keys.get(call_id)
        if key is None:
            row = self._connection().execute(_BY_SIP_CALL_ID, (call_id,)).fetchone()
            if row is None:
                return call_id
            key = self._keys[call_id] = str(row[0])
        return key

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.path.is_file():
                raise RecordsUnavailable(f"no call store at {self.path}")
            try:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                       check_same_thread=False)  # fmt: skip
                conn.execute("PRAGMA busy_timeout=2000")
                conn.execute("SELECT 1 FROM events LIMIT 1")
            except sqlite3.Error as exc:
                raise RecordsUnavailable(f"cannot read {self.path}: {exc}") from exc
            self._conn = conn
        return self._conn

    def events(self, call_id: str, after_seq: int = 0) -> list[Event]:
        """The events of ``call_id`` with a sequence number above ``after_seq``, in order.

        Raises:
            RecordsUnavailable: The store cannot be read.
        """
        with self._lock:
            try:
                key = self._key(call_id)
                rows = self._connection().execute(_EVENTS, (key, after_seq)).fetchall()
            except sqlite3.Error as exc:
                raise RecordsUnavailable(f"cannot read {self.path}: {exc}") from exc
        return [
            Event(call_id, seq, t, kind, node, json.loads(data) if data else {})
            for seq, t, kind, node, data in rows
        ]

    def call(self, call_id: str) -> dict[str, Any] | None:
        """The call summary row of ``call_id`` (outcome, duration, last node ...), or None.

        Raises:
            RecordsUnavailable: The store cannot be read.
        """
        with self._lock:
            try:
                cursor = self._connection().execute(_CALL, (self._key(call_id),))
                row = cursor.fetchone()
            except sqlite3.Error as exc:
                raise RecordsUnavailable(f"cannot read {self.path}: {exc}") from exc
        if row is None:
            return None
        return {d[0]: value for d, value in zip(cursor.description, row, strict=True)}

    def close(self) -> None:
        """Close the file (reopened on the next read)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
