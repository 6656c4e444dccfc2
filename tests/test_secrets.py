"""Secrets (PINs, card-format account numbers) never reach records, logs or reports.

Runs every bank call script through the real engine with the call store, a DEBUG log file and a
JUnit report, then reads everything written (every row of the database, the log, the reports)
looking for the PINs and account numbers the scripts typed.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from ivr.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "scripts"


def typed_secrets() -> set[str]:
    """Every PIN and account number a script presses (6 digits, or 16-19 from 6222)."""
    found: set[str] = set()
    for script in SCRIPTS.glob("*.yaml"):
        text = script.read_text()
        for digits in re.findall(r"press:\s*\{?\s*(?:digits:\s*)?\"?([0-9#*]+)", text):
            entry = digits.rstrip("#")
            if re.fullmatch(r"6222\d{12,15}", entry) or re.fullmatch(r"\d{6}", entry):
                found.add(entry)
    return found


def test_the_scripts_really_type_secrets() -> None:
    secrets = typed_secrets()
    assert "123456" in secrets and "6222021000000013" in secrets
    assert len(secrets) >= 8


def test_no_secret_in_records_logs_or_reports(
    bank_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db, log, junit = tmp_path / "calls.db", tmp_path / "ivr.log", tmp_path / "junit.xml"
    status = main(["--log-level", "debug", "--log-file", str(log), "test", "--store", str(db),
                   "--junit", str(junit), str(SCRIPTS)])
    test_output = capsys.readouterr().out
    assert status == 0, test_output
    assert main(["report", "--db", str(db)]) == 0
    report_text = capsys.readouterr().out
    assert main(["report", "--db", str(db), "--json"]) == 0
    report_json = capsys.readouterr().out

    written = {
        "log": log.read_bytes(),
        "junit": junit.read_bytes(),
        "test output": test_output.encode(),
        "report": report_text.encode(),
        "report json": report_json.encode(),
    }
    # Every value in the database as text (the raw file holds binary floats whose bytes can
    # spell "333333"); the WAL is read through the same connection.
    conn = sqlite3.connect(db)
    written["database"] = "\n".join(conn.iterdump()).encode()
    conn.close()
    assert b"call_end" in written["log"] and b"****" in written["log"]  # the log is really there
    assert b"node_enter" in written["database"] and b"****" in written["database"]
    for secret in sorted(typed_secrets()):
        # Not inside a longer number: "000001" is a wrong PIN, "+8613800000001" a caller.
        pattern = re.compile(rb"(?<![0-9.])" + secret.encode() + rb"(?![0-9])")
        for name, data in written.items():
            assert not pattern.search(data), f"{secret} found in {name}"
