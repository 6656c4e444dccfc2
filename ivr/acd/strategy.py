"""Which available agent rings for a caller: the queue's strategy.

Each function gets the candidates (available, registered, able to take the caller) and the
definition index of the agent the queue rang last, and returns the candidates in the order to
try; the authority rings the first (all of
them for ``ring-all``). Ties are broken by idle time, then by definition order, so a choice is
always the same for the same state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """An agent as the strategies see it."""

    id: str
    index: int  # definition order
    idle_since: float  # when the agent last became free (login, or the end of wrap-up)
    calls: int  # calls answered since login
    level: int  # fit for the caller's skills (sum of levels)


def longest_idle(candidates: Sequence[Candidate], last: int | None) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.idle_since, c.index))


def fewest_calls(candidates: Sequence[Candidate], last: int | None) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.calls, c.idle_since, c.index))


def skill_level(candidates: Sequence[Candidate], last: int | None) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (-c.level, c.idle_since, c.index))


def round_robin(candidates: Sequence[Candidate], last: int | None) -> list[Candidate]:
    """The next agent after the one this queue rang last (by definition order), wrapping."""
    ordered = sorted(candidates, key=lambda c: c.index)
    if last is None:
        return ordered
    after = [c for c in ordered if c.index > last]
    return after + [c for c in ordered if c.index <= last]


STRATEGY: dict[str, Callable[[Sequence[Candidate], int | None], list[Candidate]]] = {
    "longest-idle": longest_idle,
    "ring-all": longest_idle,  # every candidate rings; the order only says who is logged first
    "fewest-calls": fewest_calls,
    "skill-level": skill_level,
    "round-robin": round_robin,
}
