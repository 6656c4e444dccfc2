"""KPIs over a real call store: exact figures for a known set of calls."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from test_store import call_events

from ivr.cli.main import main
from ivr.store.db import CallStore, connect
from ivr.store.report import build_report


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "calls.db"
    with CallStore(path) as store:
        store.write_many(call_events("contained", "self_service", ["menu", "balance", "bye"],
                                     survey={"satisfaction": 4, "resolved": 1}))
        store.write_many(call_events("abandoned", "abandoned", ["menu", "balance"],
                                     no_input_menu=2, survey={}))
        store.write_many(call_events("queued", "queued", ["menu", "agent"], no_match_menu=1,
                                     survey={"satisfaction": 2, "resolved": None}))
        store.write_many(call_events("transferred", "transferred", ["menu", "fraud"]))
        store.write_many(call_events("in-progress", "self_service", ["menu"])[:-1])
    return path


def test_kpis_are_exact(db: Path) -> None:
    conn = connect(db)
    report = build_report(conn)
    conn.close()
    assert report.calls == 5 and report.ended == 4
    assert report.containment == pytest.approx(1 / 4)
    assert report.rate("abandoned") == pytest.approx(1 / 4)
    assert report.rate("queued") == pytest.approx(1 / 4)
    assert report.rate("transferred") == pytest.approx(1 / 4)
    nodes = {n.node: n for n in report.nodes}
    menu = nodes["menu"]
    assert (menu.visits, menu.calls, menu.no_input, menu.no_match) == (5, 5, 2, 1)
    assert menu.no_input_rate == pytest.approx(2 / 5)
    assert (nodes["balance"].calls, nodes["balance"].ended_here) == (2, 1)
    assert nodes["balance"].abandoned_here == 1
    assert report.nodes[0].node == "menu"  # funnel order: first visited first
    survey = {s.question: s for s in report.survey}
    assert survey["satisfaction"].average == 3.0 and survey["satisfaction"].responses == 2
    assert (survey["resolved"].responses, survey["resolved"].skipped) == (1, 1)


def test_time_window_and_flow_filter(db: Path) -> None:
    conn = connect(db)
    assert build_report(conn, since="2027-01-16").calls == 0  # 1.8e9 is 2027-01-15
    assert build_report(conn, until="2027-01-16").calls == 5
    assert build_report(conn, flow="other").calls == 0
    conn.close()


def test_cli_prints_tables_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "containment (self-service)   25.0 %" in text
    assert "satisfaction" in text
    assert main(["report", "--db", str(db), "--json", "--flow", "bank"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["calls"] == 5 and data["containment"] == 0.25
    assert data["nodes"][0]["node"] == "menu" and data["nodes"][0]["no_input_rate"] == 0.4
    assert main(["report", "--db", str(db), "--since", "not a date"]) == 2


def test_report_on_the_sqlite_schema_only(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    connect(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 0
    conn.close()
    assert main(["report", "--db", str(path)]) == 0
