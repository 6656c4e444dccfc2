"""``ivr simulate`` (ivr/cli/cmd_simulate.py), driven through a pipe-like stdin."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ivr.cli.main import main

FLOWS = Path(__file__).parent / "flows" / "sim"


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "ivr.yaml"
    path.write_text(f"flows_dir: {FLOWS}\nactions_path: {FLOWS / 'actions'}\n", encoding="utf-8")
    return path


def simulate(
    config: Path, monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str
) -> tuple[int, list[str]]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    code = main(["-c", str(config), "simulate", "sim-main", *args])
    return code, out.getvalue().splitlines()


def test_a_caller_walks_to_the_balance(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = simulate(config, monkeypatch, "1\n1234#\nsay yes\n")
    assert code == 0
    prompts = [line for line in lines if line.startswith("[")]
    assert prompts == [
        "[welcome] Welcome to the test bank.",
        prompts[1],
        "[ask_account] Please enter your account number followed by hash.",
        prompts[3],
        prompts[4],
        "[goodbye] Thank you for calling. Goodbye.",
    ]
    assert prompts[1].startswith("[main_menu] For your balance press 1")
    assert prompts[3].startswith("[confirm_account] You entered one two three four.")
    assert prompts[4].startswith("[say_balance] Your available balance is ")
    assert lines[-1].startswith("(call ended: self_service after ")


def test_wait_lets_no_input_fire(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, lines = simulate(config, monkeypatch, "wait 6\nquit\n")
    prompts = [line.split("]")[0] + "]" for line in lines if line.startswith("[")]
    assert prompts == ["[welcome]", "[main_menu]", "[main_menu.no_input]", "[main_menu]"]
    assert lines[-1].startswith("(call ended: abandoned")


def test_vars_prints_the_variables(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, lines = simulate(config, monkeypatch, "vars\nhangup\n", "--caller", "+8610123")
    start = lines.index("{")
    end = lines.index("}", start)
    values = json.loads("\n".join(lines[start : end + 1]))
    assert values["segment"] == "retail"
    assert values["call"]["caller"] == "+8610123"


def test_end_of_input_hangs_up(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = simulate(config, monkeypatch, "")
    assert code == 0
    assert lines[-1].startswith("(call ended: abandoned")


def test_unknown_commands_are_explained(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, lines = simulate(config, monkeypatch, "dance\nquit\n")
    assert any(line.startswith("unknown command 'dance'") for line in lines)


def test_transfers_can_be_made_to_fail(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, lines = simulate(config, monkeypatch, "2\n", "--transfer-fails")
    assert any(
        line.startswith("(transfer to sip:fraud@agents.bank.example: failed") for line in lines
    )
    assert "[fraud_busy] The fraud team is busy." in lines
    assert lines[-1].startswith("(call ended: unanswered")  # no agent in this simulation


@pytest.mark.parametrize(
    ("at", "answer"),
    [("2027-01-04T10:00:00+08:00", "[open_now]"), ("2027-01-03T10:00:00+08:00", "[closed_now]")],
)
def test_at_sets_the_wall_clock(
    config: Path, monkeypatch: pytest.MonkeyPatch, at: str, answer: str
) -> None:
    _, lines = simulate(config, monkeypatch, "4\n", "--at", at)
    assert any(line.startswith(answer) for line in lines)


def test_at_needs_a_utc_offset(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["-c", str(config), "simulate", "sim-main", "--at", "2027-01-04T10:00"]) == 2
    assert "UTC offset" in capsys.readouterr().err


def test_an_unknown_flow_is_a_usage_error(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["-c", str(config), "simulate", "nope"]) == 2
    assert "no flow 'nope'" in capsys.readouterr().err


def test_simulated_agents_answer_and_the_wait_is_shown(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, lines = simulate(config, monkeypatch, "0\nwait 5\n", "--agents", "2",
                           "--answer-after", "3")  # fmt: skip
    assert code == 0
    assert "(queued in general, priority 5)" in lines
    announcement = next(line for line in lines if line.startswith("[queue_announcement]"))
    assert "You are next in line." in announcement
    answered = next(line for line in lines if line.startswith("(agent "))
    assert answered.startswith("(agent agent1 answered after ") and "in the queue)" in answered


def test_without_agents_the_queue_is_left_at_once(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, lines = simulate(config, monkeypatch, "0\n")
    assert any(line.startswith("(left the queue: no_agents") for line in lines)


def test_vars_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "pin.yaml").write_text(
        "flow: sim-main\nlanguages: [en]\nstart: pin\ndefaults: {escalate: bye}\nnodes:\n"
        "  pin: {collect: {prompt: PIN., into: pin, min: 4, max: 4, secret: true, next: menu}}\n"
        "  menu: {menu: {prompt: Press 1., choices: {'1': bye}}}\n"
        "  bye: {hangup: {}}\n", encoding="utf-8")
    (tmp_path / "ivr.yaml").write_text("flows_dir: flows\n", encoding="utf-8")
    _, lines = simulate(tmp_path / "ivr.yaml", monkeypatch, "9071\nvars\nhangup\n")
    start = lines.index("{")
    end = lines.index("}", start)
    values = json.loads("\n".join(lines[start : end + 1]))
    assert values["pin"] == "****"
    assert not any("9071" in line for line in lines)
