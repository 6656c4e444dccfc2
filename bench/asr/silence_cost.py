"""What a listening call costs when the caller says nothing: CPU per stream, measured.

N streams are opened through the real :class:`~ivr.asr.service.AsrService` (worker processes,
PocketSphinx, the bank menu grammar) and fed like live calls: every 20 ms tick each stream gets
its next 20 ms frame of line noise (white noise at ``--level`` dBFS through a G.711 μ-law line,
about what an idle phone line carries; each stream reads the noise from its own offset), paced
on absolute deadlines. The streams are opened a few per tick (each new one makes its worker
build a PocketSphinx decoder, ~0.1 s; a hundred opened in one tick would stall the worker past
the service's stall timeout), and measuring starts once all are open, the workers have caught
up and at least ``--warmup`` seconds have passed. Then the CPU time of the worker processes
(utime + stime from ``/proc/<pid>/stat``) and of this process (the event loop's side: feeding,
one message per worker per tick, reading the answers; the noise is made before the run) is
taken over ``--seconds`` seconds; the report is CPU per stream in % of one core, with the
workers' resident memory at the end.

``--reopen S`` closes and reopens every stream every S seconds (a no-input timer re-prompting),
so opening costs are included; 0 keeps the streams open for the whole run.

Run: ``nice .venv/bin/python bench/asr/silence_cost.py --streams 50 100``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr.asr.base import FRAME_SAMPLES, AsrEvent, AsrOptions, Grammar  # noqa: E402
from ivr.asr.service import AsrService, AsrStream  # noqa: E402
from ivr.media.g711 import ulaw_decode, ulaw_encode  # noqa: E402

TICK = 0.02
MENU = Grammar("en", {
    "balance": ("balance", "my balance", "account balance"),
    "card": ("lost card", "stolen card"),
    "agent": ("agent", "operator", "representative"),
    "hours": ("opening hours",),
})  # fmt: skip
_CLK = os.sysconf("SC_CLK_TCK")
OPEN_PER_TICK = 2


@dataclass(frozen=True)
class Result:
    streams: int
    workers: int
    seconds: float  # wall time measured
    worker_cpu: float  # seconds of CPU, all workers together
    engine_cpu: float  # seconds of CPU of this process
    worker_pct_per_stream: float  # % of one core
    engine_pct_per_stream: float
    late_ticks: int  # ticks started more than one tick after their deadline
    events: int  # events received (silence: expected 0)
    max_lag: float  # the workers' largest backlog age seen, seconds
    ramp_seconds: float  # opening the streams until the workers had caught up
    worker_rss_mb: int  # resident memory of the workers at the end


def line_noise(seconds: float, level_db: float, seed: int = 1) -> NDArray[np.int16]:
    """White noise at ``level_db`` dBFS (RMS) through a μ-law line, as 20 ms frames."""
    rng = np.random.default_rng(seed)
    n = round(seconds / TICK) * FRAME_SAMPLES
    x = rng.standard_normal(n) * 32768.0 * 10 ** (level_db / 20)
    pcm = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return ulaw_decode(ulaw_encode(pcm)).reshape(-1, FRAME_SAMPLES)


def proc_cpu(pid: int) -> float:
    """utime + stime of process ``pid``, seconds (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK  # fields 14 and 15 of stat(5)


def proc_rss(pid: int) -> int:
    """Resident memory of process ``pid``, bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(streams: int, workers: int, seconds: float, warmup: float, level_db: float,
                  reopen: float) -> Result:  # fmt: skip
    """One run with ``streams`` silent callers (see the module docstring)."""
    service = AsrService("pocketsphinx", workers=workers)
    await service.start()
    try:
        return await _run(service, streams, seconds, warmup, level_db, reopen)
    finally:
        await service.stop()


async def _run(service: AsrService, n: int, seconds: float, warmup: float, level_db: float,
               reopen: float) -> Result:  # fmt: skip
    pids = [w.pid for w in service.stats() if w.state == "ready" and w.pid is not None]
    if len(pids) != service.count:
        raise RuntimeError(f"only {len(pids)} of {service.count} workers ready")
    feeder = _Feeder(service, n, level_db, reopen)
    ramp = await feeder.ramp_up(warmup)
    wall0, engine0 = time.perf_counter(), self_cpu()
    cpu0 = sum(proc_cpu(p) for p in pids)
    late, max_lag = await feeder.ticks(round(seconds / TICK))
    await asyncio.sleep(0.1)  # the last answers
    wall = time.perf_counter() - wall0
    worker_cpu = sum(proc_cpu(p) for p in pids) - cpu0
    engine_cpu = self_cpu() - engine0
    rss = sum(proc_rss(p) for p in pids)
    feeder.close()
    return Result(n, service.count, round(wall, 2), round(worker_cpu, 2), round(engine_cpu, 2),
                  round(100 * worker_cpu / wall / n, 3), round(100 * engine_cpu / wall / n, 3),
                  late, len(feeder.events), round(max_lag, 3), round(ramp, 1),
                  round(rss / 2**20))  # fmt: skip


class _Feeder:
    """The silent callers: streams opened a few per tick, each fed its own noise."""

    def __init__(self, service: AsrService, n: int, level_db: float, reopen: float) -> None:
        self.service = service
        self.n = n
        self.noise = line_noise(10.0, level_db)
        self.events: list[AsrEvent] = []
        self.options = AsrOptions()
        self.streams: list[AsrStream] = []
        self.reopen_ticks = round(reopen / TICK) if reopen > 0 else 0
        self.tick = 0
        self.loop = asyncio.get_running_loop()
        self.begin = self.loop.time()

    def _open(self, i: int) -> AsrStream:
        return self.service.open(MENU, self.options, self.events.append, f"s{i}")

    async def ramp_up(self, warmup: float) -> float:
        """Open the streams (:data:`OPEN_PER_TICK` a tick: each new one makes the worker build
        a decoder, ~0.1 s) and feed them until the workers have caught up; seconds it took."""
        start = self.loop.time()
        while True:
            for _ in range(min(OPEN_PER_TICK, self.n - len(self.streams))):
                self.streams.append(self._open(len(self.streams)))
            await self.ticks(1)
            caught_up = all(w.backlog <= 2 for w in self.service.stats())
            if len(self.streams) == self.n and caught_up and self.loop.time() - start >= warmup:
                return self.loop.time() - start

    async def ticks(self, count: int) -> tuple[int, float]:
        """Feed ``count`` ticks on absolute deadlines; (ticks started late, largest lag)."""
        late, max_lag, noise = 0, 0.0, self.noise
        for _ in range(count):
            tick = self.tick
            self.tick += 1
            if self.reopen_ticks and tick % self.reopen_ticks == 0:
                for i, stream in enumerate(self.streams):
                    stream.close()
                    self.streams[i] = self._open(i)
            for i, stream in enumerate(self.streams):
                stream.feed(noise[(tick + i * 37) % len(noise)])
            if tick % 25 == 0:
                max_lag = max([max_lag] + [w.lag for w in self.service.stats()])
            delay = self.begin + self.tick * TICK - self.loop.time()
            if delay < -TICK:
                late += 1
            await asyncio.sleep(max(0.0, delay))
        return late, max_lag

    def close(self) -> None:
        for stream in self.streams:
            stream.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--level", type=float, default=-70.0, help="noise level, dBFS")
    parser.add_argument("--reopen", type=float, default=0.0,
                        help="reopen every stream every this many seconds (0: never)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    args = parser.parse_args(argv)
    print(f"# {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, noise {args.level} dBFS "
          f"(μ-law), {args.seconds:.0f} s after the ramp-up", flush=True)  # fmt: skip
    for n in args.streams:
        result = asyncio.run(measure(n, args.workers, args.seconds, args.warmup, args.level,
                                     args.reopen))  # fmt: skip
        if args.json:
            print(json.dumps(asdict(result)), flush=True)
            continue
        print(f"{n:4d} streams, {result.workers} worker(s): worker {result.worker_cpu:6.2f} s CPU "
              f"= {result.worker_pct_per_stream:.3f} % of a core per stream; engine "
              f"{result.engine_cpu:5.2f} s = {result.engine_pct_per_stream:.3f} %; "
              f"late ticks {result.late_ticks}, max lag {result.max_lag:.2f} s, "
              f"events {result.events}; ramp-up {result.ramp_seconds:.0f} s, workers' RSS "
              f"{result.worker_rss_mb} MB", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
