"""SIP timer values (RFC 3261 §17 and Table 4) and the doubling retransmission schedule.

Everything that waits in the SIP layer asks an injected :class:`~ivr.core.clock.Clock`, so
tests can shrink T1 and run the whole retransmission ladder in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ivr.core.clock import Clock, TimerHandle


@dataclass(frozen=True)
class Timers:
    """T1, T2 and T4 and the timers RFC 3261 derives from them (UDP values).

    Attributes:
        t1: RTT estimate, 500 ms by default.
        t2: The longest retransmit interval for non-INVITE requests and INVITE responses.
        t4: How long a message may stay in the network.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J, L and M, and the UAS's wait for the ACK of a 2xx."""
        return 64 * self.t1

    @property
    def d(self) -> float:
        """Timer D: how long an INVITE client keeps answering retransmitted final responses.

        RFC 3261 asks for at least 32 s over UDP; that is 64*T1 at the default T1, and it
        shrinks with T1 so that tests do not wait 32 s.
        """
        return 64 * self.t1


class Retransmitter:
    """Calls ``action`` after T, 2T, 4T ... (each gap capped at ``cap``) until stopped.

    Args:
        clock: Where the timers run.
        interval: The first gap (usually T1).
        cap: The longest gap (T2), or None for pure doubling (Timer A).
        action: What to do at each tick (resend a message).
    """

    __slots__ = ("_action", "_cap", "_clock", "_handle", "interval")

    def __init__(
        self, clock: Clock, interval: float, cap: float | None, action: Callable[[], None]
    ) -> None:
        self._clock = clock
        self.interval = interval
        self._cap = cap
        self._action = action
        self._handle: TimerHandle | None = None

    def start(self) -> None:
        """Schedule the first tick."""
        self.stop()
        self._handle = self._clock.call_later(self.interval, self._tick)

    def stop(self) -> None:
        """Cancel the next tick."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def running(self) -> bool:
        """True while ticks are scheduled."""
        return self._handle is not None

    def reset(self, interval: float) -> None:
        """Restart the schedule with gap ``interval`` (Timer E after a provisional: T2)."""
        self.interval = interval
        if self.running:
            self.start()

    def _tick(self) -> None:
        self._handle = None
        doubled = self.interval * 2
        self.interval = doubled if self._cap is None else min(doubled, self._cap)
        self._handle = self._clock.call_later(self.interval, self._tick)
        self._action()  # last: the action may stop us
