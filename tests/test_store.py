"""The call store: a real SQLite file in WAL mode, written from a background thread."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ivr.engine.events import Event
from ivr.store.db import SCHEMA_VERSION, CallStore


def call_events(call_id: str, outcome: str, nodes: list[str], **extra: object) -> list[Event]:
    """A plausible event stream for one call that visits ``nodes`` and ends with ``outcome``."""
    seq = iter(range(1, 1000))
    out = [Event(call_id, next(seq), 0.0, "call_start", None,
                 {"flow": "bank", "flow_version": "v1", "caller": "+861", "called": "95588",
                  "transport": "sim", "wall": 1_800_000_000.0})]
    t = 0.0
    for node in nodes:
        t += 2.0
        out.append(Event(call_id, next(seq), t, "node_enter", node, {"flow": "bank",
                                                                      "kind": "menu"}))
        for kind in ("no_input", "no_match"):
            for _ in range(int(extra.get(f"{kind}_{node}", 0))):  # type: ignore[call-overload]
                out.append(Event(call_id, next(seq), t, kind, node, {"flow": "bank", "count": 1}))
    if outcome == "queued":
        out.append(Event(call_id, next(seq), t, "queue", nodes[-1],
                         {"flow": "bank", "queue": "general", "priority": 5, "skills": []}))
    for question, answer in dict(extra.get("survey", {})).items():  # type: ignore[call-overload]
        out.append(Event(call_id, next(seq), t, "survey", nodes[-1],
                         {"flow": "bank", "question": question, "answer": answer}))
    out.append(Event(call_id, next(seq), t + 1, "call_end", None,
                     {"outcome": outcome, "duration": t + 1, "last_node": nodes[-1],
                      "flow": "bank", "language": "en"}))
    return out


def test_records_calls_events_and_survey(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "calls.db"
    with CallStore(db) as store:
        store.write_many(call_events("c1", "self_service", ["menu", "bye"],
                                     survey={"satisfaction": 5}))
        store.write_many(call_events("c2", "queued", ["menu", "agent"]))
        store.flush()
        conn = sqlite3.connect(db)
        calls = conn.execute(
            "SELECT call_id, outcome, duration, last_node, queue, started_at, ended_at "
            "FROM calls ORDER BY call_id").fetchall()
        assert calls == [
            ("c1", "self_service", 5.0, "bye", None, 1.8e9, 1.8e9 + 5.0),
            ("c2", "queued", 5.0, "agent", "general", 1.8e9, 1.8e9 + 5.0),
        ]
        assert conn.execute("SELECT * FROM survey").fetchall() == [("c1", "satisfaction", 5)]
        kinds = [k for (k,) in conn.execute(
            "SELECT kind FROM events WHERE call_id = 'c2' ORDER BY seq")]
        assert kinds == ["call_start", "node_enter", "node_enter", "queue", "call_end"]
        conn.close()


def test_wal_mode_schema_version_and_a_reader_while_writing(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db)
    reader = sqlite3.connect(db)
    assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    for i in range(50):
        store.write_many(call_events(f"c{i}", "abandoned", ["menu"]))
        reader.execute("SELECT COUNT(*) FROM events").fetchone()  # never blocked
    store.flush()
    assert reader.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 50
    reader.close()
    store.close()
    store.close()  # idempotent


def test_flushed_events_survive_a_crash_and_reopen(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db)
    store.write_many(call_events("c1", "self_service", ["menu"]))
    store.flush()
    # No close(): the process "dies" here; what was flushed is committed on disk.
    with CallStore(db, threaded=False) as again:
        again.sink(Event("c2", 1, 0.0, "call_start", None, {"flow": "bank", "wall": 1.0}))
    conn = sqlite3.connect(db)
    assert {r[0] for r in conn.execute("SELECT call_id FROM calls")} == {"c1", "c2"}
    conn.close()


def test_secret_keys_named_by_an_event_are_dropped(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    with CallStore(db, threaded=False) as store:
        store.sink(Event("c1", 1, 0.0, "input", "pin", {"value": "907153", "mode": "dtmf",
                                                         "secret_keys": ["value"]}))
    conn = sqlite3.connect(db)
    (data,) = conn.execute("SELECT data FROM events").fetchone()
    assert json.loads(data) == {"mode": "dtmf"}
    conn.close()


def test_a_write_error_is_reported_by_flush(tmp_path: Path) -> None:
    store = CallStore(tmp_path / "calls.db")
    store.sink(Event("c1", 1, 0.0, "call_start", None, {"flow": "bank", "wall": 1.0}))
    store.sink(Event("c1", 2, 0.0, "node_enter", "x", {"flow": object()}))  # not storable
    with pytest.raises(RuntimeError, match="call store"):
        store.flush()
    store.close()
    conn = sqlite3.connect(tmp_path / "calls.db")  # the good event of the batch is kept
    assert conn.execute("SELECT call_id FROM calls").fetchall() == [("c1",)]
    conn.close()
