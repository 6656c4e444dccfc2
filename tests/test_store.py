"""The call store: a real SQLite file in WAL mode, written from a background thread."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from ivr.acd.authority import QueueAuthority
from ivr.acd.model import AgentSpec, AgentState, QueueSpec
from ivr.core.clock import VirtualClock
from ivr.core.events import MASK, Event
from ivr.store.db import (
    _CALL_START_TRIGGER_V1,
    MIGRATIONS,
    SCHEMA_VERSION,
    CallStore,
    StoreError,
    close_interrupted,
    connect,
)
from ivr.store.refused import RefusedCall

WALL = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class CallEvents:
    """Builds one call's events the way a Session emits them (kinds, nodes, data keys)."""

    def __init__(
        self, call_id: str, flow: str = "bank-main", wall: float = WALL, caller: str = "+8613800"
    ) -> None:
        self.call_id, self.flow, self.t = call_id, flow, 0.0
        self.node: str | None = None
        self.events: list[Event] = []
        self.emit("call_start", caller=caller, called="95588", flow=flow, flow_version="d41d8",
                  transport="sim", wall=wall)

    def emit(self, kind: str, /, **data: Any) -> CallEvents:
        node = self.node if kind != "call_start" else None
        if node is not None:
            data.setdefault("flow", self.flow)
        self.events.append(Event(self.call_id, len(self.events) + 1, round(self.t, 4), kind,
                                 node, data))
        return self

    def wait(self, seconds: float) -> CallEvents:
        self.t += seconds
        return self

    def enter(self, node: str, kind: str = "menu", flow: str | None = None) -> CallEvents:
        self.node, self.flow = node, flow or self.flow
        self.emit("node_enter", kind=kind)
        return self.emit("prompt", prompt=node, text=f"{node} prompt", language="en").wait(3)

    def reprompt(self) -> CallEvents:
        """After a no-input or no-match the node plays again: no new node_enter."""
        return self.emit("prompt", prompt=self.node, text="Sorry.", language="en").wait(3)

    def press(self, digit: str, target: str) -> CallEvents:
        self.emit("input", mode="dtmf", value=digit, confidence=1.0)
        return self.emit("match", branch=digit, target=target).wait(0.5)

    def no_input(self, count: int) -> CallEvents:
        return self.wait(5).emit("no_input", count=count)

    def no_match(self, count: int, value: str) -> CallEvents:
        self.emit("input", mode="dtmf", value=value, confidence=1.0)
        return self.emit("no_match", count=count, value=value)

    def end(self, outcome: str, hangup_by: str | None = None, **extra: Any) -> list[Event]:
        if hangup_by:
            self.emit("hangup", by=hangup_by)
        self.emit("call_end", outcome=outcome, duration=round(self.t, 3), last_node=self.node,
                  flow=self.flow, language="en", **extra)
        return self.events


def contained(call_id: str = "contained", wall: float = WALL) -> list[Event]:
    """Main menu, branch hours, a survey answer, goodbye: self service."""
    call = CallEvents(call_id, wall=wall).enter("main_menu").press("4", "branch_hours")
    call.enter("branch_hours", kind="say").emit("match", branch="next", target="survey")
    call.enter("survey", kind="survey").emit("survey", question="satisfaction", answer=5)
    call.emit("survey", question="resolved", answer=None)  # skipped by silence
    return call.enter("goodbye", kind="hangup").end("self_service", hangup_by="flow")


def abandoned(call_id: str = "abandoned") -> list[Event]:
    """Silent once at the main menu, then into the verify sub-flow; hangs up at the PIN."""
    call = CallEvents(call_id).enter("main_menu").no_input(1).reprompt().press("1", "verify")
    call.enter("ask_pin", kind="collect", flow="verify-customer")
    call.emit("input", mode="dtmf", value=MASK, confidence=1.0)
    return call.wait(2).end("abandoned", hangup_by="caller")


def answered(call_id: str = "answered") -> list[Event]:
    """Presses 0 for an agent at the main menu, waits 6 s in the queue (ann is rung after 4 s
    and answers after 2), talks 30 s; the agent hangs up."""
    call = CallEvents(call_id).enter("main_menu").press("0", "agent")
    call.enter("agent", kind="enqueue").emit("queue", queue="general", priority=5, skills=[],
                                             tier="general")  # fmt: skip
    call.wait(4).emit("agent_ring", agent="ann").wait(2)
    call.emit("agent_connected", agent="ann", queue_wait=6.0).wait(30)
    call.emit("agent_done", agent="ann", talk=30.0)
    return call.end("agent", hangup_by="flow")


def troubled(call_id: str = "troubled") -> list[Event]:
    """No input, a wrong key, the card menu, back to the main menu, then the fraud desk."""
    call = CallEvents(call_id).enter("main_menu").no_input(1).reprompt()
    call.no_match(1, "9").reprompt().press("3", "card_menu").enter("card_menu")
    call.emit("input", mode="dtmf", value="*", confidence=1.0)
    call.emit("global", command="back", target="main_menu").wait(0.5)
    call.enter("main_menu").press("2", "lost_card")
    call.enter("lost_card", kind="transfer").emit("transfer", target="+8695588", ok=True,
                                                  reason="")
    return call.end("transferred")


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_calls_events_and_survey_rows(tmp_path: Path) -> None:
    db = tmp_path / "var" / "calls.db"
    with CallStore(db) as store:
        for events in (contained(), abandoned(), answered(), troubled()):
            store.write_many(events)
        store.flush()
        calls = rows(db, "SELECT call_id, flow, flow_version, caller, called, transport, "
                         "started_at, ended_at, duration, outcome, last_node, last_flow, "
                         "language, queue, queued_at FROM calls ORDER BY call_id")
    assert calls == [
        ("abandoned", "bank-main", "d41d8", "+8613800", "95588", "sim", WALL, WALL + 16.5, 16.5,
         "abandoned", "ask_pin", "verify-customer", "en", None, None),
        ("answered", "bank-main", "d41d8", "+8613800", "95588", "sim", WALL, WALL + 42.5, 42.5,
         "agent", "agent", "bank-main", "en", "general", WALL + 6.5),
        ("contained", "bank-main", "d41d8", "+8613800", "95588", "sim", WALL, WALL + 12.5, 12.5,
         "self_service", "goodbye", "bank-main", "en", None, None),
        ("troubled", "bank-main", "d41d8", "+8613800", "95588", "sim", WALL, WALL + 24.5, 24.5,
         "transferred", "lost_card", "bank-main", "en", None, None),
    ]
    # The agent queue's columns: filled for the call it answered, empty for the others.
    assert rows(db, "SELECT call_id, queue_wait, answered_at, agent, abandoned_in_queue, "
                    "ring_attempts, talk_time FROM calls ORDER BY call_id") == [
        ("abandoned", None, None, None, None, None, None),
        ("answered", 6.0, WALL + 12.5, "ann", None, 1, 30.0),
        ("contained", None, None, None, None, None, None),
        ("troubled", None, None, None, None, None, None),
    ]
    assert rows(db, "SELECT * FROM survey ORDER BY question") == [
        ("contained", "resolved", None), ("contained", "satisfaction", 5)]
    stored = rows(db, "SELECT seq, t, kind, node, flow, data FROM events "
                      "WHERE call_id = 'abandoned' ORDER BY seq")
    original = abandoned()
    assert [r[:4] for r in stored] == [(e.seq, e.t, e.kind, e.node) for e in original]
    assert [json.loads(r[5]) for r in stored] == [e.data for e in original]
    assert stored[-3][4] == "verify-customer"  # the node's own flow, for sub-flow nodes


def test_wal_mode_settings_and_schema_version(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    CallStore(db, threaded=False).close()
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]
    assert rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    conn = connect(db)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    conn.close()


def test_the_writer_keeps_order_and_flush_makes_everything_visible(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    calls = [contained(f"c{i}") for i in range(300)]
    interleaved = [call[k] for k in range(len(calls[0])) for call in calls]  # 300 live calls
    store = CallStore(db)
    reader = sqlite3.connect(db)  # opened before any write, kept open
    feeder = threading.Thread(target=store.write_many, args=(interleaved,))  # like a loop
    feeder.start()
    feeder.join()
    store.flush()
    order = reader.execute("SELECT call_id, seq FROM events ORDER BY rowid").fetchall()
    assert order == [(e.call_id, e.seq) for e in interleaved]
    assert reader.execute("SELECT COUNT(*) FROM calls WHERE outcome = 'self_service'"
                          ).fetchone() == (300,)
    reader.close()
    store.close()


def test_a_reader_is_never_blocked_by_the_writer(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db)
    store.write_many(contained("first"))
    store.flush()
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")  # a long report: its snapshot stays put while calls are written
    assert reader.execute("SELECT COUNT(*) FROM calls").fetchone() == (1,)
    for i in range(20):
        store.write_many(answered(f"q{i}"))
    store.flush()  # the writer was not blocked by the open read transaction
    assert reader.execute("SELECT COUNT(*) FROM calls").fetchone() == (1,)
    reader.execute("COMMIT")
    assert reader.execute("SELECT COUNT(*) FROM calls").fetchone() == (21,)
    reader.close()
    store.close()


def test_close_is_idempotent_and_later_events_are_dropped(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db)
    store.write_many(answered())  # not flushed: close() writes what is queued
    store.close()
    store.close()
    store.sink(contained()[0])  # a late event must not raise into the engine
    store.flush()
    assert rows(db, "SELECT call_id, outcome FROM calls") == [("answered", "agent")]


def test_sync_mode_writes_at_once(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db, threaded=False)
    store.sink(contained()[0])
    assert rows(db, "SELECT call_id, outcome FROM calls") == [("contained", None)]
    store.write_many(contained()[1:])
    assert rows(db, "SELECT call_id, outcome FROM calls") == [("contained", "self_service")]
    store.close()


CRASHING_WRITER = """
import os, sys
sys.path.insert(0, {tests!r})
from test_store import answered, contained
from ivr.store.db import CallStore
store = CallStore({db!r})
for i in range(50):
    store.write_many(contained(f"c{{i}}"))
store.flush()
store.write_many(answered("late"))
os._exit(0)  # dies: no close(), no flush, the writer thread killed wherever it was
"""


def test_flushed_events_survive_a_crash(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    script = CRASHING_WRITER.format(tests=str(Path(__file__).parent), db=str(db))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    with CallStore(db, threaded=False) as again:  # reopening recovers from the WAL
        again.write_many(troubled())
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    ended = dict(rows(db, "SELECT call_id, outcome FROM calls WHERE call_id != 'late'"))
    assert ended == {**{f"c{i}": "self_service" for i in range(50)}, "troubled": "transferred"}
    assert rows(db, "SELECT COUNT(*) FROM events WHERE call_id LIKE 'c%'") == [
        (50 * len(contained()),)]
    # The unflushed call is all there or not at all up to some step: batches are atomic.
    late = [seq for (seq,) in rows(db, "SELECT seq FROM events WHERE call_id = 'late'")]
    assert late == list(range(1, len(late) + 1))


def test_secret_keys_named_by_an_event_are_dropped(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    with CallStore(db, threaded=False) as store:
        store.sink(Event("c1", 1, 0.0, "call_start", None,
                         {"flow": "bank", "caller": "+8613900", "wall": 5.0,
                          "secret_keys": ["caller"]}))
        store.sink(Event("c1", 2, 1.0, "input", "ask_pin",
                         {"value": "907153", "mode": "dtmf", "secret_keys": ["value"]}))
        store.sink(Event("c1", 3, 2.0, "var_set", "ask_pin",
                         {"name": "pin", "value": "907153", "secret_keys": "value"}))
    data = [json.loads(d) for (d,) in rows(db, "SELECT data FROM events ORDER BY seq")]
    assert data == [{"flow": "bank", "wall": 5.0}, {"mode": "dtmf"}, {"name": "pin"}]
    assert rows(db, "SELECT caller, started_at FROM calls") == [(None, 5.0)]
    conn = sqlite3.connect(db)
    dump = "\n".join(conn.iterdump())
    conn.close()
    assert "907153" not in dump and "+8613900" not in dump


def test_text_is_kept_as_written(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    with CallStore(db, threaded=False) as store:
        store.sink(Event("c1", 1, 0.5, "prompt", "welcome", {"text": "查询余额请按1", "n": 3}))
    assert rows(db, "SELECT data FROM events") == [('{"text":"查询余额请按1","n":3}',)]


def test_a_bad_event_is_lost_alone_and_reported_once(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db)
    store.sink(Event("c1", 1, 0.0, "call_start", None, {"flow": "bank", "wall": 1.0}))
    unstorable: dict[Any, Any] = {("not", "json"): 1}  # a key JSON cannot have
    store.sink(Event("c1", 2, 0.0, "node_enter", "x", unstorable))
    store.sink(Event("c1", 3, 0.5, "node_enter", "y", {"kind": "menu"}))
    with pytest.raises(StoreError, match=r"1 record\(s\) not written"):
        store.flush()
    store.flush()  # reported once
    store.close()
    assert rows(db, "SELECT seq FROM events") == [(1,), (3,)]
    assert rows(db, "SELECT call_id FROM calls") == [("c1",)]


def test_a_replayed_call_start_keeps_the_outcome(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    events = answered()
    with CallStore(db, threaded=False) as store:
        store.write_many(events)
        store.write_many(events[:1])
    assert rows(db, "SELECT outcome, queue FROM calls") == [("agent", "general")]
    assert rows(db, "SELECT COUNT(*) FROM events") == [(len(events),)]


VERSION_1 = """
CREATE TABLE calls (call_id TEXT PRIMARY KEY, flow TEXT, flow_version TEXT, caller TEXT,
    called TEXT, transport TEXT, started_at REAL, ended_at REAL, duration REAL, outcome TEXT,
    last_node TEXT, language TEXT, queue TEXT, queued_at REAL, queue_wait REAL,
    answered_at REAL, agent TEXT, abandoned_in_queue INTEGER);
CREATE TABLE events (call_id TEXT NOT NULL, seq INTEGER NOT NULL, t REAL, kind TEXT NOT NULL,
    node TEXT, flow TEXT, data TEXT, PRIMARY KEY (call_id, seq));
CREATE INDEX events_kind_node ON events (kind, flow, node);
CREATE TABLE survey (call_id TEXT NOT NULL, question TEXT NOT NULL, answer INTEGER,
    PRIMARY KEY (call_id, question));
CREATE INDEX calls_started ON calls (started_at);
INSERT INTO calls (call_id, flow, outcome, last_node) VALUES ('old', 'bank-main', 'abandoned',
    'ask_pin');
INSERT INTO events VALUES ('old', 1, 0, 'node_enter', 'main_menu', 'bank-main', '{}');
INSERT INTO events VALUES ('old', 2, 3, 'node_enter', 'ask_pin', 'verify-customer', '{}');
PRAGMA user_version = 1;
"""


def test_a_version_1_file_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    old = sqlite3.connect(db)
    old.executescript(VERSION_1)
    old.close()
    assert 1 in MIGRATIONS
    with CallStore(db) as store:
        store.write_many(answered())
    assert rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(db, "SELECT call_id, last_flow, outcome FROM calls ORDER BY call_id") == [
        ("answered", "bank-main", "agent"), ("old", "verify-customer", "abandoned")]
    assert rows(db, "SELECT name FROM sqlite_master WHERE name = 'events_kind_node'") == []


def test_a_file_from_a_newer_ivr_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    CallStore(db, threaded=False).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        CallStore(db)


# Today's file without version 6's QA mark and refused calls is a version 5 file.
AS_VERSION_5 = ("DROP TABLE refused; DROP TRIGGER events_call_start; "
                f"ALTER TABLE calls DROP COLUMN qa; {_CALL_START_TRIGGER_V1}")


def test_a_version_5_file_gains_the_qa_mark_and_the_refused_calls(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    with CallStore(db, threaded=False) as store:
        store.write_many(answered())
    old = sqlite3.connect(db)
    old.executescript(f"{AS_VERSION_5} PRAGMA user_version = 5;")
    old.close()
    assert 5 in MIGRATIONS
    qa_call = CallEvents("qa-1")
    qa_call.events[0].data["qa"] = True
    with CallStore(db) as store:
        store.write_many(qa_call.end("abandoned", hangup_by="caller"))
        store.refused(RefusedCall(WALL, "r-1", "+86138", "95588", 503, "busy", "sip"))
    assert rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(db, "SELECT call_id, qa FROM calls ORDER BY call_id") == [
        ("answered", 0), ("qa-1", 1)]  # the old call is not QA
    assert rows(db, "SELECT call_id, status, count FROM refused") == [("r-1", 503, 1)]


def test_a_version_4_file_gains_the_agents_record(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    with CallStore(db, threaded=False) as store:
        store.write_many(answered())
    old = sqlite3.connect(db)  # today's file without the agents' record is a version 4 file
    old.executescript(f"DROP TABLE agent_states; {AS_VERSION_5} PRAGMA user_version = 4;")
    old.close()
    assert 4 in MIGRATIONS
    with CallStore(db) as store:
        store.agent_sink()("ann", "available", "", WALL)
    assert rows(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(db, "SELECT * FROM agent_states") == [("ann", "available", "", WALL)]
    assert rows(db, "SELECT call_id, outcome FROM calls") == [("answered", "agent")]
    assert rows(db, "SELECT name FROM sqlite_master WHERE tbl_name = 'agent_states' "
                    "AND type = 'index'") == [("agent_states_agent_at",)]


def test_the_queue_authority_records_every_agent_state_change(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db)  # threaded, as the engine uses it
    clock = VirtualClock()
    clock.set_wall(WALL)
    authority = QueueAuthority([AgentSpec("ann", wrap_up=10)], [QueueSpec("general")], clock,
                               on_state=store.agent_sink())  # fmt: skip
    authority.registered("ann", "sim:ann", 3600)
    authority.login("ann")
    clock.advance(60)
    authority.pause("ann", "lunch")
    store.write_many(answered())  # events and agent states share the writer
    clock.advance(1800)
    authority.resume("ann")
    clock.advance(30)
    authority.logout("ann")
    store.flush()
    assert rows(db, "SELECT agent, state, reason, at FROM agent_states ORDER BY rowid") == [
        ("ann", "available", "", WALL),
        ("ann", "paused", "lunch", WALL + 60),
        ("ann", "available", "", WALL + 1860),
        ("ann", "logged_out", "", WALL + 1890),
    ]
    assert rows(db, "SELECT outcome FROM calls") == [("agent",)]
    store.close()


def test_agent_states_in_sync_mode_and_after_close(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db, threaded=False)
    sink = store.agent_sink()
    sink("bob", AgentState.ON_CALL, "", WALL)  # the authority gives StrEnums
    assert rows(db, "SELECT state, typeof(state) FROM agent_states") == [("on_call", "text")]
    store.close()
    sink("bob", AgentState.AVAILABLE, "", WALL + 1)  # dropped, never raised into the loop
    assert rows(db, "SELECT COUNT(*) FROM agent_states") == [(1,)]


def test_close_writes_the_agent_states_still_queued(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db)
    sink = store.agent_sink()
    for i in range(50):
        sink("ann", "ringing" if i % 2 else "available", "", WALL + i)
    store.close()
    assert rows(db, "SELECT COUNT(*), MIN(at), MAX(at) FROM agent_states") == [
        (50, WALL, WALL + 49)]


def test_a_bad_agent_state_is_lost_alone_and_reported(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db)
    sink = store.agent_sink()
    sink("ann", "available", "", WALL)
    sink("ann", "paused", "", float("nan"))  # JSON (and the table) take no NaN
    sink("ann", "available", "", WALL + 5)
    with pytest.raises(StoreError, match=r"1 record\(s\) not written"):
        store.flush()
    store.close()
    assert rows(db, "SELECT state, at FROM agent_states ORDER BY rowid") == [
        ("available", WALL), ("available", WALL + 5)]


def test_calls_a_crash_left_open_are_closed_as_interrupted(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    with CallStore(db, threaded=False) as store:
        store.write_many(CallEvents("open").enter("main_menu").press("1", "balance").events)
        store.write_many(CallEvents("done").enter("main_menu").emit(
            "call_end", outcome="self_service", duration=3.0, last_node="main_menu",
            flow="bank-main", language="en").events)  # fmt: skip
    assert close_interrupted(db) == 1
    assert close_interrupted(db) == 0  # once
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT call_id, outcome FROM calls").fetchall())
        open_row = conn.execute("SELECT last_node, duration, ended_at FROM calls "
                                "WHERE call_id = 'open'").fetchone()  # fmt: skip
    assert rows == {"open": "interrupted", "done": "self_service"}
    assert open_row[0] == "main_menu" and open_row[1] == 3.0 and open_row[2] == WALL + 3.0


def test_a_write_the_database_refuses_is_counted_logged_and_makes_the_store_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db, threaded=False)
    assert not store.failing
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TRIGGER full BEFORE INSERT ON events "
                     "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")  # fmt: skip
    store.write_many(CallEvents("lost").events)
    assert store.failing and store.failed_writes == 1
    assert any("could not be written" in r.getMessage() and r.levelname == "ERROR"
               for r in caplog.records)  # fmt: skip
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER full")
    store.write_many(CallEvents("kept").events)
    assert not store.failing  # a write that succeeds clears it
    with pytest.raises(StoreError):
        store.flush()  # the lost record is reported
    store.close()
