"""Load on the whole engine: SIPp callers work the bank menu with keys while prompts play.

Run (``make bench-load`` installs SIPp, tcpdump and Kamailio first)::

    .venv/bin/python bench/serve_load.py                          # 100,200,300,400 vs pyVoIP 50,100
    .venv/bin/python bench/serve_load.py --calls 300 --pyvoip 50 --steady 20 --write

What runs where, all on 127.0.0.1 of this machine (2 cores shared by everything below):

* **the engine**: ``ivr serve --workers N`` (one process per core, one SIP port) with the
  repository's flows; or, as the reference, ``ivr serve-pyvoip`` registered to Kamailio (Debian's
  package, started here) with the same flows.
* **the callers**: SIPp (Debian's ``sip-tester``) from one SIP socket, as a PBX trunk would, at a
  rate that holds the target number of calls up at once. Each caller plays the same RTP from a
  pcap this script writes: quiet line noise every 20 ms and four RFC 4733 key presses, each a
  second after the prompt it answers has ended: 1 (English) at the language menu, 4 (branch
  hours) at the main menu, 1 (main menu) at "anything else", 4 again; then it hangs up.
* **the measurement**: tcpdump captures the engine's RTP ports in both directions (kernel time
  stamps, nothing in the engine's path). During the steady part of the run, when every target
  call is up: the spacing of the packets each call receives (p50/p99/max: 20 ms is perfect), the
  time from a key press reaching the engine's port to the next prompt's first sound leaving it
  (minus that prompt's own leading quiet), and the engine's CPU (all its processes, from /proc).
  Afterwards the call records tell whether every key of every call arrived in the flow.

SIPp, tcpdump and this script share the two cores with the engine, so figures are a floor.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
from load_run import prefix_match, require_tools, start_capture, stop_capture  # noqa: E402
from load_wire import (  # noqa: E402
    Key,
    gap_stats,
    key_latencies,
    leading_quiet,
    read_capture,
    write_caller_pcap,
)
from sipp_caller import caller_scenario  # noqa: E402

from ivr.config import load_config  # noqa: E402
from ivr.flow.registry import FlowRegistry  # noqa: E402
from ivr.media.wav import load_8k_mono  # noqa: E402
from ivr.tts.build import build_prompts  # noqa: E402
from ivr.tts.cache import PromptCache  # noqa: E402

AT = "2027-01-04T10:00:00+08:00"  # a Monday morning: the contact centre is open
PAUSE_AFTER_PROMPT = 1.0  # seconds between a prompt's end and the key that answers it
NATIVE_RTP, PYVOIP_RTP = (20000, 29999), (30000, 39999)



def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the caller's script ---------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    keys: list[Key]
    seconds: float  # call length, from the ACK to the BYE
    quiet: list[float]  # leading quiet of each key's next prompt


def make_plan(config_path: Path) -> Plan:
    """Key times from the rendered English prompts' lengths (rendering any that are missing)."""
    audio = prompt_audio(config_path)
    length = {k: len(v) / 8000 for k, v in audio.items()}
    t = length["choose_language"] + PAUSE_AFTER_PROMPT
    keys = [Key(t, "1", "main_menu")]
    t += length["main_menu"] + PAUSE_AFTER_PROMPT
    keys.append(Key(t, "4", "branch_hours"))
    t += length["branch_hours"] + length["anything_else"] + PAUSE_AFTER_PROMPT
    keys.append(Key(t, "1", "main_menu"))
    t += length["main_menu"] + PAUSE_AFTER_PROMPT
    keys.append(Key(t, "4", "branch_hours"))
    seconds = t + length["branch_hours"] + length["anything_else"] + 0.5
    return Plan(keys, seconds, [leading_quiet(audio[k.next_prompt]) for k in keys])


def prompt_audio(config_path: Path) -> dict[str, np.ndarray]:
    """The rendered English prompts of the nodes a caller goes through (rendering any that are
    missing), as 8 kHz samples."""
    config = load_config(config_path)
    registry = FlowRegistry(config.flows_dir, config)
    registry.reload()
    cache = PromptCache(config.prompts_dir)
    build_prompts(registry.current, cache)
    nodes = registry.current.flows["bank-main"].nodes
    audio = {}
    for node_id in ("choose_language", "main_menu", "branch_hours", "anything_else"):
        prompt = nodes[node_id].prompt  # type: ignore[attr-defined]
        text = " ".join(part.text["en"] for part in prompt.parts)
        path = cache.lookup(prompt.id, "en", text)
        if path is None:
            raise SystemExit(f"prompt {node_id} was not rendered")
        audio[node_id] = load_8k_mono(path)
    return audio


# --- the engines -------------------------------------------------------------------------------


def write_config(run_dir: Path, rtp: tuple[int, int], pyvoip_server: str | None,
                 asr: str = "off") -> Path:
    config = {
        "flows_dir": str(ROOT / "flows"), "prompts_dir": str(ROOT / "prompts"),
        "actions_path": str(ROOT / "flows" / "actions"),
        "store": {"path": str(run_dir / "calls.db")},
        "languages": ["en", "zh"],
        "transfer_allow": ["sip:*@agents.bank.example", "+86955*"],
        "numbers": {"95588": "bank-main", "1001": "bank-main", "default": "bank-main"},
        "vars": {"bank_api": "http://127.0.0.1:9"},
        # Every call comes from one SIPp socket, as from a PBX trunk: no per-source limits.
        "sip": {"test_headers": True, "rtp_ports": f"{rtp[0]}-{rtp[1]}", "max_calls": 5000,
                "drain_timeout": 5, "per_source": {"max_unconfirmed": 0, "rate": 0}},
        "asr": {"backend": asr},
    }  # fmt: skip
    if pyvoip_server:
        config["pyvoip"] = {"server": pyvoip_server, "username": "1001", "password": "secret",
                            "local_ip": "127.0.0.1", "local_port": 0,
                            "rtp_ports": f"{rtp[0]}-{rtp[1]}", "max_calls": 5000}  # fmt: skip
    path = run_dir / "ivr.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


class Engine:
    """An engine process (and its workers) started by the command line, as ops would."""

    def __init__(self, args: list[str], run_dir: Path, ready: bytes) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ivr", "-c", str(run_dir / "ivr.yaml"), "--log-level",
             "warning", "--log-file", str(run_dir / "engine.log"), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=run_dir,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if ready not in line:
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise SystemExit(f"engine did not start: {line!r} {err}")

    def pids(self) -> list[int]:
        pids = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            pids += [int(p) for p in children.split()]
        except OSError:
            pass
        return pids

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- one load point ----------------------------------------------------------------------------


@dataclass
class Point:
    engine: str
    target: int
    figures: dict[str, float | int | str]


def run_point(engine_name: str, target: int, plan: Plan, steady: float, workdir: Path,
              workers: int, kamailio: object | None, asr: str = "off") -> Point:  # fmt: skip
    run_dir = workdir / f"{engine_name}-{target}-asr-{asr}"
    run_dir.mkdir()
    rtp = NATIVE_RTP if engine_name == "native" else PYVOIP_RTP
    sip_port = free_port()
    if engine_name == "native":
        write_config(run_dir, rtp, None, asr)
        engine = Engine(["serve", "--listen", f"127.0.0.1:{sip_port}", "--workers",
                         str(workers), "--no-build"], run_dir, b"answering SIP")  # fmt: skip
        remote, service = f"127.0.0.1:{sip_port}", "95588"
    else:
        proxy = f"{kamailio.host}:{kamailio.port}"  # type: ignore[attr-defined]
        write_config(run_dir, rtp, proxy)
        engine = Engine(["serve-pyvoip", "--no-build"], run_dir, b"registered")
        remote, service = proxy, "1001"
    pcap = run_dir / "caller.pcap"
    write_caller_pcap(pcap, plan.keys, plan.seconds)
    scenario = run_dir / "caller.xml"
    during = (f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
              f'  <pause milliseconds="{int(plan.seconds * 1000)}"/>')
    scenario.write_text(caller_scenario("bank menu by keys", during, headers={"X-Ivr-At": AT}),
                        encoding="utf-8")  # fmt: skip
    rate = target / plan.seconds
    # Every target call is up from the first call's end (all later ones started by then) until
    # the last call starts: ``steady`` seconds and a little.
    total = math.ceil(target + rate * steady) + 1
    capture = run_dir / "rtp.pcap"
    tcpdump = start_capture(capture, rtp)
    sipp = subprocess.Popen(
        ["sipp", remote, "-sf", str(scenario), "-s", service, "-m", str(total),
         "-r", str(round(rate * 1000)), "-rp", "1000000", "-l", str(target + 50),
         "-t", "u1", "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_port()),
         "-max_socket", "2000", "-timeout", str(int(plan.seconds * 2 + steady + 120)),
         "-trace_stat", "-stf", str(run_dir / "stat.csv"), "-nostdin"],
        cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    t0 = time.time()
    window = (t0 + plan.seconds + 2.0, t0 + (total - 1) / rate)
    time.sleep(max(0.0, window[0] - time.time()))
    cpu0, wall0 = engine.cpu_seconds(), time.time()
    time.sleep(max(0.0, window[1] - time.time()))
    cpu = (engine.cpu_seconds() - cpu0) / (time.time() - wall0)
    sipp.wait()
    time.sleep(2.0)
    engine.stop()
    dropped = stop_capture(tcpdump)
    streams = read_capture(capture, *rtp)
    gaps = gap_stats(streams, *window)
    latencies, unanswered = key_latencies(streams, plan.quiet, *window)
    keys_expected, keys_recorded, calls_recorded = recorded_keys(run_dir / "calls.db", plan)
    with open(run_dir / "stat.csv", newline="") as fh:
        row = list(csv.DictReader(fh, delimiter=";"))[-1]
    capture.unlink()  # hundreds of MB
    figures: dict[str, float | int | str] = {
        "calls": total, "ok": int(row["SuccessfulCall(C)"]), "failed": int(row["FailedCall(C)"]),
        "retrans": int(row["Retransmissions(C)"]), "rate": round(rate, 2),
        "streams": sum(1 for s in streams.values() if s.out_times),
        "gap_p50": gaps["p50"], "gap_p99": gaps["p99"], "gap_max": gaps["max"],
        "cpu_cores": cpu, "cpu_per_call_pct": 100 * cpu / target,
        "keys_expected": keys_expected, "keys_recorded": keys_recorded,
        "calls_recorded": calls_recorded, "capture_dropped": dropped,
        "dtmf_n": len(latencies), "dtmf_unanswered": unanswered,
        "dtmf_p50": statistics.median(latencies) if latencies else float("nan"),
        "dtmf_p99": percentile(latencies, 99), "dtmf_max": max(latencies, default=float("nan")),
    }  # fmt: skip
    return Point(engine_name, target, figures)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


def recorded_keys(db: Path, plan: Plan) -> tuple[int, int, int]:
    """Keys the callers pressed (every recorded call presses all of them) and keys the flows got:
    an ``input`` event by DTMF with the right digit, in order."""
    if not db.exists():
        return 0, 0, 0
    with sqlite3.connect(db) as conn:
        call_ids = [r[0] for r in conn.execute("SELECT call_id FROM calls")]
        rows = conn.execute("SELECT call_id, data FROM events WHERE kind = 'input' ORDER BY seq")
        got: dict[str, list[str]] = {c: [] for c in call_ids}
        for call_id, data in rows:
            value = json.loads(data or "{}")
            if value.get("mode") == "dtmf":
                got.setdefault(call_id, []).append(str(value.get("value")))
    want = [k.digit for k in plan.keys]
    matched = sum(prefix_match(digits, want) for digits in got.values())
    return len(got) * len(want), matched, len(got)


# --- the report ----------------------------------------------------------------------------------

HEADER = ("| engine | calls up | CPU (cores) | CPU per call | RTP gap p50 / p99 / max (ms) | "
          "keys lost | key → prompt p50 / p99 / max (ms) | SIPp ok / failed / retrans |\n"
          "|---|---|---|---|---|---|---|---|")


def row(point: Point) -> str:
    f = point.figures
    lost = int(f["keys_expected"]) - int(f["keys_recorded"])
    return (f"| {point.engine} | {point.target} | {float(f['cpu_cores']):.2f} | "
            f"{float(f['cpu_per_call_pct']):.2f} % | {float(f['gap_p50']):.1f} / "
            f"{float(f['gap_p99']):.1f} / {float(f['gap_max']):.1f} | {lost} of "
            f"{f['keys_expected']} | {float(f['dtmf_p50']):.0f} / {float(f['dtmf_p99']):.0f} / "
            f"{float(f['dtmf_max']):.0f} (n={f['dtmf_n']}) | {f['ok']} / {f['failed']} / "
            f"{f['retrans']} |")  # fmt: skip


def holds(point: Point) -> bool:
    """The goals: gap p99 < 25 ms, no key lost, no failed call."""
    f = point.figures
    return (float(f["gap_p99"]) < 25 and f["keys_expected"] == f["keys_recorded"]
            and int(f["failed"]) == 0 and int(f["calls_recorded"]) == int(f["calls"]))


def report(points: list[Point], plan: Plan, workers: int, steady: float, asr: str) -> str:
    best = {name: max((p.target for p in points if p.engine == name and holds(p)), default=0)
            for name in ("native", "pyvoip")}  # fmt: skip
    ratio = f"{best['native'] / best['pyvoip']:.1f}" if best["pyvoip"] else "n/a"
    lines = [
        "## Real calls under load (SIPp, bank menu by keys)",
        f"`bench/serve_load.py` ({time.strftime('%Y-%m-%d')}): `ivr serve --workers {workers}` "
        "against the reference, `ivr serve-pyvoip` behind Kamailio, in the same run; callers from "
        f"one SIPp socket (a trunk), each call {plan.seconds:.0f} s with four key presses; "
        f"figures over {steady:.0f} s while every target call is up; speech recognition "
        f"`asr.backend: {asr}`. RTP gap: spacing of the "
        "packets each caller receives (tcpdump on loopback). Key → prompt: from the key's first "
        "RFC 4733 packet reaching the engine to the next prompt's first sound leaving it. Keys "
        "lost: pressed by SIPp, missing from the flow's record. SIPp, tcpdump and the script "
        "share the 2 cores.",
        "",
        HEADER,
        *(row(p) for p in points),
        "",
        f"Most calls held meeting the goals (gap p99 < 25 ms, no key lost, no failed call): "
        f"native **{best['native']}**, pyVoIP **{best['pyvoip']}**; ratio **{ratio}** "
        "(goal: 300+ native, at least 5x pyVoIP; key → prompt p99 under 60 ms).",
    ]
    return "\n".join(lines) + "\n"


def write_performance(section: str) -> None:
    path = ROOT / "docs" / "PERFORMANCE.md"
    text = path.read_text(encoding="utf-8")
    start = text.find("## Real calls under load")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("" if end < 0 else text[end:])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="100,200,300,400", help="native: calls up at once")
    parser.add_argument("--pyvoip", default="50,100", help="pyVoIP: calls up at once ('' skips)")
    parser.add_argument("--workers", type=int, default=2, help="ivr serve --workers")
    parser.add_argument("--steady", type=float, default=30.0, help="seconds measured at load")
    parser.add_argument("--asr", default="off", help="native engine's asr.backend (off: keys "
                        "only; auto: the menus also listen for speech)")
    parser.add_argument("--write", action="store_true", help="update docs/PERFORMANCE.md")
    opts = parser.parse_args()
    require_tools(("sipp", "tcpdump", "kamailio"), "bench-load")
    from kamailio_peer import Kamailio

    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="serve_load_") as tmp:
        workdir = Path(tmp)
        plan = make_plan(write_config(workdir, NATIVE_RTP, None))
        print(f"call {plan.seconds:.1f} s, keys at "
              f"{', '.join(f'{k.at:.1f}s:{k.digit}' for k in plan.keys)}", flush=True)
        print(HEADER, flush=True)
        with Kamailio(workdir / "kamailio", {"1001": "secret"}) as kamailio:
            for target in [int(n) for n in opts.pyvoip.split(",") if n]:
                points.append(run_point("pyvoip", target, plan, opts.steady, workdir,
                                        opts.workers, kamailio))  # fmt: skip
                print(row(points[-1]), flush=True)
        for target in [int(n) for n in opts.calls.split(",") if n]:
            points.append(run_point("native", target, plan, opts.steady, workdir, opts.workers,
                                    None, opts.asr))  # fmt: skip
            print(row(points[-1]), flush=True)
    section = report(points, plan, opts.workers, opts.steady, opts.asr)
    print(section)
    if opts.write:
        write_performance(section)


if __name__ == "__main__":
    main()
