"""An Asterisk queue's state read over AMI: ``QueueSummary`` and ``QueueStatus``
(docs/ASTERISK.md, "Reading the queues").

Asterisk answers both with a list of events; numbers it sends that are not numbers read as 0
(a peer's text is never trusted to be what the field says).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ivr.ami.client import AmiClient, AmiError
from ivr.ami.wire import AmiMessage

# QueueMember's Status: Asterisk's device states (include/asterisk/devicestate.h).
DEVICE_STATES = {0: "unknown", 1: "not_in_use", 2: "in_use", 3: "busy", 4: "invalid",
                 5: "unavailable", 6: "ringing", 7: "ring_in_use", 8: "on_hold"}  # fmt: skip


@dataclass(frozen=True)
class Member:
    """An agent of the queue, as Asterisk sees them."""

    name: str
    interface: str
    state: str
    paused: bool
    calls_taken: int


@dataclass(frozen=True)
class Waiting:
    """A caller waiting in the queue."""

    position: int
    channel: str
    caller: str
    wait: int  # seconds


@dataclass(frozen=True)
class QueueState:
    """One Asterisk queue now: figures of QueueSummary and QueueParams, members, callers."""

    queue: str
    logged_in: int = 0
    available: int = 0
    callers: int = 0
    hold_time: int = 0  # Asterisk's mean hold time, seconds
    talk_time: int = 0
    longest_hold_time: int = 0
    completed: int = 0
    abandoned: int = 0
    strategy: str = ""
    members: tuple[Member, ...] = ()
    waiting: tuple[Waiting, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def queue_state(client: AmiClient, queue: str) -> QueueState:
    """Ask Asterisk for ``queue``'s state.

    Raises:
        AmiError: not connected, no reply, or Asterisk refused (an unknown queue).
    """
    summary, summaries = await client.listing("QueueSummary", {"Queue": queue})
    status, items = await client.listing("QueueStatus", {"Queue": queue})
    for reply in (summary, status):
        if not reply.ok:
            raise AmiError(f"Asterisk: queue {queue}: {reply.get('Message') or reply.name}")
    first = next((e for e in summaries if e.name == "QueueSummary"), None)
    params = next((e for e in items if e.name == "QueueParams"), None)
    return QueueState(
        queue=queue,
        logged_in=_int(first, "LoggedIn"),
        available=_int(first, "Available"),
        callers=_int(first, "Callers") or _int(params, "Calls"),
        hold_time=_int(first, "HoldTime") or _int(params, "Holdtime"),
        talk_time=_int(first, "TalkTime") or _int(params, "TalkTime"),
        longest_hold_time=_int(first, "LongestHoldTime"),
        completed=_int(params, "Completed"),
        abandoned=_int(params, "Abandoned"),
        strategy=params.get("Strategy")[:40] if params else "",
        members=tuple(_member(e) for e in items if e.name == "QueueMember"),
        waiting=tuple(_waiting(e) for e in items if e.name == "QueueEntry"),
    )


def _member(e: AmiMessage) -> Member:
    return Member(name=(e.get("Name") or e.get("MemberName"))[:80],
                  interface=(e.get("StateInterface") or e.get("Location"))[:80],
                  state=DEVICE_STATES.get(_int(e, "Status"), "unknown"),
                  paused=e.get("Paused") == "1", calls_taken=_int(e, "CallsTaken"))  # fmt: skip


def _waiting(e: AmiMessage) -> Waiting:
    return Waiting(position=_int(e, "Position"), channel=e.get("Channel")[:128],
                   caller=e.get("CallerIDNum")[:40], wait=_int(e, "Wait"))  # fmt: skip


def _int(message: AmiMessage | None, key: str) -> int:
    text = message.get(key) if message is not None else ""
    return int(text) if text.isdigit() and len(text) < 10 else 0
