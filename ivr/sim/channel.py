"""SimChannel: an in-memory :class:`~ivr.engine.channel.Channel` on a virtual clock.

The simulator's caller side (a call script's driver, or a person at ``ivr simulate``) talks to
the engine through this channel exactly as a SIP caller would: prompts take time to play, keys and
speech arrive as channel events, transfers and recordings complete later. Everything the engine
asked of the channel is remembered for assertions.

Prompt timing: a prompt lasts ``0.3 s + words / 2.5`` seconds (150 words a minute, plus the
lead-in silence of a real prompt file). Words are whitespace-separated tokens; a CJK character
counts as half a word (Mandarin is spoken at about five syllables a second). A recorded prompt
(``audio`` set) is timed from its fallback text the same way, since the simulator never opens the
WAV file.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ivr.core.clock import Clock, TimerHandle
from ivr.engine.channel import (
    CallInfo,
    ChannelListener,
    ListenSpec,
    RecordResult,
    RecordSpec,
    RenderedPrompt,
    SpeechResult,
)
from ivr.engine.queueing import ANSWERED, ENDED, FAILED, NO_ANSWER, REJECTED, AgentOffer

WORDS_PER_SECOND = 2.5
PROMPT_LEAD_IN = 0.3
RECORD_SECONDS = 5.0
DEFAULT_END_SILENCE = 0.8

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def speech_seconds(text: str) -> float:
    """How long ``text`` takes to say: ``0.3 + words / 2.5`` (a CJK character is half a word)."""
    cjk = len(_CJK.findall(text))
    words = len(_CJK.sub(" ", text).split()) + cjk / 2
    return round(PROMPT_LEAD_IN + words / WORDS_PER_SECOND, 3)


@dataclass(frozen=True)
class AgentPlan:
    """How a simulated agent behaves when rung: answers after ``answer_after`` seconds (no
    answer when that is past the ring timeout) and talks for ``handle`` seconds, or rejects."""

    answer_after: float = 2.0
    handle: float = 60.0
    rejects: bool = False


@dataclass(frozen=True)
class ChannelAction:
    """One thing that happened on the channel, for assertions: ``(t, what, detail)``."""

    t: float
    what: str  # play | done | stop | listen | stop_listening | transfer | transfer_result |
    #            ring_agent | agent_leg | stop_agent | record | recording_done | hangup | dtmf |
    #            speech_start | speech | caller_hangup
    detail: Any = None


@dataclass
class _Playback:
    id: int
    prompt: RenderedPrompt
    duration: float


class SimChannel:
    """A simulated call leg on ``clock``.

    Args:
        clock: the (virtual) clock every delay runs on.
        info: who calls whom.
        transfer_fails: fnmatch patterns of transfer targets that fail; ``True`` fails every
            transfer.
        record_seconds: how long the simulated caller speaks into a recording (capped by the
            node's ``max_seconds``).
        agents: how each simulated agent behaves when rung (None: no agent answers: every
            ring fails).
    """

    def __init__(
        self,
        clock: Clock,
        info: CallInfo | None = None,
        *,
        transfer_fails: bool | Iterable[str] = (),
        record_seconds: float = RECORD_SECONDS,
        agents: Callable[[str], AgentPlan | None] | None = None,
    ) -> None:
        self.clock = clock
        self.info = info or CallInfo(call_id="sim-1")
        if transfer_fails is True:
            self.transfer_fail_patterns: tuple[str, ...] = ("*",)
        elif transfer_fails is False:
            self.transfer_fail_patterns = ()
        else:
            self.transfer_fail_patterns = tuple(transfer_fails)
        self.record_seconds = record_seconds
        self.listener: ChannelListener | None = None
        # what the engine asked for, in order
        self.log: list[ChannelAction] = []
        self.played: list[RenderedPrompt] = []
        self.listening: ListenSpec | None = None
        self.transfers: list[str] = []
        self.agents = agents
        self.agent_legs: dict[int, TimerHandle] = {}
        self.bridged: str | None = None  # the agent the caller talks to
        self.recordings: list[RecordResult] = []
        self.ended = False
        self.end: str | None = None  # hangup | caller_hangup | transferred
        # playback state
        self._next_id = 0
        self._current: _Playback | None = None
        self._current_timer: TimerHandle | None = None
        self._queue: deque[_Playback] = deque()
        self._record_spec: RecordSpec | None = None
        self._record_started = 0.0
        self._record_timer: TimerHandle | None = None
        self._watchers: list[Callable[[], None]] = []

    # --- observers ------------------------------------------------------------------------

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every change a caller could notice (a prompt ended or was
        stopped, a transfer, the end of the call)."""
        self._watchers.append(callback)

    def _changed(self) -> None:
        for callback in list(self._watchers):
            callback()

    def _note(self, what: str, detail: Any = None) -> None:
        self.log.append(ChannelAction(round(self.clock.now(), 4), what, detail))

    @property
    def playing(self) -> RenderedPrompt | None:
        """The prompt playing now, if any."""
        return self._current.prompt if self._current else None

    @property
    def busy(self) -> bool:
        """True while a prompt plays or waits in the queue (hold music, which plays until it is
        stopped, does not count)."""
        current = self._current is not None and not self._current.prompt.loop
        return current or bool(self._queue)

    @property
    def playback_ids(self) -> tuple[int, ...]:
        """Ids of the prompt playing and the ones queued behind it, in order. To let just these
        finish (and not the prompts the engine plays in response):
        ``ids = set(ch.playback_ids); while ids & set(ch.playback_ids): clock.step()``."""
        current = (self._current.id,) if self._current else ()
        return current + tuple(p.id for p in self._queue)

    @property
    def recording(self) -> bool:
        return self._record_spec is not None

    # --- Channel: engine -> call ----------------------------------------------------------

    def attach(self, listener: ChannelListener) -> None:
        self.listener = listener

    def play(self, prompt: RenderedPrompt) -> int:
        self._next_id += 1
        playback = _Playback(self._next_id, prompt, speech_seconds(prompt.text))
        if self.ended:
            return playback.id
        self.played.append(prompt)
        self._note("play", prompt.id)
        if self._current is None:
            self._start(playback)
        else:
            self._queue.append(playback)
        return playback.id

    def _start(self, playback: _Playback) -> None:
        self._current = playback
        if playback.prompt.loop:  # until stopped
            self._current_timer = None
            return
        self._current_timer = self.clock.call_later(
            playback.duration, lambda: self._playback_done(playback)
        )

    def _playback_done(self, playback: _Playback) -> None:
        if self.ended or self._current is not playback:
            return
        self._current = self._current_timer = None
        if self._queue:  # the media goes straight on with the next prompt
            self._start(self._queue.popleft())
        self._note("done", playback.prompt.id)
        if self.listener is not None:
            self.listener.on_playback_done(playback.id)
        self._changed()

    def stop_playback(self) -> None:
        if self._current is None and not self._queue:
            return
        self._drop_playback()
        self._note("stop")
        self._changed()

    def _drop_playback(self) -> None:
        if self._current_timer is not None:
            self._current_timer.cancel()
        self._current = self._current_timer = None
        self._queue.clear()

    def listen(self, spec: ListenSpec) -> None:
        if self.ended:
            return
        self.listening = spec
        self._note("listen", spec.node)

    def stop_listening(self) -> None:
        if self.ended or self.listening is None:
            return
        self.listening = None
        self._note("stop_listening")

    def transfer(self, target: str) -> None:
        if self.ended:
            return
        self.transfers.append(target)
        self._note("transfer", target)
        ok = not any(fnmatchcase(target, p) for p in self.transfer_fail_patterns)
        self.clock.call_later(0, lambda: self._transfer_result(target, ok))
        self._changed()

    def _transfer_result(self, target: str, ok: bool) -> None:
        if self.ended:
            return
        reason = "ok" if ok else "simulated failure (transfer_fails)"
        self._note("transfer_result", (target, ok))
        if ok:
            self._end("transferred")
        if self.listener is not None:
            self.listener.on_transfer_result(ok, reason)
        self._changed()

    def ring_agent(self, offer: AgentOffer) -> None:
        if self.ended:
            return
        self._note("ring_agent", offer.agent)
        plan = self.agents(offer.agent) if self.agents is not None else None
        if plan is None:
            self._agent_after(offer, 0.0, FAILED)
        elif plan.rejects:
            self._agent_after(offer, min(plan.answer_after, offer.ring_timeout), REJECTED)
        elif plan.answer_after >= offer.ring_timeout:
            self._agent_after(offer, offer.ring_timeout, NO_ANSWER)
        else:
            self._agent_after(offer, plan.answer_after, ANSWERED, plan.handle)

    def _agent_after(self, offer: AgentOffer, delay: float, state: str,
                     handle: float = 0.0) -> None:  # fmt: skip
        def happen() -> None:
            self.agent_legs.pop(offer.id, None)
            if self.ended:
                return
            self._note("agent_leg", (offer.agent, state))
            if state == ANSWERED:
                self.bridged = offer.agent
                self._drop_playback()  # the caller hears the agent now
                self.agent_legs[offer.id] = self.clock.call_later(
                    handle, lambda: self._agent_hangs_up(offer))
            if self.listener is not None:
                self.listener.on_agent_leg(offer.id, state)
            self._changed()

        self.agent_legs[offer.id] = self.clock.call_later(delay, happen)

    def _agent_hangs_up(self, offer: AgentOffer) -> None:
        self.agent_legs.pop(offer.id, None)
        if self.ended or self.bridged != offer.agent:
            return
        self.bridged = None
        self._note("agent_leg", (offer.agent, ENDED))
        if self.listener is not None:
            self.listener.on_agent_leg(offer.id, ENDED)
        self._changed()

    def stop_agent(self, offer_id: int) -> None:
        timer = self.agent_legs.pop(offer_id, None)
        if timer is not None:
            timer.cancel()
            self._note("stop_agent", offer_id)

    def record(self, spec: RecordSpec) -> None:
        if self.ended:
            return
        self._cancel_recording()
        self._record_spec = spec
        self._record_started = self.clock.now()
        self._note("record", spec.max_seconds)
        seconds = min(self.record_seconds, spec.max_seconds)
        self._record_timer = self.clock.call_later(seconds, self._recording_done)

    def _recording_done(self) -> None:
        if self.ended or self._record_spec is None:
            return
        result = self._take_recording()
        if self.listener is not None:
            self.listener.on_recording_done(result)
        self._changed()

    def _take_recording(self) -> RecordResult:
        """Stop the recording under way and keep what was recorded."""
        duration = round(self.clock.now() - self._record_started, 3)
        self._cancel_recording()
        result = RecordResult(path=None, duration=duration)
        self.recordings.append(result)
        self._note("recording_done", duration)
        return result

    def _cancel_recording(self) -> None:
        if self._record_timer is not None:
            self._record_timer.cancel()
        self._record_timer = None
        self._record_spec = None

    def hangup(self) -> None:
        if self.ended:
            return
        self._note("hangup")
        recorded = self._take_recording() if self._record_spec is not None else None
        self._end("hangup")
        if recorded is not None and self.listener is not None:
            self.listener.on_recording_done(recorded)  # written all the same, as a server does
        self._changed()

    def _end(self, how: str) -> None:
        """The call is over for the engine: stop the media and ignore what comes later."""
        for timer in self.agent_legs.values():
            timer.cancel()
        self.agent_legs.clear()
        self.ended = True
        self.end = how
        self._drop_playback()
        self._cancel_recording()
        self.listening = None

    # --- the caller's side ----------------------------------------------------------------

    def caller_dtmf(self, digit: str) -> None:
        """The caller presses ``digit``. During a recording the finish key ends it instead
        (the recorder consumes it, as a PBX's record application does)."""
        if self.ended:
            return
        self._note("dtmf", digit)
        if self._record_spec is not None and digit == self._record_spec.finish_key:
            self._recording_done()
            return
        if self.listener is not None:
            self.listener.on_dtmf(digit)

    def caller_speech_start(self) -> None:
        """The caller starts speaking."""
        if self.ended:
            return
        self._note("speech_start")
        if self.listener is not None:
            self.listener.on_speech_start()

    def caller_speech(self, result: SpeechResult) -> None:
        """The recognizer's final result for what the caller said."""
        if self.ended:
            return
        self._note("speech", result.text)
        if self.listener is not None:
            self.listener.on_speech(result)

    def caller_hangup(self) -> None:
        """The caller hangs up."""
        if self.ended:
            return
        self._note("caller_hangup")
        recorded = self._take_recording() if self._record_spec is not None else None
        self._end("caller_hangup")
        if self.listener is not None:
            self.listener.on_hangup()
            if recorded is not None:  # the message is kept (a server writes it after the BYE)
                self.listener.on_recording_done(recorded)
        self._changed()

    @property
    def end_silence(self) -> float:
        """The silence that ends an utterance for the current recognizer."""
        return self.listening.end_silence if self.listening else DEFAULT_END_SILENCE
