"""``ivr asterisk-queues`` (ivr/cli/cmd_asterisk_queues.py, ivr/ami/state.py) against the AMI
replay peer (tests/ami_replay.py) on a thread of its own: QueueSummary and the recorded
QueueStatus, a refused login, no Asterisk queue configured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ami_replay import SECRET, ReplayThread

from ivr.cli.main import main

YAML = """\
acd:
  asterisk: {{port: {port}, username: nnnnnnnnn, secret: "${{IVR_AMI_SECRET}}", auth: {auth}}}
  queues:
    support:
      asterisk: {{queue: support-q, context: ivr-queues, extension: support}}
"""


@pytest.fixture()
def peer() -> Iterator[int]:
    """The replay peer on a loop of its own thread (the command runs its own loop)."""
    with ReplayThread() as replay:
        yield replay.port


def ivr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, *args: str) -> int:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    (tmp_path / "ivr.yaml").write_text(text, encoding="utf-8")
    return main(["asterisk-queues", *args])


@pytest.mark.parametrize("auth", ["md5", "plain"])
def test_the_queue_as_asterisk_tells_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], peer: int,
                                        auth: str) -> None:  # fmt: skip
    monkeypatch.setenv("IVR_AMI_SECRET", SECRET)
    assert ivr(tmp_path, monkeypatch, YAML.format(port=peer, auth=auth), "--json") == 0
    out, err = capsys.readouterr()
    state = json.loads(out)["support"]
    assert (state["queue"], state["available"], state["logged_in"]) == ("support-q", 1, 2)
    assert (state["completed"], state["abandoned"], state["strategy"]) == (60, 5, "ringall")
    assert [m["name"] for m in state["members"]][:2] == ["Agent/220", "Agent/213"]
    assert state["members"][0]["state"] == "not_in_use" and state["members"][0]["calls_taken"] == 2
    assert SECRET not in out + err
    assert ivr(tmp_path, monkeypatch, YAML.format(port=peer, auth=auth)) == 0
    assert "queue support (Asterisk's support-q, ringall)" in capsys.readouterr().out


def test_a_refused_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str], peer: int) -> None:  # fmt: skip
    monkeypatch.setenv("IVR_AMI_SECRET", "not-the-secret-1")
    assert ivr(tmp_path, monkeypatch, YAML.format(port=peer, auth="md5"), "--timeout", "2") == 1
    out, err = capsys.readouterr()
    assert "refused the login of user 'nnnnnnnnn'" in err
    assert "not-the-secret-1" not in out + err


def test_no_asterisk_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert ivr(tmp_path, monkeypatch, "acd:\n  queues:\n    general: {}\n") == 2
    assert "marks no queue as Asterisk's" in capsys.readouterr().err
