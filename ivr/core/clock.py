"""Clocks: the engine never reads time or sleeps by itself; it asks an injected clock.

:class:`LoopClock` runs on an asyncio loop (real calls). :class:`VirtualClock` is a heap of timers
that the simulator advances instantly, so a whole call runs in microseconds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time source and timer scheduler for sessions."""

    def now(self) -> float:
        """Seconds since an arbitrary origin (monotonic)."""
        ...

    def wall(self) -> float:
        """Seconds since the Unix epoch (for records and business hours)."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` after ``delay`` seconds; the handle cancels it."""
        ...


class LoopClock:
    """A clock on a running asyncio loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_event_loop()

    def now(self) -> float:
        return self._loop.time()

    def wall(self) -> float:
        return time.time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self._loop.call_later(max(0.0, delay), callback)


class WallShiftedClock(LoopClock):
    """A loop clock whose wall time starts at ``wall_start`` (timers are the loop's own).

    A QA call that says when it happens (business hours in a script's ``at:``) runs on it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, wall_start: float) -> None:
        super().__init__(loop)
        self._offset = wall_start - time.time()

    def wall(self) -> float:
        return time.time() + self._offset


class _VirtualTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A deterministic clock: time moves only when :meth:`advance` or :meth:`run` says so.

    Timers due at the same instant run in the order they were scheduled.
    """

    def __init__(self, start: float = 0.0, wall_origin: float = 1_798_761_600.0) -> None:
        self._now = start
        self._wall_origin = wall_origin - start  # default origin: 2027-01-01T00:00Z
        self._heap: list[tuple[float, int, _VirtualTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall_origin + self._now

    def set_wall(self, epoch_seconds: float) -> None:
        """Make :meth:`wall` read ``epoch_seconds`` now (for business-hours tests)."""
        self._wall_origin = epoch_seconds - self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _VirtualTimer(self._now + max(0.0, delay), callback)
        heapq.heappush(self._heap, (timer.when, next(self._seq), timer))
        return timer

    def next_due(self) -> float | None:
        """When the next live timer fires, or None when nothing is scheduled."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def step(self) -> bool:
        """Run the next due timer (moving time to it); False when none is left."""
        due = self.next_due()
        if due is None:
            return False
        _, _, timer = heapq.heappop(self._heap)
        self._now = max(self._now, due)
        timer.callback()
        return True

    def advance(self, seconds: float) -> None:
        """Run every timer due within ``seconds`` from now, then stand at now + seconds."""
        until = self._now + seconds
        while True:
            due = self.next_due()
            if due is None or due > until:
                break
            self.step()
        self._now = max(self._now, until)

    def run(self, limit: float = 3600.0) -> None:
        """Run timers until none is left or ``limit`` virtual seconds have passed."""
        until = self._now + limit
        while True:
            due = self.next_due()
            if due is None or due > until:
                return
            self.step()
