"""The phone agent line on the queue authority's side (docs/ACD.md, "The agent line").

An agent who dials the agent line types their agent number and PIN; the caller's engine process
checks the PIN (it has the accounts; the PIN never leaves that process) and asks the authority,
through :meth:`AgentLine.handle`, for the agent's state or a change: log in, log out, pause with a
reason, resume. The authority keeps the one thing that must be the machine's, not a process's:
the count of wrong PINs per agent number and the lock that follows (:class:`LineGuard`), so a
guesser gains nothing by landing on another worker.

Answers are small dicts the flow reads (``into:``/``result``): ``agent``, ``name``, ``state``,
``reason``, ``pending``, ``changed`` on success; ``error`` (one of :data:`ERRORS`) otherwise. A
wrong PIN and an unknown agent number get the same answer, ``bad_login``: the line does not say
which agent numbers exist.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ivr.acd.authority import QueueAuthority, QueueError
from ivr.acd.config import AgentLineConfig
from ivr.acd.model import AgentState

log = logging.getLogger("ivr.acd")

OPS = ("status", "login", "logout", "pause", "resume")
BAD_LOGIN = "bad_login"  # wrong PIN, unknown agent number, or an agent without a PIN
LOCKED = "locked"  # too many wrong PINs for this agent number: try later
REFUSED = "refused"  # the authority refuses the change (pausing a logged-out agent)
BAD_REASON = "bad_reason"  # a pause reason ops did not list
UNAVAILABLE = "unavailable"  # the queue authority cannot be reached (the worker's side says so)
ERRORS = (BAD_LOGIN, LOCKED, REFUSED, BAD_REASON, UNAVAILABLE)
MAX_TRACKED = 10_000  # agent numbers whose wrong PINs are remembered; the oldest go first
MAX_AGENT_CHARS = 32  # an agent number longer than this is cut before it is kept or logged


@dataclass(frozen=True)
class LineRequest:
    """One agent line request, as the caller's process sends it.

    ``agent`` is the agent id when the number typed is an agent's, else the number typed (so a
    guesser's attempts count against it too); ``pin_ok`` says whether the PIN matched.
    """

    call_id: str
    agent: str
    pin_ok: bool
    op: str
    reason: str = ""


class LineGuard:
    """Wrong PINs in a row per agent number, and the locks they bring.

    ``attempts`` wrong PINs lock the number for ``lockout`` seconds; a right PIN (not locked)
    starts the count again. At most :data:`MAX_TRACKED` numbers are remembered (hostile callers
    typing endless made-up numbers cost bounded memory).
    """

    def __init__(self, attempts: int, lockout: float) -> None:
        self.attempts = attempts
        self.lockout = lockout
        self._failures: OrderedDict[str, int] = OrderedDict()
        self._locked_until: dict[str, float] = {}

    def locked_for(self, agent: str, now: float) -> float:
        """Seconds ``agent`` stays locked (0: not locked)."""
        until = self._locked_until.get(agent)
        if until is None:
            return 0.0
        if now >= until:
            del self._locked_until[agent]
            return 0.0
        return until - now

    def failed(self, agent: str, now: float) -> int:
        """Count a wrong PIN; the number of wrong PINs in a row (the lock starts at
        ``attempts``, and the count with it)."""
        count = self._failures.pop(agent, 0) + 1
        if count >= self.attempts:
            self._locked_until[agent] = now + self.lockout
            return count
        self._failures[agent] = count
        while len(self._failures) > MAX_TRACKED:
            self._failures.popitem(last=False)
        return count

    def succeeded(self, agent: str) -> None:
        self._failures.pop(agent, None)


class AgentLine:
    """The authority's side of the agent line (one per authority, on its thread)."""

    def __init__(self, authority: QueueAuthority, config: AgentLineConfig) -> None:
        self.authority = authority
        self.config = config
        self.guard = LineGuard(config.attempts, config.lockout)

    def handle(self, req: LineRequest) -> dict[str, Any]:
        """Check the lock and the PIN's verdict, then do ``req.op``; the answer for the flow."""
        if req.op not in OPS:
            return {"error": REFUSED}
        agent_key = req.agent[:MAX_AGENT_CHARS]
        now = self.authority.clock.now()
        locked = self.guard.locked_for(agent_key, now)
        if locked > 0:
            log.warning("call %s: agent line: %s is locked out (%d s left): refused",
                        req.call_id, _shown(agent_key, agent_key in self.authority.agents),
                        round(locked))  # fmt: skip
            return {"error": LOCKED, "locked_for": round(locked)}
        agent = self.authority.agents.get(agent_key)
        if not req.pin_ok or agent is None:
            return self._wrong(req.call_id, agent_key, now)
        self.guard.succeeded(agent_key)
        if req.op == "pause" and self.config.reasons and req.reason not in self.config.reasons:
            log.warning("call %s: agent line: agent %s: pause reason %r is not one of %s",
                        req.call_id, agent_key, req.reason[:40], ", ".join(self.config.reasons))
            return {**self._state(agent_key), "error": BAD_REASON}
        before = (agent.state, agent.reason, agent.pending)
        reason = req.reason[:MAX_AGENT_CHARS]  # what a peer sends is kept and logged: bounded
        try:
            self._apply(agent_key, req.op, reason, agent.state)
        except QueueError as exc:
            log.info("call %s: agent line: agent %s: %s refused: %s", req.call_id, agent_key,
                     req.op, exc)  # fmt: skip
            return {**self._state(agent_key), "error": REFUSED}
        changed = before != (agent.state, agent.reason, agent.pending)
        if req.op == "status":  # an audit trail of who signed in to the line
            log.info("call %s: agent line: agent %s signed in (%s)", req.call_id, agent_key,
                     agent.state.value)  # fmt: skip
        else:
            log.info("call %s: agent line: agent %s: %s%s -> %s", req.call_id, agent_key, req.op,
                     f" ({reason})" if reason else "", agent.state.value)  # fmt: skip
        return {**self._state(agent_key), "changed": changed}

    def _wrong(self, call_id: str, agent: str, now: float) -> dict[str, Any]:
        count = self.guard.failed(agent, now)
        shown = _shown(agent, agent in self.authority.agents)
        if count >= self.guard.attempts:
            log.warning("call %s: agent line: %s locked out for %d s after %d wrong PINs",
                        call_id, shown, round(self.guard.lockout), count)  # fmt: skip
            return {"error": LOCKED, "locked_for": round(self.guard.lockout)}
        log.warning("call %s: agent line: wrong agent number or PIN for %s (%d of %d)",
                    call_id, shown, count, self.guard.attempts)  # fmt: skip
        return {"error": BAD_LOGIN, "attempts_left": self.guard.attempts - count}

    def _apply(self, agent_id: str, op: str, reason: str, state: AgentState) -> None:
        authority = self.authority
        if op == "login":
            authority.login(agent_id)
        elif op == "logout":
            authority.logout(agent_id, reason)
        elif op == "pause":
            authority.pause(agent_id, reason)  # QueueError when logged out
        elif op == "resume":
            if state == AgentState.LOGGED_OUT:
                raise QueueError(f"agent {agent_id} is logged out: log in first")
            authority.resume(agent_id)

    def _state(self, agent_id: str) -> dict[str, Any]:
        agent = self.authority.agents[agent_id]
        pending = agent.pending
        return {"agent": agent_id, "name": agent.spec.name, "state": agent.state.value,
                "reason": agent.reason or None,
                "pending": pending[0].value if pending is not None else None}  # fmt: skip


def _shown(agent: str, known: bool) -> str:
    """An agent as a log shows it: ``agent ann``, or the number typed (the caller's input: only
    letters, digits and ``._-`` are kept)."""
    if known:
        return f"agent {agent}"
    kept = "".join(ch for ch in agent if ch.isalnum() or ch in "._-")
    return f"agent number {kept!r}" if kept == agent else f"agent number {kept!r} (cleaned)"
