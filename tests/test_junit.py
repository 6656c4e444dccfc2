"""JUnit XML (ivr/sim/junit.py): one testcase per script, failures carry the divergence."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ivr.sim.junit import junit_xml, write_junit
from ivr.sim.runner import ScriptResult
from ivr.sim.verdict import Divergence

DIVERGENCE = Divergence(
    file="tests/scripts/balance.yaml",
    line=9,
    step=4,
    what="expect ask_pin",
    message="expected prompt 'ask_pin', got 'ask_account.no_match'",
    t=12.4,
    node="ask_account",
    expected="ask_pin",
    actual="ask_account.no_match",
    actual_text="Sorry, that account number is not valid.",
)


def results() -> list[ScriptResult]:
    return [
        ScriptResult(
            name="balance ok",
            path="tests/scripts/ok.yaml",
            flow="bank-main",
            passed=True,
            outcome="self_service",
            duration=41.25,
            wall=0.002,
            steps=8,
        ),
        ScriptResult(
            name='balance <bad> & "PIN"',
            path="tests/scripts/balance.yaml",
            flow="bank-main",
            passed=False,
            divergence=DIVERGENCE,
            outcome="abandoned",
            duration=12.4,
            wall=0.001,
            steps=6,
        ),
    ]


def test_suite_counts_and_cases() -> None:
    root = ET.fromstring(junit_xml(results()))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    assert float(suite.get("time", "0")) == 0.003
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["balance ok", 'balance <bad> & "PIN"']
    assert [c.get("classname") for c in cases] == ["ivr.flows.bank-main"] * 2
    assert cases[0].find("failure") is None
    assert cases[1].get("file") == "tests/scripts/balance.yaml"
    assert cases[1].get("line") == "9"


def test_a_failure_carries_the_divergence() -> None:
    root = ET.fromstring(junit_xml(results()))
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == (
        "tests/scripts/balance.yaml:9 step 4 (expect ask_pin): expected prompt 'ask_pin', "
        "got 'ask_account.no_match'"
    )
    assert failure.text == (
        "tests/scripts/balance.yaml:9 step 4 (expect ask_pin)\n"
        "  at t=12.40s in node ask_account: expected prompt 'ask_pin', got "
        "'ask_account.no_match'\n"
        '  ("Sorry, that account number is not valid.")'
    )


def test_properties_keep_virtual_time_and_outcome() -> None:
    root = ET.fromstring(junit_xml(results()))
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["virtual_seconds"] == "12.400"  # the last case's
    assert props["outcome"] == "abandoned"


def test_write_junit_creates_folders(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "junit.xml"
    write_junit(results(), target)
    text = target.read_text(encoding="utf-8")
    assert text.startswith("<?xml")
    assert ET.fromstring(text).find("testsuite") is not None


def test_no_results_is_an_empty_suite() -> None:
    suite = ET.fromstring(junit_xml([])).find("testsuite")
    assert suite is not None and suite.get("tests") == "0"
