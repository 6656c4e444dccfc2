"""The agent queue as the engine sees it (docs/ACD.md).

The engine's enqueue step keeps the caller company while they wait and says what happens to the
call; it does not decide who answers. That is the queue's (:class:`Queues`, provided by the host
over the queue authority, or by the simulator with simulated agents): the step joins it with a
:class:`QueueRequest` and is told, as a :class:`QueueWaiter`, to ring an agent
(:meth:`~QueueWaiter.on_offer`), to stop (:meth:`~QueueWaiter.on_withdraw`) or that the caller
leaves by an exit (:meth:`~QueueWaiter.on_queue_exit`). Ringing and bridging are the channel's
(:meth:`~ivr.engine.channel.Channel.ring_agent`); the step reports each agent leg's outcome back
to its :class:`QueuePlace`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# Agent leg states a channel reports (ChannelListener.on_agent_leg).
ANSWERED = "answered"  # the agent took the call: caller and agent are bridged
REJECTED = "rejected"  # the agent's phone refused (busy, declined)
NO_ANSWER = "no_answer"  # the ring timeout passed
FAILED = "failed"  # the agent could not be reached
ENDED = "ended"  # the bridged call ended on the agent's side
LEG_OUTCOMES = (ANSWERED, REJECTED, NO_ANSWER, FAILED)
# The exit (QueueWaiter.on_queue_exit) of a caller handed to a queue another system runs (an
# Asterisk queue, docs/ASTERISK.md): the session ends with this outcome and does not hang up
# (that system took the caller's channel); the queue's events complete the record later.
HANDED_OFF = "asterisk_queue"


@dataclass(frozen=True)
class QueueRequest:
    """Put the caller in a queue."""

    queue: str
    priority: int
    skills: tuple[str, ...]
    language: str
    tier: str = "general"
    caller: str = ""  # the caller's number (a callback calls it)


@dataclass(frozen=True)
class AgentOffer:
    """Ring ``agent`` at ``contact`` for this caller for ``ring_timeout`` seconds; ``whisper``
    is said to the agent only before the caller is connected."""

    id: int
    agent: str
    contact: str
    ring_timeout: float
    whisper: str | None = None
    language: str = "en"  # the caller's, for the whisper


class QueueWaiter(Protocol):
    """The waiting caller's side (the enqueue step)."""

    def on_offer(self, offer: AgentOffer) -> None:
        """Ring this agent for the caller."""

    def on_withdraw(self, offer_id: int) -> None:
        """Stop ringing that agent (another answered, or the agent paused)."""

    def on_queue_exit(self, reason: str) -> None:
        """The caller leaves the queue without an agent (max_wait, no_agents)."""

    def on_queue_moved(self, queue: str, old_queue: str) -> None:
        """A supervisor moved the caller to ``queue`` (from ``old_queue``; the same name: to
        its head). The caller keeps waiting; for another queue, what rang for them was
        withdrawn first (:meth:`on_withdraw`)."""


class QueuePlace(Protocol):
    """The caller's place in line.

    A place may have a ``handing_off`` attribute, true while the caller is being handed to a
    queue another system runs: a hang-up then ends the session as :data:`HANDED_OFF`.
    """

    def figures(self, done: Callable[[int | None, float | None], None]) -> None:
        """Call ``done(position, expected_wait)``: 1 for the next caller (None: no longer
        waiting), seconds still to wait as the queue estimates it (None: no estimate). At once
        or later (the queue may be in another process); on the session's loop."""

    def result(self, offer_id: int, outcome: str) -> None:
        """How an agent leg ended: one of :data:`LEG_OUTCOMES`."""

    def agent_done(self, agent: str) -> None:
        """The bridged call with ``agent`` is over (either side hung up)."""

    def leave(self) -> None:
        """The caller leaves the line (hung up, or took a key's exit)."""

    def callback(self, number: str) -> bool:
        """The caller hangs up but keeps their place: at the head, an agent and then
        ``number`` are called and bridged. False where callbacks are not offered."""


class Queues(Protocol):
    """The agent queue."""

    def join(self, call_id: str, request: QueueRequest,
             waiter: QueueWaiter) -> QueuePlace | str:  # fmt: skip
        """Take the caller's place in line, or the exit the caller takes at once (``full``,
        ``no_agents``, or ``no_queue`` for a queue nobody configured)."""
