"""Counters across calls in the SQLite store (the engine's ``counter`` node, docs/FLOWS.md).

One row per count: ``counters(key, value, expires)``. The key is the SHA-256 of the flow's key
text (``login:6222...``): an account number or caller ID never lies in the file. Every worker
process of ``ivr serve`` opens its own connection to the one file (WAL), so a caller locked
out by one worker is locked out by all, and after a restart.

An update is one short transaction on the caller's thread (the session's event loop): a
single-row upsert, well under a millisecond; ``busy_timeout`` bounds the wait for the store's
writer thread. Expired rows are deleted now and then, a bounded number at a time.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
"""
#: How long an update waits for another writer before it gives up (seconds); and set-up.
BUSY_TIMEOUT, SETUP_TIMEOUT = 0.25, 10.0
#: Expired rows deleted per clean-up, and how many updates between clean-ups.
PURGE_BATCH, PURGE_EVERY = 500, 200


class StoreCounters:
    """:class:`~ivr.engine.counters.Counters` kept in the SQLite file at ``path``."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Workers start together and may all create the table at once: wait longer for that.
        self._db = sqlite3.connect(str(path), timeout=SETUP_TIMEOUT, isolation_level=None,
                                   check_same_thread=False)  # fmt: skip
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
        self._lock = threading.Lock()
        self._updates = 0

    def update(self, key: str, add: int, reset: bool, expire: float, now: float) -> int:
        """See :meth:`ivr.engine.counters.Counters.update`."""
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        with self._lock:
            self._updates += 1
            if self._updates % PURGE_EVERY == 0:
                self._purge(now)
            if reset:
                self._db.execute("DELETE FROM counters WHERE key = ?", (digest,))
                return 0
            if not add:
                row = self._db.execute(
                    "SELECT value FROM counters WHERE key = ? AND expires > ?", (digest, now)
                ).fetchone()
                return int(row[0]) if row else 0
            # One statement: atomic against the other worker processes adding at once.
            row = self._db.execute(
                "INSERT INTO counters (key, value, expires) VALUES (?1, max(0, ?2), ?3) "
                "ON CONFLICT (key) DO UPDATE SET expires = excluded.expires, value = max(0, "
                "(CASE WHEN counters.expires > ?4 THEN counters.value ELSE 0 END) + ?2) "
                "RETURNING value",
                (digest, add, now + expire, now),
            ).fetchone()
            return int(row[0])

    def _purge(self, now: float) -> None:
        self._db.execute(
            "DELETE FROM counters WHERE key IN (SELECT key FROM counters WHERE expires <= ? "
            "LIMIT ?)", (now, PURGE_BATCH))  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._db.close()
