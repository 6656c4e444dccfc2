"""Nodes that hand the call on or end it: transfer, enqueue, record, hangup."""

from __future__ import annotations

from fnmatch import fnmatchcase

from ivr.core import events as ev
from ivr.engine.channel import QueueRequest, RecordResult, RecordSpec, RenderedPrompt
from ivr.engine.steps.base import Step
from ivr.engine.values import compute
from ivr.flow.expr import ExprError
from ivr.flow.model import EnqueueNode, HangupNode, RecordNode, TransferNode

BEEP = "beep"


class _PromptThen(Step[object]):  # type: ignore[type-var]
    """Play the node's optional prompt without barge-in, then :meth:`proceed`."""

    def start(self) -> None:
        prompt = getattr(self.node, "prompt", None)
        if prompt is None:
            self.proceed()
            return
        self.session.play(prompt, barge_in=False)

    def on_prompts_done(self) -> None:
        self.proceed()

    def repeat(self) -> None:
        pass

    def proceed(self) -> None:
        raise NotImplementedError


class TransferStep(_PromptThen):
    node: TransferNode

    def proceed(self) -> None:
        target = str(compute(self.node.to, self.session.scope.values))
        allowed = (*self.session.flow.transfer_allow, *self.session.runtime.transfer_allow)
        if not any(fnmatchcase(target, pattern) for pattern in allowed):
            self._failed(target, "target not in the transfer allow-list")
            return
        self.target = target
        self.session.channel.transfer(target)

    def on_transfer_result(self, ok: bool, reason: str) -> None:
        if ok:
            self.session.emit(ev.TRANSFER, target=self.target, ok=True, reason=reason)
            self.session.finish("transferred")
        else:
            self._failed(self.target, reason)

    def _failed(self, target: str, reason: str) -> None:
        self.session.emit(ev.TRANSFER, target=target, ok=False, reason=reason)
        self.leave("on_fail", self.node.on_fail)


class EnqueueStep(_PromptThen):
    node: EnqueueNode

    def proceed(self) -> None:
        scope = self.session.scope.values
        try:
            priority = int(compute(self.node.priority, scope))
        except (ExprError, TypeError, ValueError) as exc:
            self.session.fail(f"enqueue {self.node.id}: priority: {exc}")
            return
        priority = max(0, min(10, priority))
        request = QueueRequest(
            queue=self.node.queue,
            priority=priority,
            skills=self.node.skills,
            language=self.session.language,
        )
        self.session.emit(
            ev.QUEUE, queue=request.queue, priority=priority, skills=list(request.skills)
        )
        self.session.queued_at = self.session.clock.now()
        self.session.channel.enqueue(request)
        self.session.finish("queued")


class HangupStep(_PromptThen):
    node: HangupNode

    def proceed(self) -> None:
        self.session.finish(self.node.outcome, hangup=True)


class RecordStep(_PromptThen):
    node: RecordNode

    def proceed(self) -> None:
        if self.node.beep and not getattr(self, "_beeped", False):
            self._beeped = True
            self.session.play_rendered(RenderedPrompt(BEEP, self.session.language, "", BEEP))
            return
        spec = RecordSpec(self.node.max_seconds, self.node.finish_key, self.node.beep)
        self.session.channel.record(spec)

    def on_recording_done(self, result: RecordResult) -> None:
        self.session.scope.set(self.node.into, result.path or "")
        self.session.emit(ev.RECORDING, path=result.path, duration=round(result.duration, 2))
        self.leave("next", self.node.next)
