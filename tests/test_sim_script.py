"""Call script parsing (ivr/sim/script.py): the docs/TESTING.md format and its errors."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.sim import script as sc
from ivr.sim.script import ScriptError, discover_scripts, load_script, parse_script

FULL = """\
name: balance with valid PIN
call: bank-main
caller: {number: "+8613800000001", called: "95588"}
at: "2027-01-04T10:00:00+08:00"
vars: {segment: retail}
steps:
  - expect: welcome
  - press: "1"
  - say: balance
  - say: {text: balance, confidence: 0.4}
  - press: {digits: "62220212#", barge_in: true}
  - expect: {prompt: ask_pin}
  - expect: {text: "Please enter your PIN", similarity: 0.8}
  - expect: {prompt: balance_is, vars: {balance.available: "1024.00"}}
  - silence: 6
  - wait: 2
  - expect_node: main_menu
  - assert: {vars: {account: "62220212"}}
  - hangup
  - expect_transfer: "sip:fraud@agents.bank.example"
  - expect_queue: {queue: general, priority: 8, skills: [accounts]}
  - expect_hangup
outcome: self_service
timeout: 600
"""


def test_the_documented_example_parses_with_every_step_and_line() -> None:
    script = parse_script(FULL, "scripts/balance.yaml")
    assert script.name == "balance with valid PIN"
    assert script.call == "bank-main"
    assert script.caller == sc.Caller("+8613800000001", "95588")
    assert script.at == datetime(2027, 1, 4, 2, 0, tzinfo=UTC)
    assert script.vars == {"segment": "retail"}
    assert script.outcome == "self_service"
    assert script.timeout == 600.0
    assert (script.line, script.outcome_line) == (2, 23)
    kinds = [s.kind for s in script.steps]
    assert kinds == [
        "expect", "press", "say", "say", "press", "expect", "expect", "expect", "silence",
        "silence", "expect_node", "assert", "hangup", "expect_transfer", "expect_queue",
        "expect_hangup",
    ]  # fmt: skip
    assert [s.line for s in script.steps] == list(range(7, 23))
    assert [s.index for s in script.steps] == list(range(1, 17))


def test_step_values() -> None:
    steps = parse_script(FULL, "x.yaml").steps
    assert steps[0] == sc.Expect(index=1, line=7, prompt="welcome")
    assert steps[3] == sc.Say(index=4, line=10, text="balance", confidence=0.4)
    assert steps[4] == sc.Press(index=5, line=11, digits="62220212#", barge_in=True)
    assert steps[6] == sc.Expect(index=7, line=13, text="Please enter your PIN", similarity=0.8)
    assert steps[7] == sc.Expect(
        index=8, line=14, prompt="balance_is", vars={"balance.available": "1024.00"}
    )
    assert steps[9] == sc.Silence(index=10, line=16, seconds=2.0, word="wait")
    assert steps[11] == sc.Assert(index=12, line=18, vars={"account": "62220212"})
    assert steps[13] == sc.ExpectTransfer(index=14, line=20, target="sip:fraud@agents.bank.example")
    assert steps[14] == sc.ExpectQueue(
        index=15, line=21, queue="general", priority=8, skills=("accounts",)
    )


def test_describe_names_steps_as_failures_show_them() -> None:
    steps = parse_script(FULL, "x.yaml").steps
    assert steps[0].describe() == "expect welcome"
    assert steps[1].describe() == "press 1"
    assert steps[2].describe() == "say 'balance'"
    assert steps[8].describe() == "silence 6"
    assert steps[9].describe() == "wait 2"
    assert steps[12].describe() == "hangup"


def test_defaults() -> None:
    script = parse_script("call: f\nsteps: []\n", "dir/my-call.yaml")
    assert script.name == "my-call"
    assert script.caller == sc.Caller()
    assert script.at is None
    assert script.outcome is None
    assert script.timeout == sc.DEFAULT_TIMEOUT
    assert script.transfer_fails == ()
    assert script.record_seconds == 5.0
    assert script.steps == ()


def test_plain_numbers_and_words_stay_keys_and_text() -> None:
    script = parse_script(
        textwrap.dedent("""\
        call: f
        steps:
          - press: 1
          - press: 0012
          - say: no
          - say: yes
          - expect: 404
        """),
        "x.yaml",
    )
    press1, press2, say_no, say_yes, expect = script.steps
    assert isinstance(press1, sc.Press) and press1.digits == "1"
    assert isinstance(press2, sc.Press) and press2.digits == "0012"
    assert isinstance(say_no, sc.Say) and say_no.text == "no"
    assert isinstance(say_yes, sc.Say) and say_yes.text == "yes"
    assert isinstance(expect, sc.Expect) and expect.prompt == "404"


def test_transfer_fails_and_record_seconds() -> None:
    every = parse_script("call: f\nsteps: []\ntransfer_fails: true\n", "x.yaml")
    assert every.transfer_fails == ("*",)
    some = parse_script(
        "call: f\nsteps: []\ntransfer_fails: ['sip:fraud@*', '+86*']\nrecord_seconds: 2\n",
        "x.yaml",
    )
    assert some.transfer_fails == ("sip:fraud@*", "+86*")
    assert some.record_seconds == 2.0


def test_bare_and_valueless_forms() -> None:
    script = parse_script(
        "call: f\nsteps:\n  - expect_transfer\n  - expect_queue: general\n  - hangup:\n",
        "x.yaml",
    )
    assert script.steps[0] == sc.ExpectTransfer(index=1, line=3, target=None)
    assert script.steps[1] == sc.ExpectQueue(index=2, line=4, queue="general")
    assert script.steps[2] == sc.Hangup(index=3, line=5)


def test_wants_var_snapshots_only_when_an_expect_checks_vars() -> None:
    assert parse_script(FULL, "x.yaml").wants_var_snapshots
    assert not parse_script("call: f\nsteps: [{expect: a}]\n", "x.yaml").wants_var_snapshots


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("call: f\nsteps:\n  - pres: 1\n", 3, 5, "unknown step 'pres' (did you mean 'press'?)"),
        ("call: f\nsteps:\n  - dance\n", 3, 5, "unknown step 'dance'"),
        ("call: f\nsteps:\n  - press: 1x\n", 3, 12, "'x' is not a DTMF key"),
        ("call: f\nsteps:\n  - silence: soon\n", 3, 14, "silence (seconds) must be a number"),
        ("call: f\nsteps:\n  - wait: -1\n", 3, 11, "must be at least 0"),
        ("call: f\nsteps:\n  - {press: 1, say: x}\n", 3, 5, "exactly one key, not 2"),
        ("call: f\nsteps:\n  - press: {digit: 1}\n", 3, 13, "unknown key 'digit' in press"),
        ("call: f\nsteps:\n  - press: {barge_in: true}\n", 3, 12, "press needs digits"),
        ("call: f\nsteps:\n  - say: {text: hi, confidence: 2}\n", 3, 33, "between 0 and 1"),
        ("call: f\nsteps:\n  - press: {digits: 1, barge_in: yes}\n", 3, 34, "true or false"),
        ("call: f\nsteps:\n  - expect: {}\n", 3, 13, "expect needs prompt, text or vars"),
        ("call: f\nsteps:\n  - expect:\n", 3, 5, "step 'expect' needs a value"),
        ("call: f\nsteps:\n  - expect_hangup: now\n", 3, 20, "takes no value"),
        ("call: f\nsteps:\n  - assert: {vars: {}}\n", 3, 20, "assert vars is empty"),
        ("call: f\nsteps:\n  - expect_queue: {skills: a}\n", 3, 28, "skills must be a list"),
        ("call: f\nsteps: {a: 1}\n", 2, 8, "steps must be a list"),
        ("steps: []\n", 1, 1, "the script needs 'call'"),
        ("call: f\n", 1, 1, "the script needs 'steps'"),
        ("call: f\nsteps: []\ncolour: red\n", 3, 1, "unknown key 'colour'"),
        ("call: f\nsteps: []\nat: 2027-01-04T10:00\n", 3, 5, "give the UTC offset"),
        ("call: f\nsteps: []\nat: monday\n", 3, 5, "is not an ISO 8601 date"),
        ("call: f\nsteps: []\ntimeout: 0\n", 3, 10, "timeout must be at least"),
        ("call: f\ncall: g\nsteps: []\n", 2, 1, "duplicate key 'call'"),
        ("call: [f\n", 2, 1, "not valid YAML"),
        ("", 1, 1, "the script is empty"),
        ("- call: f\n", 1, 1, "a call script must be a mapping"),
        ("call: f\nsteps: []\nagents: [{id: a, pin: 12}]\n", 3, 23, "pin must be a non-empty"),
        ("call: f\nsteps: []\nagents: [{id: a, pin: '12a4'}]\n", 3, 23, "4 to 8 digits"),
        ("call: f\nsteps: []\nagents: [{id: a, on_call: 1}]\n", 3, 27, "true or false"),
    ],
)
def test_bad_scripts_name_file_line_and_reason(
    text: str, line: int, col: int, message: str
) -> None:
    with pytest.raises(ScriptError) as info:
        parse_script(text, "scripts/bad.yaml")
    error = info.value
    assert (error.path, error.line, error.col) == ("scripts/bad.yaml", line, col)
    assert message in error.message
    assert str(error).startswith(f"scripts/bad.yaml:{line}:{col}: error: ")


def test_agents_for_the_agent_line() -> None:
    script = parse_script(
        "call: agent-line\nsteps: []\nagent_line_down_after: 2\nagents:\n"
        "  - {id: ann, username: '1001', pin: '0421', logged_in: false}\n"
        "  - {id: bo, on_call: true}\n", "x.yaml")  # fmt: skip
    ann, bo = script.agents
    assert (ann.username, ann.pin, ann.logged_in, ann.on_call) == ("1001", "0421", False, False)
    assert (bo.username, bo.pin, bo.logged_in, bo.on_call) == ("", None, True, True)
    assert "0421" not in repr(ann)
    assert script.agent_line_down_after == 2


def test_load_script_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "call.yaml"
    path.write_text("call: f\nsteps:\n  - expect: hello\n", encoding="utf-8")
    script = load_script(path)
    assert script.path == str(path)
    assert script.name == "call"
    assert script.steps == (sc.Expect(index=1, line=3, prompt="hello"),)


def test_discover_scripts_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/2.yaml", "a.yaml", "b/1.yml", "notes.txt"):
        (tmp_path / name).write_text("call: f\nsteps: []\n", encoding="utf-8")
    found = discover_scripts([tmp_path, tmp_path / "a.yaml"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a.yaml", "b/1.yml", "b/2.yaml"]
    with pytest.raises(FileNotFoundError):
        discover_scripts([tmp_path / "missing.yaml"])
