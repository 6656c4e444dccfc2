"""Asterisk's queue events turned into our call records (docs/ASTERISK.md, "Records").

A caller redirected into an Asterisk queue is followed by their Asterisk channel
(:meth:`QueueRecords.follow`). The queue events of that channel become the step events our own
enqueue step would have written, on the same call id, so the store's triggers fill the call's
row and ``ivr report`` counts the queue like one of ours:

=====================  ===========================================================
Asterisk               our record
=====================  ===========================================================
QueueCallerJoin        (the channel's Uniqueid is learnt; the entry is already open)
AgentCalled            ``agent_ring`` (agent: the member's name)
AgentRingNoAnswer      ``agent_result`` (outcome ``no_answer``)
AgentConnect           ``agent_connected`` (queue_wait: Asterisk's HoldTime)
AgentComplete          ``agent_done`` (talk: Asterisk's TalkTime), ``call_end`` agent
QueueCallerAbandon     ``hangup`` by the caller (queue_wait: HoldTime), ``call_end``
                       abandoned_in_queue
QueueCallerLeave       (remembered: a hang-up after it without an agent is an exit)
Hangup                 the end of a call no event above ended
=====================  ===========================================================

The session's own events are numbered from 0; these from :data:`SEQ_BASE`, so both can be in the
store with no clash and in the order they happened. Times are Asterisk's own (HoldTime,
TalkTime) where it gives them, else measured here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from ivr.ami.wire import AmiMessage
from ivr.core import events as ev
from ivr.core.clock import Clock
from ivr.core.events import Event, EventSink

log = logging.getLogger("ivr.ami")

SEQ_BASE = 1_000_000
MAX_FOLLOWED = 10_000  # calls followed at once: a peer's events can never grow this
# A call Asterisk has said nothing of for this long (its events were lost while AMI was down)
# is ended as lost, so the report does not count it as waiting for ever.
MAX_SILENCE = 6 * 3600.0
ASTERISK_QUEUE = "asterisk_queue"  # the session's outcome when it handed the caller over


@dataclass
class _Followed:
    """One redirected caller, until their call ends in Asterisk."""

    call_id: str
    channel: str
    queue: str  # our name of the queue (the report's)
    node: str | None
    flow: str | None
    call_time: float  # seconds of the call when followed
    since: float  # the clock then
    heard: float = 0.0  # the clock at its last event (or when followed)
    uniqueid: str = ""
    seq: int = SEQ_BASE
    agent: str = ""
    connected_at: float | None = None
    left: bool = False
    held: list[Event] | None = None  # written once the session has ended (see release)
    ended: bool = False


class QueueRecords:
    """Follows redirected callers and writes their queue's events to ``sink``."""

    def __init__(self, sink: EventSink, clock: Clock) -> None:
        self.sink = sink
        self.clock = clock
        self._calls: dict[str, _Followed] = {}  # by channel name
        self._uniqueids: dict[str, str] = {}  # Asterisk's Uniqueid -> channel name
        self._pruned_at = clock.now()

    def follow(self, call_id: str, channel: str, queue: str, *, call_time: float,
               node: str | None = None, flow: str | None = None) -> bool:  # fmt: skip
        """Follow ``channel`` (redirected into ``queue``) for call ``call_id``, now
        ``call_time`` seconds into the call. False when too many are followed already."""
        self._prune()
        if len(self._calls) >= MAX_FOLLOWED:
            log.error("call %s: not following %s: %d calls followed already", call_id, channel,
                      MAX_FOLLOWED)  # fmt: skip
            return False
        self._calls[channel] = _Followed(call_id, channel, queue, node, flow, call_time,
                                         self.clock.now(), self.clock.now(),
                                         held=[])  # fmt: skip
        return True

    def _prune(self) -> None:
        """End the records of calls Asterisk has been silent about for :data:`MAX_SILENCE`
        (looked for once a minute at most: a look costs every call followed)."""
        now = self.clock.now()
        if now - self._pruned_at < 60 and len(self._calls) < MAX_FOLLOWED:
            return
        self._pruned_at = now
        for followed in list(self._calls.values()):
            if followed.held is None and not followed.ended \
                    and now - followed.heard > MAX_SILENCE:  # fmt: skip
                self._emit(followed, ev.QUEUE_EXIT, reason="lost", queue_wait=None)
                self._end(followed, "asterisk_lost")

    def release(self, channel: str) -> None:
        """The session of ``channel``'s call has ended: write what was held, then write as
        events come. (Asterisk's events can come before its reply to the Redirect, that is
        before the session's own end, which must not be the record's last word.)"""
        followed = self._calls.get(channel)
        held = followed.held if followed is not None else None
        if followed is None or held is None:
            return
        followed.held = None
        for event in held:
            self.sink(event)
        if followed.ended:
            self._forget(followed)

    def _forget(self, followed: _Followed) -> None:
        if self._calls.get(followed.channel) is followed:
            del self._calls[followed.channel]
        self._uniqueids.pop(followed.uniqueid, None)

    def forget(self, channel: str) -> None:
        """Stop following ``channel`` (its redirect failed: the call stays with us)."""
        followed = self._calls.get(channel)
        if followed is not None:
            self._forget(followed)

    def abandon(self, channel: str) -> None:
        """The caller hung up before Asterisk took them (a Redirect that then failed)."""
        followed = self._calls.get(channel)
        if followed is not None and not followed.ended:
            self._emit(followed, ev.HANGUP, by="caller", queue_wait=self._waited(followed))
            self._end(followed, "abandoned_in_queue")
        self.release(channel)

    def following(self, call_id: str) -> bool:
        return any(f.call_id == call_id for f in self._calls.values())

    def on_event(self, message: AmiMessage) -> None:
        """An AMI event (the client's ``on_event``)."""
        handler = _HANDLERS.get(message.name)
        if handler is None:
            return
        followed = self._find(message)
        if followed is not None and not followed.ended:
            followed.heard = self.clock.now()
            handler(self, followed, message)

    def _find(self, message: AmiMessage) -> _Followed | None:
        uniqueid = message.get("Uniqueid")
        if uniqueid in self._uniqueids:
            return self._calls.get(self._uniqueids[uniqueid])
        # Asterisk 13+ names the caller Channel; 1.8-11 name it ChannelCalling in agent events.
        channel = message.get("Channel") or message.get("ChannelCalling")
        followed = self._calls.get(channel) if channel else None
        if followed is not None and uniqueid and not followed.uniqueid:
            followed.uniqueid = uniqueid
            self._uniqueids[uniqueid] = followed.channel
        return followed

    # --- the events -----------------------------------------------------------------------

    def _join(self, f: _Followed, m: AmiMessage) -> None:
        log.info("call %s: in Asterisk queue %s at position %s", f.call_id, m.get("Queue"),
                 m.get("Position") or "?")  # fmt: skip

    def _called(self, f: _Followed, m: AmiMessage) -> None:
        self._emit(f, ev.AGENT_RING, agent=_agent(m))

    def _no_answer(self, f: _Followed, m: AmiMessage) -> None:
        self._emit(f, ev.AGENT_RESULT, agent=_agent(m), outcome="no_answer")

    def _connect(self, f: _Followed, m: AmiMessage) -> None:
        f.agent, f.connected_at = _agent(m), self.clock.now()
        self._emit(f, ev.AGENT_CONNECTED, agent=f.agent,
                   queue_wait=_seconds(m.get("HoldTime"), self._waited(f)))  # fmt: skip

    def _complete(self, f: _Followed, m: AmiMessage) -> None:
        talk = _seconds(m.get("TalkTime"), self._talked(f))
        self._emit(f, ev.AGENT_DONE, agent=f.agent or _agent(m), talk=talk,
                   by=m.get("Reason") or None)  # fmt: skip
        self._end(f, "agent")

    def _abandon(self, f: _Followed, m: AmiMessage) -> None:
        self._emit(f, ev.HANGUP, by="caller", queue_wait=_seconds(m.get("HoldTime"),
                                                                   self._waited(f)))  # fmt: skip
        self._end(f, "abandoned_in_queue")

    def _leave(self, f: _Followed, m: AmiMessage) -> None:
        f.left = True

    def _hangup(self, f: _Followed, m: AmiMessage) -> None:
        """The caller's channel is gone and nothing above ended the record."""
        if f.connected_at is not None:
            self._emit(f, ev.AGENT_DONE, agent=f.agent, talk=self._talked(f))
            self._end(f, "agent")
        elif f.left:  # left the queue unanswered (Queue()'s timeout, an exit key)
            self._emit(f, ev.QUEUE_EXIT, reason="asterisk", queue_wait=self._waited(f))
            self._end(f, "unanswered")
        else:
            self._emit(f, ev.HANGUP, by="caller", queue_wait=self._waited(f))
            self._end(f, "abandoned_in_queue")

    # --- helpers --------------------------------------------------------------------------

    def _emit(self, f: _Followed, kind: str, **data: object) -> None:
        data = {k: v for k, v in data.items() if v is not None}
        if f.flow is not None:
            data["flow"] = f.flow
        data["source"] = "asterisk"
        event = Event(f.call_id, f.seq, round(self._call_time(f), 4), kind, f.node, data)
        f.seq += 1
        if f.held is not None:
            f.held.append(event)
        else:
            self.sink(event)

    def _end(self, f: _Followed, outcome: str) -> None:
        self._emit(f, ev.CALL_END, outcome=outcome, duration=round(self._call_time(f), 3),
                   last_node=f.node)  # fmt: skip
        f.ended = True
        if f.held is None:  # else forgotten when released
            self._forget(f)
        log.info("call %s: Asterisk queue %s: %s", f.call_id, f.queue, outcome)

    def _call_time(self, f: _Followed) -> float:
        return f.call_time + self.clock.now() - f.since

    def _waited(self, f: _Followed) -> float:
        return round(self.clock.now() - f.since, 3)

    def _talked(self, f: _Followed) -> float:
        start = f.connected_at if f.connected_at is not None else self.clock.now()
        return round(self.clock.now() - start, 3)


_HANDLERS = {
    "QueueCallerJoin": QueueRecords._join,
    "Join": QueueRecords._join,  # Asterisk 1.8-11
    "AgentCalled": QueueRecords._called,
    "AgentRingNoAnswer": QueueRecords._no_answer,
    "AgentConnect": QueueRecords._connect,
    "AgentComplete": QueueRecords._complete,
    "QueueCallerAbandon": QueueRecords._abandon,
    "QueueCallerLeave": QueueRecords._leave,
    "Leave": QueueRecords._leave,
    "Hangup": QueueRecords._hangup,
}


def _agent(m: AmiMessage) -> str:
    """The agent as the report names them: the queue member's name, else its interface."""
    return (m.get("MemberName") or m.get("Interface") or m.get("DestChannel") or "?")[:80]


def _seconds(text: str, default: float) -> float:
    """Asterisk's count of seconds, or ``default`` when it is missing or not a sane number."""
    try:
        value = float(text)
    except ValueError:
        return default
    return value if math.isfinite(value) and 0 <= value < 10 * 86_400 else default
