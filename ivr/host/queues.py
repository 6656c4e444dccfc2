"""The engine's agent queue (:class:`~ivr.engine.queueing.Queues`) over a queue authority in this
process (docs/ACD.md): callers' places, offers to their enqueue steps, results back.

One engine process (``ivr serve``, the simulator) holds the authority itself; with several worker
processes the same interface talks to the supervisor's authority instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from ivr.acd.authority import AuthorityListener, QueueAuthority
from ivr.acd.model import ExitReason, Offer, Outcome, Ticket
from ivr.engine.queueing import AgentOffer, QueuePlace, QueueRequest, QueueWaiter

log = logging.getLogger("ivr.acd")

NO_QUEUE = "no_queue"


class AuthorityQueues(AuthorityListener):
    """Queues for the calls of worker ``worker``, decided by ``authority``."""

    def __init__(self, authority: QueueAuthority, worker: int = 0) -> None:
        self.authority = authority
        self.worker = worker
        self.waiters: dict[str, QueueWaiter] = {}
        # Who calls back a caller who kept their place (None: callbacks are not offered): told
        # the offer and a copy of the ticket.
        self.callbacks: Callable[[Offer, Ticket], None] | None = None
        authority.listener = self

    def join(self, call_id: str, request: QueueRequest,
             waiter: QueueWaiter) -> QueuePlace | str:  # fmt: skip
        if request.queue not in self.authority.queues:
            log.warning("call %s: no queue %r is configured", call_id, request.queue)
            return NO_QUEUE
        ticket = Ticket(call_id, request.queue, request.priority, request.skills, request.tier,
                        request.language, self.worker)  # fmt: skip
        self.waiters[call_id] = waiter
        exit_now = self.authority.join(ticket)
        if exit_now is not None:
            self.waiters.pop(call_id, None)
            return exit_now.value
        return _Place(self, call_id)

    # --- the callback dialer's line (ivr.serve.callbacks.CallbackLine) -----------------------

    def result(self, offer_id: int, outcome: Outcome) -> None:
        self.authority.result(offer_id, outcome)

    def ended(self, agent: str) -> None:
        self.authority.ended(agent)

    def again(self, ticket: Ticket) -> None:
        if self.authority.join(ticket) is None:
            self.authority.callback(ticket.call_id, ticket.callback or "")

    # --- from the authority -----------------------------------------------------------------

    def offer(self, offer: Offer) -> None:
        if offer.callback is not None and self.callbacks is not None:
            waiting = self.authority.waiting.get(offer.call_id)
            if waiting is None:
                self.authority.result(offer.id, Outcome.CALLER_GONE)
            else:
                self.callbacks(offer, replace(waiting.ticket))
            return
        waiter = self.waiters.get(offer.call_id)
        if waiter is None:  # the caller is gone: the authority hears it from leave()
            self.authority.result(offer.id, Outcome.CALLER_GONE)
            return
        waiter.on_offer(AgentOffer(offer.id, offer.agent, offer.contact, offer.ring_timeout))

    def withdraw(self, offer: Offer) -> None:
        waiter = self.waiters.get(offer.call_id)
        if waiter is not None:
            waiter.on_withdraw(offer.id)

    def exit(self, ticket: Ticket, reason: ExitReason) -> None:
        waiter = self.waiters.pop(ticket.call_id, None)
        if waiter is not None:
            waiter.on_queue_exit(reason.value)

    def moved(self, ticket: Ticket, old_queue: str) -> None:
        waiter = self.waiters.get(ticket.call_id)
        if waiter is not None:
            waiter.on_queue_moved(ticket.queue, old_queue)


class _Place:
    """One caller's place (see :class:`~ivr.engine.queueing.QueuePlace`)."""

    def __init__(self, queues: AuthorityQueues, call_id: str) -> None:
        self.queues = queues
        self.call_id = call_id

    def figures(self, done: Callable[[int | None, float | None], None]) -> None:
        authority = self.queues.authority
        done(authority.position(self.call_id), authority.expected_wait(self.call_id))

    def result(self, offer_id: int, outcome: str) -> None:
        self.queues.authority.result(offer_id, Outcome(outcome))

    def agent_done(self, agent: str) -> None:
        self.queues.waiters.pop(self.call_id, None)
        self.queues.authority.ended(agent)

    def leave(self) -> None:
        self.queues.waiters.pop(self.call_id, None)
        self.queues.authority.leave(self.call_id)

    def callback(self, number: str) -> bool:
        if self.queues.callbacks is None:
            return False
        self.queues.waiters.pop(self.call_id, None)
        return self.queues.authority.callback(self.call_id, number)
