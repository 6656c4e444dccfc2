"""Self-service actions: a webhook or Python function; any failure takes ``on_error``."""

from __future__ import annotations

from ivr.core import events as ev
from ivr.core.clock import TimerHandle
from ivr.engine.runtime import ActionResult
from ivr.engine.steps.base import Step
from ivr.engine.values import compute
from ivr.flow.expr import ExprError
from ivr.flow.model import ActionNode


class ActionStep(Step[ActionNode]):
    def start(self) -> None:
        self.handle: TimerHandle | None = self.session.runtime.actions.run(
            self.node, self.session.scope.values, self._done
        )

    def cancel(self) -> None:
        super().cancel()
        handle = getattr(self, "handle", None)
        if handle is not None:
            handle.cancel()

    def repeat(self) -> None:
        pass

    def _done(self, result: ActionResult) -> None:
        if self.cancelled:
            return
        session = self.session
        session.emit(
            ev.ACTION, ok=result.ok, duration=round(result.duration, 4), error=result.error,
            via="webhook" if self.node.webhook is not None else "python",  # for the reports
        )
        session.scope.set("result", result.data)
        if self.node.into:
            session.scope.set(self.node.into, result.data)
        if not result.ok:
            self.leave("on_error", self.node.on_error)
            return
        try:
            for name, raw in self.node.set.items():
                session.scope.set(name, compute(raw, session.scope.values))
        except ExprError as exc:
            session.emit(ev.ERROR, message=f"action {self.node.id}: {exc}")
            self.leave("on_error", self.node.on_error)
            return
        self.leave("next", self.node.next)
