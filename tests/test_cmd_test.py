"""``ivr test`` (ivr/cli/cmd_test.py), run in-process against tests/flows/sim."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.cli.main import main

FLOWS = Path(__file__).parent / "flows" / "sim"

PASSING = """\
name: balance
call: sim-main
steps:
  - expect: welcome
  - expect: main_menu
  - press: "1"
  - expect: ask_account
  - hangup
outcome: abandoned
"""

FAILING = """\
call: sim-main
steps:
  - expect: welcome
  - expect: main_menu
  - press: "9"
  - expect: ask_account
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """An ivr.yaml whose flows are the simulator's test flows; scripts go in scripts/."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "ivr.yaml").write_text(
        f"flows_dir: {FLOWS}\nactions_path: {FLOWS / 'actions'}\nscripts_dir: scripts\n",
        encoding="utf-8",
    )
    return tmp_path


def write(project: Path, name: str, text: str) -> Path:
    path = project / "scripts" / name
    path.write_text(text, encoding="utf-8")
    return path


def ivr_test(project: Path, *args: str) -> int:
    return main(["-c", str(project / "ivr.yaml"), "test", *args])


def test_all_passing_exits_0(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, "a.yaml", PASSING)
    assert ivr_test(project) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("PASS balance (5 steps, ")
    assert lines[0].endswith(" s virtual)")
    assert lines[-1] == "1 passed, 0 failed"


def test_a_failing_script_prints_its_divergence_and_exits_1(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "a.yaml", PASSING)
    bad = write(project, "b.yaml", FAILING)
    assert ivr_test(project, str(project / "scripts")) == 1
    out = capsys.readouterr().out
    assert f"FAIL {bad}:6 step 4 (expect ask_account)\n" in out
    assert "in node main_menu: expected prompt 'ask_account', got 'main_menu.no_match'\n" in out
    assert '  ("Sorry, that is not a valid choice.")\n' in out
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_a_bad_script_is_a_failure_with_its_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(project, "bad.yaml", "call: sim-main\nsteps:\n  - pres: 1\n")
    assert ivr_test(project, str(bad)) == 1
    out = capsys.readouterr().out
    assert f"FAIL {bad}:3 (bad script)\n" in out
    assert "unknown step 'pres' (did you mean 'press'?)" in out
    assert out.splitlines()[-1] == "0 passed, 1 failed"


def test_missing_paths_and_empty_folders_are_usage_errors(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ivr_test(project, str(project / "nope.yaml")) == 2
    assert ivr_test(project) == 2  # scripts/ is empty
    assert "no call scripts found" in capsys.readouterr().err


def test_junit_report(project: Path) -> None:
    write(project, "a.yaml", PASSING)
    write(project, "b.yaml", FAILING)
    report = project / "out" / "junit.xml"
    assert ivr_test(project, "--junit", str(report)) == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "1")


def test_coverage_table_and_threshold(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, "a.yaml", PASSING)
    assert ivr_test(project, "--coverage") == 0
    out = capsys.readouterr().out
    assert "sim-main" in out and "missing branches: " in out and "total: nodes" in out
    assert ivr_test(project, "--require-coverage", "100") == 1
    assert "is below the required 100%" in capsys.readouterr().out
    assert ivr_test(project, "--require-coverage", "1") == 0


def test_jobs_give_the_same_verdicts(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        write(project, f"p{i}.yaml", PASSING)
    write(project, "x.yaml", FAILING)
    assert ivr_test(project, "--jobs", "2") == 1
    out = capsys.readouterr().out
    assert out.count("PASS balance") == 3 and out.count("FAIL ") == 1
    assert out.splitlines()[-1] == "3 passed, 1 failed"


def test_verbose_shows_the_events_of_failed_scripts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "b.yaml", FAILING)
    assert ivr_test(project, "-v") == 1
    out = capsys.readouterr().out
    assert "no_match main_menu" in out
    assert "call_end" in out


def test_store_writes_call_records(project: Path) -> None:
    write(project, "a.yaml", PASSING)
    db = project / "var" / "calls.db"
    db.parent.mkdir()
    assert ivr_test(project, "--store", str(db)) == 0
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        rows = sum(conn.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables)
        marks = conn.execute("select qa, count(*) from calls group by qa").fetchall()
    assert rows > 0
    assert marks == [(1, 1)]  # a QA call: production reports leave it out (docs/REPORTS.md)


def test_nothing_is_stored_by_default(project: Path) -> None:
    write(project, "a.yaml", PASSING)
    assert ivr_test(project) == 0
    assert not (project / "var").exists()


SECRET_MISMATCH = """\
name: wrong pin expected
call: sim-main
steps:
  - expect: welcome
  - expect: main_menu
  - press: "5"
  - expect: ask_pin
  - press: "9071"
  - assert: {vars: {pin: "1234"}}
"""


def test_a_failing_check_on_a_secret_shows_neither_value(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project, "s.yaml", SECRET_MISMATCH)
    report = project / "junit.xml"
    assert ivr_test(project, "--junit", str(report)) == 1
    out = capsys.readouterr().out
    assert "expected pin = ****, got another value (secret: not shown)" in out
    junit = report.read_text(encoding="utf-8")
    assert "secret: not shown" in junit
    for text in (out, junit):
        assert "9071" not in text and "1234" not in text
