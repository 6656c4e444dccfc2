"""The phone agent line end to end over real SIP: ``ivr serve`` answering flows/agent-line.yaml,
a caller (the live QA caller) typing its agent number and PIN as RFC 4733 events, the queue
authority's state read back with ``ivr agents list --json``.

Once in a single ``ivr serve`` (the authority in-process) and once with ``--workers 2`` (the
authority in the supervisor, the calls on either worker): an agent logs in and pauses by phone;
wrong PINs lock the agent number out (across workers: the lock is the authority's), and a right
PIN is refused while it lasts. The PIN is in no log line (at debug level) and nowhere in the call
store. Verdicts come from the records and the authority, never from how long something took.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from serve_helpers import REPO, ServerThread, calls, free_port, wait_for
from sip_phone import run

from ivr.cli.main import main
from ivr.config import load_config
from ivr.core import events as ev
from ivr.serve.server import ServeOptions
from ivr.sim.live_call import LiveCaller, LivePhone
from ivr.sim.records import CallRecords
from ivr.sip.affinity import owner_of

pytestmark = pytest.mark.timeout(300)

PINS = {"gina": "90817263", "hugo": "61728394"}  # distinctive: found by chance in no log
USERS = {"gina": "2001", "hugo": "2002"}
WRONG = "55550000"


def write_project(root: Path, port: int) -> Path:
    """flows/agent-line.yaml on every number; two agents whose PINs come from the environment."""
    (root / "flows").mkdir()
    shutil.copy(REPO / "flows" / "agent-line.yaml", root / "flows")
    (root / "prompts").mkdir()
    agents = {agent: {"username": USERS[agent], "password": f"pw-{agent}",
                      "pin": f"${{IVR_TEST_PIN_{agent.upper()}}}", "skills": ["general"]}
              for agent in USERS}  # fmt: skip
    data = {
        "flows_dir": "flows", "prompts_dir": "prompts", "store": {"path": "calls.db"},
        "languages": ["en", "zh"], "numbers": {"default": "agent-line"},
        "sip": {"listen": f"127.0.0.1:{port}", "rtp_ports": "44000-44999"},
        "asr": {"backend": "off"},
        "acd": {"agents": agents, "queues": {"line": {}},
                "agent_line": {"attempts": 3, "lockout": 600,
                               "reasons": ["break", "training", "after_call_work"]}},
    }  # fmt: skip
    (root / "ivr.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return root / "ivr.yaml"


def pin_env() -> dict[str, str]:
    return {f"IVR_TEST_PIN_{agent.upper()}": pin for agent, pin in PINS.items()}


async def at(caller: LiveCaller, node: str, times: int = 1, timeout: float = 30.0) -> None:
    """Wait until the flow has entered ``node`` ``times`` times (its prompt may still play:
    keys barge in)."""

    def entered() -> bool:
        return sum(1 for e in caller.events if e.kind == ev.NODE_ENTER and e.node == node) \
            >= times

    assert await caller.wait_until(lambda: entered() or caller.ended, timeout), node
    assert entered(), f"the call ended before {node}: {[e.node for e in caller.events]}"


async def dial(address: tuple[str, int], db: Path) -> tuple[LivePhone, LiveCaller]:
    phone = LivePhone()
    await phone.start()
    caller = phone.caller(records=CallRecords(db))
    host, port = address
    assert await caller.dial(f"sip:95500@{host}:{port}", caller="+8613900000001") == 200
    return phone, caller


async def log_in(caller: LiveCaller, agent: str, pin: str) -> None:
    """Choose English, type the agent number and the PIN."""
    await at(caller, "choose_language")
    caller.press("1")
    await at(caller, "ask_agent")
    caller.press(f"{USERS[agent]}#")
    await at(caller, "ask_pin")
    caller.press(f"{pin}#")


async def login_and_pause(address: tuple[str, int], db: Path) -> list[ev.Event]:
    """gina dials, logs in, pauses for a break, hangs up (key 9)."""
    phone, caller = await dial(address, db)
    try:
        await log_in(caller, "gina", PINS["gina"])
        await at(caller, "state_logged_out")
        await at(caller, "main_menu")
        caller.press("1")
        await at(caller, "state_available")
        await at(caller, "main_menu", 2)
        caller.press("3")
        await at(caller, "pause_menu")
        caller.press("1")
        await at(caller, "state_paused")
        await at(caller, "main_menu", 3)
        caller.press("9")
        assert await caller.wait_until(lambda: caller.call_ended_in_record, 20)
        return list(caller.events)
    finally:
        await caller.close()
        await phone.close()


async def wrong_pins(address: tuple[str, int], db: Path) -> list[ev.Event]:
    """hugo's number with a wrong PIN three times: the line locks it and hangs up."""
    phone, caller = await dial(address, db)
    try:
        await log_in(caller, "hugo", WRONG)
        for attempt in (2, 3):
            await at(caller, "ask_agent", attempt)
            caller.press(f"{USERS['hugo']}#")
            await at(caller, "ask_pin", attempt)
            caller.press(f"{WRONG}#")
        assert await caller.wait_until(lambda: caller.call_ended_in_record, 30)
        return list(caller.events)
    finally:
        await caller.close()
        await phone.close()


async def right_pin_while_locked(address: tuple[str, int], db: Path) -> list[ev.Event]:
    phone, caller = await dial(address, db)
    try:
        await log_in(caller, "hugo", PINS["hugo"])
        assert await caller.wait_until(lambda: caller.call_ended_in_record, 30)
        return list(caller.events)
    finally:
        await caller.close()
        await phone.close()


def outcome(events: list[ev.Event]) -> str:
    [end] = [e for e in events if e.kind == ev.CALL_END]
    return str(end.data["outcome"])


def agents_json(config_path: Path,
                capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    """``ivr agents list --json``, in-process (the ``ivr`` logger is put back as it was: main()
    sets up its own, which would hide the server's log lines from caplog)."""
    logger = logging.getLogger("ivr")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    capsys.readouterr()
    try:
        assert main(["-c", str(config_path), "agents", "list", "--json"]) == 0
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    return {a["id"]: a for a in json.loads(capsys.readouterr().out)["agents"]}


def store_text(db: Path) -> str:
    """Every value of every table of the call store, as text."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"'))


def check_states(events: list[ev.Event]) -> None:
    """The line said logged out, then available, then paused; every request succeeded."""
    said = [e.node for e in events
            if e.kind == ev.NODE_ENTER and (e.node or "").startswith("state_")]
    assert said == ["state_logged_out", "state_available", "state_paused"]
    assert [e.node for e in events if e.kind == ev.NO_MATCH] == []  # no key left over
    assert [e.data["ok"] for e in events if e.kind == ev.ACTION] == [True, True, True]


def check_lockout(first: list[ev.Event], second: list[ev.Event]) -> None:
    nodes = [e.node for e in first if e.kind == ev.NODE_ENTER]
    assert nodes.count("bad_login") == 2 and "locked_out" in nodes, nodes
    assert outcome(first) == "agent_line_locked"
    actions = [e.data for e in first if e.kind == ev.ACTION]
    assert [a["error"] for a in actions] == ["bad_login", "bad_login", "locked"]
    # the right PIN is refused while the lock lasts
    assert outcome(second) == "agent_line_locked"
    assert [e.data["error"] for e in second if e.kind == ev.ACTION] == ["locked"]
    inputs = [e.data["value"] for e in first + second
              if e.kind == ev.INPUT and e.node == "ask_pin"]  # fmt: skip
    assert inputs and set(inputs) == {ev.MASK}


@pytest.fixture
def single(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServerThread, Path]]:
    for name, value in pin_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    port = free_port()
    config_path = write_project(tmp_path, port)
    config = load_config(config_path)
    server = ServerThread(config, ServeOptions(host="127.0.0.1", port=port,
                                               rtp_ports=config.sip.rtp_ports)).start()  # fmt: skip
    try:
        yield server, config_path
    finally:
        server.stop()


def test_an_agent_logs_in_and_pauses_by_phone_and_wrong_pins_lock_the_number_out(
    single: tuple[ServerThread, Path], capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server, config_path = single
    assert agents_json(config_path, capsys)["gina"]["state"] == "logged_out"

    events = run(login_and_pause(server.address, server.db), 120)
    assert outcome(events) == "self_service"
    check_states(events)
    gina = agents_json(config_path, capsys)["gina"]
    assert (gina["state"], gina["reason"]) == ("paused", "break")

    first = run(wrong_pins(server.address, server.db), 120)
    second = run(right_pin_while_locked(server.address, server.db), 120)
    check_lockout(first, second)
    assert agents_json(config_path, capsys)["hugo"]["state"] == "logged_out"

    wait_for(lambda: len([c for c in calls(server.db) if c["outcome"]]) == 3, 10)
    logged = caplog.text
    assert "locked out for 600 s after 3 wrong PINs" in logged
    assert "agent gina: login -> available" in logged
    for pin in (*PINS.values(), WRONG):
        assert pin not in logged
        assert pin not in store_text(server.db)


def test_with_two_workers_the_line_reaches_the_supervisors_authority(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ivr serve --workers 2``: calls land on either worker; the agent's state and the lock
    live in the supervisor's authority, so both workers see the same."""
    port = free_port()
    config_path = write_project(tmp_path, port)
    log_file = tmp_path / "serve.log"
    env = {**os.environ, **pin_env(), "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr", "-c", str(config_path), "--log-level", "debug",
         "--log-file", str(log_file), "serve", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"with 2 worker processes" in line, proc.stderr.read() if proc.stderr else line
        for name, value in pin_env().items():  # ivr agents reads the same ivr.yaml
            os.environ[name] = value
        address, db = ("127.0.0.1", port), tmp_path / "calls.db"

        events = run(login_and_pause(address, db), 120)
        assert outcome(events) == "self_service"
        check_states(events)
        gina = agents_json(config_path, capsys)["gina"]
        assert (gina["state"], gina["reason"]) == ("paused", "break")

        first = run(wrong_pins(address, db), 120)
        locked_on = owner_of(first[0].call_id.encode(), 2)
        for _ in range(8):  # until a call lands on the worker that did not count the PINs
            second = run(right_pin_while_locked(address, db), 120)
            check_lockout(first, second)
            if owner_of(second[0].call_id.encode(), 2) != locked_on:
                break
        else:
            pytest.fail("no call landed on the other worker in 8 tries")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        logged = log_file.read_text(encoding="utf-8")
        assert "locked out for 600 s after 3 wrong PINs" in logged
        assert " DEBUG " in logged  # the log really was at debug level
        for pin in (*PINS.values(), WRONG):
            assert pin not in logged
            assert pin not in store_text(db)
    finally:
        for name in pin_env():
            os.environ.pop(name, None)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
