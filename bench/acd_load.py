"""Load on the agent queue: callers bridged to agents while other callers work the bank menu.

Run (``make bench-acd-load`` installs SIPp and tcpdump first)::

    .venv/bin/python bench/acd_load.py                      # 300 calls, 100 to the agents
    .venv/bin/python bench/acd_load.py --menu 200 --queue 100 --agents 100 --steady 30 --write

What runs where, all on 127.0.0.1 of this machine (2 cores shared by everything below):

* **the engine**: ``ivr serve --workers N`` with the repository's flows and an ``acd:`` section
  of ``--agents`` agents (``load-001`` ..., SIP user ``5001`` ..., passwords in this process's
  environment, ``IVR_LOAD_AGENT_001`` ...; no wrap-up), all in one queue ``general``; a flow
  ``acd-load`` answers number 7300 and sends the caller straight to an enqueue (hold music until
  an agent is free).
* **the agents**: SIPp. One SIPp client registers every agent from one SIP port, reading user
  and password from an injection file (``-inf``): REGISTER, the 401, REGISTER with digest
  (``[authentication]``, written into the file's second field), 200; it exits and a SIPp
  server (uas) takes the same port: it answers each INVITE with 180 and 200 (PCMU), plays RTP
  (quiet line noise from a pcap, on its own 20 ms clock) and waits for the server's BYE.
  ``ivr agents login`` then logs each agent in.
* **the callers**: two SIPp clients, as serve_load's: ``--menu`` callers work the bank menu by
  keys, ``--queue`` callers dial 7300 and play quiet line noise; both for the same length, at
  rates that hold their target up at once.
* **the measurement**: tcpdump on lo, the engine's RTP ports in both directions, analysed as
  serve_load's (:mod:`load_wire`), split by where the engine's packets go: to the menu callers,
  to the queue callers (hold music, then what the agent says), to the agents (what the caller
  says): RTP gap p50/p99/max over the steady part, key → prompt for the menu callers, the
  engine's CPU (its processes, from /proc), the load generators' CPU, and from the call
  records how many queue callers an agent answered.

A timing is never a pass/fail test: this prints figures (and ``--write`` puts them into
docs/PERFORMANCE.md); the goal is an RTP gap p99 under 25 ms in both directions of the bridge.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from load_run import require_tools, start_capture, stop_capture
from load_wire import Stream, gap_stats, key_latencies, read_capture, write_caller_pcap
from serve_load import (
    AT,
    NATIVE_RTP,
    ROOT,
    Engine,
    Plan,
    free_port,
    make_plan,
    percentile,
    write_config,
)
from sipp_caller import caller_scenario

from ivr.cli.main import main as ivr_main

QUEUE_NUMBER = "7300"
FLOW = """\
flow: acd-load
languages: [en]
start: wait
nodes:
  wait:
    enqueue: {queue: general, priority: 5, on_no_agents: closed}
  closed:
    hangup: {prompt: "Nobody is here.", outcome: failed}
"""

REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="agent registers with digest">
  <send retrans="500"><![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[remote_ip]:[remote_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      [field1]
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0
    ]]></send>
  <recv response="200"/>
</scenario>
"""

ANSWER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="agent answers and talks">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port]>
      Content-Length: 0
    ]]></send>
  <send retrans="500"><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:agent@[local_ip]:[local_port]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 1 1 IN IP4 127.0.0.1
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]></send>
  <recv request="ACK" crlf="true"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
</scenario>
"""


def agent_ids(n: int) -> list[tuple[str, str, str]]:
    """``(agent id, SIP user, environment variable of the password)`` for ``n`` agents."""
    return [(f"load-{i:03d}", str(5001 + i), f"IVR_LOAD_AGENT_{i:03d}") for i in range(n)]


def write_project(run_dir: Path, agents: int) -> Path:
    """serve_load's ivr.yaml, plus the queue flow beside the repository's flows and ``acd:``."""
    path = write_config(run_dir, NATIVE_RTP, None)
    config = json.loads(path.read_text(encoding="utf-8"))
    flows = run_dir / "flows"
    flows.mkdir()
    for flow in (ROOT / "flows").glob("*.yaml"):
        shutil.copy(flow, flows / flow.name)
    (flows / "acd-load.yaml").write_text(FLOW, encoding="utf-8")
    config["flows_dir"] = str(flows)
    config["numbers"] = {QUEUE_NUMBER: "acd-load", **config["numbers"]}
    skills = ["general", "corporate", "small_business"]  # bank-main's queues need agents too
    config["acd"] = {
        "agents": {agent: {"username": user, "password": f"${{{var}}}", "skills": skills,
                           "tier": "accounts", "wrap_up": 0, "max_misses": 100}
                   for agent, user, var in agent_ids(agents)},
        "queues": {"general": {"ring_timeout": 10, "retry_delay": 1},
                   "business": {"ring_timeout": 10, "retry_delay": 1}},
    }  # fmt: skip
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def sipp_cpu(procs: list[subprocess.Popen[bytes]]) -> float:
    total = 0
    for proc in procs:
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def ivr(config: Path, *args: str) -> int:
    """``ivr -c CONFIG ARGS`` in this process (``ivr agents login`` a hundred times over), its
    output dropped."""
    with contextlib.redirect_stdout(io.StringIO()):
        return ivr_main(["-c", str(config), *args])


def register_agents(run_dir: Path, server: str, agents: int) -> int:
    """Register every agent from one SIP port; returns the port (their contacts' port)."""
    inf = run_dir / "agents.csv"
    # SIPp 3.6 does not expand [field0] inside [authentication]: the field holds the keyword.
    inf.write_text("SEQUENTIAL\n" + "".join(
        f"{user};[authentication username={user} password={os.environ[var]}];\n"
        for _, user, var in agent_ids(agents)), encoding="utf-8")  # fmt: skip
    (run_dir / "register.xml").write_text(REGISTER, encoding="utf-8")
    port = free_port()
    done = subprocess.run(
        ["sipp", server, "-sf", str(run_dir / "register.xml"), "-inf", str(inf),
         "-m", str(agents), "-r", "50", "-t", "u1", "-i", "127.0.0.1", "-p", str(port),
         "-timeout", "60", "-nostdin", "-trace_err"],
        cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"agents did not register (sipp exit {done.returncode}): "
                         f"{done.stderr.decode()[-500:]}; see {run_dir}")  # fmt: skip
    return port


def agents_status(config: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "ivr", "-c", str(config), "agents", "list", "--json"],
        capture_output=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return dict(json.loads(out.stdout))


def bridged(db: Path) -> tuple[int, int, int]:
    """Queue callers recorded, of them answered by an agent, and ``agent_connected`` events."""
    if not db.exists():
        return 0, 0, 0
    with sqlite3.connect(db) as conn:
        queued, answered = conn.execute(
            "SELECT count(*), count(agent) FROM calls WHERE called = ?", (QUEUE_NUMBER,)
        ).fetchone()
        connected = conn.execute(
            "SELECT count(*) FROM events WHERE kind = 'agent_connected'").fetchone()[0]
    return int(queued), int(answered), int(connected)


Started = tuple[subprocess.Popen[bytes], int, float, int]


def caller(run_dir: Path, name: str, server: str, number: str, target: int, plan: Plan,
           pcap: Path, steady: float) -> Started:  # fmt: skip
    """Start a SIPp client holding ``target`` calls up; ``(process, total calls, rate, media
    port)``."""
    scenario = run_dir / f"{name}.xml"
    during = (f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
              f'  <pause milliseconds="{int(plan.seconds * 1000)}"/>')
    scenario.write_text(caller_scenario(name, during, headers={"X-Ivr-At": AT}),
                        encoding="utf-8")  # fmt: skip
    rate = target / plan.seconds
    total = math.ceil(target + rate * steady) + 1
    media = free_port()
    proc = subprocess.Popen(
        ["sipp", server, "-sf", str(scenario), "-s", number, "-m", str(total),
         "-r", str(round(rate * 1000)), "-rp", "1000000", "-l", str(target + 50),
         "-t", "u1", "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(media),
         "-max_socket", "2000", "-timeout", str(int(plan.seconds * 2 + steady + 120)),
         "-trace_stat", "-stf", str(run_dir / f"{name}-stat.csv"), "-nostdin"],
        cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    return proc, total, rate, media


def last_stat(path: Path) -> dict[str, str]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))[-1]


def profile(pids: list[int], seconds: float, out: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy on every engine process for ``seconds`` (not stopping them: --nonblocking)."""
    out.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [subprocess.Popen(
        [spy, "record", "--nonblocking", "--pid", str(pid), "--duration",
         str(max(1, int(seconds))), "--rate", "50", "--format", "raw", "-o",
         str(out / f"{n}-{pid}.txt")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) for n, pid in enumerate(pids)]  # fmt: skip


def hot_spots(path: Path, top: int = 12) -> list[str]:
    """The functions most samples of a py-spy raw profile were in (self time), in percent."""
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        leaf = stack.split(";")[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    return [f"{100 * n / max(1, total):5.1f} % {name}" for name, n in ranked]


def run(menu: int, queue: int, agents: int, plan: Plan, steady: float, workdir: Path,
        workers: int, priority: str, profile_dir: Path | None = None
        ) -> dict[str, float | int | str]:  # fmt: skip
    run_dir = workdir / f"acd-{menu}-{queue}-{agents}-{priority}"
    run_dir.mkdir()
    config = write_project(run_dir, agents)
    sip_port = free_port()
    server = f"127.0.0.1:{sip_port}"
    engine = Engine(["serve", "--listen", server, "--workers", str(workers), "--no-build",
                     "--priority", priority], run_dir, b"answering SIP")  # fmt: skip
    generators: list[subprocess.Popen[bytes]] = []
    tcpdump: subprocess.Popen[bytes] | None = None
    try:
        agent_port = register_agents(run_dir, server, agents)
        talk = run_dir / "agent.pcap"
        write_caller_pcap(talk, [], plan.seconds + steady + 30, seed=11)
        (run_dir / "agent.xml").write_text(ANSWER.replace("{pcap}", str(talk)), encoding="utf-8")
        agent_media = free_port()
        generators.append(subprocess.Popen(
            ["sipp", "-sf", str(run_dir / "agent.xml"), "-t", "u1", "-i", "127.0.0.1",
             "-p", str(agent_port), "-mp", str(agent_media), "-max_socket", "2000",
             "-trace_stat", "-stf", str(run_dir / "agents-stat.csv"), "-trace_err", "-nostdin"],
            cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        ))  # fmt: skip
        for agent, _, _ in agent_ids(agents):
            if ivr(config, "agents", "login", agent) != 0:
                raise SystemExit(f"ivr agents login {agent} failed")
        status = agents_status(config)
        ready = [a for a in status["agents"]  # type: ignore[attr-defined]
                 if a.get("registered") and a.get("state") == "available"]
        print(f"{len(ready)} of {agents} agents registered and available", flush=True)
        capture = run_dir / "rtp.pcap"
        tcpdump = start_capture(capture, NATIVE_RTP)
        keys_pcap, quiet_pcap = run_dir / "menu.pcap", run_dir / "queue.pcap"
        write_caller_pcap(keys_pcap, plan.keys, plan.seconds)
        write_caller_pcap(quiet_pcap, [], plan.seconds, seed=5)
        t0 = time.time()
        menu_proc, menu_total, menu_rate, menu_media = caller(
            run_dir, "menu", server, "95588", menu, plan, keys_pcap, steady)
        queue_proc, queue_total, queue_rate, queue_media = caller(
            run_dir, "queue", server, QUEUE_NUMBER, queue, plan, quiet_pcap, steady)
        generators += [menu_proc, queue_proc]
        window = (t0 + plan.seconds + 2.0,
                  t0 + min((menu_total - 1) / menu_rate, (queue_total - 1) / queue_rate))
        time.sleep(max(0.0, window[0] - time.time()))
        cpu0, gen0, wall0 = engine.cpu_seconds(), sipp_cpu(generators), time.time()
        busy0, all0 = machine_ticks()
        spies = [] if profile_dir is None else profile(engine.pids(), window[1] - wall0,
                                                       profile_dir)  # fmt: skip
        time.sleep(max(0.0, window[1] - time.time()))
        for spy in spies:
            spy.wait(60)
        wall = time.time() - wall0
        cpu = (engine.cpu_seconds() - cpu0) / wall
        gen_cpu = (sipp_cpu(generators) - gen0) / wall
        busy1, all1 = machine_ticks()
        machine = (os.cpu_count() or 1) * (busy1 - busy0) / max(1, all1 - all0)
        menu_proc.wait()
        queue_proc.wait()
        time.sleep(2.0)
    finally:
        engine.stop()
        for proc in generators:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    assert tcpdump is not None
    dropped = stop_capture(tcpdump)
    streams = read_capture(capture, *NATIVE_RTP)
    capture.unlink()  # hundreds of MB

    def to(port: int) -> dict[int, Stream]:
        return {k: s for k, s in streams.items() if s.peer == port}

    groups = {"menu": to(menu_media), "queue": to(queue_media), "agents": to(agent_media)}
    figures: dict[str, float | int | str] = {
        "menu": menu, "queue": queue, "agents": agents, "workers": workers, "priority": priority,
        "cpu_cores": cpu, "generators_cpu": gen_cpu, "machine_cpu": machine,
        "capture_dropped": dropped,
        "window": window[1] - window[0],
    }
    for name, group in groups.items():
        gaps = gap_stats(group, *window)
        seen = sum(1 for s in group.values()
                   if any(window[0] <= t <= window[1] for t in s.out_times))  # fmt: skip
        mid = (window[0] + window[1]) / 2
        up = sum(1 for s in group.values() if any(abs(t - mid) <= 0.1 for t in s.out_times))
        figures.update({f"{name}_p50": gaps["p50"], f"{name}_p99": gaps["p99"],
                        f"{name}_max": gaps["max"], f"{name}_streams": seen,
                        f"{name}_up": up})  # fmt: skip
    latencies, _ = key_latencies(groups["menu"], plan.quiet, *window)
    figures.update({"dtmf_n": len(latencies),
                    "dtmf_p50": statistics.median(latencies) if latencies else float("nan"),
                    "dtmf_p99": percentile(latencies, 99)})  # fmt: skip
    queued, answered, connected = bridged(run_dir / "calls.db")
    figures.update({"queue_recorded": queued, "queue_answered": answered,
                    "agent_connected": connected})  # fmt: skip
    for name, total in (("menu", menu_total), ("queue", queue_total), ("agents", None)):
        row = last_stat(run_dir / f"{name}-stat.csv")
        figures[f"{name}_sipp"] = (f"{row['SuccessfulCall(C)']} / {row['FailedCall(C)']} / "
                                   f"{row['Retransmissions(C)']}")  # fmt: skip
        if total is not None:
            figures[f"{name}_calls"] = total
    return figures


HEADER = ("| legs (server → peer) | streams: up mid-window / in the window | RTP gap p50 / p99 / "
          "max (ms) | SIPp ok / failed / retrans |\n|---|---|---|---|")


def table(f: dict[str, float | int | str]) -> str:
    names = {"menu": "menu callers (prompts)",
             "queue": "queue callers (hold music, then the agent)",
             "agents": "agents (the caller)"}  # fmt: skip
    rows = [HEADER]
    for key, label in names.items():
        rows.append(f"| {label} | {f.get(f'{key}_up', '?')} / {f[f'{key}_streams']} | "
                    f"{float(f[f'{key}_p50']):.1f} / "
                    f"{float(f[f'{key}_p99']):.1f} / {float(f[f'{key}_max']):.1f} | "
                    f"{f[f'{key}_sipp']} |")  # fmt: skip
    return "\n".join(rows)


def summary(f: dict[str, float | int | str]) -> str:
    return (f"engine CPU {float(f['cpu_cores']):.2f} cores "
            f"(SIPp {float(f['generators_cpu']):.2f}, the whole machine "
            f"{float(f['machine_cpu']):.2f} of {os.cpu_count()}); "
            f"queue callers answered by an agent: {f['queue_answered']} of {f['queue_recorded']} "
            f"recorded ({f['agent_connected']} agent_connected events); key → prompt p50 / p99 "
            f"{float(f['dtmf_p50']):.0f} / {float(f['dtmf_p99']):.0f} ms (n={f['dtmf_n']}); "
            f"capture dropped {f['capture_dropped']}")  # fmt: skip


def holds(f: dict[str, float | int | str]) -> bool:
    return all(float(f[f"{k}_p99"]) < 25 for k in ("queue", "agents"))


def run_block(f: dict[str, float | int | str]) -> list[str]:
    """One run's table and figures, under a heading naming its engine priority."""
    up = int(f["menu"]) + int(f["queue"])
    verdict = "met" if holds(f) else "**not met**"
    default = " (the default)" if f["priority"] == "high" else ""
    return [
        f"### `sip.priority: {f['priority']}`{default}",
        "",
        table(f),
        "",
        f"- {summary(f)}.",
        f"- Goal (gap p99 < 25 ms both directions with {f['queue']} bridged among {up} calls on "
        f"2 cores): {verdict}.",
        "",
    ]


def comparison(runs: list[dict[str, float | int | str]]) -> list[str]:
    """The bridge's worse direction per run, as a ratio to the first (the default) run."""
    if len(runs) < 2:
        return []
    worst = [max(float(f["queue_p99"]), float(f["agents_p99"])) for f in runs]
    parts = [f"`{f['priority']}` {w:.1f} ms ({w / worst[0]:.2f}×)"
             for f, w in zip(runs, worst, strict=True)]
    return ["Bridge gap p99, worse direction, same run of the bench: " + ", ".join(parts) + ".",
            ""]


def report(runs: list[dict[str, float | int | str]], plan: Plan) -> str:
    f = runs[0]
    up = int(f["menu"]) + int(f["queue"])
    lines = [
        "## Agent queue under load (SIPp callers and agents)",
        f"`bench/acd_load.py` (`make bench-acd-load`, {time.strftime('%Y-%m-%d')}): "
        f"`ivr serve --workers {f['workers']}` with an `acd:` section of {f['agents']} agents "
        "(no wrap-up), one queue. SIPp registers every agent with digest from one port "
        "(injection file), then a SIPp server on that port answers as the agents (180, 200 PCMU, "
        "quiet line noise from a pcap on its own clock, the server's BYE); each is logged in with "
        f"`ivr agents login`. {up} callers up at once: {f['menu']} work the bank menu by keys "
        f"(as above), {f['queue']} dial a number whose flow is only an enqueue (hold music until "
        f"an agent is free), each call {plan.seconds:.0f} s. Figures over {float(f['window']):.0f} "
        "s while every call is up. RTP gap: spacing of the packets each peer receives from the "
        "engine (tcpdump on loopback), by peer: the queue callers' legs carry the agents' audio "
        "(agent → caller) and the agents' legs the callers' (caller → agent), both directions of "
        "the bridge. Streams: calls end and new ones start during the window, so more streams "
        "are seen in it than are up at once. SIPp, tcpdump and the script share the 2 cores. "
        "The same load is run once per engine priority (`ivr serve --priority`), one after the "
        "other.",
        "",
    ]
    for figures in runs:
        lines += run_block(figures)
    lines += comparison(runs)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_section(section: str) -> None:
    """Replace (or append) the section in docs/PERFORMANCE.md, leaving serve_load's alone."""
    path = ROOT / "docs" / "PERFORMANCE.md"
    text = path.read_text(encoding="utf-8")
    start = text.find("## Agent queue under load")
    if start < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")
        return
    end = text.find("\n## ", start + 1)
    path.write_text(text[:start] + section + ("" if end < 0 else text[end:]), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--menu", type=int, default=200, help="callers on the bank menu")
    parser.add_argument("--queue", type=int, default=100, help="callers to the agent queue")
    parser.add_argument("--agents", type=int, default=100, help="agents (SIPp, one port)")
    parser.add_argument("--workers", type=int, default=2, help="ivr serve --workers")
    parser.add_argument("--priorities", default="high,normal",
                        help="engine priorities to run, one run each, the default first")
    parser.add_argument("--steady", type=float, default=30.0, help="seconds measured at load")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="py-spy every engine process during the steady part into DIR (the "
                             "figures of such a run are not comparable)")  # fmt: skip
    parser.add_argument("--write", action="store_true", help="update docs/PERFORMANCE.md")
    opts = parser.parse_args()
    for _, _, var in agent_ids(opts.agents):  # the agents' passwords, as ops would set them
        os.environ.setdefault(var, os.urandom(9).hex())
    require_tools(("sipp", "tcpdump"), "bench-acd-load")
    tmp = tempfile.mkdtemp(prefix="acd_load_")
    workdir = Path(tmp)
    try:
        plan = make_plan(write_project(workdir, opts.agents))
        print(f"call {plan.seconds:.1f} s", flush=True)
        runs = [run(opts.menu, opts.queue, opts.agents, plan, opts.steady, workdir,
                    opts.workers, priority, opts.profile)
                for priority in opts.priorities.split(",")]  # fmt: skip
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")
    section = report(runs, plan)
    print(section)
    print(json.dumps(runs, indent=1))
    for path in sorted(opts.profile.glob("*.txt")) if opts.profile else []:
        print(f"{path.name}:", *hot_spots(path), sep="\n  ")
    if opts.write:
        write_section(section)


if __name__ == "__main__":
    main()
