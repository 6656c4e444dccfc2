"""``ivr serve`` end to end: real SIP peers, real RTP, real call records, all on 127.0.0.1.

Most tests share one server (an :class:`IvrServer` on its own thread and event loop) running the
repository's flows plus two small test flows (serve_helpers.py); the overload, reload and
SIGTERM tests start their own. Verdicts come from the call records, the peers' own reports
(SIPp's exit code and counters, baresip's log) and our caller's SIP state, never from timings.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import (
    MONDAY_10AM,
    REPO,
    SIPP_SCENARIOS,
    Baresip,
    ServerThread,
    async_wait_for,
    bank_flows,
    calls,
    ended_call,
    events,
    free_port,
    prompts,
    sipp,
    wait_for,
    write_config,
)
from sip_phone import FAST, run
from test_sip_torture import (
    EXPECTED,
    TORTURE,
    _bind_sender,
    _final_status,
    _reply_port,
    to_loopback,
)

from ivr.cli.main import main
from ivr.serve.server import ServeOptions
from ivr.sim.live_call import LiveCaller, LivePhone
from ivr.sim.records import CallRecords
from ivr.tts.cache import PromptCache

pytestmark = pytest.mark.timeout(120)
needs_sipp = pytest.mark.usefixtures("sipp_program")
needs_baresip = pytest.mark.usefixtures("baresip_program")
AT = [("X-Ivr-At", MONDAY_10AM)]


@pytest.fixture(scope="session")
def prompts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One prompt cache for every server of the session (rendered once, ~4 s)."""
    return tmp_path_factory.mktemp("prompts")


@pytest.fixture(scope="module")
def server(bank_api: str, prompts_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[ServerThread]:  # fmt: skip
    root = tmp_path_factory.mktemp("serve")
    port = free_port()
    flows = bank_flows(root / "flows", port)
    numbers = {"95588": "bank-main", "7001": "e2e-menu", "7002": "e2e-transfer",
               "default": "bank-main"}  # fmt: skip
    config = write_config(root, flows, prompts_dir, port=port, numbers=numbers)
    options = ServeOptions(test_headers=True, port=port, rtp_ports=(24000, 25999), drain_timeout=2)
    thread = ServerThread(config, options).start()
    try:
        yield thread
    finally:
        thread.stop()


async def dial(
    address: tuple[str, int],
    db: Path,
    number: str,
    *,
    dtmf: str = "rfc4733",
    headers: list[tuple[str, str]] | None = None,
) -> tuple[LivePhone, LiveCaller]:
    """A live caller, answered by the server at ``address`` (reading its records in ``db``)."""
    phone = LivePhone()
    await phone.start()
    caller = phone.caller(dtmf=dtmf, records=CallRecords(db))
    host, port = address
    status = await caller.dial(f"sip:{number}@{host}:{port}", caller="+8613800000099",
                               headers=headers or [])  # fmt: skip
    assert status == 200, caller.call.progress if caller.call else status
    return phone, caller


def heard(caller: LiveCaller) -> list[str]:
    """The prompt ids of the caller's record."""
    return [e.data["prompt"] for e in caller.events if e.kind == "prompt"]


def recorded(caller: LiveCaller, kind: str, **data: object) -> bool:
    """True once the caller's record has an event of ``kind`` with ``data``."""
    return any(e.kind == kind and all(e.data.get(k) == v for k, v in data.items())
               for e in caller.events)  # fmt: skip


# --- key presses from real peers ------------------------------------------------------------------


@needs_sipp
def test_sipp_rfc2833_pcap_advances_the_bank_flow_and_gets_the_flows_bye(
    server: ServerThread, tmp_path: Path
) -> None:
    xml = SIPP_SCENARIOS / "uac_dtmf_server_hangs_up.xml"
    code, stats, errors = sipp(server.address, tmp_path, ["-sf", str(xml), "-s", "95588"])
    assert code == 0, errors
    assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("1", "0")
    call = next(c for c in calls(server.db) if c["caller"] == "sipp")
    got = events(server.db, call["call_id"])
    # The digit 1 pcap chose the language; the digit 0 pcap is the global "agent" key; the
    # pound pcap finished the recording (the recorder takes it: no input event).
    assert [data["value"] for kind, _, data in got if kind == "input"] == ["1"]
    assert [data["command"] for kind, _, data in got if kind == "global"] == ["0"]
    assert ("var_set", "choose_language", {"name": "lang", "value": "en", "flow": "bank-main"}) \
        in got  # fmt: skip
    # No agent queue on this server: the enqueue's no-agents exit leads to the voicemail; the
    # pound pcap ends the message, the flow says goodbye and hangs up: SIPp ends on that BYE.
    assert prompts(server.db, call["call_id"])[:4] == ["choose_language", "main_menu",
                                                       "agents_closed", "voicemail"]  # fmt: skip
    assert call["outcome"] == "callback" and call["last_node"] == "callback_goodbye"


@pytest.mark.parametrize("dtmf", ["info", "inband"])
def test_info_and_inband_keys_advance_the_bank_flow(server: ServerThread, dtmf: str) -> None:
    async def scenario() -> None:
        phone, caller = await dial(server.address, server.db, "95588", dtmf=dtmf, headers=AT)
        try:
            assert caller.call is not None and caller.call.media is not None
            negotiated = caller.call.media.dtmf_payload_type
            assert negotiated == (None if dtmf == "inband" else 101)
            await caller.wait_until(lambda: recorded(caller, "prompt", prompt="choose_language"), 5)
            caller.press("1")
            assert await caller.wait_until(lambda: recorded(caller, "prompt", prompt="main_menu"),
                                           10), caller.events  # fmt: skip
            assert recorded(caller, "input", mode="dtmf", value="1")
            assert recorded(caller, "var_set", name="lang", value="en")
            caller.hangup()
            assert await caller.wait_ended(5)
            assert await caller.wait_until(lambda: caller.call_ended_in_record, 5)
            assert recorded(caller, "call_end", outcome="abandoned")
        finally:
            await caller.close()
            await phone.close()

    run(scenario(), 40)


# --- the agent queue (none yet: the server releases a queued caller) ------------------------------


def test_a_caller_sent_to_a_queue_on_a_server_without_agents_takes_the_no_agents_exit(
    server: ServerThread,
) -> None:
    """This server has no agent queue configured: the bank flow's enqueue takes its
    ``on_no_agents`` exit at once (no hold message) and the record says why."""

    async def scenario() -> LiveCaller:
        phone, caller = await dial(server.address, server.db, "95588", headers=AT)
        try:
            assert await caller.wait_until(
                lambda: recorded(caller, "prompt", prompt="choose_language"), 5)
            caller.press("1")
            assert await caller.wait_until(lambda: recorded(caller, "prompt", prompt="main_menu"),
                                           10)  # fmt: skip
            caller.press("0")
            assert await caller.wait_until(
                lambda: recorded(caller, "prompt", prompt="agents_closed"), 10), caller.events
            caller.hangup()
            assert await caller.wait_ended(5)
            assert await caller.wait_until(lambda: caller.call_ended_in_record, 5)
        finally:
            await caller.close()
            await phone.close()
        return caller

    caller = run(scenario(), 40)
    got = events(server.db, caller.call_id)
    assert [(node, data["queue"]) for kind, node, data in got if kind == "queue"] == [
        ("general_queue", "general")]
    assert [data["reason"] for kind, _, data in got if kind == "queue_exit"] == ["no_queue"]
    assert "general_queue" not in prompts(server.db, caller.call_id)  # no hold message
    record = ended_call(server.db, caller.call_id)
    assert record is not None
    assert (record["queue"], record["queue_exit"], record["outcome"]) == (
        "general", "no_queue", "abandoned")


# --- baresip --------------------------------------------------------------------------------------


@needs_baresip
def test_baresip_completes_a_menu_with_dtmf(server: ServerThread, tmp_path: Path) -> None:
    host, port = server.address
    phone = Baresip(tmp_path / "baresip", f"sip:7001@{host}:{port}", seconds=20)
    try:
        phone.wait_log("Call established", 10)
        call_id = wait_for(lambda: next((c["call_id"] for c in calls(server.db)
                                         if c["flow"] == "e2e-menu"), None), 5)  # fmt: skip
        wait_for(lambda: "menu" in prompts(server.db, call_id), 5)
        phone.keys("1")
        log = phone.wait_log("terminated", 15)
    finally:
        phone.stop()
    assert "send DTMF digit: '1'" in log
    record = wait_for(lambda: ended_call(server.db, call_id), 5)
    assert record["caller"] == "baresip" and record["outcome"] == "self_service"
    assert prompts(server.db, call_id) == ["menu", "news"]
    assert ("input", "menu", "1") in [(k, n, d.get("value")) for k, n, d in
                                       events(server.db, call_id)]  # fmt: skip


@needs_baresip
def test_a_transfer_node_refers_baresip_which_calls_the_target(
    server: ServerThread, tmp_path: Path
) -> None:
    host, port = server.address
    phone = Baresip(tmp_path / "baresip", f"sip:7002@{host}:{port}", seconds=20)
    try:
        phone.wait_log("Call established", 10)
        first = wait_for(lambda: next((c for c in calls(server.db)
                                       if c["flow"] == "e2e-transfer"), None), 5)  # fmt: skip
        # The REFER's target is this server's menu: baresip places that call itself.
        second = wait_for(lambda: next((c for c in calls(server.db)
                                        if c["flow"] == "e2e-menu" and c["caller"] == "baresip"
                                        and c["started_at"] > first["started_at"]), None),
                          15)  # fmt: skip
        done = wait_for(lambda: ended_call(server.db, first["call_id"]), 15)
        # After the transfer the server ends the first call (BYE) when baresip does not.
        log = phone.wait_log(f"Call with sip:7002@{host}:{port} terminated", 10)
    finally:
        phone.stop()
    transfer = [d for k, _, d in events(server.db, first["call_id"]) if k == "transfer"]
    assert transfer and transfer[0]["target"] == f"sip:7001@127.0.0.1:{port}"
    assert transfer[0]["ok"] is True and done["outcome"] == "transferred"
    # baresip's own account of the REFER it took
    sip_call_id = next(d["sip_call_id"] for k, _, d in events(server.db, first["call_id"])
                       if k == "call_start")  # fmt: skip
    assert f"transferring call {sip_call_id} to '<sip:7001@127.0.0.1:{port}>'" in log
    assert second["called"] == "7001"


# --- robustness -----------------------------------------------------------------------------------


def test_rfc4475_torture_messages_against_the_full_server_then_a_call_works(
    bank_api: str, prompts_dir: Path, tmp_path: Path
) -> None:
    messages = {p.name: to_loopback(p.read_bytes()) for p in sorted(TORTURE.glob("*.dat"))}
    port = free_port()
    config = write_config(tmp_path, bank_flows(tmp_path / "flows", port), prompts_dir, port=port)
    # Short SIP timers: the INVITEs answered 200 are never ACKed; the server gives up on them
    # (BYE) in 64*T1, and its drain waits for that.
    options = ServeOptions(test_headers=True, port=port, rtp_ports=(29000, 29999), drain_timeout=1,
                           sip_timers=FAST)  # fmt: skip
    thread = ServerThread(config, options).start()
    _host, socks = _bind_sender({_reply_port(data) for data in messages.values()})

    async def scenario() -> dict[str, int | None]:
        loop = asyncio.get_running_loop()
        got: dict[str, int | None] = {}
        for name, data in messages.items():
            await loop.sock_sendto(socks[5060], data, thread.address)
            got[name] = await _final_status(socks[_reply_port(data)], data,
                                            EXPECTED[name] is None)  # fmt: skip
        return got

    async def normal_call() -> LiveCaller:
        phone, caller = await dial(thread.address, thread.db, "95588")
        try:
            assert await caller.wait_until(
                lambda: recorded(caller, "prompt", prompt="choose_language"), 5)  # fmt: skip
            caller.hangup()
            assert await caller.wait_until(lambda: caller.call_ended_in_record, 5)
        finally:
            await caller.close()
            await phone.close()
        return caller

    try:
        got = run(scenario(), 90)
        caller = run(normal_call(), 30)
    finally:
        for sock in socks.values():
            sock.close()
        thread.stop()
    assert got == EXPECTED
    assert ended_call(config.store_path, caller.call_id)["outcome"] == "abandoned"


@needs_sipp
def test_overload_five_calls_answered_three_get_503_with_retry_after(
    bank_api: str, prompts_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    flows = bank_flows(tmp_path / "flows", port)
    config = write_config(tmp_path, flows, prompts_dir, port=port)
    busy = ServerThread(config, ServeOptions(test_headers=True, port=port, rtp_ports=(26000, 26999),
                                             max_calls=5)).start()  # fmt: skip
    try:
        xml = SIPP_SCENARIOS / "uac_busy_or_answered.xml"
        code, stats, errors = sipp(busy.address, tmp_path, ["-sf", str(xml), "-s", "95588",
                                                            "-trace_counts", "-trace_logs"],
                                   calls=8, limit=8, rate=100)  # fmt: skip
        refused = busy.read(lambda s: s.ua.invites.refused)
    finally:
        busy.stop()
    assert code == 0, errors  # every call went one of the two ways
    assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("8", "0")
    assert _sipp_counts(tmp_path) == {"INVITE 200": 5, "INVITE 503": 3}
    logged = next(tmp_path.glob("*_logs.log")).read_text()
    assert logged.count("503 Retry-After 30") == 3  # SIPp read each 503's Retry-After
    assert refused == 3
    assert len(calls(config.store_path)) == 5
    with sqlite3.connect(config.store_path) as conn:  # offered but refused: the answer rate's
        assert conn.execute("SELECT status, reason, count(*) FROM refused GROUP BY 1, 2"
                            ).fetchall() == [(503, "full", 3)]  # fmt: skip


def _sipp_counts(folder: Path) -> dict[str, int]:
    """The INVITE's 200 and 503 SIPp received, from its -trace_counts file (last row)."""
    path = next(folder.glob("*_counts.csv"))
    header, *rows = [line.rstrip(";").split(";") for line in path.read_text().splitlines()]
    last = dict(zip(header, rows[-1], strict=True))
    first = {status: next(n for n in header if n.endswith(f"_{status}_Recv"))
             for status in ("200", "503")}  # the first 200 answers the INVITE, not the BYE
    return {f"INVITE {status}": int(last[name]) for status, name in first.items()}


# --- reload and drain -----------------------------------------------------------------------------

RELOAD_FLOW = """\
flow: e2e-reload
languages: [en]
start: menu
nodes:
  menu:
    menu:
      prompt: "Press 1."
      choices: {{"1": {done}}}
      timeout: 10
      no_input: {{after: 2, goto: {done}}}
      no_match: {{goto: {done}}}
  {done}:
    hangup: {{prompt: "{text}"}}
"""


def test_reload_keeps_running_calls_on_their_version_and_refuses_a_broken_edit(
    prompts_dir: Path, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    flow_file = flows / "e2e-reload.yaml"
    flow_file.write_text(RELOAD_FLOW.format(done="first_done", text="Version one."))
    port = free_port()
    config = write_config(tmp_path, flows, prompts_dir, port=port,
                          numbers={"default": "e2e-reload"})  # fmt: skip
    options = ServeOptions(test_headers=True, port=port, rtp_ports=(27000, 27999),
                           watch_interval=0.1)  # fmt: skip
    thread = ServerThread(config, options).start()
    refused: list[str] = []
    handler = _ListHandler(refused)
    logging.getLogger("ivr.host").addHandler(handler)
    version = lambda: thread.read(lambda s: s.host.registry.current.version)  # noqa: E731

    async def scenario() -> None:
        v1 = version()
        phone_a, a = await dial(thread.address, thread.db, "7100")
        assert await a.wait_until(lambda: recorded(a, "prompt", prompt="menu"), 5)
        flow_file.write_text(RELOAD_FLOW.format(done="second_done", text="Version two."))
        v2 = await async_wait_for(lambda: version() != v1 and version(), 10)
        phone_b, b = await dial(thread.address, thread.db, "7100")
        for caller in (a, b):  # each call answers the key with its own version's node
            assert await caller.wait_until(lambda c=caller: not c.busy, 10)
            caller.press("1")
        assert await a.wait_until(lambda: a.call_ended_in_record, 10)
        assert await b.wait_until(lambda: b.call_ended_in_record, 10)
        assert heard(a) == ["menu", "first_done"]
        assert heard(b) == ["menu", "second_done"]
        assert a.events[0].data["flow_version"] != b.events[0].data["flow_version"]
        # A broken edit: refused and logged; the version stays, calls go on with it.
        flow_file.write_text(RELOAD_FLOW.format(done="second_done", text="Broken.").replace(
            '"1": second_done', '"1": nowhere'))  # fmt: skip
        await async_wait_for(lambda: refused, 10)
        assert version() == v2
        phone_c, c = await dial(thread.address, thread.db, "7100")
        assert await c.wait_until(lambda: not c.busy and recorded(c, "prompt", prompt="menu"), 10)
        c.press("1")
        assert await c.wait_until(lambda: c.call_ended_in_record, 10)
        assert heard(c) == ["menu", "second_done"]
        for phone, caller in ((phone_a, a), (phone_b, b), (phone_c, c)):
            await caller.close()
            await phone.close()

    try:
        run(scenario(), 60)
    finally:
        logging.getLogger("ivr.host").removeHandler(handler)
        thread.stop()
    assert "nowhere" in refused[0]


class _ListHandler(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        if "refused" in record.getMessage():
            self.into.append(record.getMessage())


def test_sigterm_drains_refuses_new_calls_ends_the_call_and_exits_0(
    bank_api: str, prompts_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    flows = bank_flows(tmp_path / "flows", port)
    config = write_config(tmp_path, flows, prompts_dir, port=port, drain_timeout=1,
                          rtp_ports="28000-28999")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr", "-c", str(tmp_path / "ivr.yaml"), "--log-level", "info",
         "--log-file", str(tmp_path / "serve.log"), "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert b"answering SIP" in proc.stdout.readline(), proc.stderr.read() if proc.stderr else ""
        address = ("127.0.0.1", port)

        async def scenario() -> tuple[int, LiveCaller]:
            phone, caller = await dial(address, config.store_path, "95588", headers=AT)
            await caller.wait_until(lambda: recorded(caller, "prompt", prompt="choose_language"),
                                    5)  # fmt: skip
            proc.send_signal(signal.SIGTERM)
            assert proc.stdout is not None
            line = await asyncio.to_thread(proc.stdout.readline)
            assert b"draining" in line
            late = phone.caller(records=None)
            status = await late.dial(f"sip:95588@127.0.0.1:{port}")
            assert await caller.wait_ended(10)  # hung up by the server at the drain timeout
            await caller.wait_until(lambda: caller.call_ended_in_record, 5)
            await late.close()
            await caller.close()
            await phone.close()
            return status, caller

        status, caller = run(scenario(), 40)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert status == 503
    assert caller.call is not None and caller.call.end_reason == "remote bye"
    record = ended_call(config.store_path, caller.call_id)
    assert record is not None and record["outcome"] == "failed"
    kinds = [(kind, data.get("by")) for kind, _, data in events(config.store_path, caller.call_id)]
    assert ("hangup", "flow") in kinds and ("error", None) in kinds


# --- the scripted caller and live call scripts ----------------------------------------------------


def test_ivr_call_presses_after_the_prompt_and_reports_what_it_heard(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = server.address
    config = str(server.config.root / "ivr.yaml")
    code = main(["-c", config, "call", f"sip:7001@{host}:{port}", "--digits", "1",
                 "--hangup-after", "20"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "200 OK (PCMU, telephone-event 101)" in out
    lines = out.splitlines()
    menu = next(line for line in lines if "prompt menu" in line)
    news = next(line for line in lines if "prompt news" in line)
    assert "audio" in menu and "'Press 1 for news.'" in menu
    sent = next(line for line in lines if "sent dtmf 1" in line)
    # The key went after the menu prompt's audio had ended (and before the next prompt).
    assert _times(menu)[-1] < float(sent.split()[0]) <= float(news.split()[0])
    assert "ended: remote bye; outcome self_service" in out


def _times(line: str) -> list[float]:
    """The first audio span of a prompt's row (the prompt's own audio: on a loaded machine the
    next prompt's audio can be listed in the same row, the record's clock being a little off
    the caller's)."""
    span = line.split("[audio ")[1].split(" s")[0]
    return [float(x) for x in span.split("-")]


def test_ivr_call_says_text_as_audio(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = server.address
    config = str(server.config.root / "ivr.yaml")
    code = main(["-c", config, "call", f"sip:7001@{host}:{port}", "--say", "news please",
                 "--hangup-after", "20"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sent speech news please" in out
    assert "prompt no_news" in out  # speech is not a key: the menu timed out


def test_live_bank_scripts_pass_over_sip_and_speech_scripts_are_skipped(
    server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = server.address
    config = str(server.config.root / "ivr.yaml")
    scripts = REPO / "tests" / "scripts"
    names = ["card_block_fraud_desk.yaml", "balance_en.yaml", "balance_zh_speech.yaml",
             "queue_agent_then_survey.yaml", "verify_spoken_agent.yaml"]
    junit = tmp_path / "live.xml"
    code = main(["-c", config, "test", "--live", f"sip:{host}:{port}", "--barge-in", "-j", "4",
                 "--junit", str(junit), *(str(scripts / n) for n in names)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 passed, 0 failed, 3 skipped" in out
    assert "SKIP " in out and "speech input is not supported live" in out
    assert "simulated agents (agents:) answer on the virtual clock only" in out
    assert "not checked: variables are not in the call record" in out
    assert "<skipped" in junit.read_text()
    transferred = [c for c in calls(server.db) if c["outcome"] == "transferred"]
    assert any(c["caller"] == "+8613800000006" for c in transferred)  # card_block_fraud_desk
    # Live QA calls (X-Ivr-Qa on a test_headers server) are marked: reports leave them out.
    assert all(c["qa"] == 1 for c in calls(server.db) if c["caller"] == "+8613800000006")


def test_live_script_waits_for_the_prompt_to_end_before_pressing(
    server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "news.yaml"
    script.write_text("call: e2e-menu\ncaller: {number: '+8613800000077', called: '7001'}\n"
                      "steps:\n  - expect: menu\n  - press: '1'\n  - expect: news\n"
                      "  - expect_hangup\noutcome: self_service\n")  # fmt: skip
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("call: e2e-menu\ncaller: {called: '7001'}\nsteps:\n  - expect: menu\n"
                     "  - press: '1'\n  - expect: no_news\n")  # fmt: skip
    host, port = server.address
    config = str(server.config.root / "ivr.yaml")
    code = main(["-c", config, "test", "--live", f"sip:{host}:{port}", "-j", "2",
                 str(script), str(wrong)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1, out
    assert "PASS news" in out
    assert "FAIL" in out and "expected prompt 'no_news', got 'news'" in out
    call = next(c for c in calls(server.db) if c["caller"] == "+8613800000077")
    got = events(server.db, call["call_id"])
    assert [d["prompt"] for k, _, d in got if k == "prompt"] == ["menu", "news"]
    # Pressed once the menu prompt had played out (no barge-in): the key came after its audio.
    with sqlite3.connect(server.db) as conn:
        (prompt_t,), (input_t,) = (conn.execute(
            "SELECT t FROM events WHERE call_id = ? AND kind = ? ORDER BY seq LIMIT 1",
            (call["call_id"], kind)).fetchone() for kind in ("prompt", "input"))  # fmt: skip
    audio = PromptCache(server.config.prompts_dir).cached("Press 1 for news.", "en")
    assert audio is not None
    with wave.open(str(audio)) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    assert input_t > prompt_t + seconds


def test_live_mode_needs_a_sip_uri_and_the_servers_records(
    server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(server.config.root / "ivr.yaml")
    assert main(["-c", config, "test", "--live", "http://x", "tests/scripts"]) == 2
    assert "not a SIP URI" in capsys.readouterr().err
    script = tmp_path / "menu.yaml"
    script.write_text("call: e2e-menu\ncaller: {called: '7001'}\nsteps:\n  - expect: menu\n")
    host, port = server.address
    code = main(["-c", config, "test", "--live", f"sip:{host}:{port}", "--db",
                 str(tmp_path / "elsewhere.db"), str(script)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "its record cannot be read" in out and "no call store at" in out
