"""Counters that outlive a call: how many wrong PINs an account or caller has had lately.

A lockout counted in a variable lasts one call: a caller locked out calls again and tries
again. A ``counter`` node (docs/FLOWS.md) reads, adds to or resets a named count kept by the
runtime's :class:`Counters`: the host keeps them in the SQLite store (``ivr/store/counters.py``,
shared by every worker process and kept across restarts); without one (tools, tests) a session
keeps its own in memory (:class:`MemoryCounters`), which counts within the call only.

A count expires ``expire`` seconds after it last grew: the lockout ends by itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

#: Longest key kept (after rendering): longer keys are cut, never stored whole.
MAX_KEY = 200


class Counters(Protocol):
    """Named counts with expiry."""

    def update(self, key: str, add: int, reset: bool, expire: float, now: float) -> int:
        """Reset the count of ``key`` (``reset``) or add ``add`` to it (0: read), and return
        it. A count whose expiry (``now`` plus ``expire`` at its last increase) has passed is
        0 again."""
        ...


@dataclass
class MemoryCounters:
    """Counters in a dict (one process, nothing kept): the fallback without a store."""

    counts: dict[str, tuple[int, float]] = field(default_factory=dict)

    def preset(self, key: str, value: int, expires: float) -> None:
        """Start ``key`` at ``value`` until wall time ``expires`` (call scripts' ``counters``)."""
        self.counts[key] = (value, expires)

    def update(self, key: str, add: int, reset: bool, expire: float, now: float) -> int:
        value, expires = self.counts.get(key, (0, now))
        if reset or expires <= now:
            value = 0
        if reset:
            self.counts.pop(key, None)
            return 0
        if add:
            value, expires = max(0, value + add), now + expire
        if value:
            self.counts[key] = (value, expires)
        return value
