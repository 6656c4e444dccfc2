"""Calling back a caller who kept their place (docs/ACD.md, "Callback").

When the queue authority offers an agent for a callback ticket (the caller chose a callback and
hung up, their place kept), the :class:`CallbackDialer`:

1. calls the agent first, from the server's socket, for the queue's ring timeout; an agent who
   does not answer is a miss like any other (the ticket keeps its place; the authority tries the
   next agent after the retry delay);
2. once the agent answers, calls the caller's number through the outbound route
   (``acd.callback.trunk``; only a number of digits with an optional + is ever put into it) and,
   when they answer, bridges the two;
3. a caller who does not answer frees the agent and is tried again after ``retry_delay``, up to
   ``retries`` times (at the end of the line: their place was spent on the attempt).

Every attempt that reached an agent is a call record of its own (flow ``callback``, the caller's
number, the agent, talk time) with outcome ``callback_done`` or ``callback_failed``.

The dialer talks to the authority through a :class:`CallbackLine`: the authority in this process
(:class:`~ivr.host.queues.AuthorityQueues`, a single ``ivr serve``) or the supervisor's over the
socket (:class:`~ivr.host.remote_queues.RemoteQueues`, each worker of ``ivr serve --workers N``
placing the callbacks the authority routes to it). It keeps no count of its own: attempt ``n``
of call ``c`` is ticket ``c~(n-1)`` (``c`` itself for the first), so any worker may place any
attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import replace
from typing import Any, Protocol

from ivr.acd.config import CallbackConfig
from ivr.acd.model import Offer, Outcome, Ticket
from ivr.core import events as ev
from ivr.core.clock import Clock
from ivr.core.events import Event, EventSink
from ivr.rtp.bridge import Bridge
from ivr.rtp.engine import MediaEngine
from ivr.rtp.stream import RtpStream
from ivr.serve.agents import leg_state, start_media
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.outgoing import OutgoingCall
from ivr.sip.ua import UserAgent

log = logging.getLogger("ivr.acd")

DONE, FAILED = "callback_done", "callback_failed"


class CallbackRecord:
    """The call record of one callback attempt, written as step events."""

    def __init__(self, sink: EventSink, call_id: str, clock: Clock) -> None:
        self.sink, self.call_id, self.clock = sink, call_id, clock
        self.start = clock.now()
        self._seq = itertools.count(1)

    def emit(self, kind: str, **data: Any) -> None:
        self.sink(Event(self.call_id, next(self._seq), round(self.clock.now() - self.start, 4),
                        kind, None, data))  # fmt: skip

    def end(self, outcome: str) -> None:
        self.emit(ev.CALL_END, outcome=outcome,
                  duration=round(self.clock.now() - self.start, 3), last_node=None,
                  flow="callback", language=None)  # fmt: skip


class CallbackLine(Protocol):
    """What the dialer tells the queue authority (wherever it is)."""

    def result(self, offer_id: int, outcome: Outcome) -> None:
        """How the agent's leg of a callback offer ended."""

    def ended(self, agent: str) -> None:
        """The agent's callback call is over."""

    def again(self, ticket: Ticket) -> None:
        """Put the callback ``ticket`` (a new call id) at the end of the line."""


def attempt(call_id: str) -> tuple[str, int]:
    """The original call id of a callback ticket and the attempt it is (1 for the first)."""
    origin, _, tried = call_id.rpartition("~")
    if origin and tried.isascii() and tried.isdigit() and len(tried) < 6:
        return origin, int(tried) + 1
    return call_id, 1


class CallbackDialer:
    """Places the callbacks the authority offers to this process (see the module docstring)."""

    def __init__(self, ua: UserAgent, media: MediaEngine, line: CallbackLine,
                 config: CallbackConfig, sink: EventSink, clock: Clock) -> None:  # fmt: skip
        self.ua, self.media, self.line = ua, media, line
        self.config, self.sink, self.clock = config, sink, clock
        self._tasks: set[asyncio.Future[None]] = set()

    def offer(self, offer: Offer, ticket: Ticket) -> None:
        """The authority's offer of an agent for the callback ``ticket`` (a copy of it)."""
        task = asyncio.ensure_future(self._run(offer, ticket))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, offer: Offer, ticket: Ticket) -> None:
        try:
            agent_stream = await self.media.open_stream(f"callback-agent-{offer.id}")
        except Exception:  # no port: a miss like an unreachable phone, the ticket stays
            log.exception("call %s: no media stream for the callback", ticket.call_id)
            self.line.result(offer.id, Outcome.FAILED)
            return
        agent = self.ua.call(offer.contact, LocalMedia(*agent_stream.local_address),
                             caller=offer.callback, timeout=offer.ring_timeout)  # fmt: skip
        status = await agent.wait_answered()
        if status != 200 or not agent.connected or agent.media is None:
            agent_stream.close()
            self.line.result(offer.id, Outcome(leg_state(status)))
            return
        start_media(agent_stream, agent.media)
        self.line.result(offer.id, Outcome.ANSWERED)
        origin, tries = attempt(ticket.call_id)
        log.info("call %s: callback attempt %d: agent %s answered", ticket.call_id, tries,
                 offer.agent)  # fmt: skip
        record = CallbackRecord(self.sink, f"{origin}~cb{tries}", self.clock)
        record.emit(ev.CALL_START, caller=ticket.callback, called="", flow="callback",
                    flow_version="", transport="sip", wall=self.clock.wall())  # fmt: skip
        record.emit(ev.QUEUE, queue=ticket.queue, priority=ticket.priority,
                    skills=list(ticket.skills), tier=ticket.tier)  # fmt: skip
        try:
            answered = await self._call_customer(ticket, agent_stream, agent, offer, record)
        finally:
            with contextlib.suppress(Exception):
                agent_stream.close()
            self.line.ended(offer.agent)
        if not answered and tries <= self.config.retries:
            again = replace(ticket, call_id=f"{origin}~{tries}")
            self.clock.call_later(self.config.retry_delay, lambda: self.line.again(again))

    async def _call_customer(self, ticket: Ticket, agent_stream: RtpStream, agent: OutgoingCall,
                             offer: Offer, record: CallbackRecord) -> bool:  # fmt: skip
        uri = self.config.uri(ticket.callback or "")
        if uri is None:
            log.warning("call %s: %r cannot be called back", ticket.call_id, ticket.callback)
            agent.hangup()
            record.end(FAILED)
            return True  # nothing to try again
        stream = await self.media.open_stream(f"callback-{offer.id}")
        customer = self.ua.call(uri, LocalMedia(*stream.local_address),
                                timeout=self.config.ring_timeout)  # fmt: skip
        status = await customer.wait_answered()
        if status != 200 or not customer.connected or customer.media is None or agent.ended:
            log.info("call %s: callback to %s not answered (%d)", ticket.call_id,
                     ticket.callback, status)  # fmt: skip
            stream.close()
            customer.hangup()
            agent.hangup()
            record.end(FAILED)
            return False
        start_media(stream, customer.media)
        record.emit(ev.AGENT_CONNECTED, agent=offer.agent,
                    queue_wait=round(self.clock.now() - ticket.joined_at, 3))  # fmt: skip
        bridge = Bridge(stream, agent_stream)
        talk_from = self.clock.now()
        await _first_to_end(agent, customer)
        bridge.stop()
        agent.hangup()
        customer.hangup()
        stream.close()
        record.emit(ev.AGENT_DONE, agent=offer.agent, talk=round(self.clock.now() - talk_from, 3))
        record.end(DONE)
        return True


async def _first_to_end(*calls: OutgoingCall) -> None:
    """Until one of the calls ends (either side hung up, or a leg was lost)."""
    waits = [asyncio.ensure_future(call.wait_ended()) for call in calls]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
