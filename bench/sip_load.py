"""Signalling load: SIPp (Debian ``sip-tester``) calls the SIP user agent on 127.0.0.1.

Run::

    .venv/bin/python bench/sip_load.py --rates 200,400,800 --seconds 5
    .venv/bin/python bench/sip_load.py --rates 200 --hold 3000      # ~600 calls up at once

What runs where: this process runs one :class:`~ivr.sip.ua.UserAgent` (one event loop, no
media: the media factory hands out port numbers only) that answers every call at once; SIPp's
built-in ``uac`` scenario (INVITE, 100/180/200, ACK, pause ``--hold`` ms, BYE, 200) runs as a
child process at each rate for ``--seconds`` seconds. SIPp shares the machine, so on a small
machine the figures are a floor, not a ceiling.

Figures per rate: calls that succeeded and failed (SIPp's counters), SIPp's retransmissions
(non-zero means the user agent fell behind), the most calls up at once, and this process's CPU
time over wall time and per call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import itertools
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.sip.call import SipCall  # noqa: E402
from ivr.sip.offer_answer import LocalMedia  # noqa: E402
from ivr.sip.ua import UserAgent  # noqa: E402


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def one_rate(rate: int, seconds: int, hold_ms: int, workdir: Path) -> str:
    ports = itertools.count(20000, 2)

    async def media(call: SipCall) -> LocalMedia:
        return LocalMedia("127.0.0.1", next(ports))

    ua = UserAgent("127.0.0.1", 0, local_media_factory=media,
                   on_incoming=lambda call: call.accept(), max_calls=100_000)  # fmt: skip
    await ua.start()
    calls = rate * seconds
    stat = workdir / f"stat_{rate}.csv"
    args = [
        "sipp", "-sn", "uac", f"127.0.0.1:{ua.address[1]}", "-m", str(calls), "-r", str(rate),
        "-l", "100000", "-d", str(hold_ms), "-i", "127.0.0.1", "-p", "0",
        "-mp", str(_free_port()), "-timeout", str(seconds * 10 + hold_ms // 1000 + 30),
        "-trace_stat", "-stf", str(stat), "-nostdin",
    ]  # fmt: skip
    cpu0, wall0 = time.process_time(), time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*args, cwd=workdir,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
    peak = 0
    while proc.returncode is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 0.1)
        peak = max(peak, ua.active_calls)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await ua.close()
    with open(stat, newline="") as f:
        row = list(csv.DictReader(f, delimiter=";"))[-1]
    return (f"{rate:>6}/s hold {hold_ms:>5} ms: {row['SuccessfulCall(C)']:>6} ok "
            f"{row['FailedCall(C)']:>4} failed {row['Retransmissions(C)']:>6} retrans, "
            f"peak {peak:>5} calls up, UA CPU {cpu / wall:5.0%} of a core, "
            f"{cpu / calls * 1e6:6.0f} us/call")  # fmt: skip


async def main(rates: list[int], seconds: int, hold_ms: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sip_load_") as tmp:
        for rate in rates:
            print(await one_rate(rate, seconds, hold_ms, Path(tmp)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="200,400,800", help="calls per second, comma-separated")
    parser.add_argument("--seconds", type=int, default=5, help="seconds of calls per rate")
    parser.add_argument("--hold", type=int, default=0, help="ms between ACK and BYE")
    options = parser.parse_args()
    if shutil.which("sipp") is None:
        sys.exit("sipp not found: install Debian's sip-tester (make installs it)")
    asyncio.run(main([int(r) for r in options.rates.split(",")], options.seconds, options.hold))
