"""What the agent queue knows: agents and queues as ops define them, callers as they wait.

Specs (:class:`AgentSpec`, :class:`QueueSpec`) are frozen: they come from ``acd:`` in ivr.yaml
(or the file it names; :mod:`ivr.acd.config`) and change only on a reload. :class:`Ticket` is a
caller waiting; :class:`Offer` is one agent rung for one caller. Runtime state lives in
:mod:`ivr.acd.authority`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Permission tiers, lowest first: an agent may take a call that needs its tier or a lower one.
TIERS: tuple[str, ...] = ("general", "accounts", "full")
STRATEGIES: tuple[str, ...] = ("longest-idle", "round-robin", "ring-all", "fewest-calls",
                               "skill-level")  # fmt: skip


def tier_rank(tier: str) -> int:
    """0 for ``general`` ... 2 for ``full``; ValueError for an unknown tier."""
    return TIERS.index(tier)


class AgentState(StrEnum):
    """Where an agent is. Only ``available`` agents are offered callers."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class Outcome(StrEnum):
    """How an offer ended (reported by the caller's worker)."""

    ANSWERED = "answered"
    REJECTED = "rejected"  # the agent's phone said no (486, 603, ...)
    NO_ANSWER = "no_answer"  # the ring timeout passed
    FAILED = "failed"  # the agent could not be reached (no route, 404, 408 ...)
    CALLER_GONE = "caller_gone"  # the caller hung up while the agent rang


class ExitReason(StrEnum):
    """Why a caller left the queue without an agent (the flow's exits)."""

    MAX_WAIT = "max_wait"
    NO_AGENTS = "no_agents"  # nobody logged in who could take this caller
    FULL = "full"
    KEY = "key"  # the caller pressed a key the flow gives an exit to
    CALLER_GONE = "caller_gone"
    WORKER_GONE = "worker_gone"  # the engine process carrying the call died


@dataclass(frozen=True)
class AgentSpec:
    """An agent as ops define them (``acd.agents`` of ivr.yaml)."""

    id: str
    name: str = ""
    skills: dict[str, int] = field(default_factory=dict)  # skill -> level 1..10
    tier: str = "general"
    languages: tuple[str, ...] = ()  # empty: any language
    wrap_up: float = 10.0  # seconds after a call before the next one
    max_misses: int = 3  # missed rings in a row before the agent is paused

    def can_take(self, skills: tuple[str, ...], tier: str, language: str) -> bool:
        """Whether this agent may take a caller needing ``skills``, ``tier`` and ``language``."""
        if tier_rank(self.tier) < tier_rank(tier):
            return False
        if any(skill not in self.skills for skill in skills):
            return False
        return not self.languages or not language or language in self.languages

    def level(self, skills: tuple[str, ...]) -> int:
        """How well the agent fits ``skills`` (the sum of its levels in them)."""
        return sum(self.skills.get(skill, 0) for skill in skills)


@dataclass(frozen=True)
class QueueSpec:
    """A queue as ops define it (``acd.queues`` of ivr.yaml)."""

    name: str
    strategy: str = "longest-idle"
    ring_timeout: float = 15.0
    retry_delay: float = 5.0
    max_wait: float | None = None  # seconds; None: no limit
    max_callers: int | None = None
    service_level: float = 20.0  # answered within this many seconds counts as in service level
    members: tuple[str, ...] | None = None  # agent ids; None: every agent who can take the call
    skills: tuple[str, ...] = ()  # needed by every caller of this queue, besides their own
    tier: str = "general"  # the least tier of this queue's calls
    hold_music: str | None = None  # a recorded prompt id; None: the flow's or the platform's

    def admits(self, agent: AgentSpec, skills: tuple[str, ...], tier: str, language: str) -> bool:
        """Whether ``agent`` may take a caller of this queue needing ``skills``, ``tier`` and
        ``language`` (besides the queue's own skills and tier)."""
        if self.members is not None and agent.id not in self.members:
            return False
        return agent.can_take((*self.skills, *skills), max(self.tier, tier, key=tier_rank),
                              language)  # fmt: skip


@dataclass
class Ticket:
    """A caller waiting (or a callback keeping a caller's place)."""

    call_id: str
    queue: str
    priority: int = 5  # 0..10, higher first
    skills: tuple[str, ...] = ()
    tier: str = "general"
    language: str = ""
    worker: int = 0  # the engine process carrying the call
    callback: str | None = None  # the number to call back; the caller is no longer on the line
    joined_at: float = 0.0
    seq: int = 0  # join order, the tie-break after priority
    # Where the caller stands in line when a supervisor moved them to the head of a queue (a
    # time before the head's); None: by when they joined. The wait still counts from joined_at.
    place: float | None = None

    def sort_key(self) -> tuple[int, float, int]:
        return (-self.priority, self.joined_at if self.place is None else self.place, self.seq)


@dataclass(frozen=True)
class Offer:
    """Ring ``agent`` for the caller of ``call_id`` (on ``worker``), for ``ring_timeout`` s."""

    id: int
    call_id: str
    agent: str
    contact: str
    worker: int
    ring_timeout: float
    callback: str | None = None
