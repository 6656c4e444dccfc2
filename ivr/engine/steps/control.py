"""Nodes that run without waiting for the caller: say, set, branch, goto, hours, sub-flows."""

from __future__ import annotations

import logging

from ivr.core import events as ev
from ivr.engine.counters import MAX_KEY
from ivr.engine.steps.base import Step
from ivr.engine.values import compute, names_read, truthy
from ivr.flow.calendar import status
from ivr.flow.expr import ExprError
from ivr.flow.model import (
    BranchNode,
    CounterNode,
    GotoNode,
    HoursNode,
    ReturnNode,
    SayNode,
    SetNode,
    SubflowNode,
)
from ivr.flow.template import compile_template

log = logging.getLogger("ivr.engine")


class SayStep(Step[SayNode]):
    """Play a prompt, then go on; with barge-in a key stops it and waits in the buffer."""

    def start(self) -> None:
        self.session.play(self.node.prompt, barge_in=self.node.barge_in)

    def repeat(self) -> None:
        self.session.stop_prompts()
        self.start()

    def on_prompts_done(self) -> None:
        self.leave("next", self.node.next)

    def on_dtmf(self, digit: str) -> bool:
        if self.node.barge_in:
            self.session.stop_prompts()
            self.session.typeahead.append(digit)
            self.leave("next", self.node.next)
            return True
        return False


class SetStep(Step[SetNode]):
    def start(self) -> None:
        scope = self.session.scope
        try:
            for name, raw in self.node.vars.items():
                secret = any(scope.is_secret(read) for read in names_read(raw))  # "= pin"
                scope.set(name, compute(raw, scope.values), secret=secret)
                self.session.emit(ev.VAR_SET, name=name, value=scope.shown(name, scope.get(name)))
        except ExprError as exc:
            self.session.fail(f"set {self.node.id}: {exc}")
            return
        self.leave("next", self.node.next)


class CounterStep(Step[CounterNode]):
    """Read, add to or reset a count kept across calls (ivr/engine/counters.py)."""

    def start(self) -> None:
        node, session = self.node, self.session
        # Rendered from the real values (an account number): the key is stored hashed and is
        # never part of an event or a log line.
        key = compile_template(node.key).render(session.scope.values, speak=False)[:MAX_KEY]
        try:
            value = session.counters.update(key, node.add, node.reset, node.expire,
                                            session.clock.wall())  # fmt: skip
        except Exception as exc:  # a store that cannot answer must not end the call
            log.error("call %s: counter %s failed: %s", session.call_id, node.id,
                      type(exc).__name__)  # fmt: skip
            value = 0
        session.scope.set(node.into, value)
        session.emit(ev.VAR_SET, name=node.into, value=value)
        self.leave("next", node.next)


class BranchStep(Step[BranchNode]):
    def start(self) -> None:
        scope = self.session.scope.values
        try:
            for cond in self.node.when:
                if truthy(cond.expr, scope):
                    self.leave(f"if {cond.expr}", cond.goto)
                    return
        except ExprError as exc:
            self.session.fail(f"branch {self.node.id}: {exc}")
            return
        self.leave("else", self.node.otherwise)


class GotoStep(Step[GotoNode]):
    def start(self) -> None:
        self.leave("goto", self.node.target)


class HoursStep(Step[HoursNode]):
    def start(self) -> None:
        calendar = self.session.flow.calendars[self.node.calendar]
        state = status(calendar, self.session.clock.wall())
        if state == "open":
            self.leave("open", self.node.open)
        elif state == "holiday" and self.node.holiday:
            self.leave("holiday", self.node.holiday)
        else:
            self.leave("closed", self.node.closed)


class SubflowStep(Step[SubflowNode]):
    def start(self) -> None:
        self.session.call_subflow(self.node.flow, self.node.next)


class ReturnStep(Step[ReturnNode]):
    def start(self) -> None:
        self.session.return_from_subflow()
