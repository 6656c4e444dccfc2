"""The QA commands as a tester meets them (issue 13, "QA and ops"): ``ivr test --live`` checks
what the server needs before any call and shows each result as it comes; ``ivr call`` waits for
the call to end; ``ivr simulate`` starts at the current time. Real server, real SIP calls."""

from __future__ import annotations

import argparse
import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from serve_helpers import (
    MENU_FLOW,
    ServerThread,
    calls,
    events,
    free_port,
    wait_for,
    write_config,
)

from ivr.cli import cmd_call
from ivr.cli.main import main
from ivr.serve.server import ServeOptions

NEWS = """\
name: news
call: e2e-menu
caller: {number: "+8613800000081", called: "7001"}
steps:
  - expect: menu
  - press: "1"
  - expect: news
  - expect_hangup
outcome: self_service
"""

WRONG = """\
name: wrong
call: e2e-menu
caller: {number: "+8613800000082", called: "7001"}
steps:
  - expect: menu
  - press: "1"
  - expect: no_news
"""

TIMED = """\
call: e2e-menu
at: "2027-01-04T10:00:00+08:00"
steps:
  - expect: menu
"""


@pytest.fixture(scope="module")
def menu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """``ivr serve`` with the one-key menu flow only (few prompts to render)."""
    root = tmp_path_factory.mktemp("qa-serve")
    flows = root / "flows"
    flows.mkdir()
    (flows / "e2e-menu.yaml").write_text(MENU_FLOW, encoding="utf-8")
    port = free_port()
    config = write_config(root, flows, root / "prompts", port=port,
                          numbers={"7001": "e2e-menu", "default": "e2e-menu"})  # fmt: skip
    options = ServeOptions(test_headers=True, port=port, rtp_ports=(23000, 23999),
                           drain_timeout=2)  # fmt: skip
    thread = ServerThread(config, options).start()
    try:
        yield thread
    finally:
        thread.stop()


def test_live_shows_each_result_as_it_comes(
    menu_server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "news.yaml").write_text(NEWS, encoding="utf-8")
    (tmp_path / "wrong.yaml").write_text(WRONG, encoding="utf-8")
    host, port = menu_server.address
    config = str(menu_server.config.root / "ivr.yaml")
    code = main(["-c", config, "test", "--live", f"sip:{host}:{port}", "--barge-in",
                 str(tmp_path / "news.yaml"), str(tmp_path / "wrong.yaml")])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1, out
    lines = out.splitlines()
    assert lines[0] == (f"calling sip:{host}:{port}: 2 scripts, 1 at a time "
                        "(prompts play in real time)")
    numbered = [line for line in lines if line.startswith("[")]
    assert [line[:5] for line in numbered] == ["[1/2]", "[2/2]"]
    assert sorted(line.split()[1] for line in numbered) == ["FAIL", "PASS"]
    assert out.count("PASS news") == 1  # printed as it came, not again at the end
    assert lines[-1] == "1 passed, 1 failed"


def test_live_refuses_up_front_without_test_headers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server without sip.test_headers: one message, no calls (at: would be ignored and the
    calls not marked as QA)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "e2e-menu.yaml").write_text(MENU_FLOW, encoding="utf-8")
    port = free_port()
    config = write_config(tmp_path, flows, tmp_path / "prompts", port=port, test_headers=False)
    script = tmp_path / "timed.yaml"
    script.write_text(TIMED, encoding="utf-8")
    began = time.monotonic()
    code = main(["-c", str(config.root / "ivr.yaml"), "test", "--live",
                 f"sip:127.0.0.1:{port}", str(script)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2
    assert "1 of 1 scripts would run at the wrong time" in captured.err
    assert "no call would be marked as a QA call" in captured.err
    assert "sip: {test_headers: true}" in captured.err and "--without-test-headers" in captured.err
    assert captured.out == ""
    assert time.monotonic() - began < 10  # refused before dialling (a call would take longer)
    assert not config.store_path.exists()


def test_ivr_call_waits_for_the_call_to_end_by_default(
    menu_server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    cmd_call.add_arguments(parser)
    args = parser.parse_args(["sip:7001@127.0.0.1:5060"])
    assert args.hangup_after is None
    assert cmd_call.call_deadline(100.0, args.hangup_after) == math.inf
    assert cmd_call.call_deadline(100.0, 30.0) == 130.0
    # A real call with no limit: it lasts until the server hangs up.
    host, port = menu_server.address
    config = str(menu_server.config.root / "ivr.yaml")
    code = main(["-c", config, "call", f"sip:7001@{host}:{port}", "--caller", "+8613800000083"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ended: remote bye; outcome failed" in out  # the menu timed out: the flow hung up
    assert any(c["caller"] == "+8613800000083" for c in calls(menu_server.db))


def test_ivr_call_hangs_up_on_ctrl_c(menu_server: ServerThread) -> None:
    """With no limit by default, Ctrl-C is how a tester ends a call: the caller sends BYE."""
    host, port = menu_server.address
    config = str(menu_server.config.root / "ivr.yaml")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr", "-c", config, "call", f"sip:7001@{host}:{port}",
         "--caller", "+8613800000084"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        answered = proc.stdout.readline()  # the progress line comes once the call is up
        assert "200 OK" in answered, answered
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    mine = wait_for(lambda: [c for c in calls(menu_server.db)
                             if c["caller"] == "+8613800000084" and c["outcome"]], 10)
    (call,) = mine
    hangups = [d for k, _, d in events(menu_server.db, call["call_id"]) if k == "hangup"]
    assert hangups and hangups[0]["by"] == "caller"


SIM_CONFIG_FLOWS = Path(__file__).parent / "flows" / "sim"


def test_ivr_simulate_starts_at_the_current_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ivr.yaml"
    config.write_text(f"flows_dir: {SIM_CONFIG_FLOWS}\nactions_path: "
                      f"{SIM_CONFIG_FLOWS / 'actions'}\n", encoding="utf-8")  # fmt: skip
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("4\n"))
    before = datetime.now().astimezone()
    assert main(["-c", str(config), "simulate", "sim-main"]) == 0
    lines = capsys.readouterr().out.splitlines()
    stamp = lines[0].split(" at ", 1)[1].split(" ", 1)[0]
    started = datetime.fromisoformat(stamp)
    assert abs((started - before).total_seconds()) < 120
    # The office calendar (Asia/Shanghai, Mon-Fri 09-17) was asked about now, not 2027-01-01.
    local = before.astimezone(ZoneInfo("Asia/Shanghai"))
    open_now = local.weekday() < 5 and 9 <= local.hour < 17
    answer = "[open_now]" if open_now else "[closed_now]"
    assert any(line.startswith(answer) for line in lines), lines
