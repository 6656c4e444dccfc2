"""KPIs over a real call store: exact figures for a known set of calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_store import WALL, CallEvents, abandoned, answered, contained, troubled

from ivr.cli.main import main
from ivr.config import load_config
from ivr.core.events import Event
from ivr.flow.loader import load_flowset
from ivr.sim.runner import make_runtime, run_scripts
from ivr.sim.script import parse_script
from ivr.store.db import CallStore, connect
from ivr.store.report import Report, build_report, format_json, format_text, parse_moment

ROOT = Path(__file__).resolve().parent.parent
DAY = 86_400.0


def in_progress() -> list[Event]:
    """A call of another flow, two days later, still at its first menu."""
    call = CallEvents("in-progress", flow="card-activation", wall=WALL + 2 * DAY)
    return call.enter("activate_menu").no_input(1).events


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "calls.db"
    with CallStore(path) as store:
        for events in (contained(), abandoned(), answered(), troubled(), in_progress()):
            store.write_many(events)
    return path


def report(db: Path, **kwargs: Any) -> Report:
    conn = connect(db)
    try:
        return build_report(conn, **kwargs)
    finally:
        conn.close()


def test_outcome_kpis_are_exact(db: Path) -> None:
    r = report(db)
    assert (r.calls, r.ended) == (5, 4)  # the call in progress counts only in calls
    assert r.outcomes == {"self_service": 1, "abandoned": 1, "agent": 1, "transferred": 1}
    assert r.rates() == {"containment": 0.25, "transfer_rate": 0.25, "queue_rate": 0.25,
                         "agent_rate": 0.25, "abandonment": 0.25, "queue_abandonment": 0.0,
                         "failure_rate": 0.0}  # fmt: skip
    assert r.average_duration == (12.5 + 16.5 + 42.5 + 24.5) / 4
    flows = {f.flow: f for f in r.by_flow}
    assert (flows["bank-main"].calls, flows["bank-main"].ended) == (4, 4)
    assert (flows["card-activation"].calls, flows["card-activation"].ended) == (1, 0)
    assert flows["card-activation"].containment == 0.0  # nothing ended: no division by zero


def test_per_node_input_problems_and_funnel(db: Path) -> None:
    r = report(db)
    nodes = {(n.flow, n.node): n for n in r.nodes}
    menu = nodes["bank-main", "main_menu"]  # re-entered once by "back" in the troubled call
    assert (menu.visits, menu.calls, menu.no_input, menu.no_match) == (5, 4, 2, 1)
    assert (menu.no_input_rate, menu.no_match_rate) == (2 / 5, 1 / 5)
    assert (menu.ended_here, menu.abandoned_here) == (0, 0)
    pin = nodes["verify-customer", "ask_pin"]  # the sub-flow node the caller hung up in
    assert (pin.visits, pin.calls, pin.ended_here, pin.abandoned_here) == (1, 1, 1, 1)
    assert pin.drop_off_rate == 1.0
    ended = {key: n.ended_here for key, n in nodes.items() if n.ended_here}
    assert ended == {("bank-main", "goodbye"): 1, ("bank-main", "agent"): 1,
                     ("bank-main", "lost_card"): 1, ("verify-customer", "ask_pin"): 1}
    # Flow by flow (by name); in each, in call order (the average first entry).
    assert [(n.flow, n.node) for n in r.nodes] == [
        ("bank-main", "main_menu"), ("bank-main", "agent"), ("bank-main", "branch_hours"),
        ("bank-main", "survey"), ("bank-main", "card_menu"), ("bank-main", "goodbye"),
        ("bank-main", "lost_card"), ("card-activation", "activate_menu"),
        ("verify-customer", "ask_pin"),
    ]


def test_survey_scores(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    with CallStore(path, threaded=False) as store:
        store.write_many(contained("a"))
        second = contained("b")
        for event in second:  # this caller gave 2 and answered the second question with 1
            if event.kind == "survey":
                answer = 2 if event.data["question"] == "satisfaction" else 1
                event.data["answer"] = answer
        store.write_many(second)
    survey = {s.question: s for s in report(path).survey}
    assert (survey["satisfaction"].responses, survey["satisfaction"].average) == (2, 3.5)
    assert survey["satisfaction"].skipped == 0
    assert (survey["resolved"].responses, survey["resolved"].average) == (1, 1.0)
    assert survey["resolved"].skipped == 1


def test_time_window_and_flow_filter(db: Path) -> None:
    assert report(db, since="2027-01-16").calls == 1  # WALL is 2027-01-15 08:00 UTC
    assert report(db, since="2027-01-16").ended == 0
    assert report(db, until="2027-01-15").calls == 4  # a bare date: the whole day
    assert report(db, since="2027-01-15", until="2027-01-15").calls == 4
    assert report(db, until="2027-01-15T08:00:00").calls == 0  # until is exclusive ...
    assert report(db, since="2027-01-15T08:00:00").calls == 5  # ... since inclusive
    assert report(db, since="2027-01-15T16:00:00+08:00").calls == 5  # offsets count
    assert report(db, since="2027-01-15T16:00:01+08:00").calls == 1
    only = report(db, flow="bank-main")
    assert (only.calls, only.containment) == (4, 0.25)
    assert {n.flow for n in only.nodes} == {"bank-main", "verify-customer"}  # its sub-flow too
    assert report(db, flow="other").calls == 0
    with pytest.raises(ValueError, match="ISO"):
        report(db, since="last tuesday")


def test_parse_moment() -> None:
    assert parse_moment("2027-01-15T08:00:00") == WALL
    assert parse_moment("2027-01-15T08:00:00Z") == WALL
    assert parse_moment("2027-01-15", end_of_day=True) == WALL + 16 * 3600
    assert parse_moment("2027-01-15T08:00", end_of_day=True) == WALL
    assert parse_moment(None) is None


def test_text_and_json_rendering(db: Path) -> None:
    r = report(db)
    text = format_text(r)
    assert "Calls: 5 (all flows); ended: 4; average duration 24.0 s" in text
    assert "containment (self-service)    25.0 %" in text
    assert "failed                         0.0 %" in text
    menu_line = next(line for line in text.splitlines() if " main_menu " in line)
    assert menu_line.split() == ["bank-main", "main_menu", "5", "4", "2", "(40.0", "%)", "1",
                                 "(20.0", "%)", "0", "0", "(0.0", "%)"]
    assert "card-activation" in text and "satisfaction" in text
    data = json.loads(format_json(r))
    assert data["calls"] == 5 and data["containment"] == 0.25
    assert data["nodes"][0]["node"] == "main_menu" and data["nodes"][0]["no_input_rate"] == 0.4
    assert data["by_flow"][0]["flow"] == "bank-main" and data["by_flow"][0]["queue_rate"] == 0.25


def test_cli(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "abandoned in the IVR          25.0 %" in text and "ask_pin" in text
    assert main(["report", "--db", str(db), "--json", "--flow", "bank-main",
                 "--since", "2027-01-15", "--until", "2027-01-15"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["calls"], data["ended"], data["transfer_rate"]) == (4, 4, 0.25)
    assert main(["report", "--db", str(db), "--since", "not a date"]) == 2
    assert "not an ISO date" in capsys.readouterr().err
    missing = tmp_path / "nowhere" / "calls.db"
    assert main(["report", "--db", str(missing)]) == 2
    assert not missing.parent.exists()  # a mistyped path is not created


def test_cli_default_db_from_ivr_yaml(db: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text(f"store:\n  path: {db.name}\n")
    assert main(["-c", str(config), "report", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["calls"] == 5


BRANCH_HOURS = """
call: bank-main
caller: {number: "+8613800000099", called: "95588"}
at: "2027-01-04T10:00:00+08:00"
steps:
  - expect: choose_language
  - press: "1"
  - expect: main_menu
  - press: "4"
  - expect: branch_hours
  - expect: anything_else
  - press: "2"
  - expect: survey.satisfaction
  - press: "5"
  - expect_hangup
outcome: self_service
"""


def test_report_over_calls_the_engine_ran(tmp_path: Path) -> None:
    config = load_config(ROOT / "ivr.yaml")
    flows, _ = load_flowset(config.flows_dir, config)
    script = parse_script(BRANCH_HOURS, "branch_hours.yaml")
    path = tmp_path / "calls.db"
    with CallStore(path) as store:  # threaded, as the engine uses it
        results = run_scripts([script] * 20, flows, make_runtime(config), sinks=[store.sink])
        store.flush()
    assert all(result.passed for result in results)
    # ivr test's calls are QA calls: a production report leaves them out unless asked.
    assert report(path, flow="bank-main", since="2027-01-04").calls == 0
    r = report(path, flow="bank-main", since="2027-01-04", include_qa=True)
    assert (r.calls, r.ended, r.containment) == (20, 20, 1.0)
    assert r.nodes[0].node == flows.get("bank-main").start
    nodes = {n.node: n for n in r.nodes}
    assert (nodes["main_menu"].calls, nodes["main_menu"].no_input) == (20, 0)
    assert nodes["goodbye"].ended_here == 20
    survey = {s.question: s for s in r.survey}
    assert (survey["satisfaction"].responses, survey["satisfaction"].average) == (20, 5.0)
