"""The phone agent line on the caller's side: ``action: {acd: ...}`` nodes (docs/ACD.md, "The
agent line"; docs/FLOWS.md, "action").

:class:`AgentLineActions` is the engine's :class:`~ivr.engine.runtime.ActionRunner` for a process
with an agent queue: an action with ``acd:`` is handled here, every other action goes to the
runner it wraps (webhooks, Python). For an ``acd:`` action it

1. renders the agent number and the PIN the caller typed from the call's variables;
2. finds the agent: the one whose SIP username is that number, else whose id it is;
3. compares the PIN with the agent's (ivr.yaml ``acd.agents.<id>.pin``) in constant time, an
   unknown number or an agent without a PIN against a dummy, so the time taken says nothing;
4. asks the queue authority (:class:`~ivr.acd.agentline.AgentLine`, in this process or over the
   socket) with the verdict only: the PIN never leaves this function, and is never logged.

The answer lands in the node's ``into``/``result``; an answer with ``error`` takes ``on_error``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ivr.acd.agentline import MAX_AGENT_CHARS, UNAVAILABLE, LineRequest
from ivr.acd.config import AgentAccount
from ivr.core.clock import Clock, TimerHandle
from ivr.engine.runtime import ActionDone, ActionResult, ActionRunner
from ivr.flow.model import AcdAction, ActionNode
from ivr.flow.template import compile_template

log = logging.getLogger("ivr.acd")

LineDone = Callable[[dict[str, Any]], None]
#: ask the authority: ``ask(request, done)`` calls ``done(answer)`` on the loop; it returns what
#: forgets the request (the caller hung up)
Ask = Callable[[LineRequest, LineDone], Callable[[], None]]
_DUMMY_PIN = b"\x00" * 8  # what an unknown number's PIN is compared with
MAX_TYPED = 64  # characters of a typed number or PIN considered at all


class _Pending:
    """An agent line request on its way; cancelling it (hang-up) drops the answer."""

    def __init__(self, done: ActionDone, clock: Clock) -> None:
        self._done = done
        self._clock = clock
        self._started = clock.now()
        self.finished = False
        self.forget: Callable[[], None] = lambda: None
        self.timer: TimerHandle | None = None

    def cancel(self) -> None:
        self.finished = True
        self.forget()
        if self.timer is not None:
            self.timer.cancel()

    def answer(self, answer: dict[str, Any]) -> None:
        if self.finished:
            return
        self.cancel()
        error = answer.get("error")
        self._done(ActionResult(ok=not error, data=answer, error=str(error) if error else None,
                                duration=self._clock.now() - self._started))  # fmt: skip


class AgentLineActions:
    """Actions of one engine process: ``acd:`` here, the rest by ``inner``.

    Args:
        inner: the runner of webhooks and Python actions.
        clock: the sessions' clock (answers are delivered on its loop; the simulator's virtual
            clock in a QA script).
        accounts: agent id -> account (username, PIN), from ivr.yaml ``acd.agents``.
        ask: how to reach the queue authority's agent line.
    """

    def __init__(self, inner: ActionRunner, clock: Clock,
                 accounts: Mapping[str, AgentAccount], ask: Ask) -> None:  # fmt: skip
        self.inner = inner
        self.clock = clock
        self.accounts = dict(accounts)
        self.ask = ask
        self._by_username = {acc.username: agent for agent, acc in self.accounts.items()}

    def run(self, node: ActionNode, scope: Mapping[str, Any], done: ActionDone) -> TimerHandle:
        if node.acd is None:
            return self.inner.run(node, scope, done)
        pending = _Pending(done, self.clock)
        unavailable: dict[str, Any] = {"error": UNAVAILABLE}
        try:
            request = self.request(node.acd, scope)
        except Exception as exc:  # a template that cannot render: the flow's on_error
            log.warning("call %s: agent line: action %s: bad template (%s)",
                        _call_id(scope), node.id, type(exc).__name__)  # fmt: skip
            pending.timer = self.clock.call_later(0.0, lambda: pending.answer(unavailable))
            return pending
        pending.timer = self.clock.call_later(node.timeout, lambda: pending.answer(unavailable))
        forget = self.ask(request, pending.answer)
        if not pending.finished:  # an authority in this process may answer at once
            pending.forget = forget
        return pending

    def request(self, action: AcdAction, scope: Mapping[str, Any]) -> LineRequest:
        """The request for the authority: the agent found, the PIN judged (and dropped)."""
        number = _render(action.agent, scope)[:MAX_TYPED]
        agent = self.agent_of(number)
        typed = _render(action.pin, scope)[:MAX_TYPED].encode()
        account = self.accounts.get(agent) if agent is not None else None
        known = account.pin.encode() if account is not None and account.pin else None
        same = hmac.compare_digest(typed, known if known is not None else _DUMMY_PIN)
        reason = _render(action.reason, scope)[:MAX_AGENT_CHARS] if action.reason else ""
        key = agent if agent is not None else number[:MAX_AGENT_CHARS]
        return LineRequest(_call_id(scope), key, same and known is not None, action.op, reason)

    def agent_of(self, number: str) -> str | None:
        """The agent who answers to ``number``: by SIP username first, then by id."""
        agent = self._by_username.get(number)
        if agent is not None:
            return agent
        return number if number in self.accounts else None


def _render(template: str, scope: Mapping[str, Any]) -> str:
    return compile_template(template).render(scope, speak=False).strip()


def _call_id(scope: Mapping[str, Any]) -> str:
    call = scope.get("call")
    return str(call.get("call_id", "-")) if isinstance(call, Mapping) else "-"
