"""The common base of every running node: cancellable, with its own timers.

A step is created when the session enters a node and cancelled when the session leaves it, the
caller hangs up, or a global command takes over. Cancelling stops the step's timers and prompt;
a cancelled step ignores every late callback, so nothing needs a special case for hang-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ivr.core.clock import TimerHandle
from ivr.engine.channel import RecordResult, SpeechResult
from ivr.flow.model import Node

if TYPE_CHECKING:
    from ivr.engine.session import Session

N = TypeVar("N", bound=Node)


class Step(Generic[N]):
    """A node while it runs. Subclasses override :meth:`start` and the events they care about."""

    def __init__(self, session: Session, node: N) -> None:
        self.session = session
        self.node = node
        self.cancelled = False
        self._timers: list[TimerHandle] = []

    def start(self) -> None:
        raise NotImplementedError

    def cancel(self) -> None:
        """Stop everything this step started; later callbacks are ignored."""
        self.cancelled = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.session.stop_prompts()

    def repeat(self) -> None:
        """The caller asked to hear this node again (global ``repeat``)."""
        self.session.goto(self.node.id)

    def later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """A timer that dies with the step."""

        def fire() -> None:
            if not self.cancelled:
                callback()

        handle = self.session.clock.call_later(delay, fire)
        self._timers.append(handle)
        return handle

    def leave(self, label: str, target: str) -> None:
        if not self.cancelled:
            self.session.leave(label, target)

    @property
    def flow_defaults(self) -> Any:
        return self.session.flow.defaults

    # Events; a step that does not care keeps the defaults.

    def on_prompts_done(self) -> None:
        """Every prompt this step played has finished."""

    def on_dtmf(self, digit: str) -> bool:
        """A key; return False to leave it in the type-ahead buffer for the next input node."""
        return False

    def on_speech_start(self) -> None:
        pass

    def on_speech(self, result: SpeechResult) -> None:
        pass

    def on_recording_done(self, result: RecordResult) -> None:
        pass

    def on_transfer_result(self, ok: bool, reason: str) -> None:
        pass

    def on_agent_leg(self, offer_id: int, state: str) -> None:
        pass

    def hangup_outcome(self) -> str:
        """The call's outcome when the caller hangs up during this step."""
        return "abandoned"
