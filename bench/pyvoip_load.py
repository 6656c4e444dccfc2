"""pyVoIP's limits, measured: N calls at once through Kamailio to the engine's pyVoIP extension.

Run::

    .venv/bin/python bench/pyvoip_load.py --calls 10,25,50 --hold 6000

What runs where: Kamailio (Debian's package, tests/kamailio_peer.py) is the registrar + proxy on
a free port of 127.0.0.1; this process runs a :class:`~ivr.pyvoip.server.PyVoipServer` registered
as extension 1001 with a one-menu flow whose prompt is a 3 s recording; SIPp (Debian's
``sip-tester``) places N calls within one second (``-l N -m N -r N``; ``--rate`` changes the
rate), holds each ``--hold`` ms
after the ACK and sends BYE. All RTP pyVoIP sends goes to one UDP socket of this process (the
scenario's SDP names it), which counts packets per call.

Figures per N: SIPp's successful/failed calls and retransmissions; INVITE-to-200 time (median
and max, SIPp's response-time trace); threads of this process (before, peak, per call); calls
that reached the flow and ended ``abandoned`` in the call record; calls whose RTP arrived, and
the worst and the median call's packet rate (50/s is real time: below it the caller hears the
prompts stretched and broken); this process's CPU over wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import shutil
import socket
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from kamailio_peer import Kamailio, free_udp_port  # noqa: E402
from sipp_caller import caller_scenario  # noqa: E402

from ivr.config import load_config  # noqa: E402
from ivr.media.wav import write_wav  # noqa: E402
from ivr.pyvoip.phone import PhoneOptions  # noqa: E402
from ivr.pyvoip.server import PyVoipServeOptions, PyVoipServer  # noqa: E402

FLOW = """
flow: load
languages: [en]
start: welcome
nodes:
  welcome:
    menu:
      prompt: "Welcome. Press 1."
      choices: {"1": bye}
      no_input: {after: 5, goto: bye}
      no_match: {after: 3, goto: bye}
  bye:
    hangup: {prompt: "Goodbye."}
"""



# pyVoIP's threads of a call: the call callback Timer (where the media loop runs), RTP in, RTP out.
PYVOIP_THREADS = ("Phone Call:", "RTP Receiver", "RTP Transmitter")


class RtpCounter:
    """Counts the RTP packets pyVoIP sends, per source port (one per call)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.times: dict[int, list[float]] = defaultdict(list)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="rtp-counter", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                _, addr = self.sock.recvfrom(2048)
            except OSError:
                continue
            self.times[addr[1]].append(time.monotonic())

    def stop(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()

    def rates(self) -> list[float]:
        """Packets per second of each call's stream (first to last packet)."""
        out = []
        for stamps in self.times.values():
            if len(stamps) > 10:
                out.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
        return out


def project(root: Path) -> Path:
    (root / "flows").mkdir()
    (root / "flows" / "load.yaml").write_text(FLOW, encoding="utf-8")
    (root / "prompts").mkdir()
    t = np.arange(3 * 8000) / 8000.0
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    write_wav(root / "prompts" / "welcome.wav", tone)  # 3 s
    write_wav(root / "prompts" / "bye.wav", tone[:4000])
    (root / "ivr.yaml").write_text(
        "flows_dir: flows\nprompts_dir: prompts\nstore: {path: var/calls.db}\n"
        "numbers: {default: load}\n", encoding="utf-8")  # fmt: skip
    return root / "ivr.yaml"


async def one_run(calls: int, hold_ms: int, rate: int, proxy: Kamailio, workdir: Path) -> str:
    run_dir = workdir / f"n{calls}"
    run_dir.mkdir()
    config = load_config(project(run_dir))
    options = PyVoipServeOptions(
        PhoneOptions(proxy.host, proxy.port, "1001", "secret", register_timeout=2.0,
                     rtp_ports=(12000, 13999), max_calls=100_000),
        build_prompts=False,
    )  # fmt: skip
    server = PyVoipServer(config, options)
    await server.start()
    counter = RtpCounter()
    counter.start()
    scenario = run_dir / "uac.xml"
    scenario.write_text(caller_scenario("pyvoip load", "<pause/>", media_port=str(counter.port)),
                        encoding="utf-8")  # fmt: skip
    baseline = threading.active_count()
    args = [
        "sipp", f"{proxy.host}:{proxy.port}", "-sf", str(scenario), "-s", "1001",
        "-m", str(calls), "-l", str(calls), "-r", str(rate or calls), "-rp", "1000",
        "-d", str(hold_ms), "-i", "127.0.0.1", "-p", str(free_udp_port()),
        "-mp", str(free_udp_port()), "-timeout", str(hold_ms // 1000 + 60),
        "-trace_stat", "-stf", str(run_dir / "stat.csv"), "-trace_rtt", "-rtt_freq", "1",
        "-nostdin",
    ]  # fmt: skip
    cpu0, wall0 = time.process_time(), time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*args, cwd=run_dir,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
    peak_threads = peak_sessions = peak_pyvoip = 0
    while proc.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.05)
        peak_threads = max(peak_threads, threading.active_count())
        peak_sessions = max(peak_sessions, len(server.host.sessions))
        peak_pyvoip = max(peak_pyvoip, sum(1 for t in threading.enumerate()
                                           if t.name.startswith(PYVOIP_THREADS)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await asyncio.sleep(1.0)  # the last BYEs reach the sessions
    await server.stop()
    counter.stop()
    with open(run_dir / "stat.csv", newline="") as fh:
        row = list(csv.DictReader(fh, delimiter=";"))[-1]
    rtts = []
    for path in run_dir.glob("*_rtt.csv"):
        with open(path, newline="") as fh:
            rtts += [float(r["response_time_ms"]) for r in csv.DictReader(fh, delimiter=";")]
    with sqlite3.connect(config.store_path) as conn:
        started = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        abandoned = conn.execute(
            "SELECT count(*) FROM calls WHERE outcome = 'abandoned'").fetchone()[0]
    rates = counter.rates()
    answer = (f"answer median {statistics.median(rtts) / 1000:4.2f} s max {max(rtts) / 1000:4.2f} s"
              if rtts else "answer -")  # fmt: skip
    worst = f"worst {min(rates):4.1f}, median {statistics.median(rates):4.1f}" if rates else "-"
    return (f"N={calls:>3}: {row['SuccessfulCall(C)']:>3} ok {row['FailedCall(C)']:>3} failed "
            f"{row['Retransmissions(C)']:>4} retrans; {answer}; threads {baseline} -> "
            f"{peak_threads}, pyVoIP's per call {peak_pyvoip / max(1, peak_sessions):.1f} "
            f"({peak_sessions} sessions up); records {started} started {abandoned} abandoned; "
            f"RTP from {len(rates)} calls, {worst} pkt/s; CPU {cpu / wall:4.0%}")


async def main(counts: list[int], hold_ms: int, rate: int = 0) -> None:
    with (tempfile.TemporaryDirectory(prefix="pyvoip_load_") as tmp,
          Kamailio(Path(tmp), {"1001": "secret"}) as proxy):  # fmt: skip
        for calls in counts:
            print(await one_run(calls, hold_ms, rate, proxy, Path(tmp)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", default="10,25,50", help="calls at once, comma-separated")
    parser.add_argument("--hold", type=int, default=6000, help="ms between ACK and BYE")
    parser.add_argument("--rate", type=int, default=0, help="calls per second (default: N)")
    opts = parser.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("sipp not found: install Debian's sip-tester (make installs it)")
    asyncio.run(main([int(n) for n in opts.calls.split(",")], opts.hold, opts.rate))
