"""The script runner and its caller driver (ivr/sim/runner.py, ivr/sim/driver.py) against the
real engine and the test flows in tests/flows/sim."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from ivr.config import Config
from ivr.core import events as ev
from ivr.core.clock import VirtualClock
from ivr.engine.actions import InlineActionRunner
from ivr.engine.runtime import Runtime
from ivr.engine.session import Session
from ivr.flow.loader import load_flowset
from ivr.flow.model import FlowSet
from ivr.sim.runner import ScriptResult, run_parallel, run_scripts
from ivr.sim.script import Script, parse_script

FLOWS = Path(__file__).parent / "flows" / "sim"
ACTIONS = FLOWS / "actions"

START = """\
call: sim-main
caller: {number: "+8613800000001", called: "95588"}
steps:
  - expect: welcome
  - expect: main_menu
"""


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    flowset, _warnings = load_flowset(FLOWS)
    return flowset


def runtime() -> Runtime:
    return Runtime(actions=InlineActionRunner(ACTIONS), actions_path=ACTIONS)


def script(text: str, name: str = "s.yaml") -> Script:
    return parse_script(textwrap.dedent(text), name)


def run(flows: FlowSet, *texts: str, **kwargs: Any) -> list[ScriptResult]:
    scripts = [script(t, f"s{i}.yaml") for i, t in enumerate(texts)]
    return run_scripts(scripts, flows, runtime(), **kwargs)


def run_one(flows: FlowSet, text: str) -> ScriptResult:
    return run(flows, text)[0]


def kinds(result: ScriptResult, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in result.events if e.kind == kind]


BALANCE = (
    START
    + """\
  - press: "1"
  - expect: ask_account
  - press: "1234#"
  - expect: {prompt: confirm_account, vars: {account: "1234"}}
  - expect_node: confirm_account
  - press: 1
  - expect: {prompt: say_balance, vars: {balance.available: "1024.00"}}
  - expect: {text: "Thank you for calling, goodbye", similarity: 0.9}
  - expect_hangup
outcome: self_service
"""
)


def test_a_script_that_follows_the_flow_passes(flows: FlowSet) -> None:
    result = run_one(flows, BALANCE)
    assert result.passed, result.summary()
    assert result.divergence is None
    assert result.outcome == "self_service"
    assert result.flow == "sim-main" and result.steps == 11
    assert result.events[0].kind == ev.CALL_START and result.events[-1].kind == ev.CALL_END
    assert result.duration == pytest.approx(result.events[-1].data["duration"], abs=0.01)
    assert result.summary() == f"PASS s0 (11 steps, {result.duration:.1f} s virtual)"


def test_a_wrong_prompt_is_the_first_divergence_with_its_place(flows: FlowSet) -> None:
    result = run_one(flows, START + '  - press: "9"\n  - expect: ask_account\n')
    assert not result.passed
    div = result.divergence
    assert div is not None
    assert (div.file, div.line, div.step, div.what) == ("s0.yaml", 7, 4, "expect ask_account")
    assert div.node == "main_menu"
    assert div.expected == "ask_account" and div.actual == "main_menu.no_match"
    assert div.actual_text == "Sorry, that is not a valid choice."
    assert div.t is not None and div.t > 2.3
    assert result.summary() == (
        f"FAIL s0.yaml:7 step 4 (expect ask_account)\n"
        f"  at t={div.t:.2f}s in node main_menu: expected prompt 'ask_account', got "
        f"'main_menu.no_match'\n"
        f'  ("Sorry, that is not a valid choice.")'
    )
    assert result.outcome == "abandoned"  # the driver hangs up after a divergence


def test_re_prompts_count_as_prompts(flows: FlowSet) -> None:
    result = run_one(
        flows,
        START + '  - press: "9"\n  - expect: main_menu.no_match\n  - expect: main_menu\n'
        "  - hangup\noutcome: abandoned\n",
    )
    assert result.passed, result.summary()


def test_text_expectations_use_a_similarity_ratio(flows: FlowSet) -> None:
    close = "call: sim-main\nsteps:\n  - expect: {text: 'welcome to the test bank'}\n  - hangup\n"
    far = "call: sim-main\nsteps:\n  - expect: {text: 'Goodbye and thanks', similarity: 0.8}\n"
    ok, bad = run(flows, close, far)
    assert ok.passed, ok.summary()
    assert not bad.passed and bad.divergence is not None
    assert "expected text 'Goodbye and thanks' (similarity 0.8), got 'welcome'" in (
        bad.divergence.message
    )


def test_press_waits_for_the_prompt_unless_barge_in(flows: FlowSet) -> None:
    polite, barging = run(
        flows,
        START + '  - press: "1"\n  - expect: ask_account\n  - hangup\n',
        START + '  - press: {digits: "1", barge_in: true}\n  - expect: ask_account\n  - hangup\n',
    )
    assert polite.passed and barging.passed, (polite.summary(), barging.summary())
    menu_at = kinds(polite, ev.PROMPT)[1]
    assert menu_at["prompt"] == "main_menu"

    def asked_at(result: ScriptResult) -> float:
        return next(e.t for e in result.events if e.data.get("prompt") == "ask_account")

    menu_started = next(e.t for e in polite.events if e.data.get("prompt") == "main_menu")
    assert asked_at(barging) == pytest.approx(menu_started, abs=0.2)  # at once, over the menu
    assert asked_at(polite) > menu_started + 10  # after the whole menu prompt


def test_digits_go_one_by_one_a_tenth_of_a_second_apart(flows: FlowSet) -> None:
    result = run_one(
        flows,
        START + '  - press: "1"\n  - expect: ask_account\n'
        '  - press: "1234#"\n  - expect: confirm_account\n  - hangup\n',
    )
    assert result.passed, result.summary()
    entry = next(e for e in result.events if e.kind == ev.INPUT and e.node == "ask_account")
    asked = next(e.t for e in result.events if e.data.get("prompt") == "ask_account")
    prompt_len = 0.3 + 8 / 2.5  # "Please enter your account number followed by hash."
    assert entry.data["value"] == "1234"
    assert entry.t == pytest.approx(asked + prompt_len + 0.4, abs=0.01)


def test_say_is_recognised_speech(flows: FlowSet) -> None:
    result = run_one(flows, START + "  - say: balance\n  - expect: ask_account\n  - hangup\n")
    assert result.passed, result.summary()
    speech = [e for e in kinds(result, ev.INPUT) if e["mode"] == "speech"]
    assert speech == [{"mode": "speech", "value": "balance", "confidence": 1.0, "flow": "sim-main"}]


def test_low_confidence_speech_is_confirmed(flows: FlowSet) -> None:
    result = run_one(
        flows,
        START + "  - say: {text: balance, confidence: 0.3}\n  - expect: main_menu.confirm\n"
        "  - say: 'yes'\n  - expect: ask_account\n  - hangup\n",
    )
    assert result.passed, result.summary()


def test_silence_lets_no_input_timers_fire_until_escalation(flows: FlowSet) -> None:
    result = run_one(
        flows,
        START + "  - silence: 6\n  - expect: main_menu.no_input\n  - expect: main_menu\n"
        "  - wait: 6\n  - expect: agent\n"
        "  - expect_queue: {queue: general, priority: 5, skills: [accounts]}\n"
        "  - expect_agent: ann\n  - hangup\n"
        "agents: [{id: ann, skills: [accounts]}]\noutcome: agent\n",
    )
    assert result.passed, result.summary()
    assert [e["count"] for e in kinds(result, ev.NO_INPUT)] == [1, 2]


def test_expect_node(flows: FlowSet) -> None:
    now, entered, wrong = run(
        flows,
        "call: sim-main\nsteps:\n  - expect_node: welcome\n  - hangup\n",
        START + '  - press: "1"\n  - expect_node: ask_account\n  - hangup\n',
        START + '  - press: "1"\n  - expect_node: confirm_account\n',
    )
    assert now.passed, now.summary()
    assert entered.passed, entered.summary()
    assert not wrong.passed and wrong.divergence is not None
    assert wrong.divergence.message == (
        "expected node 'confirm_account', got prompt 'ask_account' first"
    )


def test_assert_and_initial_vars(flows: FlowSet) -> None:
    good, bad = run(
        flows,
        "call: sim-main\ncaller: {number: '+8613800000009'}\nvars: {segment: corporate}\n"
        "steps:\n  - assert: {vars: {segment: corporate, call.caller: '+8613800000009'}}\n"
        "  - hangup\n",
        "call: sim-main\nsteps:\n  - assert: {vars: {segment: corporate}}\n",
    )
    assert good.passed, good.summary()
    assert bad.divergence is not None
    assert bad.divergence.message == "expected segment = 'corporate', got 'retail'"
    assert (bad.divergence.line, bad.divergence.step) == (3, 1)


def test_caller_hangup_ends_the_call_abandoned(flows: FlowSet) -> None:
    result = run_one(flows, START + "  - hangup\noutcome: abandoned\n")
    assert result.passed, result.summary()
    assert kinds(result, ev.HANGUP)[0]["by"] == "caller"


def test_outcome_mismatch_points_at_the_outcome_line(flows: FlowSet) -> None:
    result = run_one(flows, START + "  - hangup\noutcome: self_service\n")
    div = result.divergence
    assert div is not None
    assert (div.line, div.step, div.what) == (7, None, "outcome self_service")
    assert div.message == "expected outcome 'self_service', got 'abandoned'"


def test_transfer_succeeds(flows: FlowSet) -> None:
    result = run_one(
        flows,
        START + '  - press: "2"\n  - expect: fraud_desk\n'
        "  - expect_transfer: sip:fraud@agents.bank.example\noutcome: transferred\n",
    )
    assert result.passed, result.summary()


def test_an_expected_transfer_failure_goes_on_to_on_fail(flows: FlowSet) -> None:
    result = run_one(
        flows,
        START + '  - press: "2"\n  - expect: fraud_desk\n'
        "  - expect_transfer: sip:fraud@agents.bank.example\n  - expect: fraud_busy\n"
        "  - expect_queue: general\ntransfer_fails: true\n"
        "outcome: unanswered\n",  # no agent declared: the no-agents exit, before any greeting
    )
    assert result.passed, result.summary()
    assert kinds(result, ev.TRANSFER)[0]["ok"] is False


def test_a_transfer_to_another_target_diverges(flows: FlowSet) -> None:
    result = run_one(flows, START + '  - press: "2"\n  - expect_transfer: "+8695588"\n')
    assert result.divergence is not None
    assert result.divergence.message == (
        "expected a transfer to '+8695588', got one to 'sip:fraud@agents.bank.example'"
    )


def test_recording_ends_by_finish_key_or_after_record_seconds(flows: FlowSet) -> None:
    by_key, by_time = run(
        flows,
        START + '  - press: "3"\n  - expect: leave_message\n  - expect: beep\n'
        '  - wait: 2\n  - press: "#"\n  - expect: message_thanks\n  - expect_hangup\n'
        "outcome: callback\n",
        START + '  - press: "3"\n  - expect: leave_message\n  - expect: beep\n'
        "  - expect: message_thanks\noutcome: callback\nrecord_seconds: 4\n",
    )
    assert by_key.passed, by_key.summary()
    assert by_time.passed, by_time.summary()
    assert kinds(by_key, ev.RECORDING)[0]["duration"] == pytest.approx(1.7)  # after the beep
    assert kinds(by_time, ev.RECORDING)[0]["duration"] == pytest.approx(4.0)


def test_each_call_has_its_own_wall_time(flows: FlowSet) -> None:
    hours = START + '  - press: "4"\n  - expect: EXPECTED\n  - expect: goodbye\n'
    monday = "at: '2027-01-04T10:00:00+08:00'\n" + hours.replace("EXPECTED", "open_now")
    sunday = "at: '2027-01-03T10:00:00+08:00'\n" + hours.replace("EXPECTED", "closed_now")
    results = run(flows, monday, sunday, monday)
    assert [r.passed for r in results] == [True, True, True], [r.summary() for r in results]


def test_a_subflow_runs_and_returns(flows: FlowSet) -> None:
    result = run_one(
        flows,
        START + '  - press: "5"\n  - expect: ask_pin\n  - press: "4321"\n'
        "  - assert: {vars: {pin: '4321'}}\n  - expect: verified\n  - expect: goodbye\n"
        "outcome: self_service\n",
    )
    assert result.passed, result.summary()
    assert "4321" not in str([e.data for e in result.events])  # the PIN stays masked


def test_expecting_after_the_end_of_the_call(flows: FlowSet) -> None:
    result = run_one(
        flows,
        START + '  - press: "2"\n  - expect: fraud_desk\n  - expect: anything\n',
    )
    assert result.divergence is not None
    assert result.divergence.message == (
        "expected prompt 'anything', got the end of the call (outcome 'transferred')"
    )


def test_input_after_the_end_of_the_call_diverges(flows: FlowSet) -> None:
    result = run_one(flows, START + '  - press: "2"\n  - wait: 30\n  - press: "1"\n')
    assert result.divergence is not None
    assert result.divergence.step == 5
    assert result.divergence.message == "the call had ended (outcome 'transferred')"


def test_timeout_fails_the_step_it_waits_on(flows: FlowSet) -> None:
    result = run_one(flows, START + "  - expect: ask_account\ntimeout: 5\n")
    div = result.divergence
    assert div is not None
    assert (div.step, div.t) == (3, 5.0)
    assert div.message == "timeout: still waiting for this step after 5 s (virtual)"


def test_an_unknown_flow_fails_without_running(flows: FlowSet) -> None:
    result = run_one(flows, "call: no-such-flow\nsteps: []\n")
    assert result.divergence is not None
    assert result.divergence.line == 1
    assert result.divergence.message.startswith("unknown flow 'no-such-flow'")
    assert result.events == []


def test_many_scripts_interleave_on_one_clock(flows: FlowSet) -> None:
    clock = VirtualClock()
    results = run(flows, *([BALANCE, START + "  - hangup\n"] * 25), clock=clock)
    assert all(r.passed for r in results), [r.summary() for r in results if not r.passed]
    assert [r.call_id for r in results] == [f"sim-{i}" for i in range(1, 51)]
    assert {e.call_id for e in results[7].events} == {"sim-8"}
    longest = max(r.duration for r in results)
    assert clock.now() == pytest.approx(longest, abs=0.01)  # they ran side by side


class CrashingSession(Session):
    """A real session whose DTMF handling breaks (an engine bug, for the containment test)."""

    def on_dtmf(self, digit: str) -> None:
        raise RuntimeError("boom")


def test_an_engine_error_fails_only_its_own_script(flows: FlowSet) -> None:
    def factory(*args: Any, **kwargs: Any) -> Session:
        cls = CrashingSession if "crash" in str(kwargs.get("initial_vars")) else Session
        return cls(*args, **kwargs)

    crash = "vars: {mode: crash}\n" + BALANCE
    results = run(flows, crash, BALANCE, session_factory=factory)
    assert results[1].passed, results[1].summary()
    div = results[0].divergence
    assert div is not None
    assert div.what == "press 1"  # the step it stood at
    assert div.message.startswith("engine error: RuntimeError: boom")


def test_jobs_split_scripts_over_processes_with_the_same_results(
    flows: FlowSet, tmp_path: Path
) -> None:
    config = Config(
        root=tmp_path,
        flows_dir=FLOWS,
        prompts_dir=tmp_path,
        scripts_dir=tmp_path,
        actions_path=ACTIONS,
        store_path=tmp_path / "calls.db",
    )
    texts = [BALANCE, START + '  - press: "9"\n  - expect: ask_account\n'] * 2
    scripts = [script(t, f"s{i}.yaml") for i, t in enumerate(texts)]
    here = run_parallel(scripts, flows=flows, flows_dir=FLOWS, config=config, jobs=1)
    spread = run_parallel(scripts, flows_dir=FLOWS, config=config, jobs=2)
    assert [r.passed for r in spread] == [True, False, True, False]
    assert [r.call_id for r in spread] == ["sim-1", "sim-2", "sim-3", "sim-4"]
    assert [(r.outcome, r.duration) for r in spread] == [(r.outcome, r.duration) for r in here]
    assert [r.divergence for r in spread] == [r.divergence for r in here]
