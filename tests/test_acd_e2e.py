"""The agent queue end to end over real SIP: ``ivr serve`` with ivr.yaml ``acd:``, agents that are
baresip softphones registering with digest and answering by themselves, callers placing real
calls (the live QA caller) with real RTP.

Each agent plays its own tone (baresip's sine source) and records what it receives (baresip's
sndfile module), so audio is checked at both ends: the caller hears the agent's tone, the agent
receives the caller's. Verdicts come from the call records, the audio and baresip's logs, never
from how long something took.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from media_helpers import dominant_frequency
from serve_helpers import (
    Baresip,
    ServerThread,
    calls,
    events,
    free_port,
    record_id,
    wait_for,
)
from sip_phone import run

from ivr.acd import wire
from ivr.acd.model import AgentState
from ivr.config import load_config
from ivr.serve.server import ServeOptions
from ivr.sim.live_call import LiveCaller, LivePhone
from ivr.sim.records import CallRecords

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("baresip_program")]

FLOW = """\
flow: acd-e2e
languages: [en]
start: route
nodes:
  route:
    branch:
      when:
        - {if: "call.called == '7302'", goto: accounts}
        - {if: "call.caller == '+861000'", goto: corporate}
      else: retail
  retail:
    enqueue:
      queue: line
      priority: 5
      prompt: "Please hold."
      keys: {"1": callback}
      on_no_agents: closed
  corporate:
    enqueue: {queue: line, priority: 9, prompt: "Please hold.", on_no_agents: closed}
  accounts:
    enqueue: {queue: line, priority: 5, tier: accounts, prompt: "Please hold.",
              on_no_agents: closed}
  closed:
    hangup: {prompt: "Nobody is here.", outcome: failed}
"""
# agent id -> (SIP user, the tone it plays, tier, answers by itself)
AGENTS = {"gina": ("2001", 440, "general", True), "ann": ("2002", 660, "accounts", True),
          "ned": ("2003", 880, "full", False)}  # fmt: skip
class Agent(Baresip):
    """A baresip softphone registered to the server as an agent (no password: a phone that
    does not register, e.g. the caller's own phone for a callback), playing ``tone`` and
    recording what it receives."""

    def __init__(self, home: Path, user: str, password: str, tone: int, server_port: int,
                 auto: bool, sip_port: int | None = None) -> None:  # fmt: skip
        account = (f"<sip:{user}@127.0.0.1>;regint=0" if not password else
                   f"<sip:{user}@127.0.0.1:{server_port}>;auth_pass={password};regint=60")
        answer = "auto" if auto else "manual"
        super().__init__(home, None, 200, f"{account};answermode={answer}", tone=tone,
                         record=True, sip_port=sip_port)  # fmt: skip


CUSTOMER = "+8613800000009"  # a caller who asks to be called back; their phone: a baresip


@dataclass
class Centre:
    server: ServerThread
    customer_port: int
    agents: dict[str, Agent] = field(default_factory=dict)

    def state(self, agent: str) -> AgentState:
        return self.server.read(lambda s: s.host.acd.authority.agents[agent].state)  # type: ignore[union-attr]

    def act(self, action: str, agent: str, *args: str) -> None:
        self.server.read(lambda s: getattr(s.host.acd.authority, action)(agent, *args))  # type: ignore[union-attr]

    def registered(self, agent: str) -> bool:
        return self.server.read(
            lambda s: s.host.acd.authority.agents[agent].contact is not None)  # type: ignore[union-attr]


def write_project(root: Path, port: int, customer_port: int = 5999) -> Path:
    (root / "flows").mkdir()
    (root / "flows" / "acd-e2e.yaml").write_text(FLOW, encoding="utf-8")
    (root / "prompts").mkdir()
    agents = {agent: {"username": user, "password": f"pw-{user}", "skills": ["general"],
                      "tier": tier, "wrap_up": 1, "max_misses": 5}
              for agent, (user, _tone, tier, _auto) in AGENTS.items()}  # fmt: skip
    data = {
        "flows_dir": "flows", "prompts_dir": "prompts", "store": {"path": "calls.db"},
        "languages": ["en"], "numbers": {"default": "acd-e2e"},
        "sip": {"listen": f"127.0.0.1:{port}", "rtp_ports": "43000-43999"},
        "asr": {"backend": "off"},
        "acd": {"agents": agents,
                "queues": {"line": {"ring_timeout": 4, "retry_delay": 1}},
                "callback": {"trunk": f"sip:{{number}}@127.0.0.1:{customer_port}",
                             "ring_timeout": 10, "retries": 0}},
    }  # fmt: skip
    (root / "ivr.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return root / "ivr.yaml"


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    root = tmp_path_factory.mktemp("acd")
    port, customer_port = free_port(), free_port()
    config = load_config(write_project(root, port, customer_port))
    sip = config.sip
    server = ServerThread(config, ServeOptions(host=sip.host, port=sip.port,
                                               rtp_ports=sip.rtp_ports)).start()  # fmt: skip
    centre = Centre(server, customer_port)
    try:
        for agent, (user, tone, _tier, auto) in AGENTS.items():
            centre.agents[agent] = Agent(root / agent, user, f"pw-{user}", tone, port, auto)
        for agent in AGENTS:
            wait_for(lambda a=agent: centre.registered(a), 15)  # type: ignore[misc]
        yield centre
    finally:
        for phone in centre.agents.values():
            phone.stop()
        server.stop()


async def dial(centre: Centre, number: str, caller: str) -> tuple[LivePhone, LiveCaller,
                                                                   list[np.ndarray]]:  # fmt: skip
    phone = LivePhone()
    await phone.start()
    live = phone.caller(records=CallRecords(centre.server.db))
    host, port = centre.server.address
    assert await live.dial(f"sip:{number}@{host}:{port}", caller=caller) == 200
    heard: list[np.ndarray] = []
    assert live.stream is not None
    monitor = live.stream.on_audio
    live.stream.on_audio = lambda frame: (heard.append(frame), monitor(frame))  # type: ignore[func-returns-value, misc]
    return phone, live, heard


def tone_of(frames: list[np.ndarray]) -> float:
    return dominant_frequency(np.concatenate(frames[-50:]).astype(np.float64))


def test_a_caller_is_bridged_to_an_agent_and_audio_flows_both_ways(centre: Centre) -> None:
    for agent in AGENTS:
        centre.act("login", agent)
    centre.act("pause", "ann", "training")
    centre.act("pause", "ned", "training")

    async def scenario() -> str:
        phone, caller, heard = await dial(centre, "7301", "+8613800000001")
        try:
            assert await caller.wait_until(
                lambda: any(e.kind == "agent_connected" for e in caller.events), 30), caller.events
            caller.say(np.asarray(0.3 * 32767 * np.sin(2 * np.pi * 1000 * np.arange(16000)
                                                       / 8000), dtype=np.int16))  # fmt: skip
            await asyncio.sleep(2.5)
            assert tone_of(heard) == pytest.approx(440, abs=15)  # gina's tone reaches the caller
            caller.hangup()
            assert await caller.wait_until(lambda: caller.call_ended_in_record, 10)
            return caller.call_id
        finally:
            await caller.close()
            await phone.close()

    call_id = run(scenario(), 90)
    gina = centre.agents["gina"]
    assert wait_for(lambda: gina.received_tone(), 10) == pytest.approx(1000, abs=15)
    key = record_id(centre.server.db, call_id)
    record = next(c for c in calls(centre.server.db) if c["call_id"] == key)
    assert (record["agent"], record["outcome"], record["queue"]) == ("gina", "agent", "line")
    assert record["answered_at"] is not None and record["talk_time"] > 0
    assert wait_for(lambda: centre.state("gina") == AgentState.AVAILABLE, 10)


def test_account_work_never_rings_a_general_agent_and_a_silent_agent_is_skipped(
    centre: Centre,
) -> None:
    """A caller needing the accounts tier: gina (general) is free but never rung; ned (full)
    rings first but never answers: skipped after the ring timeout, the caller keeps their
    place, and ann (accounts) takes the call."""
    for agent in AGENTS:
        centre.act("login", agent)
    centre.act("resume", "ned")
    centre.act("pause", "ann", "coffee")

    async def scenario() -> str:
        phone, caller, heard = await dial(centre, "7302", "+8613800000002")
        try:
            assert await caller.wait_until(
                lambda: any(e.kind == "agent_result" for e in caller.events), 30), caller.events
            centre.act("resume", "ann")
            assert await caller.wait_until(
                lambda: any(e.kind == "agent_connected" for e in caller.events), 30), caller.events
            await asyncio.sleep(1.5)
            assert tone_of(heard) == pytest.approx(660, abs=15)  # ann's tone
            caller.hangup()
            assert await caller.wait_until(lambda: caller.call_ended_in_record, 10)
            return caller.call_id
        finally:
            await caller.close()
            await phone.close()

    call_id = run(scenario(), 90)
    got = events(centre.server.db, call_id)
    rung = [data["agent"] for kind, _, data in got if kind == "agent_ring"]
    assert "gina" not in rung and rung[0] == "ned" and rung[-1] == "ann"
    missed = [(d["agent"], d["outcome"]) for kind, _, d in got if kind == "agent_result"]
    assert missed[0] == ("ned", "no_answer")
    assert "Incoming call from" in centre.agents["ned"].log  # it really rang


def test_a_corporate_caller_overtakes_retail_callers_and_a_caller_who_gives_up_is_abandoned(
    centre: Centre,
) -> None:
    for agent in AGENTS:
        centre.act("login", agent)
        centre.act("pause", agent, "meeting")

    async def scenario() -> tuple[str, str, str]:
        legs = []
        try:
            for caller_id in ("+8613800000011", "+8613800000012", "+861000"):
                phone, caller, _heard = await dial(centre, "7301", caller_id)
                legs.append((phone, caller))
                assert await caller.wait_until(
                    lambda c=caller: any(e.kind == "queue" for e in c.events), 10)  # type: ignore[misc]
            (_, first), (_, second), (_, corporate) = legs
            centre.act("resume", "gina")  # one agent free: who waited longest is not who is next
            assert await corporate.wait_until(
                lambda: any(e.kind == "agent_connected" for e in corporate.events), 30)
            await asyncio.sleep(1.0)
            assert not any(e.kind == "agent_ring" for e in first.events + second.events)
            first.hangup()  # gives up
            assert await first.wait_until(lambda: first.call_ended_in_record, 10)
            for _, caller in legs[1:]:
                caller.hangup()
                assert await caller.wait_until(lambda c=caller: c.call_ended_in_record, 10)  # type: ignore[misc]
            return first.call_id, second.call_id, corporate.call_id
        finally:
            for phone, caller in legs:
                await caller.close()
                await phone.close()

    first, _second, corporate = run(scenario(), 120)
    records = {c["call_id"]: c for c in calls(centre.server.db)}
    corporate_record = records[record_id(centre.server.db, corporate)]
    assert corporate_record["agent"] == "gina" and corporate_record["outcome"] == "agent"
    gave_up = records[record_id(centre.server.db, first)]
    assert (gave_up["outcome"], gave_up["abandoned_in_queue"]) == ("abandoned_in_queue", 1)
    got = events(centre.server.db, first)
    joined = next(d for kind, _, d in got if kind == "queue")
    hangup = next(d for kind, _, d in got if kind == "hangup")
    assert hangup["by"] == "caller" and hangup["queue_wait"] == gave_up["queue_wait"]
    assert gave_up["queue_wait"] > 1.0 and joined["queue"] == "line"


def test_a_callback_keeps_the_place_and_connects_agent_and_caller(centre: Centre,
                                                                 tmp_path: Path) -> None:
    """The caller presses 1, hears they will be called back and hangs up; their place is kept;
    when gina is free the server calls her, then the caller's number through the trunk (a
    baresip answering as the caller's phone), and bridges them: audio both ways."""
    for agent in AGENTS:
        centre.act("login", agent)
        centre.act("pause", agent, "meeting")
    phone_home = Agent(tmp_path / "customer", CUSTOMER, "", 550, 0, True,
                       sip_port=centre.customer_port)  # fmt: skip
    db = centre.server.db
    try:
        call_id = record_id(db, run(ask_for_callback(centre.server.address[1], db), 60))
        record = next(c for c in calls(centre.server.db) if c["call_id"] == call_id)
        assert record["outcome"] == "callback_requested"
        assert centre.server.read(lambda s: call_id in s.host.acd.authority.waiting)  # type: ignore[union-attr]
        centre.act("resume", "gina")
        wait_for(lambda: "Call established" in phone_home.log, 30)  # the caller's phone answered
        wait_for(lambda: centre.state("gina") == AgentState.ON_CALL, 10)
        time.sleep(2.0)  # the two talk
    finally:
        phone_home.stop()  # the caller's phone hangs up: the bridged callback ends
    done = wait_for(lambda: next((c for c in calls(centre.server.db)
                                  if c["call_id"] == f"{call_id}~cb1" and c["outcome"]), None),
                    15)  # fmt: skip
    assert (done["outcome"], done["agent"], done["caller"]) == ("callback_done", "gina", CUSTOMER)
    assert done["talk_time"] > 0
    # audio both ways: gina's tone on the caller's phone, the caller's on gina's
    assert wait_for(lambda: phone_home.received_tone(), 10) == pytest.approx(440, abs=15)
    gina = centre.agents["gina"]
    assert wait_for(lambda: gina.received_tone(), 10) == pytest.approx(550, abs=15)


def test_with_two_workers_callers_and_agents_on_different_processes_meet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ivr serve --workers 2``: the supervisor holds the queue authority; each worker reaches
    it over the control socket. Agents are logged in with ``ivr agents``; calls are placed until
    one lands on the worker that did not take the agent's REGISTER, and it is bridged all the
    same."""
    from ivr.cli.main import main
    from ivr.sip.affinity import owner_of

    port = free_port()
    config_path = write_project(tmp_path, port)
    log_file = tmp_path / "serve.log"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr", "-c", str(config_path), "--log-level", "info",
         "--log-file", str(log_file), "serve", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)  # fmt: skip
    agents: list[Agent] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"with 2 worker processes" in line, proc.stderr.read() if proc.stderr else line
        user, tone, _tier, _auto = AGENTS["gina"]
        agents.append(Agent(tmp_path / "gina", user, f"pw-{user}", tone, port, True))
        registered = wait_for(lambda: re.findall(r" (w[01]) INFO ivr\.acd: call -: agent gina "
                                                 r"registered", log_file.read_text()), 15)
        home = registered[0]
        assert main(["-c", str(config_path), "agents", "login", "gina"]) == 0
        capsys.readouterr()
        server = type("S", (), {"address": ("127.0.0.1", port), "db": tmp_path / "calls.db"})

        async def one_call(n: int) -> tuple[str, float]:
            phone = LivePhone()
            await phone.start()
            caller = phone.caller(records=CallRecords(server.db))  # type: ignore[attr-defined]
            try:
                assert await caller.dial(f"sip:7301@127.0.0.1:{port}", caller=f"+86138{n:08d}") \
                    == 200
                heard: list[np.ndarray] = []
                assert caller.stream is not None
                monitor = caller.stream.on_audio
                caller.stream.on_audio = lambda f: (heard.append(f), monitor(f))  # type: ignore[func-returns-value, misc]
                assert await caller.wait_until(
                    lambda: any(e.kind == "agent_connected" for e in caller.events), 30)
                await asyncio.sleep(1.5)
                assert main(["-c", str(config_path), "agents", "list", "--json"]) == 0
                listed = json.loads(capsys.readouterr().out)
                [gina] = [a for a in listed["agents"] if a["id"] == "gina"]
                assert gina["state"] == "on_call"
                tone_heard = tone_of(heard)
                caller.hangup()
                assert await caller.wait_until(lambda: caller.call_ended_in_record, 10)
                return caller.call_id, tone_heard
            finally:
                await caller.close()
                await phone.close()

        def gina_state() -> str:
            assert main(["-c", str(config_path), "agents", "list", "--json"]) == 0
            listed = json.loads(capsys.readouterr().out)["agents"]
            return str(next(a["state"] for a in listed if a["id"] == "gina"))

        crossed = None
        for n in range(10):
            call_id, tone_heard = run(one_call(n), 60)
            assert tone_heard == pytest.approx(440, abs=15)
            wait_for(lambda: gina_state() == "available", 10)  # after her wrap-up
            if f"w{owner_of(call_id.encode(), 2)}" != home:
                crossed = call_id
                break
        assert crossed is not None, "no call landed on the other worker in 10 tries"
        key = record_id(tmp_path / "calls.db", crossed)
        record = next(c for c in calls(tmp_path / "calls.db") if c["call_id"] == key)
        assert (record["agent"], record["outcome"]) == ("gina", "agent")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        for phone in agents:
            phone.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@dataclass
class Workers:
    """``ivr serve --workers 2`` in a process of its own, gina's softphone registered to it."""

    proc: subprocess.Popen[bytes]
    root: Path
    port: int
    customer_port: int
    log_file: Path
    control: Path
    gina: Agent

    def agents(self, action: str, agent: str = "gina") -> dict[str, object]:
        """``ivr agents ACTION AGENT`` over the control socket: the agent's status."""
        answer = wire.request(self.control, wire.message("agents", action=action, agent=agent))
        assert answer["op"] == "agents", answer
        if action == "list":
            return dict(next(a for a in answer["agents"] if a["id"] == agent))
        return dict(answer["agent"])

    def waiting(self) -> int:
        status = wire.request(self.control, wire.message("status"))
        return int(next(q["waiting"] for q in status["queues"] if q["name"] == "line"))

    def pid_of(self, worker: int) -> int:
        """The process of worker ``worker`` (the last one connected with that number)."""
        found = re.findall(rf"worker {worker} \(pid (\d+)\): connected", self.log_file.read_text())
        return int(found[-1])


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    root = tmp_path_factory.mktemp("acdw")
    port, customer_port = free_port(), free_port()
    config_path = write_project(root, port, customer_port)
    config = load_config(config_path)
    assert config.acd is not None
    log_file = root / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr", "-c", str(config_path), "--log-level", "info",
         "--log-file", str(log_file), "serve", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root)  # fmt: skip
    gina = None
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"with 2 worker processes" in line, proc.stderr.read() if proc.stderr else line
        user, tone, _tier, _auto = AGENTS["gina"]
        gina = Agent(root / "gina", user, f"pw-{user}", tone, port, True)
        wait_for(lambda: "agent gina registered" in log_file.read_text(), 15)
        yield Workers(proc, root, port, customer_port, log_file, Path(config.acd.control), gina)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if gina is not None:
            gina.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


async def ask_for_callback(port: int, db: Path) -> str:
    """A caller dials in, presses 1 for a callback and hangs up: their SIP Call-ID."""
    phone = LivePhone()
    await phone.start()
    caller = phone.caller(records=CallRecords(db))
    try:
        assert await caller.dial(f"sip:7301@127.0.0.1:{port}", caller=CUSTOMER) == 200
        assert await caller.wait_until(lambda: any(e.kind == "queue" for e in caller.events), 10)
        caller.press("1")
        assert await caller.wait_until(lambda: caller.call_ended_in_record, 20)
        return caller.call_id
    finally:
        await caller.close()
        await phone.close()


def called_back(workers: Workers, call_id: str, phone_home: Agent) -> dict[str, object]:
    """Gina is made free; the callback reaches her, then the caller's phone; they talk; the
    caller's phone hangs up. The callback's record, once written."""
    try:
        assert workers.agents("resume")["state"] in ("available", "ringing", "on_call")
        wait_for(lambda: "Call established" in phone_home.log, 30)  # the caller's phone answered
        wait_for(lambda: workers.agents("list")["state"] == "on_call", 10)
        time.sleep(2.0)  # the two talk
    finally:
        phone_home.stop()  # the caller's phone hangs up: the bridged callback ends
    db = workers.root / "calls.db"
    record: dict[str, object] = wait_for(
        lambda: next((c for c in calls(db) if c["call_id"] == f"{call_id}~cb1" and c["outcome"]),
                     None), 15)  # fmt: skip
    return record


def test_with_two_workers_a_callback_keeps_the_place_and_connects_agent_and_caller(
    workers: Workers, tmp_path: Path
) -> None:
    """``ivr serve --workers 2``: the caller presses 1 on whichever worker took the call and
    hangs up; the supervisor's authority keeps the place; when gina is free a worker calls her,
    then the caller's number through the trunk, and bridges them: audio both ways."""
    assert workers.agents("login")["state"] in ("available", "paused")
    assert workers.agents("pause")["state"] == "paused"
    db = workers.root / "calls.db"
    call_id = record_id(db, run(ask_for_callback(workers.port, db), 60))
    record = next(c for c in calls(db) if c["call_id"] == call_id)
    assert record["outcome"] == "callback_requested"
    assert workers.waiting() == 1  # the place is kept, nobody on the line
    phone_home = Agent(tmp_path / "customer", CUSTOMER, "", 550, 0, True,
                       sip_port=workers.customer_port)  # fmt: skip
    done = called_back(workers, call_id, phone_home)
    assert (done["outcome"], done["agent"], done["caller"]) == ("callback_done", "gina", CUSTOMER)
    assert float(done["talk_time"]) > 0  # type: ignore[arg-type]
    assert wait_for(lambda: phone_home.received_tone(), 10) == pytest.approx(440, abs=15)
    assert wait_for(lambda: workers.gina.received_tone(), 10) == pytest.approx(550, abs=15)
    assert workers.waiting() == 0


def test_with_two_workers_a_callback_outlives_the_worker_that_took_the_call(
    workers: Workers, tmp_path: Path
) -> None:
    """The worker that took the caller's call is killed while the callback waits: the other
    worker places it all the same."""
    from ivr.sip.affinity import owner_of

    assert workers.agents("login")["state"] in ("available", "paused", "wrap_up")
    assert workers.agents("pause")["state"] in ("paused", "wrap_up")
    wait_for(lambda: workers.agents("list")["state"] == "paused", 10)
    db = workers.root / "calls.db"
    sip_call_id = run(ask_for_callback(workers.port, db), 60)
    call_id = record_id(db, sip_call_id)  # the record's and the ticket's key
    assert workers.waiting() == 1
    dead = owner_of(sip_call_id.encode(), 2)  # workers share calls out by the SIP Call-ID
    os.kill(workers.pid_of(dead), signal.SIGKILL)
    moved = wait_for(lambda: re.findall(rf"worker {dead} is gone: .* 1 callbacks go to worker "
                                        r"(\d)", workers.log_file.read_text()), 15)  # fmt: skip
    assert moved == [str(1 - dead)]
    assert workers.waiting() == 1  # still in line
    phone_home = Agent(tmp_path / "customer", CUSTOMER, "", 660, 0, True,
                       sip_port=workers.customer_port)  # fmt: skip
    done = called_back(workers, call_id, phone_home)
    assert (done["outcome"], done["agent"]) == ("callback_done", "gina")
    placed = re.findall(rf" (w\d) INFO ivr\.acd: call {re.escape(call_id)}: callback attempt 1",
                        workers.log_file.read_text())  # fmt: skip
    assert placed == [f"w{1 - dead}"]  # by the worker that lived
    assert wait_for(lambda: phone_home.received_tone(), 10) == pytest.approx(440, abs=15)
