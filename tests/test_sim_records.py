"""Reading a call store while it is written (ivr.sim.records), as a live caller does."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.core.events import Event
from ivr.sim.records import CallRecords, RecordsUnavailable
from ivr.store.db import CallStore


def _call(call_id: str) -> list[Event]:
    return [
        Event(call_id, 1, 0.0, "call_start", None, {"flow": "f", "caller": "1", "called": "2",
                                                     "transport": "sip", "wall": 1.0e9}),
        Event(call_id, 2, 0.01, "prompt", "menu", {"prompt": "menu", "text": "Press 1."}),
        Event(call_id, 3, 2.5, "input", "menu", {"mode": "dtmf", "value": "1"}),
        Event(call_id, 4, 2.6, "call_end", "menu", {"outcome": "self_service", "duration": 2.6,
                                                    "last_node": "menu"}),
    ]  # fmt: skip


def test_events_after_a_sequence_number_and_the_summary(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db, threaded=False)
    records = CallRecords(db)
    try:
        store.write_many(_call("a")[:2] + _call("b"))
        first = records.events("a")
        assert [(e.seq, e.kind, e.data.get("prompt")) for e in first] == [
            (1, "call_start", None), (2, "prompt", "menu")]  # fmt: skip
        assert records.events("a", after_seq=2) == []
        assert records.call("a") is not None and records.call("a")["outcome"] is None  # type: ignore[index]
        store.write_many(_call("a")[2:])  # written while the reader is open (WAL)
        later = records.events("a", after_seq=2)
        assert [e.kind for e in later] == ["input", "call_end"]
        assert later[0].data == {"mode": "dtmf", "value": "1"} and later[0].node == "menu"
        summary = records.call("a")
        assert summary is not None and summary["outcome"] == "self_service"
        assert records.call("nobody") is None
    finally:
        records.close()
        store.close()


def test_a_missing_store_is_reported_and_found_once_it_exists(tmp_path: Path) -> None:
    db = tmp_path / "later.db"
    records = CallRecords(db)
    with pytest.raises(RecordsUnavailable, match="no call store"):
        records.events("a")
    with CallStore(db, threaded=False) as store:
        store.write_many(_call("a"))
    assert len(records.events("a")) == 4
    records.close()


def test_a_file_that_is_not_a_store_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_text("not sqlite at all " * 100)
    with pytest.raises(RecordsUnavailable, match="cannot read"):
        CallRecords(bad).events("a")
