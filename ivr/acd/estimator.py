"""Expected wait, honestly rounded.

The estimate for a caller at position ``p`` (1 = next) with ``n`` agents able to take them is
``ceil(p / n)`` rounds of the queue's average handle time: the position-over-agents model most
ACDs announce, fed with the handle times of the queue's recent calls (an exponentially weighted
mean, so a change of pace shows within a few calls). With no agent able to take the caller there
is no estimate.

What a caller hears is rounded up to whole minutes (a caller told "two minutes" who waits three
feels lied to; one who waits one is pleased), and past :data:`CAP_MINUTES` it is "more than N
minutes" rather than a figure nobody can stand behind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_HANDLE = 180.0  # seconds assumed before a queue has handled any call
WEIGHT = 0.2  # of the newest handle time in the running mean
CAP_MINUTES = 15


@dataclass
class HandleTimes:
    """A queue's recent handle times (talk + wrap-up), as a running mean."""

    mean: float = DEFAULT_HANDLE
    count: int = 0

    def add(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.mean = seconds if self.count == 0 else (1 - WEIGHT) * self.mean + WEIGHT * seconds
        self.count += 1


def expected_wait(position: int, agents: int, handle: float) -> float | None:
    """Seconds until the caller at ``position`` (1-based) should reach an agent; None with no
    agent able to take them."""
    if agents <= 0:
        return None
    rounds = math.ceil(position / agents)
    return rounds * handle


@dataclass(frozen=True)
class Spoken:
    """What to say of a wait: ``minutes`` rounded up, or more than ``minutes`` when ``over``."""

    minutes: int
    over: bool = False


def spoken_wait(seconds: float | None) -> Spoken | None:
    """The wait as a caller hears it (None: say nothing about it)."""
    if seconds is None:
        return None
    minutes = max(1, math.ceil(seconds / 60.0))
    if minutes > CAP_MINUTES:
        return Spoken(CAP_MINUTES, over=True)
    return Spoken(minutes)
