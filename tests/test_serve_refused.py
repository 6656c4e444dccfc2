"""Calls refused before an answer are recorded (the reports' answer rate), and a live QA call is
marked in the record when the server trusts test headers. A real ``ivr serve`` on 127.0.0.1,
called by our SIP caller; the refusal store's cleaning and rate cap against a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import (
    MENU_FLOW,
    ServerThread,
    calls,
    free_port,
    record_ids,
    wait_for,
    write_config,
)

from ivr.serve.server import ServeOptions
from ivr.sim.live import QA_HEADER
from ivr.sim.live_call import LivePhone
from ivr.store.db import CallStore
from ivr.store.refused import MAX_PER_SECOND, MAX_TEXT, MERGED, RateCap, RefusedCall, clean

WALL = 1_772_409_600.0  # 2026-03-02T00:00:00Z


def refused_rows(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT call_id, caller, called, status, reason, transport, qa, count "
                            "FROM refused ORDER BY rowid").fetchall()  # fmt: skip


def start_server(root: Path, *, test_headers: bool) -> ServerThread:
    flows = root / "flows"
    flows.mkdir()
    (flows / "e2e-menu.yaml").write_text(MENU_FLOW, encoding="utf-8")
    port = free_port()
    config = write_config(root, flows, root / "prompts", port=port, numbers={"7001": "e2e-menu"})
    options = ServeOptions(test_headers=test_headers, port=port, rtp_ports=(27000, 27499),
                           drain_timeout=2)  # fmt: skip
    return ServerThread(config, options).start()


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ServerThread]:
    thread = start_server(tmp_path, test_headers=True)
    try:
        yield thread
    finally:
        thread.stop()


async def call(address: tuple[str, int], number: str, caller: str,
               headers: list[tuple[str, str]] | None = None) -> tuple[int, str]:  # fmt: skip
    """Dial ``number``; hang up at once when answered. Returns the status and the Call-ID."""
    phone = LivePhone()
    await phone.start()
    try:
        live = phone.caller()
        host, port = address
        status = await live.dial(f"sip:{number}@{host}:{port}", caller=caller,
                                 headers=headers or [])  # fmt: skip
        if status == 200:
            live.hangup()
            await live.wait_ended(5)
        return status, live.call_id
    finally:
        await phone.close()


def test_an_unknown_number_is_refused_and_recorded_with_the_caller_cut(
    server: ServerThread,
) -> None:
    long_caller = "9" * 200  # a caller-supplied text far over the cap
    status, call_id = asyncio.run(call(server.address, "5555", long_caller))
    assert status == 404
    server.stop()  # flushes the store
    assert refused_rows(server.db) == [
        (call_id, "9" * MAX_TEXT, "5555", 404, "No flow for this number", "sip", 0, 1)]
    assert calls(server.db) == []  # refused: never a call record


def test_a_live_qa_call_is_marked_and_a_plain_one_is_not(server: ServerThread) -> None:
    qa_status, qa_id = asyncio.run(call(server.address, "7001", "qa", [(QA_HEADER, "1")]))
    plain_status, plain_id = asyncio.run(call(server.address, "7001", "customer"))
    refused_status, refused_id = asyncio.run(call(server.address, "8888", "qa",
                                                  [(QA_HEADER, "1")]))  # fmt: skip
    assert (qa_status, plain_status, refused_status) == (200, 200, 404)
    wait_for(lambda: len([c for c in calls(server.db) if c["outcome"]]) == 2, 10)
    server.stop()
    ours = {sip_id: record_ids(server.db, sip_id)[0] for sip_id in (qa_id, plain_id)}
    assert {c["call_id"]: c["qa"] for c in calls(server.db)} == {ours[qa_id]: 1,
                                                                 ours[plain_id]: 0}
    assert [(r[0], r[6]) for r in refused_rows(server.db)] == [(refused_id, 1)]


def test_a_server_without_test_headers_ignores_the_qa_mark(tmp_path: Path) -> None:
    server = start_server(tmp_path, test_headers=False)
    try:
        status, call_id = asyncio.run(call(server.address, "7001", "qa", [(QA_HEADER, "1")]))
        assert status == 200
        wait_for(lambda: any(c["outcome"] for c in calls(server.db)), 10)
    finally:
        server.stop()
    assert [(c["call_id"], c["qa"]) for c in calls(server.db)] == [
        (record_ids(server.db, call_id)[0], 0)]


def test_refusals_are_cleaned_and_a_flood_is_merged(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    hostile = "\x1b[2J\x07+86\u202e138\x00" + "x" * 500
    with CallStore(db) as store:
        store.refused(RefusedCall(WALL, "c-0", hostile, "95588\r\n", 404, "no flow\x1b", "sip"))
        for i in range(1, MAX_PER_SECOND + 30):  # one second: 30 over the cap
            store.refused(RefusedCall(WALL + 0.5, f"c-{i}", "+86", "95588", 503, "full", "sip"))
        store.refused(RefusedCall(WALL + 1.2, "late", "+86", "95588", 503, "full", "sip"))
        store.refused(RefusedCall(WALL + 1.3, "odd", "+86", "95588", 200, "?", "sip"))
    rows = refused_rows(db)
    first = rows[0]
    assert first[1] == "[2J+86138" + "x" * (MAX_TEXT - 9)  # ESC, BEL, NUL, RLO gone; cut
    assert (first[2], first[4]) == ("95588", "no flow")
    merged = [r for r in rows if r[4] == MERGED]
    assert [(r[0], r[3], r[7]) for r in merged] == [("", 503, 30)]
    assert len(rows) == MAX_PER_SECOND + 1 + 2  # the capped second's rows, merged one, 2 late
    assert sum(int(r[7]) for r in rows) == MAX_PER_SECOND + 30 + 2  # every refusal counted
    assert rows[-1][3] == 0  # a status outside 300-699 is not trusted
    assert clean(None) == "" and clean(12345) == "12345"


def test_a_floods_merged_count_is_written_once_its_second_is_over() -> None:
    cap = RateCap(per_second=2)
    calls = [RefusedCall(WALL + 0.1 * i, f"c-{i}", "+86", "95588", 503, "full", "sip")
             for i in range(5)]  # fmt: skip
    admitted = [row for call in calls for row in cap.admit(call)]
    assert [row.call_id for row in admitted] == ["c-0", "c-1"]  # 3 over the cap: merged
    assert cap.expired(WALL + 0.9) == []  # the second is not over
    [merged] = cap.expired(WALL + 1.0)
    assert (merged.status, merged.reason, merged.count, merged.call_id) == (503, MERGED, 3, "")
    assert cap.expired(WALL + 2.0) == [] and cap.drain() == []  # written once
