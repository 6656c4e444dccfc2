"""Live call scripts (ivr.sim.live): what cannot run live, addressing, and how it is reported.

The runs themselves, against a real server, are in test_serve_e2e.py.
"""

from __future__ import annotations

import pytest

from ivr.core.events import Event
from ivr.sim.junit import junit_xml
from ivr.sim.live import RecordedSession, target_uri, why_skipped
from ivr.sim.runner import ScriptResult
from ivr.sim.script import parse_script

BASE = "call: bank-main\nsteps:\n  - expect: choose_language\n  - press: '1'\n"


def test_scripts_that_speak_an_unrecognised_language_or_need_vars_are_skipped() -> None:
    assert why_skipped(parse_script(BASE)) is None
    speech = parse_script(BASE + "  - say: balance\n")
    mandarin = parse_script(BASE + "  - say: 余额\n")
    server = {"en": None, "zh": "the pocketsphinx backend has no zh model (it has en)"}
    assert why_skipped(speech, server) is None and why_skipped(speech) is None
    assert why_skipped(mandarin, server) == (
        "step 3 (say '余额'): speech input is not supported live in zh: the pocketsphinx "
        "backend has no zh model (it has en)")  # fmt: skip
    assert why_skipped(speech, {"zh": None}) == ("step 3 (say 'balance'): speech input is not "
                                                 "supported live in en: no en recognizer is "
                                                 "configured")  # fmt: skip
    with_vars = parse_script(BASE + "vars: {segment: corporate}\n")
    assert why_skipped(with_vars) == "initial vars cannot be given to a live call"


def test_target_uri_takes_the_scripts_number() -> None:
    assert target_uri("sip:127.0.0.1:5060", "95588") == "sip:95588@127.0.0.1:5060"
    assert target_uri("sip:7001@127.0.0.1:5062", "") == "sip:7001@127.0.0.1:5062"
    assert target_uri("127.0.0.1:5060", "") == "sip:ivr@127.0.0.1:5060"
    assert target_uri("sip:7001@127.0.0.1", "95588") == "sip:95588@127.0.0.1"
    with pytest.raises(ValueError, match="not a SIP URI"):
        target_uri("http://example.com", "1")


def test_recorded_session_follows_the_record() -> None:
    session = RecordedSession()
    assert session.node_id is None and not session.finished and session.vars == {}
    session.on_event(Event("c", 1, 0.0, "node_enter", "menu", {}))
    session.on_event(Event("c", 2, 0.1, "prompt", "menu", {"prompt": "menu"}))
    assert session.node_id == "menu" and not session.finished
    session.on_event(Event("c", 3, 4.0, "call_end", "menu", {"outcome": "abandoned"}))
    assert session.finished and session.outcome == "abandoned"


def test_skips_and_notes_are_reported_never_as_passes() -> None:
    skipped = ScriptResult(name="speaks", path="s.yaml", flow="bank-main", passed=False,
                           skipped="step 3 (say 'x'): no recognizer", live=True)  # fmt: skip
    noted = ScriptResult(name="vars", path="v.yaml", flow="bank-main", passed=True, steps=4,
                         duration=12.5, live=True,
                         notes=["step 2 (assert a): not checked: not in the record"])  # fmt: skip
    assert skipped.summary() == "SKIP speaks: step 3 (say 'x'): no recognizer"
    assert noted.summary().splitlines() == [
        "PASS vars (4 steps, 12.5 s)",
        "  note: step 2 (assert a): not checked: not in the record",
    ]
    xml = junit_xml([skipped, noted])
    assert 'failures="0"' in xml and 'skipped="1"' in xml
    assert "<skipped message=\"step 3 (say 'x'): no recognizer\"" in xml
    assert "<system-out>step 2 (assert a): not checked: not in the record</system-out>" in xml
