"""Nodes that hand the call on or end it: transfer, record, hangup (enqueue: queue.py)."""

from __future__ import annotations

from ivr.core import events as ev
from ivr.engine.channel import RecordResult, RecordSpec, RenderedPrompt
from ivr.engine.steps.base import Step
from ivr.engine.values import compute
from ivr.flow.model import HangupNode, RecordNode, TransferNode
from ivr.flow.transferallow import allowed as transfer_allowed

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
        if not transfer_allowed(target, allowed):  # parsed as a SIP URI or number, not globbed
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
        self.session.recording = self.node
        self.session.channel.record(spec)

    def hangup_outcome(self) -> str:
        # Hanging up is how many callers end a message: it was left, not abandoned.
        return "voicemail" if self.session.recording is not None else "abandoned"

    def on_recording_done(self, result: RecordResult) -> None:
        self.session.recording = None
        self.session.scope.set(self.node.into, result.path or "")
        self.session.emit(ev.RECORDING, path=result.path, duration=round(result.duration, 2))
        self.leave("next", self.node.next)
