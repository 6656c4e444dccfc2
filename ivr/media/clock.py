"""The process's media clock: one asyncio task that runs every call's 20 ms media work in one pass.

There is no timer or thread per call. Every ``ptime`` the clock wakes on an absolute schedule
(tick *n* is due at ``start + n * ptime``, so lateness never accumulates into drift) and runs one
*pass*:

1. **send**: each registered client's :meth:`ClockClient.clock_tick` sends its next packet (the
   RTP stream takes a pre-encoded 160-byte frame from its player, or silence, builds the header
   and writes it to its socket: no numpy, no encoding per tick; see ``ivr.media.player`` for why
   prompts are encoded once instead of per tick);
2. **analyse**: the 20 ms frames that clients *received* since the last pass are decoded, classified
   for in-band DTMF and measured for the VAD in a handful of numpy calls for all calls together
   (one batch per codec and detector setting), then handed back to each client;
3. **housekeeping**: every ``housekeeping_ticks`` passes (100 ms), each client checks timers that
   need no precision (RTP inactivity, flushing a jitter buffer when packets stop).

Measured cost of the send step, 300 streams ticked by hand: 0.7 µs of Python per packet (player
frame, header, counters) and 3.2 µs for the ``send`` system call on loopback, which under load
(bench/media_load.py) grows to most of the 10 µs a packet costs in a pass.

A late wake-up runs every pass that has come due, back to back, so each stream still sends one
packet per tick with consecutive sequence numbers and timestamps +160. Only a stall longer than
``max_catchup`` ticks (the loop blocked for 200 ms or more) drops the backlog beyond that: those
ticks are *skipped* (counted), never sent as a burst, and sequence numbers and timestamps still go
on without a hole.

The clock measures itself: the wake-up delay of every wake-up (lateness) and the duration of every
pass, kept in a ring of the last 65,536 values, summarised by :meth:`MediaClock.stats`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ivr.media.g711 import G711Codec
from ivr.media.goertzel import classify_frames
from ivr.media.vad import frame_levels

log = logging.getLogger("ivr.media.clock")

FRAME_SAMPLES = 160
_RING = 1 << 16


class ClockClient(Protocol):
    """What the clock calls on each registered stream, once per pass, on the event loop."""

    def clock_tick(self) -> None:
        """Send this tick's packet (or nothing, when not sending)."""

    def clock_housekeeping(self, now: float) -> None:
        """Check slow timers; ``now`` is ``loop.time()``."""


class FrameSink(Protocol):
    """A client with received frames waiting for the clock's batched analysis.

    Attributes:
        rx_frames: Whole 160-byte G.711 frames received since the last pass, in order.
        rx_codec: Their law.
        rx_inband: Whether to run in-band DTMF detection on them.
    """

    rx_frames: list[bytes]
    rx_codec: G711Codec
    rx_inband: bool

    def clock_analysed(
        self, pcm: NDArray[np.int16], codes: list[int] | None, levels: list[float]
    ) -> None:
        """Take the decoded frames (k, 160), their in-band key codes (or None) and dBFS levels."""


@dataclass(frozen=True)
class ClockStats:
    """A summary of the clock's behaviour (times in seconds).

    Attributes:
        wakeups: Times the clock task woke up.
        ticks: Passes run (one per 20 ms of media).
        caught_up: Passes run late, back to back after an earlier one in the same wake-up.
        skipped: Ticks dropped after a stall longer than ``max_catchup``.
        errors: Exceptions raised by clients (logged, the pass went on).
        lateness_p50: Median wake-up delay behind schedule.
        lateness_p99: 99th percentile wake-up delay.
        lateness_max: Largest wake-up delay.
        pass_p50: Median duration of one pass.
        pass_p99: 99th percentile duration of one pass.
        pass_max: Longest pass.
    """

    wakeups: int
    ticks: int
    caught_up: int
    skipped: int
    errors: int
    lateness_p50: float
    lateness_p99: float
    lateness_max: float
    pass_p50: float
    pass_p99: float
    pass_max: float


class _Ring:
    """The last 65,536 samples of a measurement, and the largest ever seen."""

    def __init__(self) -> None:
        self.values = np.zeros(_RING)
        self.count = 0
        self.max = 0.0

    def add(self, value: float) -> None:
        self.values[self.count & (_RING - 1)] = value
        self.count += 1
        if value > self.max:
            self.max = value

    def percentile(self, q: float) -> float:
        n = min(self.count, _RING)
        return float(np.percentile(self.values[:n], q)) if n else 0.0


class MediaClock:
    """One shared media clock per process (and event loop).

    Clients join with :meth:`add` and leave with :meth:`remove`; the task runs while there is at
    least one client and ends by itself when the last one leaves.

    Args:
        loop: The event loop every client lives on.
        ptime: Seconds per tick (20 ms: 160 samples of 8 kHz audio per packet).
        max_catchup: Most passes run back to back after a late wake-up.
        housekeeping_ticks: Passes between two housekeeping calls.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ptime: float = 0.02,
        max_catchup: int = 10,
        housekeeping_ticks: int = 5,
    ) -> None:
        self.loop = loop
        self.ptime = ptime
        self.max_catchup = max(1, max_catchup)
        self.housekeeping_ticks = max(1, housekeeping_ticks)
        self._clients: list[ClockClient] = []  # replaced, never mutated: safe to iterate
        self._rx_ready: list[FrameSink] = []
        self._task: asyncio.Task[None] | None = None
        self._lateness = _Ring()
        self._pass_time = _Ring()
        self._counts = {"wakeups": 0, "ticks": 0, "caught_up": 0, "skipped": 0, "errors": 0}

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def running(self) -> bool:
        """True while the clock task is alive."""
        return self._task is not None and not self._task.done()

    def add(self, client: ClockClient) -> None:
        """Start calling ``client`` every tick (from the next pass); starts the task if needed."""
        if client in self._clients:
            return
        self._clients = [*self._clients, client]
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._run(), name="media-clock")

    def remove(self, client: ClockClient | FrameSink) -> None:
        """Stop calling ``client`` (a clock client or a frame sink); drop its waiting frames."""
        self._clients = [c for c in self._clients if c is not client]
        self._rx_ready = [c for c in self._rx_ready if c is not client]

    def submit(self, sink: FrameSink) -> None:
        """Queue ``sink`` for this pass's analysis (call once, when its first frame arrives)."""
        self._rx_ready.append(sink)

    def close(self) -> None:
        """Drop every client and stop the task."""
        self._clients = []
        self._rx_ready = []
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def stats(self) -> ClockStats:
        """Counters and lateness/pass-time percentiles since the last :meth:`reset_stats`."""
        late, work = self._lateness, self._pass_time
        return ClockStats(
            **self._counts,
            lateness_p50=late.percentile(50),
            lateness_p99=late.percentile(99),
            lateness_max=late.max,
            pass_p50=work.percentile(50),
            pass_p99=work.percentile(99),
            pass_max=work.max,
        )

    def reset_stats(self) -> None:
        """Start measuring afresh (a benchmark calls this after its warm-up)."""
        self._lateness = _Ring()
        self._pass_time = _Ring()
        self._counts = dict.fromkeys(self._counts, 0)

    async def _run(self) -> None:
        loop, ptime, counts = self.loop, self.ptime, self._counts
        start = loop.time()
        n = 0  # index of the next tick to run
        while self._clients:
            due_at = start + n * ptime
            # Always yield, even when behind: receiving and signalling must get their turn.
            await asyncio.sleep(max(0.0, due_at - loop.time()))
            now = loop.time()
            counts["wakeups"] += 1
            self._lateness.add(now - due_at)
            due = max(1, int((now - start) / ptime) - n + 1)
            if due > self.max_catchup:
                counts["skipped"] += due - self.max_catchup
                start += (due - self.max_catchup) * ptime  # drop the backlog, keep the grid
                due = self.max_catchup
            counts["caught_up"] += due - 1
            for _ in range(due):
                began = time.perf_counter()
                self._pass(n)
                self._pass_time.add(time.perf_counter() - began)
                n += 1

    def _pass(self, n: int) -> None:
        self._counts["ticks"] += 1
        clients = self._clients
        for client in clients:
            try:
                client.clock_tick()
            except Exception:
                self._client_error(client, "tick")
        if self._rx_ready:
            ready, self._rx_ready = self._rx_ready, []
            self._analyse(ready)
        if n % self.housekeeping_ticks == 0:
            now = self.loop.time()
            for client in clients:
                try:
                    client.clock_housekeeping(now)
                except Exception:
                    self._client_error(client, "housekeeping")

    def _analyse(self, ready: list[FrameSink]) -> None:
        """Decode, classify and measure every waiting frame: one batch per (codec, in-band)."""
        groups: dict[tuple[G711Codec, bool], list[FrameSink]] = {}
        for sink in dict.fromkeys(ready):  # a stream restarted mid-tick may be there twice
            if sink.rx_frames:
                groups.setdefault((sink.rx_codec, sink.rx_inband), []).append(sink)
        for (codec, inband), group in groups.items():
            counts = [len(sink.rx_frames) for sink in group]
            blob = b"".join([frame for sink in group for frame in sink.rx_frames])
            for sink in group:
                sink.rx_frames = []
            pcm = codec.decode(np.frombuffer(blob, dtype=np.uint8).reshape(-1, FRAME_SAMPLES))
            levels: list[float] = frame_levels(pcm).tolist()
            codes: list[int] | None = classify_frames(pcm).tolist() if inband else None
            offset = 0
            for sink, k in zip(group, counts, strict=True):
                end = offset + k
                try:
                    # A copy per call, so a consumer that keeps frames holds only its own audio.
                    sink.clock_analysed(
                        pcm[offset:end].copy(),
                        None if codes is None else codes[offset:end],
                        levels[offset:end],
                    )
                except Exception:
                    self._client_error(sink, "analysis")
                offset = end

    def _client_error(self, client: object, stage: str) -> None:
        self._counts["errors"] += 1
        call_id = getattr(client, "call_id", "-")
        log.exception("[%s] media clock: %s failed; the other calls go on", call_id, stage)
