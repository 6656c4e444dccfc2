"""What the queue authority keeps so that an event costs what it changes, not what waits.

Callers who need the same thing (queue, skills, tier, language: a *signature*) can be taken by
the same agents, and that set depends on the specs alone (frozen: the authority is made with
them and never changes them). Per signature a :class:`Group` holds:
how many of those agents are logged in, how many are working (logged in, not paused, with a
contact), which are free (available with a contact), and the group's callers with no offer out,
in the order they are served. The authority tells :class:`Groups` every agent state change and
registration (:meth:`Groups.agent_changed`) and moves callers in and out of
:attr:`Group.ready`; choosing the next caller for a free agent, or counting the agents able to
take a caller, then looks at a few groups instead of every caller and every agent.

Registrations run out by time, not by event: between the instant one runs out and its timer
(timers due at the same instant, a late event loop), the counts above still count it.
:meth:`Groups.lapsed` says when that is so; the authority then counts the slow way.
"""

from __future__ import annotations

import bisect
import heapq
from typing import TYPE_CHECKING

from ivr.acd.model import AgentState

if TYPE_CHECKING:
    from collections.abc import Callable

    from ivr.acd.authority import Agent

Key = tuple[int, float, int]  # Ticket.sort_key(): served first, smallest
Signature = tuple[str, tuple[str, ...], str, str]  # queue, skills, tier, language
Flags = tuple[bool, bool, bool]  # logged in, working, free


def flags(agent: Agent) -> Flags:
    """What an agent counts for: logged in; working (and registered); free (and registered)."""
    state = agent.state
    logged_in = state != AgentState.LOGGED_OUT
    working = logged_in and state != AgentState.PAUSED and bool(agent.contact)
    free = state == AgentState.AVAILABLE and agent.contact is not None
    return logged_in, working, free


class Group:
    """The agents who may take one signature's callers, and those callers not being offered."""

    __slots__ = ("free", "logged_in", "ready", "waiting", "working")

    def __init__(self) -> None:
        self.logged_in = 0
        self.working = 0
        self.free: dict[str, Agent] = {}  # by id; the strategies order them
        self.ready: list[Key] = []  # sorted: waiting, no offer out (maybe in a retry delay)
        self.waiting = 0  # callers of this signature waiting, offered or not

    def set_ready(self, key: Key, ready: bool) -> None:
        """Put ``key`` in :attr:`ready` or take it out (either may already be so)."""
        keys = self.ready
        index = bisect.bisect_left(keys, key)
        there = index < len(keys) and keys[index] == key
        if ready and not there:
            keys.insert(index, key)
        elif there and not ready:
            del keys[index]


class Groups:
    """Every signature seen so far (groups are made on first use and kept: signatures come
    from the flows and the queues, a short list).

    Args:
        agents: The authority's agents (the same dict: states are read from it).
        serves: Whether an agent may take callers of a signature (fixed by the specs).
    """

    def __init__(self, agents: dict[str, Agent],
                 serves: Callable[[Agent, Signature], bool]) -> None:  # fmt: skip
        self._agents = agents
        self._serves = serves
        self.groups: dict[Signature, Group] = {}
        self._of: dict[str, list[Group]] = {agent_id: [] for agent_id in agents}
        self._flags: dict[str, Flags] = {a: flags(agent) for a, agent in agents.items()}
        self.free_agents = sum(f[2] for f in self._flags.values())
        self._expiries: list[tuple[float, str]] = []  # heap of registrations' ends (some stale)

    def group(self, sig: Signature) -> Group:
        group = self.groups.get(sig)
        if group is None:
            group = self.groups[sig] = Group()
            for agent_id, agent in self._agents.items():
                if self._serves(agent, sig):
                    self._of[agent_id].append(group)
                    logged_in, working, free = self._flags[agent_id]
                    group.logged_in += logged_in
                    group.working += working
                    if free:
                        group.free[agent_id] = agent
        return group

    def agent_changed(self, agent: Agent) -> None:
        """After any change of the agent's state or contact."""
        agent_id = agent.spec.id
        new, old = flags(agent), self._flags[agent_id]
        if new == old:
            return
        self._flags[agent_id] = new
        logged_in, working = new[0] - old[0], new[1] - old[1]
        free = new[2] != old[2]
        if free:
            self.free_agents += 1 if new[2] else -1
        for group in self._of[agent_id]:
            group.logged_in += logged_in
            group.working += working
            if free:
                if new[2]:
                    group.free[agent_id] = agent
                else:
                    del group.free[agent_id]

    def registered(self, agent: Agent) -> None:
        """After the agent's registration changed (``contact``, ``registered_until``)."""
        if agent.contact is not None:
            heapq.heappush(self._expiries, (agent.registered_until, agent.spec.id))
        self.agent_changed(agent)

    def lapsed(self, now: float) -> bool:
        """Whether some agent's registration has run out by ``now`` while its contact is still
        set (its timer has not run yet): then the counts here are not to be trusted."""
        heap = self._expiries
        while heap:
            until, agent_id = heap[0]
            agent = self._agents[agent_id]
            if agent.contact is not None and agent.registered_until == until:
                return until <= now
            heapq.heappop(heap)  # renewed or gone since
        return False
