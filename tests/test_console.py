"""The web console end to end: ``ivr serve --workers 2`` as a real process with ivr.yaml
``console:``, real HTTP on 127.0.0.1, a real call placed with ``ivr call``, and Debian's
chromium driven by Playwright for the wallboard (tests/debs.py names a missing package)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ivr.consoleconf import hash_password
from tests.console_helpers import (
    PASSWORDS,
    Client,
    Console,
    browser_login,
    chromium,
    playwright,
    start_serve,
    stop,
)
from tests.screenshots import screenshot_path
from tests.serve_helpers import free_port, wait_for

pytestmark = pytest.mark.timeout(240)

FLOW = """\
flow: console-e2e
languages: [en]
start: wait
nodes:
  wait:
    menu:
      prompt: "Press 1."
      choices:
        "1": bye
      timeout: 60
      no_input: {after: 1, goto: bye}
      no_match: {goto: bye}
  bye:
    hangup: {prompt: "Goodbye."}
"""


def write_project(root: Path, sip_port: int, http_port: int) -> Path:
    (root / "flows").mkdir()
    (root / "flows" / "console-e2e.yaml").write_text(FLOW, encoding="utf-8")
    (root / "prompts").mkdir()
    data = {
        "flows_dir": "flows", "prompts_dir": "prompts", "store": {"path": "calls.db"},
        "languages": ["en"], "numbers": {"default": "console-e2e"},
        "sip": {"listen": f"127.0.0.1:{sip_port}", "rtp_ports": "44000-44999"},
        "asr": {"backend": "off"},
        "acd": {"control": "acd.sock",
                "agents": {"ann": {"name": "Ann Li", "username": "2001", "password": "pw-2001"},
                           "bo": {"name": "Bo Chen", "username": "2002", "password": "pw-2002"}},
                "queues": {"line": {}}},
        "console": {"listen": f"127.0.0.1:{http_port}",
                    "users": {"sue": {"role": "supervisor",
                                      "password_hash": hash_password(PASSWORDS["sue"])},
                              "vic": {"role": "viewer",
                                      "password_hash": hash_password(PASSWORDS["vic"])}}},
    }  # fmt: skip
    (root / "ivr.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return root / "ivr.yaml"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    sip_port, http_port = free_port(), free_port(kind=1)
    config = write_project(root, sip_port, http_port)
    proc = start_serve(config, root, "--log-level", "info", "--log-file",
                       str(root / "serve.log"), workers=2)  # fmt: skip
    try:
        yield Console(root, config, f"http://127.0.0.1:{http_port}", sip_port, proc)
    finally:
        stop(proc)


# --- plain HTTP -------------------------------------------------------------------------------


def test_health_is_ready_and_metrics_are_prometheus_text(console: Console) -> None:
    client = Client(console.base)
    status, body = client.send("/healthz")
    assert status == 200 and json.loads(body)["ready"] is True
    status, body = client.send("/metrics")
    text = body.decode()
    assert status == 200
    for name in ("ivr_calls_active", "ivr_queue_waiting{queue=\"line\"}",
                 "ivr_agents{state=\"logged_out\"} 2.0", "ivr_rtp_gap_seconds_bucket",
                 "ivr_key_to_prompt_seconds_bucket", "ivr_asr_latency_seconds_bucket",
                 "ivr_webhook_seconds_bucket"):  # fmt: skip
        assert name in text, name


def test_requests_without_a_session_are_refused(console: Console) -> None:
    client = Client(console.base)
    assert client.send("/api/snapshot")[0] == 401
    assert client.send("/api/events")[0] == 401
    assert client.act("ann", "login", "anything")[0] == 401
    status, body = client.send("/")  # a page goes to the login form
    assert status == 200 and b'action="/login"' in body
    assert client.send("/static/..%2F..%2Fivr.yaml")[0] == 404


def test_a_bad_password_is_refused_and_logins_are_rate_limited(console: Console) -> None:
    client = Client(console.base)
    form = urllib.parse.urlencode({"name": "mallory", "password": "wrong"}).encode()
    statuses = [client.send("/login", form)[0] for _ in range(6)]
    assert statuses[0] == 200 and client.send("/api/me")[0] == 401  # back on the login form
    assert b"Wrong name or password" in client.send("/login?failed=1")[1]
    assert statuses[-1] == 429


def test_a_viewer_cannot_act_on_agents(console: Console) -> None:
    client = Client(console.base)
    me = client.login("vic")
    assert me["role"] == "viewer" and not me["may_control"]
    status, answer = client.act("ann", "login", me["csrf"])
    assert status == 403 and "supervisor" in answer["error"]


def test_a_cross_site_post_and_a_post_without_the_csrf_token_are_refused(
        console: Console) -> None:  # fmt: skip
    client = Client(console.base)
    me = client.login("sue")
    assert client.act("bo", "login", me["csrf"], origin="http://evil.example")[0] == 403
    assert client.act("bo", "login", None)[0] == 403
    assert client.act("bo", "login", "x" + me["csrf"])[0] == 403
    # A plain cross-site form post (what a hostile page can make a browser send).
    form = urllib.parse.urlencode({"reason": "x"}).encode()
    status, _ = client.send("/api/agents/bo/login", form, {"Origin": "http://evil.example"})
    assert status == 403
    status, answer = client.act("bo", "login", me["csrf"])
    assert status == 200 and answer["agent"]["state"] == "available"
    client.act("bo", "logout", me["csrf"])


# --- a real browser ---------------------------------------------------------------------------


def _metric(base: str, name: str) -> float:
    text = Client(base).send("/metrics")[1].decode()
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else -1.0


def test_the_wallboard_shows_a_live_call_and_pauses_an_agent(console: Console,
                                                             tmp_path: Path) -> None:
    with playwright() as pw:
        browser = chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(console.base + "/")
            browser_login(page, "sue", PASSWORDS["sue"])
            page.wait_for_selector("#agents tbody tr[data-agent=ann]")
            row = "#agents tbody tr[data-agent=ann]"
            page.click(f"{row} button[data-action=login]")
            page.wait_for_selector(f"{row} .state.available")
            call = subprocess.Popen(
                [sys.executable, "-m", "ivr", "-c", str(console.config), "call",
                 f"sip:7000@127.0.0.1:{console.sip_port}", "--hangup-after", "12"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=console.root)  # fmt: skip
            try:
                page.wait_for_selector("#calls tbody tr[data-flow=console-e2e][data-node=wait]",
                                       timeout=30_000)  # fmt: skip
                assert wait_for(lambda: _metric(console.base, "ivr_calls_active") == 1.0 or None,
                                10)  # fmt: skip
                # The live call links to its timeline (and its node on the heat map).
                live = page.wait_for_selector("#live tbody tr[data-call] a[href^='/calls/']")
                timeline = live.get_attribute("href") or ""
                heat = browser.new_page()  # the same call as a badge on its node's heat map
                heat.context.add_cookies(page.context.cookies())
                heat.goto(console.base + "/flows/console-e2e")
                assert heat.locator("g.heat[data-node=wait] g.now").get_attribute("data-now") \
                    == "1"  # fmt: skip
                heat.close()
                page.click(f"{row} button[data-action=pause]")
                page.wait_for_selector(f"{row} .state.paused")
                page.screenshot(path=str(screenshot_path("console-wallboard.png", tmp_path)),
                                full_page=True)  # fmt: skip
                page.wait_for_selector("#calls tbody tr[data-node=wait]", state="detached",
                                       timeout=40_000)  # fmt: skip
            finally:
                call.wait(60)
            assert _metric(console.base, "ivr_calls_active") == 0.0
            page.goto(console.base + timeline)
            text = page.locator("#timeline").inner_text()
            assert "plays wait [en] “Press 1.”" in text and "call ends" in text
            assert 'ivr_calls_total{outcome=' in Client(console.base).send("/metrics")[1].decode()
        finally:
            browser.close()


def test_one_process_without_users_serves_viewers_and_is_not_ready_while_draining(
        tmp_path: Path) -> None:  # fmt: skip
    """A single ``ivr serve`` (the host's own metrics) with no users: loopback, viewers only;
    /healthz turns 503 once SIGTERM starts the drain, while the call is still up."""
    sip_port, http_port = free_port(), free_port(kind=1)
    config = write_project(tmp_path, sip_port, http_port)
    data = yaml.safe_load(config.read_text())
    del data["console"]["users"]
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    base = f"http://127.0.0.1:{http_port}"
    proc = start_serve(config, tmp_path)
    call = None
    try:
        client = Client(base)
        status, body = client.send("/api/me")
        assert status == 200 and json.loads(body)["role"] == "viewer"
        status, body = client.send("/api/snapshot")
        assert status == 200 and json.loads(body)["health"]["ready"] is True
        csrf = json.loads(client.send("/api/me")[1])["csrf"]
        assert client.act("ann", "login", csrf)[0] == 403  # no supervisor without users
        call = subprocess.Popen(
            [sys.executable, "-m", "ivr", "-c", str(config), "call",
             f"sip:7000@127.0.0.1:{sip_port}", "--hangup-after", "8"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)  # fmt: skip
        assert wait_for(lambda: _metric(base, "ivr_calls_active") == 1.0 or None, 30)
        assert 'ivr_calls_in_node{flow="console-e2e",node="wait"} 1.0' in \
            client.send("/metrics")[1].decode()
        proc.send_signal(signal.SIGTERM)
        status, body = wait_for(lambda: (r := client.send("/healthz"))[0] == 503 and r, 10)
        assert json.loads(body)["draining"] is True
        call.wait(60)
        assert proc.wait(60) == 0
    finally:
        for p in (call, proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
