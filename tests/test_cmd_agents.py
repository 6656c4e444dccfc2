"""``ivr agents`` (ivr/cli/cmd_agents.py) against a running queue authority (its service thread
on a real socket), in-process ``main([...])`` calls."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from acd_helpers import ANN, BOB, GENERAL, GINA
from acd_helpers import sock_dir as sock_dir  # the fixture

from ivr.acd import wire
from ivr.acd.authority import QueueAuthority
from ivr.acd.service import ServiceThread
from ivr.cli.cmd_agents import duration
from ivr.cli.main import main
from ivr.core.clock import Clock
from ivr.host.remote_queues import authority_socket


@pytest.fixture
def project(sock_dir: Path) -> Path:
    """A project folder: ivr.yaml, and the authority's socket at its default place."""
    (sock_dir / "ivr.yaml").write_text("languages: [en]\n")
    return sock_dir


@pytest.fixture
def authority(project: Path) -> Iterator[ServiceThread]:
    def build(clock: Clock) -> QueueAuthority:
        return QueueAuthority([ANN, BOB, GINA], [GENERAL], clock)

    thread = ServiceThread(build, project / "var" / "acd.sock")
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


def agents(project: Path, *args: str) -> int:
    return main(["-c", str(project / "ivr.yaml"), "agents", *args])


def test_list_prints_agents_and_queues(project: Path, authority: ServiceThread,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert agents(project, "list") == 0  # the socket found at var/acd.sock beside ivr.yaml
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["AGENT", "NAME", "STATE", "FOR", "REASON", "CALLS", "REGISTERED"]
    assert lines[1].split()[:4] == ["ann", "Ann", "Lee", "logged_out"]
    assert lines[1].split()[-2:] == ["0", "no"]
    assert [line.split()[0] for line in lines[1:4]] == ["ann", "bob", "gina"]
    assert lines[5].split() == ["QUEUE", "WAITING", "LONGEST", "WAIT", "ABLE", "AGENTS"]
    assert lines[6].split() == ["general", "0", "-", "0"]


def test_each_action_changes_the_agent_and_says_where_they_are(
        project: Path, authority: ServiceThread, capsys: pytest.CaptureFixture[str]) -> None:
    steps = [
        (["login", "ann"], "ann: available"),
        (["login", "ann"], "ann: available (no change)"),
        (["pause", "ann", "--reason", "lunch"], "ann: paused (lunch)"),
        (["resume", "ann"], "ann: available"),
        (["logout", "ann", "--reason", "home"], "ann: logged_out (home)"),
        (["logout", "ann"], "ann: logged_out"),  # the authority takes it again (reason cleared)
    ]  # fmt: skip
    for args, said in steps:
        assert agents(project, *args) == 0, args
        assert capsys.readouterr().out.strip() == said


def test_json_output(project: Path, authority: ServiceThread,
                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert agents(project, "login", "bob", "--json") == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["changed"] is True
    bob = answer["agent"]
    assert (bob["id"], bob["name"], bob["state"], bob["registered"]) == \
        ("bob", "Bob Stone", "available", False)  # fmt: skip
    assert set(bob) >= {"reason", "since", "in_state", "calls", "pending", "call_id"}
    assert agents(project, "pause", "bob", "--reason", "training", "--json") == 0
    assert json.loads(capsys.readouterr().out)["agent"]["reason"] == "training"
    assert agents(project, "list", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    states = {a["id"]: (a["state"], a["reason"]) for a in listing["agents"]}
    assert states == {"ann": ("logged_out", ""), "bob": ("paused", "training"),
                      "gina": ("logged_out", "")}  # fmt: skip
    assert listing["queues"] == [{"name": "general", "waiting": 0, "longest_wait": 0.0,
                                  "able_agents": 0, "handle_mean": 180.0}]  # fmt: skip


def test_a_pause_during_a_call_waits_for_its_end(project: Path, authority: ServiceThread,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = authority.path
    with socket.socket(socket.AF_UNIX) as worker:  # a worker whose caller ann answered
        worker.connect(str(path))
        reader = worker.makefile("rb")

        def send(op: str, **fields: object) -> None:
            worker.sendall(wire.encode(wire.message(op, **fields)))

        send("hello", worker=1)
        send("registered", agent="ann", contact="sip:ann@10.0.0.9", expires=60)
        assert wire.decode(reader.readline())["op"] == "hello"
        assert agents(project, "login", "ann") == 0
        send("join", call_id="c1", queue="general", priority=5, skills=[], tier="general",
             language="en")  # fmt: skip
        assert wire.decode(reader.readline())["op"] == "joined"
        offer = wire.decode(reader.readline())
        send("result", offer_id=offer["id"], outcome="answered")
        send("status")
        assert wire.decode(reader.readline())["op"] == "status"
        capsys.readouterr()
        assert agents(project, "pause", "ann", "--reason", "coffee") == 0
        assert capsys.readouterr().out.strip() == "ann: on_call; paused when the call ends"
        assert agents(project, "list") == 0
        row = capsys.readouterr().out.splitlines()[1].split()
        assert row[3:6] == ["on_call", "(then", "paused)"] and row[-2:] == ["1", "yes"]


def test_refusals_and_unknown_agents(project: Path, authority: ServiceThread,
                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    assert agents(project, "pause", "gina") == 1
    assert "agent gina is logged out" in capsys.readouterr().err
    assert agents(project, "resume", "gina") == 1
    assert "log in first" in capsys.readouterr().err
    assert agents(project, "login", "anm") == 2
    assert "no agent 'anm' (did you mean 'ann'?)" in capsys.readouterr().err
    assert agents(project, "login", "zzzzzz") == 2
    assert "(agents: ann, bob, gina)" in capsys.readouterr().err
    assert agents(project, "pause") == 2
    assert "pause needs an agent" in capsys.readouterr().err
    assert agents(project, "list", "ann") == 2
    assert "list takes no agent" in capsys.readouterr().err


def test_no_server_running_names_the_socket(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert agents(project, "list") == 2
    err = capsys.readouterr().err
    assert f"no queue authority is listening on {project / 'var' / 'acd.sock'}" in err
    other = project / "elsewhere.sock"
    assert agents(project, "login", "ann", "--socket", str(other)) == 2
    assert str(other) in capsys.readouterr().err


def test_a_socket_that_never_answers_times_out(project: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "mute.sock"
    with socket.socket(socket.AF_UNIX) as mute:
        mute.bind(str(path))
        mute.listen()
        assert agents(project, "list", "--socket", str(path), "--timeout", "0.2") == 2
    assert "no answer from the queue authority" in capsys.readouterr().err


def test_the_socket_path_comes_from_acd_control_when_the_config_has_it(tmp_path: Path) -> None:
    plain = SimpleNamespace(root=tmp_path)
    assert authority_socket(plain) == tmp_path / "var" / "acd.sock"  # type: ignore[arg-type]
    relative = SimpleNamespace(root=tmp_path, acd=SimpleNamespace(control="run/q.sock"))
    assert authority_socket(relative) == tmp_path / "run" / "q.sock"  # type: ignore[arg-type]
    absolute = SimpleNamespace(root=tmp_path, acd=SimpleNamespace(control="/run/ivr/q.sock"))
    assert authority_socket(absolute) == Path("/run/ivr/q.sock")  # type: ignore[arg-type]
    unset = SimpleNamespace(root=tmp_path, acd=SimpleNamespace(control=None))
    assert authority_socket(unset) == tmp_path / "var" / "acd.sock"  # type: ignore[arg-type]


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (0, 42, 125, 3780, 2 * 86400 + 4 * 3600 + 5)] == \
        ["0s", "42s", "2m05s", "1h03m", "2d04h"]  # fmt: skip
