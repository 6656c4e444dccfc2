"""Per-source admission of incoming INVITEs: one address cannot take every slot.

``max_calls`` bounds the calls of the whole server; without a bound per source, one host
sending a few INVITEs a second that it never ACKs (each holds its slot for 64*T1 while our
2xx is retransmitted) keeps every slot busy and everybody else gets 503. Three limits per
source IP address, each 0 for "no limit":

- ``max_calls``: calls from the address ringing, answered or up;
- ``max_unconfirmed``: calls from the address not yet confirmed by their ACK;
- ``rate`` and ``burst``: new INVITEs per second from the address (a token bucket).

An INVITE over a limit gets 503 with Retry-After, like an overload. The limits count per
engine process (with ``--workers N`` a source's calls are spread over the workers by Call-ID).
A server on a public line should also have a front that drops floods before they reach
Python (docs/SECURITY.md: Kamailio's ``pike`` and ``ratelimit``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Sources remembered for their token buckets; beyond this, idle ones (full bucket, no calls)
# are forgotten, so a flood from many (spoofed) addresses cannot grow the table without end.
MAX_SOURCES = 10_000


@dataclass(frozen=True)
class SourceLimits:
    """ivr.yaml ``sip.per_source``: how much one source address may take (0: no limit)."""

    max_calls: int = 0
    max_unconfirmed: int = 20
    rate: float = 20.0
    burst: int = 50


NO_SOURCE_LIMITS = SourceLimits(0, 0, 0.0, 0)  # a user agent used as a library: none

@dataclass
class _Source:
    tokens: float
    stamp: float
    calls: set[str] = field(default_factory=set)  # refs of its calls still up
    unconfirmed: set[str] = field(default_factory=set)  # ... of which not ACKed yet


class SourceAdmission:
    """Counts each source's calls and INVITE rate; says which INVITEs to refuse.

    Args:
        limits: The limits.
        now: A monotonic clock (seconds).
    """

    def __init__(self, limits: SourceLimits, now: Callable[[], float]) -> None:
        self.limits = limits
        self._now = now
        self._sources: dict[str, _Source] = {}
        self._by_ref: dict[str, str] = {}  # call ref -> its source
        self.refused = 0

    def _time(self) -> float:
        return self._now()

    def refuse(self, host: str) -> str | None:
        """Why an INVITE from ``host`` must be refused now, or None (it takes a token)."""
        limits, now = self.limits, self._time()
        source = self._sources.get(host)
        if source is None:
            self._forget_idle(now)
            source = self._sources[host] = _Source(float(limits.burst), now)
        if limits.rate > 0:
            source.tokens = min(float(limits.burst),
                                source.tokens + (now - source.stamp) * limits.rate)  # fmt: skip
            source.stamp = now
        why = None
        if limits.max_calls and len(source.calls) >= limits.max_calls:
            why = f"{len(source.calls)} calls from {host}"
        elif limits.max_unconfirmed and len(source.unconfirmed) >= limits.max_unconfirmed:
            why = f"{len(source.unconfirmed)} calls from {host} not confirmed by an ACK"
        elif limits.rate > 0 and source.tokens < 1.0:
            why = f"more than {limits.rate:g} INVITEs a second from {host}"
        if why is not None:
            self.refused += 1
            return why
        if limits.rate > 0:
            source.tokens -= 1.0
        return None

    def opened(self, ref: str, host: str) -> None:
        """A call from ``host`` was taken (after :meth:`refuse` said None)."""
        source = self._sources.get(host)
        if source is None:
            source = self._sources[host] = _Source(float(self.limits.burst), self._time())
        source.calls.add(ref)
        source.unconfirmed.add(ref)
        self._by_ref[ref] = host

    def confirmed(self, ref: str) -> None:
        """The call's ACK came."""
        source = self._sources.get(self._by_ref.get(ref, ""))
        if source is not None:
            source.unconfirmed.discard(ref)

    def closed(self, ref: str) -> None:
        """The call ended, however."""
        source = self._sources.get(self._by_ref.pop(ref, ""))
        if source is not None:
            source.calls.discard(ref)
            source.unconfirmed.discard(ref)

    def _forget_idle(self, now: float) -> None:
        if len(self._sources) < MAX_SOURCES:
            return
        limits = self.limits
        for host, source in list(self._sources.items()):
            full = limits.rate <= 0 or source.tokens + (now - source.stamp) * limits.rate >= \
                limits.burst  # fmt: skip
            if full and not source.calls:
                del self._sources[host]
