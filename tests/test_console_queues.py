"""Moving a caller from the console, end to end: ``ivr serve --workers 2`` as a real process (the
queue authority in the supervisor, the call on a worker), a real call placed with ``ivr call``
that keys a secret PIN and waits in a queue, real HTTP on 127.0.0.1 for the refusals, and
Debian's chromium driven by Playwright for the queue page (tests/debs.py names a missing
package). Afterwards the call's record holds the move, ``ivr report`` counts it, and the PIN the
caller keyed is in no page and no API answer."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any

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
from tests.serve_helpers import free_port, wait_for

pytestmark = pytest.mark.timeout(300)

PIN = "918273"
FLOW = """\
flow: moves
languages: [en]
start: pin
nodes:
  pin:
    collect:
      prompt: "Enter your PIN."
      into: pin
      min: 4
      max: 8
      terminator: "#"
      secret: true
      next: agent
      no_input: {after: 1, goto: agent}
      no_match: {goto: agent}
  agent:
    enqueue:
      queue: line
      prompt: "Please hold."
      on_no_agents: bye
  bye:
    hangup: {prompt: "Goodbye."}
"""


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("queues")
    sip_port, http_port = free_port(), free_port(kind=1)
    (root / "flows").mkdir()
    (root / "flows" / "moves.yaml").write_text(FLOW, encoding="utf-8")
    (root / "prompts").mkdir()
    (root / "ivr.yaml").write_text(yaml.safe_dump({
        "flows_dir": "flows", "prompts_dir": "prompts", "store": {"path": "calls.db"},
        "languages": ["en"], "numbers": {"default": "moves"},
        "sip": {"listen": f"127.0.0.1:{sip_port}", "rtp_ports": "45000-45999"},
        "asr": {"backend": "off"},
        "acd": {"control": "acd.sock",
                "agents": {"ann": {"password": "pw-2001"}, "bo": {"password": "pw-2002"}},
                "queues": {"line": {"members": ["ann"]}, "side": {"members": ["bo"]}}},
        "console": {"listen": f"127.0.0.1:{http_port}", "users": {
            "sue": {"role": "supervisor", "password_hash": hash_password(PASSWORDS["sue"])},
            "vic": {"role": "viewer", "password_hash": hash_password(PASSWORDS["vic"])}}},
    }), encoding="utf-8")  # fmt: skip
    config = root / "ivr.yaml"
    proc = start_serve(config, root, "--log-level", "info", "--log-file",
                       str(root / "serve.log"), workers=2)  # fmt: skip
    try:
        yield Console(root, config, f"http://127.0.0.1:{http_port}", sip_port, proc)
    finally:
        stop(proc)


def move(client: Client, call_id: str, body: Any, csrf: str | None,
         origin: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(f"/api/callers/{urllib.parse.quote(call_id)}/move", data, csrf, origin)


def callers(client: Client) -> list[dict[str, Any]]:
    status, body = client.send("/api/callers")
    assert status == 200, body
    found: list[dict[str, Any]] = json.loads(body)["callers"]
    return found


def test_a_supervisor_moves_a_waiting_caller_and_nobody_else_may(console: Console) -> None:
    pw_session = playwright()  # a missing package fails before the call is placed
    sue, vic, nobody = Client(console.base), Client(console.base), Client(console.base)
    me, viewer = sue.login("sue"), vic.login("vic")
    for agent in ("ann", "bo"):  # logged in, no phone registered: callers wait, nothing rings
        assert sue.act(agent, "login", me["csrf"])[0] == 200
    call = subprocess.Popen(
        [sys.executable, "-m", "ivr", "-c", str(console.config), "call",
         f"sip:7000@127.0.0.1:{console.sip_port}", "--digits", f"{PIN}#", "--hangup-after",
         "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=console.root)  # fmt: skip
    try:
        [waiting] = wait_for(lambda: callers(sue) or None, 40)
        call_id = waiting["call_id"]
        assert (waiting["queue"], waiting["position"]) == ("line", 1)
        # Refused: no session, a viewer, a cross-site post, no or a wrong CSRF token.
        assert nobody.send("/api/callers")[0] == 401
        assert move(nobody, call_id, {"queue": "side"}, "x")[0] == 401
        status, answer = move(vic, call_id, {"queue": "side"}, viewer["csrf"])
        assert status == 403 and "supervisor" in answer["error"]
        assert move(sue, call_id, {"queue": "side"}, me["csrf"], "http://evil.example")[0] == 403
        assert move(sue, call_id, {"queue": "side"}, None)[0] == 403
        assert move(sue, call_id, {"queue": "side"}, "x" + me["csrf"])[0] == 403
        form = urllib.parse.urlencode({"queue": "side"}).encode()  # a hostile page's form post
        status, _ = sue.send(f"/api/callers/{urllib.parse.quote(call_id)}/move", form,
                             {"Origin": "http://evil.example"})  # fmt: skip
        assert status == 403
        # Bad requests: a clear refusal each, the caller where they were.
        for body, expected in (({"queue": "nowhere"}, 409), ({"head": False}, 400),
                               (b"not json", 400), ({"queue": "q" * 100}, 400)):  # fmt: skip
            assert move(sue, call_id, body, me["csrf"])[0] == expected, body
        assert move(sue, "no-such-call", {"queue": "side"}, me["csrf"])[0] == 409
        assert callers(sue)[0]["queue"] == "line"
        # The supervisor's move.
        status, answer = move(sue, call_id, {"queue": "side"}, me["csrf"])
        assert status == 200 and (answer["from"], answer["queue"], answer["position"]) == \
            ("line", "side", 1)  # fmt: skip
        assert callers(vic)[0]["queue"] == "side"  # a viewer sees it
        # ... and in a browser: the queue page moves the caller back.
        with pw_session as pw:
            browser = chromium(pw)
            try:
                page = browser.new_page()
                page.goto(console.base + "/login")
                browser_login(page, "sue", PASSWORDS["sue"])
                page.wait_for_selector("#agents")
                page.click("nav a[href='/queues']")
                row = f"#callers tbody tr[data-call='{call_id}']"
                page.wait_for_selector(f"{row}[data-queue=side]")
                page.select_option(f"{row} select.move-to", "line")
                page.click(f"{row} button[data-action=move]")
                page.wait_for_selector(f"{row}[data-queue=line]")
                assert "moved" in page.text_content("#message")
                pages = [page.content()]
                for path in ("/", "/reports", "/queues"):
                    page.goto(console.base + path)
                    page.wait_for_load_state("networkidle")
                    pages.append(page.content())
            finally:
                browser.close()
        assert callers(sue)[0]["queue"] == "line"
        answers = [sue.send(p)[1].decode() for p in
                   ("/api/callers", "/api/snapshot", "/metrics", "/reports",
                    "/reports/download?format=csv", "/reports/download?format=html")]
    finally:
        call.wait(90)
    # The record: two moves, the caller hung up waiting; the report counts the entries.
    with sqlite3.connect(console.root / "calls.db") as db:
        moves = [json.loads(d) for (d,) in db.execute(
            "SELECT data FROM events WHERE call_id = ? AND kind = 'queue_moved' ORDER BY seq",
            (call_id,))]  # fmt: skip
        outcome = db.execute("SELECT outcome FROM calls WHERE call_id = ?",
                             (call_id,)).fetchone()  # fmt: skip
    assert [(m["from"], m["queue"]) for m in moves] == [("line", "side"), ("side", "line")]
    assert outcome == ("abandoned_in_queue",)
    status, body = sue.send("/reports/download?format=csv")
    rows = body.decode().splitlines()
    assert "queue,line,offered,2" in rows and "queue,side,offered,1" in rows
    # The PIN the caller keyed: in no page, no API answer, no download.
    for text in [*pages, *answers, body.decode()]:
        assert PIN not in text
