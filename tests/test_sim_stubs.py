"""Stubbed actions in call scripts (ivr/sim/stubs.py, docs/TESTING.md "Stubs").

A small flow with one webhook lookup whose backend is a port nobody listens on: stubs answer in
its place (result, status, error, latency on the virtual clock, replies in turn, ``when`` on the
request), an unstubbed lookup is reported as "backend down", and the bank scripts' shared
``stubs.yaml`` agrees with the demo bank API it stands in for.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from ivr.cli.main import main
from ivr.config import load_config
from ivr.core import events as ev
from ivr.demo import bank_api as demo
from ivr.flow.loader import load_flowset
from ivr.sim.runner import ScriptResult, make_runtime, run_scripts
from ivr.sim.script import ScriptError, discover_scripts, load_script, parse_script

ROOT = Path(__file__).resolve().parents[1]

FLOW = """\
flow: stub-main
description: one lookup to stub
languages: [en]
start: ask_account
nodes:
  ask_account:
    collect:
      prompt: "Please enter your account number followed by hash."
      into: account
      min: 4
      max: 8
      next: lookup
  lookup:
    action:
      webhook:
        url: "{config.api}/balance"
        body: {account: "{account}"}
      timeout: 2
      into: balance
      next: say_balance
      on_error: sorry
  say_balance:
    say: {prompt: "Your balance is {balance.available}.", next: anything_else}
  sorry:
    say: {prompt: "Sorry, the system is down.", next: bye}
  anything_else:
    menu:
      prompt: "For another account press 1. To end the call press 2."
      choices:
        "1": {goto: ask_account}
        "2": {goto: bye}
  bye:
    hangup: {prompt: "Goodbye."}
  agent:
    hangup: {prompt: "Please call again."}
"""

HEAD = "call: stub-main\n"
STEPS = """\
steps:
  - expect: ask_account
  - press: "1234#"
"""


def _closed_port() -> int:
    """A port of 127.0.0.1 that refuses connections (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "flows" / "stub-main.yaml").write_text(FLOW, encoding="utf-8")
    (tmp_path / "ivr.yaml").write_text(
        f"flows_dir: flows\nscripts_dir: scripts\n"
        f"vars: {{api: 'http://127.0.0.1:{_closed_port()}'}}\n",
        encoding="utf-8",
    )
    return tmp_path


def run(project: Path, name: str, text: str) -> ScriptResult:
    """One script of ``project`` run on the virtual clock."""
    path = project / "scripts" / name
    path.write_text(text, encoding="utf-8")
    config = load_config(project / "ivr.yaml")
    flows, _ = load_flowset(project / "flows", config)
    return run_scripts([load_script(path)], flows, make_runtime(config))[0]


def events(result: ScriptResult, kind: str) -> list[ev.Event]:
    return [e for e in result.events if e.kind == kind]


def test_a_stubbed_lookup_needs_no_backend(project: Path) -> None:
    result = run(project, "a.yaml", HEAD + """\
stubs:
  lookup: {result: {available: "12.00"}}
""" + STEPS + """\
  - expect: {prompt: say_balance, vars: {balance.available: "12.00"}}
""")
    assert result.passed, result.summary()
    (action,) = events(result, ev.ACTION)
    assert action.data["ok"] is True


def test_latency_passes_on_the_virtual_clock_and_the_caller_types_ahead(project: Path) -> None:
    result = run(project, "a.yaml", HEAD + """\
stubs:
  lookup: {result: {available: "12.00"}, latency: 1.5}
""" + STEPS + """\
  - expect_node: lookup
  - press: "2"
  - expect: say_balance
  - expect: bye
outcome: self_service
""")
    assert result.passed, result.summary()
    (entered,) = [e for e in events(result, ev.NODE_ENTER) if e.node == "lookup"]
    (action,) = events(result, ev.ACTION)
    assert action.t - entered.t == pytest.approx(1.5)
    assert action.data["duration"] == pytest.approx(1.5)
    # The menu took the digit typed during the lookup without playing its prompt.
    assert "anything_else" not in [e.data["prompt"] for e in events(result, ev.PROMPT)]
    (menu_input,) = [e for e in events(result, ev.INPUT) if e.node == "anything_else"]
    assert menu_input.data["value"] == "2"


@pytest.mark.parametrize(
    ("stub", "error", "took"),
    [
        ("{latency: 5, result: {available: '1'}}", "timeout after 2s", 2.0),
        ("{error: timeout}", "timeout after 2s", 2.0),
        ("{status: 503, latency: 0.5}", "HTTP 503", 0.5),
        ("{error: connection reset}", "connection reset", 0.0),
        ("{result: {error: frozen}}", "error: frozen", 0.0),
    ],
)
def test_failing_stubs_take_on_error(project: Path, stub: str, error: str, took: float) -> None:
    result = run(project, "a.yaml", HEAD + f"stubs:\n  lookup: {stub}\n" + STEPS
                 + "  - expect: sorry\n")  # fmt: skip
    assert result.passed, result.summary()
    (action,) = events(result, ev.ACTION)
    assert (action.data["ok"], action.data["error"]) == (False, error)
    assert action.data["duration"] == pytest.approx(took)


def test_replies_come_in_turn_and_when_picks_by_request(project: Path) -> None:
    result = run(project, "a.yaml", HEAD + """\
stubs:
  /balance:                  # by the webhook's path
    - {when: {account: "9999"}, result: {available: "99.00"}}
    - replies: [{result: {available: "1.00"}}, {result: {available: "2.00"}}]
steps:
  - expect: ask_account
  - press: "1234#"
  - expect: {prompt: say_balance, vars: {balance.available: "1.00"}}
  - expect: anything_else
  - press: "1"
  - expect: ask_account
  - press: "9999#"
  - expect: {prompt: say_balance, vars: {balance.available: "99.00"}}
  - expect: anything_else
  - press: "1"
  - expect: ask_account
  - press: "1234#"
  - expect: {prompt: say_balance, vars: {balance.available: "2.00"}}
  - expect: anything_else
  - press: "1"
  - expect: ask_account
  - press: "1234#"
  - expect: {prompt: say_balance, vars: {balance.available: "2.00"}}
""")
    assert result.passed, result.summary()


def test_an_unstubbed_lookup_with_the_backend_down_says_so_in_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    (project / "scripts" / "down.yaml").write_text(
        HEAD + STEPS + "  - expect: say_balance\n", encoding="utf-8"
    )
    assert main(["-c", str(project / "ivr.yaml"), "test"]) == 1
    out = capsys.readouterr().out.splitlines()
    port = load_config(project / "ivr.yaml").vars["api"].rsplit(":", 1)[1]
    assert out[0] == (
        f"FAIL scripts/down.yaml: backend down: action stub-main.lookup: "
        f"http://127.0.0.1:{port}: connection refused; start the backend or stub the action "
        "(stubs:, docs/TESTING.md)"
    )
    assert "expected prompt" not in "\n".join(out)
    assert out[1] == "0 passed, 1 failed"


def test_a_stub_for_no_action_is_an_error_naming_its_line(project: Path) -> None:
    result = run(project, "a.yaml", HEAD + "stubs:\n  lookpu: {result: {}}\n" + STEPS)
    assert not result.passed
    assert result.divergence is not None
    assert "stub 'lookpu'" in result.divergence.message
    assert "a.yaml:3" in result.divergence.message


@pytest.mark.parametrize(
    ("stubs", "line", "message"),
    [
        ("  x: {reslt: 1}", 3, "unknown key 'reslt' in stub 'x' (did you mean 'result'?)"),
        ("  x: {when: {a: 1}}", 3, "stub 'x': give result, status, error or latency"),
        ("  x: {status: 700}", 3, "status must be between 100 and 599, not 700"),
        ("  x: {latency: -1}", 3, "latency must be between 0 and 86400, not -1"),
        ("  x: {replies: [], result: 1}", 3, "stub 'x': result goes inside replies"),
        ("  x: []", 3, "stubs 'x': give at least one reply"),
    ],
)
def test_bad_stubs_are_script_errors_with_their_place(stubs: str, line: int,
                                                       message: str) -> None:  # fmt: skip
    with pytest.raises(ScriptError) as caught:
        parse_script(HEAD + "stubs:\n" + stubs + "\n" + STEPS, "s.yaml")
    assert (caught.value.line, caught.value.message) == (line, message)


def test_the_folder_stubs_file_is_shared_and_not_a_script(project: Path) -> None:
    (project / "scripts" / "stubs.yaml").write_text(
        "stubs:\n  lookup: {result: {available: '7.00'}}\n", encoding="utf-8"
    )
    assert discover_scripts([project / "scripts"]) == []
    result = run(project, "a.yaml", HEAD + STEPS
                 + "  - expect: {prompt: say_balance, vars: {balance.available: '7.00'}}\n")
    assert result.passed, result.summary()
    # A script's own stub is tried first.
    result = run(project, "b.yaml", HEAD + "stubs:\n  lookup: {result: {available: '8.00'}}\n"
                 + STEPS + "  - expect: {prompt: say_balance, vars: {balance.available: '8.00'}}\n")
    assert result.passed, result.summary()


# --- the bank scripts' stubs.yaml against the demo bank API -------------------------------------

ROUTES = {"/verify": demo.verify, "/balance": demo.balance, "/card/block": demo.block_card,
          "/loan/repay": demo.repay_loan}  # fmt: skip


def _demo_reply(path: str, request: dict[str, str]) -> tuple[int, object, float]:
    """(status, JSON, latency) of the demo API, without its real sleep."""
    account = request.get("account", "")
    if path == "/balance" and account == demo.SLOW:
        return 200, {"available": demo.CUSTOMERS[account].available, "currency": "CNY"}, \
            demo.SLOW_SECONDS
    if path == "/balance" and account == demo.BROKEN:
        return 200, "not JSON", 0.0
    try:
        status, payload = ROUTES[path](dict(request))
    except demo.ApiError as exc:
        return exc.status, {"error": exc.error}, 0.0
    return status, payload, 0.0


def test_the_bank_stubs_answer_as_the_demo_api_does() -> None:
    stubs = yaml.safe_load((ROOT / "tests" / "scripts" / "stubs.yaml").read_text("utf-8"))
    checked = 0
    for path, rules in stubs["stubs"].items():
        for rule in rules:
            request = dict(rule.get("when") or {"account": demo.UNKNOWN})
            status, payload, latency = _demo_reply(path, request)
            if rule.get("error") == "invalid JSON reply":
                assert payload == "not JSON", (path, request)
            else:
                assert (rule.get("status", 200), rule["result"]) == (status, payload), request
            assert rule.get("latency", 0) == latency, (path, request)
            checked += 1
    assert checked > 30


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ivr_test_passes_with_no_backend_running(
    jobs: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's "done when": `ivr test`, no argument, nothing listening for the webhooks
    (also with the scripts spread over worker processes)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("IVR_BANK_API", f"http://127.0.0.1:{_closed_port()}")
    status = main(["test", "-j", jobs])
    out = capsys.readouterr().out
    assert status == 0, out
    assert " 0 failed" in out.splitlines()[-1]
    assert "FAIL" not in out


# --- hostile script files ---------------------------------------------------------------------

LAUGHS = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEAD + STEPS + "vars:\n" + "".join(f"  {line}\n" for line in LAUGHS.splitlines()),
         "more than 100000 values (aliases expanded)"),
        (HEAD + "stubs:\n  lookup: {result: " + "[" * 60 + "]" * 60 + "}\n" + STEPS,
         "nested deeper than 50 levels"),
    ],
)
def test_alias_bombs_and_deep_nesting_are_refused(text: str, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(text, "s.yaml")
    assert caught.value.message == message


def test_a_huge_script_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"call: x\n" + b"#" * (2 << 20))
    with pytest.raises(ScriptError) as caught:
        load_script(path)
    assert caught.value.message == "larger than 1048576 bytes"
