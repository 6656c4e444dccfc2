"""The flow heat map and the calls' timelines end to end: the console on a real port of
127.0.0.1 (its own thread, as ``ivr serve`` runs it), the bank flows, call records written by
``ivr test --store`` running the bank's QA call scripts into a real SQLite store, real HTTP,
and Debian's chromium driven by Playwright (tests/debs.py names a missing package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from ivr.cli.main import main
from ivr.config import load_config
from ivr.console.records import live_calls
from ivr.console.server import ConsoleThread
from ivr.console.source import ConsoleSource, ServerState
from ivr.consoleconf import hash_password
from ivr.core.events import Event
from ivr.store.db import CallStore, connect
from ivr.store.report import build_report
from tests.console_helpers import Client, browser_login, chromium, playwright, start_serve, stop
from tests.screenshots import screenshot_path
from tests.serve_helpers import REPO, free_port

pytestmark = pytest.mark.timeout(240)

PASSWORD = "viewer-pass-2"
SCRIPTS = ["balance_en.yaml", "verify_wrong_pin_then_right.yaml", "verify_hangup_during_pin.yaml",
           "main_menu_no_input_escalation.yaml", "language_silence_and_wrong_key.yaml",
           "after_hours_voicemail.yaml"]  # fmt: skip
DAY = "2027-01-04"  # the scripts' calls happen on their `at:` day
SECRETS = ("123456", "654321", "6222021000000013")  # PINs and the account number they key in
BALANCE_CALLER = "+8613800000001"  # balance_en.yaml


@dataclass
class Explore:
    root: Path
    base: str
    console: ConsoleThread


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * 800)


def _recorded_calls(root: Path, db: Path) -> None:
    """Calls with recordings: one in var/recordings, others pointing outside it (as a tampered
    or hostile record could), one without an end (a live call)."""
    recordings = root / "var" / "recordings"
    recordings.mkdir(parents=True)
    _wav(recordings / "rec-call-1.wav")
    _wav(root / "outside.wav")
    (recordings / "link.wav").symlink_to(root / "outside.wav")
    now = time.time()
    paths = [recordings / "rec-call-1.wav", root / "outside.wav", recordings / "link.wav",
             recordings / ".." / ".." / "outside.wav", root / "ivr.yaml"]  # fmt: skip
    events = [Event("rec-call", 1, 0.0, "call_start", None,
                    {"caller": "+8613800000042", "called": "95588", "flow": "bank-main",
                     "transport": "sip", "wall": now - 60})]  # fmt: skip
    events += [Event("rec-call", 2 + i, 5.0 + i, "recording", "voicemail",
                     {"path": str(p), "duration": 1.0, "flow": "bank-main"})
               for i, p in enumerate(paths)]  # fmt: skip
    events.append(Event("rec-call", 9, 12.0, "call_end", None,
                        {"outcome": "voicemail", "duration": 12.0, "flow": "bank-main"}))
    for call_id, ago in (("live-call", 30.0), ("stale-call", 7 * 3600.0)):
        events += [Event(call_id, 1, 0.0, "call_start", None,
                         {"caller": "+8613800000043", "called": "95588", "flow": "bank-main",
                          "transport": "sip", "wall": now - ago}),
                   Event(call_id, 2, 1.0, "node_enter", "main_menu",
                         {"kind": "menu", "flow": "bank-main"})]  # fmt: skip
    with CallStore(db, threaded=False) as store:
        store.write_many(events)


@pytest.fixture(scope="module")
def explore(tmp_path_factory: pytest.TempPathFactory, bank_api: str) -> Iterator[Explore]:
    root = tmp_path_factory.mktemp("explore")
    shutil.copytree(REPO / "flows", root / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port(kind=1)
    data = {
        "flows_dir": "flows", "prompts_dir": "prompts", "store": {"path": "calls.db"},
        "actions_path": "flows/actions", "scripts_dir": str(REPO / "tests" / "scripts"),
        "languages": ["en", "zh"], "numbers": {"95588": "bank-main", "default": "bank-main"},
        "transfer_allow": ["sip:*@agents.bank.example", "+86955*"],
        "vars": {"bank_api": "${IVR_BANK_API:-http://127.0.0.1:8765}"}, "asr": {"backend": "off"},
        "console": {"listen": f"127.0.0.1:{port}",
                    "users": {"vic": {"role": "viewer", "password_hash": hash_password(PASSWORD)}}},
    }  # fmt: skip
    (root / "ivr.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(root / "ivr.yaml")
    scripts = [str(REPO / "tests" / "scripts" / s) for s in SCRIPTS]
    assert main(["-c", str(root / "ivr.yaml"), "test", "--store", str(config.store_path),
                 *scripts]) == 0  # fmt: skip
    _recorded_calls(root, config.store_path)
    assert config.console is not None
    console = ConsoleThread(config.console, ConsoleSource(config, ServerState(),
                                                          CollectorRegistry()))  # fmt: skip
    console.start()
    try:
        yield Explore(root, f"http://127.0.0.1:{port}", console)
    finally:
        console.stop()


def viewer(base: str) -> Client:
    client = Client(base)
    assert client.sign_in("vic", PASSWORD)[0] == 200
    return client


def _node(page: str, node: str) -> dict[str, str]:
    found = re.search(rf'<g ([^>]*data-node="{node}"[^>]*)>', page)
    assert found, node
    return dict(re.findall(r'([a-z-]+)="([^"]*)"', found.group(1)))


# --- plain HTTP -------------------------------------------------------------------------------


def test_the_pages_need_a_session(explore: Explore) -> None:
    client = Client(explore.base)
    for path in ("/flows", "/flows/bank-main", "/calls", "/calls/rec-call"):
        status, body = client.send(path)
        assert status == 200 and b'action="/login"' in body, path  # sent to the login form
    for path in ("/api/flows/bank-main", "/api/calls", "/api/calls/rec-call",
                 "/calls/rec-call/recordings/1"):  # fmt: skip
        assert client.send(path)[0] == 401, path


def test_the_heat_map_counts_the_qa_calls_only_when_asked(explore: Explore) -> None:
    client = viewer(explore.base)
    status, body = client.send(f"/flows/bank-main?day={DAY}")
    assert status == 200
    assert _node(body.decode(), "main_menu")["data-visits"] == "0"  # QA calls left out
    # The same figures as `ivr report` (its per-node table) for that day, QA calls included.
    conn = connect(explore.root / "calls.db")
    try:
        report = build_report(conn, since=DAY, until=DAY, include_qa=True)
    finally:
        conn.close()
    expected = {(n.flow, n.node): n for n in report.nodes}
    status, body = client.send(f"/flows/bank-main?day={DAY}&qa=1&by=no_input")
    menu = _node(body.decode(), "main_menu")
    want = expected["bank-main", "main_menu"]
    assert (int(menu["data-visits"]), int(menu["data-no-input"]), int(menu["data-no-match"])) \
        == (want.visits, want.no_input, want.no_match) and want.visits >= 3  # fmt: skip
    assert "<title>1× choice 1</title>" in body.decode()  # balance_en.yaml's only, that day
    status, body = client.send("/api/flows/verify-customer?day=2027-01-08&qa=1")
    nodes = {n["id"]: n for n in json.loads(body)["nodes"]}
    assert nodes["ask_pin"]["visits"] == 3  # the wrong PIN, the right one, the hang-up
    assert nodes["ask_pin"]["hangups"] == 1  # verify_hangup_during_pin.yaml
    assert nodes["ask_pin"]["prompts"][0]["text"]["zh"] == "请输入您的6位电话银行密码。"
    status, body = client.send(f"/flows?day={DAY}&qa=1")
    assert re.search(r'<tr data-flow="bank-main">.*?<td class="num">4</td>', body.decode())


def test_hostile_queries_are_refused_or_escaped(explore: Explore) -> None:
    client = viewer(explore.base)
    assert client.send("/flows/bank-main?day=yesterday")[0] == 400
    assert client.send("/flows/bank-main?by=__class__")[0] == 400
    assert client.send("/flows/..%2F..%2Fivr")[0] == 404
    assert client.send("/calls/no-such-call")[0] == 404
    find = urllib.parse.quote("<script>alert(1)</script>")
    status, body = client.send(f"/flows/bank-main?find={find}")
    assert status == 200 and b"<script>alert" not in body and b"&lt;script&gt;alert" in body
    status, body = client.send("/calls?q=%25&outcome=%27%20OR%201%3D1--")
    assert status == 200 and b"no calls" in body  # LIKE wildcards and SQL taken literally


def test_calls_are_found_by_caller_and_outcome(explore: Explore) -> None:
    client = viewer(explore.base)
    status, body = client.send(f"/api/calls?q={urllib.parse.quote(BALANCE_CALLER)}")
    calls = json.loads(body)["calls"]
    assert status == 200 and calls and all(c["caller"] == BALANCE_CALLER for c in calls)
    assert all(c["qa"] for c in calls)
    status, body = client.send("/calls?outcome=voicemail")
    assert b'data-call="rec-call"' in body and b'href="/calls/rec-call"' in body


def test_a_timeline_shows_keys_and_prompts_and_never_a_pin(explore: Explore) -> None:
    client = viewer(explore.base)
    texts = []
    for call in json.loads(client.send("/api/calls?limit=200")[1])["calls"]:
        call_id = urllib.parse.quote(call["call_id"], safe="")
        for path in (f"/calls/{call_id}", f"/api/calls/{call_id}"):
            status, body = client.send(path)
            assert status == 200
            texts.append(body.decode())
    texts.append(client.send("/api/calls")[1].decode())
    texts.append(client.send(f"/api/flows/verify-customer?day={DAY}&qa=1")[1].decode())
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
    balance = json.loads(client.send(f"/api/calls?q={urllib.parse.quote(BALANCE_CALLER)}")[1])
    call_id = balance["calls"][0]["call_id"]
    events = json.loads(client.send(f"/api/calls/{call_id}")[1])["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "call_start" and kinds[-1] == "call_end"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    pin = next(e for e in events if e["node"] == "ask_pin" and e["kind"] == "input")
    assert pin["text"] == "keys ****"
    assert any(e["text"] == "keys 1" and e["node"] == "main_menu" for e in events)
    assert any(e["kind"] == "prompt" and "plays say_balance [en]" in e["text"] for e in events)
    page = client.send(f"/calls/{call_id}")[1].decode()
    assert 'href="/flows/verify-customer#n-ask_pin"' in page


def test_a_recording_is_served_only_from_the_recordings_folder(explore: Explore) -> None:
    client = viewer(explore.base)
    status, body = client.send("/calls/rec-call/recordings/1")
    assert status == 200 and body[:4] == b"RIFF"
    for number in ("2", "3", "4", "5", "6", "0", "-1", "x", "9" * 30):  # outside, a link out, ..
        assert client.send(f"/calls/rec-call/recordings/{number}")[0] == 404, number
    assert client.send("/calls/rec-call/recordings/..%2F..%2Fivr.yaml")[0] == 404
    page = client.send("/calls/rec-call")[1].decode()
    assert '<audio controls preload="none" src="/calls/rec-call/recordings/1">' in page


def test_live_calls_are_the_newest_without_an_end(explore: Explore) -> None:
    db = explore.root / "calls.db"
    live = live_calls(db, 5)
    assert [c["call_id"] for c in live] == ["live-call"]  # not the one started 7 h ago
    assert live[0]["node"] == "main_menu" and live[0]["node_flow"] == "bank-main"
    assert live_calls(db, 0) == []
    client = viewer(explore.base)  # a call in progress: its timeline reloads itself
    assert b'http-equiv="refresh"' in client.send("/calls/live-call")[1]
    assert b'http-equiv="refresh"' not in client.send("/calls/rec-call")[1]


# --- a real browser ---------------------------------------------------------------------------


def test_the_heat_map_and_a_timeline_in_a_browser(explore: Explore, tmp_path: Path) -> None:
    with playwright() as pw:
        browser = chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(explore.base + "/flows")
            browser_login(page, "vic", PASSWORD)
            page.goto(explore.base + "/flows")
            page.click("#flows a[href^='/flows/bank-main']")
            page.fill("input[name=day]", DAY)
            page.check("input[name=qa]")
            page.click("button[type=submit]")
            menu = page.locator("g.heat[data-node=main_menu]")
            assert int(menu.get_attribute("data-visits") or 0) >= 3
            assert re.fullmatch(r"\d+ in · \d+ NI · \d+ NM · \d+ hung up",
                                menu.locator("text.figures").text_content() or "")  # fmt: skip
            menu.click()  # its details: figures and prompts in every language
            details = page.locator("#n-main_menu")
            details.wait_for(state="visible")
            assert "查询账户余额" in details.inner_text() and "visits" in details.inner_text()
            page.fill("#find", "挂失")  # search as you type, in Mandarin
            page.wait_for_selector("g.heat.found[data-node=main_menu]")
            assert page.locator("g.heat.found").count() >= 1
            width = float(page.locator("#map").get_attribute("width") or 0)
            page.click("#zoom-in")
            assert float(page.locator("#map").get_attribute("width") or 0) > width
            page.fill("#find", "")
            page.click("#zoom-out")
            page.click("#zoom-out")  # 0.8: the picture in the docs
            assert float(page.locator("#map").get_attribute("width") or 0) < width
            page.evaluate("document.querySelector('g.heat[data-node=main_menu]')"
                          ".scrollIntoView({block: 'center', inline: 'center'});"
                          "window.scrollTo(0, 0)")  # fmt: skip
            page.screenshot(path=str(screenshot_path("console-flowmap.png", tmp_path)))
            page.click("#zoom-fit")  # the whole flow in view
            assert float(page.locator("#map").get_attribute("height") or 0) <= 900
            page.click("g.heat[data-node=verify_for_balance]")  # a sub-flow opens its flow
            page.wait_for_url(re.compile(r"/flows/verify-customer$"))
            page.goto(explore.base + "/calls?q=" + urllib.parse.quote(BALANCE_CALLER))
            page.click("#call-list tbody tr a")
            page.wait_for_selector("#timeline tbody tr")
            text = page.locator("#timeline").inner_text()
            assert "keys 1" in text and "plays main_menu [en]" in text and "keys ****" in text
            content = page.content()
            assert not any(secret in content for secret in SECRETS)
            page.uncheck("#f-node")  # hide the node steps: the prompts stay
            assert not page.locator("tr.ev.node").first.is_visible()
            assert page.locator("tr.ev.prompt").first.is_visible()
        finally:
            browser.close()


# --- a real call keying a PIN -----------------------------------------------------------------

PIN_FLOW = """\
flow: pin-e2e
languages: [en]
start: ask_pin
nodes:
  ask_pin:
    collect:
      prompt: "Enter your PIN."
      into: pin
      min: 6
      max: 6
      secret: true
      next: bye
      no_input: {goto: bye}
      no_match: {goto: bye}
  bye:
    hangup: {prompt: "Thank you. Goodbye."}
"""
PIN = "735194"


def test_a_pin_keyed_in_a_real_call_is_in_no_page_or_answer(tmp_path: Path) -> None:
    """``ivr serve`` (a real process, its own console) answers ``ivr call``, which keys a PIN
    over RTP; the call's timeline shows the keys masked, and no page or answer has the PIN."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "pin-e2e.yaml").write_text(PIN_FLOW, encoding="utf-8")
    sip_port, http_port = free_port(), free_port(kind=1)
    data = {
        "flows_dir": "flows", "prompts_dir": "prompts", "store": {"path": "calls.db"},
        "languages": ["en"], "numbers": {"default": "pin-e2e"}, "asr": {"backend": "off"},
        "sip": {"listen": f"127.0.0.1:{sip_port}", "rtp_ports": "45000-45999"},
        "console": {"listen": f"127.0.0.1:{http_port}",
                    "users": {"vic": {"role": "viewer", "password_hash": hash_password(PASSWORD)}}},
    }  # fmt: skip
    config = tmp_path / "ivr.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    log = tmp_path / "serve.log"
    proc = start_serve(config, tmp_path, "--log-level", "debug", "--log-file", str(log))
    try:
        call = subprocess.run(
            [sys.executable, "-m", "ivr", "-c", str(config), "call",
             f"sip:7000@127.0.0.1:{sip_port}", "--digits", PIN, "--hangup-after", "30"],
            capture_output=True, cwd=tmp_path, timeout=90)  # fmt: skip
        assert call.returncode == 0, call.stdout[-2000:]
        client = viewer(f"http://127.0.0.1:{http_port}")
        calls = json.loads(client.send("/api/calls")[1])["calls"]
        assert len(calls) == 1 and calls[0]["outcome"] == "self_service", calls
        call_id = urllib.parse.quote(calls[0]["call_id"], safe="")
        answers = [client.send(path)[1].decode() for path in (
            f"/calls/{call_id}", f"/api/calls/{call_id}", "/calls", "/api/calls",
            "/api/snapshot", "/metrics", "/flows/pin-e2e", "/api/flows/pin-e2e")]  # fmt: skip
        events = json.loads(answers[1])["events"]
        assert any(e["node"] == "ask_pin" and e["text"] == "keys ****" for e in events)
        assert any(e["text"].startswith("plays ask_pin [en]") for e in events)
        for answer in answers:
            assert PIN not in answer
    finally:
        stop(proc)
    assert PIN not in log.read_text(encoding="utf-8")  # nor in the server's log
