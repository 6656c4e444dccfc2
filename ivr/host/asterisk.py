"""Queues Asterisk runs (docs/ASTERISK.md): the engine's enqueue to such a queue redirects the
caller's Asterisk channel over AMI instead of joining our queue authority.

The engine sits behind Asterisk (a registered extension or a trunk peer); Asterisk's dialplan
names the caller's channel in an X- header of its INVITE to us. An enqueue to a queue marked
``asterisk:`` in ivr.yaml sends AMI ``Redirect`` for that channel into the queue's context and
extension; when Asterisk says it worked, the session ends with outcome ``asterisk_queue`` (no
BYE from us: Asterisk takes the channel out of its bridge with us and hangs our leg up) and
:class:`~ivr.ami.records.QueueRecords` follows the channel, writing the queue's events to the
call's record. Every other queue goes to the queue authority as before. Whatever goes wrong (no
header, no AMI connection, a refused Redirect) sends the caller out by the ``no_agents`` exit,
with the reason in the log.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from ivr.acd.asterisk import AsteriskManager, AsteriskQueue
from ivr.ami.client import AmiClient, AmiError, AmiSettings
from ivr.ami.records import QueueRecords
from ivr.ami.wire import AmiMessage
from ivr.core.clock import Clock
from ivr.core.events import EventSink
from ivr.engine.queueing import HANDED_OFF, QueuePlace, QueueRequest, Queues, QueueWaiter

log = logging.getLogger("ivr.ami")

NO_QUEUE = "no_queue"
NO_AGENTS = "no_agents"
# An Asterisk channel name as it may go into an AMI action: PJSIP/trunk-0000002a, SIP/x-1;1
_CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.@;:+#*-]{0,127}")


@dataclass(frozen=True)
class CallFacts:
    """What the host knows of a call, for the redirect and the record."""

    channel: str  # the caller's Asterisk channel ("" when the INVITE named none)
    call_time: float  # seconds since the call started
    node: str | None
    flow: str | None


def ami_settings(manager: AsteriskManager) -> AmiSettings:
    return AmiSettings(manager.host, manager.port, manager.username, manager.secret,
                       manager.auth)  # fmt: skip


class AsteriskQueues:
    """The engine's :class:`~ivr.engine.queueing.Queues`: Asterisk's queues by redirect,
    the others to ``inner`` (our queue authority; None: there is none)."""

    def __init__(self, client: AmiClient, queues: dict[str, AsteriskQueue],
                 inner: Queues | None, facts: Callable[[str], CallFacts | None],
                 records: QueueRecords) -> None:  # fmt: skip
        self.client = client
        self.queues = queues
        self.inner = inner
        self.facts = facts
        self.records = records
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def over(cls, manager: AsteriskManager, queues: dict[str, AsteriskQueue],
             inner: Queues | None, facts: Callable[[str], CallFacts | None],
             sink: EventSink, clock: Clock) -> AsteriskQueues:  # fmt: skip
        """Made with its own AMI client, whose events feed the records; ``start()`` it."""
        records = QueueRecords(sink, clock)
        client = AmiClient(ami_settings(manager), on_event=records.on_event)
        return cls(client, queues, inner, facts, records)

    def start(self) -> None:
        self.client.start()

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.close()

    def join(self, call_id: str, request: QueueRequest,
             waiter: QueueWaiter) -> QueuePlace | str:  # fmt: skip
        target = self.queues.get(request.queue)
        if target is None:
            return self.inner.join(call_id, request, waiter) if self.inner else NO_QUEUE
        facts = self.facts(call_id)
        if facts is None or not _CHANNEL.fullmatch(facts.channel):
            log.error("call %s: queue %s is Asterisk's but the call names no usable Asterisk "
                      "channel (the dialplan's X- header): taking the no_agents exit", call_id,
                      request.queue)  # fmt: skip
            return NO_AGENTS
        if not self.client.connected:
            log.error("call %s: queue %s is Asterisk's and AMI is not connected: taking the "
                      "no_agents exit", call_id, request.queue)  # fmt: skip
            return NO_AGENTS
        place = _Place(self, call_id, facts.channel)
        task = asyncio.get_running_loop().create_task(
            self._redirect(call_id, request.queue, target, facts, waiter, place))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return place

    async def _redirect(self, call_id: str, queue: str, target: AsteriskQueue, facts: CallFacts,
                        waiter: QueueWaiter, place: _Place) -> None:  # fmt: skip
        headers = {"Channel": facts.channel, "Context": target.context,
                   "Exten": target.extension, "Priority": str(target.priority)}  # fmt: skip
        # Followed before the Redirect goes out: Asterisk's first queue events may come
        # before its reply.
        self.records.follow(call_id, facts.channel, queue, call_time=facts.call_time,
                            node=facts.node, flow=facts.flow)  # fmt: skip
        reply: AmiMessage | None = None
        try:
            reply = await self.client.action("Redirect", headers)
            reason = reply.get("Message") or reply.name
        except (AmiError, ValueError) as exc:
            reason = str(exc)
        place.handing_off = False
        if reply is None or not reply.ok:
            if place.gone:  # hung up while we asked: the record ends as it would with us
                self.records.abandon(facts.channel)
                return
            self.records.forget(facts.channel)
            log.error("call %s: Redirect to Asterisk queue %s failed (%s): taking the no_agents "
                      "exit", call_id, target.queue, reason)  # fmt: skip
            waiter.on_queue_exit(NO_AGENTS)
            return
        log.info("call %s: redirected to Asterisk queue %s (%s,%s,%d)", call_id, target.queue,
                 target.context, target.extension, target.priority)  # fmt: skip
        if not place.gone:  # Asterisk's BYE to our leg may come before its AMI reply
            waiter.on_queue_exit(HANDED_OFF)
        self.records.release(facts.channel)  # the session has ended: now the queue's events


class _Place:
    """A caller on their way to an Asterisk queue (see :class:`~ivr.engine.queueing.QueuePlace`).

    Asterisk decides who answers; there is nothing to report back to it. ``handing_off``
    while the Redirect is unanswered: a hang-up then is most likely Asterisk taking the caller
    out of its bridge with us, so the enqueue step records the hand-off, not an abandonment
    (:meth:`~ivr.engine.steps.queue.QueueStep.hangup_outcome`).
    """

    def __init__(self, queues: AsteriskQueues, call_id: str, channel: str) -> None:
        self.queues = queues
        self.call_id = call_id
        self.channel = channel
        self.gone = False
        self.handing_off = True

    def figures(self, done: Callable[[int | None, float | None], None]) -> None:
        done(None, None)  # the caller is about to leave us: Asterisk announces its own

    def result(self, offer_id: int, outcome: str) -> None:
        pass  # we never offer agents for Asterisk's queues

    def agent_done(self, agent: str) -> None:
        pass

    def leave(self) -> None:
        self.gone = True

    def callback(self, number: str) -> bool:
        return False
