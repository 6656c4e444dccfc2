"""PyVoipChannel: the engine's :class:`~ivr.engine.channel.Channel` over one pyVoIP call.

The engine side runs on the asyncio loop; pyVoIP runs the call on its own threads (see
:mod:`ivr.pyvoip.pump`). Every event from the call (a key, a prompt played, a recording, the
caller's hang-up) hops onto the loop with ``loop.call_soon_threadsafe`` before it reaches the
session; every action from the engine is a thread-safe command to the call's media loop.

What pyVoIP cannot do is reported, not hidden: a transfer fails at once with
:data:`NO_REFER` (so the flow's ``on_fail`` runs). Speech is recognised by the host's speech
input (:mod:`ivr.host.speech`), fed with the caller's audio from the media loop (pyVoIP's 8-bit
audio, so a little less detail than the native transport gives the recognizer).

Prompt order is kept when a prompt must be synthesized first: each play gets a slot
(:class:`~ivr.media.prompt_slots.PromptSlots`) and reaches the media loop only when every
earlier slot has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.engine.channel import (
    AgentOffer,
    CallInfo,
    ChannelListener,
    ListenSpec,
    RecordResult,
    RecordSpec,
    RenderedPrompt,
)
from ivr.engine.queueing import FAILED
from ivr.host.speech import CallSpeech
from ivr.media.prompt_slots import PromptSlots
from ivr.media.wav import TARGET_RATE, write_wav
from ivr.pyvoip.pump import CallPump

log = logging.getLogger("ivr.pyvoip")

NO_REFER = "pyVoIP has no REFER"
NO_AGENT_LEGS = "pyVoIP cannot bridge calls: agent queues need ivr serve"

PromptSource = Callable[[RenderedPrompt], "asyncio.Future[bytes | None]"]
# (call id, () -> the engine's listener) -> the call's speech input (None: DTMF only)
SpeechFactory = Callable[[str, Callable[[], ChannelListener | None]], CallSpeech | None]


class PyVoipChannel:
    """A pyVoIP call as the engine sees it.

    Args:
        info: Who calls whom (from the INVITE).
        pump: The call's media loop (its events are bound to this channel).
        loop: The engine's event loop.
        prompt_audio: ``(prompt) -> future of 8-bit unsigned audio`` (None: nothing to play).
        recordings_dir: Where ``record`` nodes write WAV files.
        speech: Makes the call's speech input (the host's; None: DTMF only).
    """

    def __init__(
        self,
        info: CallInfo,
        pump: CallPump,
        loop: asyncio.AbstractEventLoop,
        prompt_audio: PromptSource,
        recordings_dir: Path,
        speech: SpeechFactory | None = None,
    ) -> None:
        self.info = info
        self.pump = pump
        self.loop = loop
        self._prompt_audio = prompt_audio
        self._recordings_dir = recordings_dir
        self._listener: ChannelListener | None = None
        self._slots: PromptSlots[bytes] = PromptSlots(self._start_prompt, self._prompt_played,
                                                      call_id=info.call_id)  # fmt: skip
        self._record_spec: RecordSpec | None = None
        self._record_path: Path | None = None
        self._record_count = 0
        self.listening: ListenSpec | None = None
        self.speech = speech(info.call_id, lambda: self._listener) if speech else None
        pump.hearing = self.speech is not None
        self.ended = False
        pump.events = _LoopEvents(self)

    # --- wiring ---------------------------------------------------------------------------

    def attach(self, listener: ChannelListener) -> None:
        self._listener = listener

    # --- events from the media loop (already on the loop) ---------------------------------

    def _dtmf(self, digit: str) -> None:
        if self.ended or self._listener is None:
            return
        if self.speech is not None and not self.pump.rfc2833_seen:
            self.speech.dtmf()  # a tone in the audio is not a word: drop what was heard
        if self._record_spec is not None and digit == self._record_spec.finish_key:
            self.pump.stop_recording()
            return
        self._listener.on_dtmf(digit)

    def _audio(self, frames: list[NDArray[np.int16]]) -> None:
        if self.speech is not None and not self.ended:
            for frame in frames:
                self.speech.feed(frame)

    def _played(self, playback_id: int) -> None:
        self._slots.played(playback_id)

    def _gone(self) -> None:
        if self.ended:
            return
        self._end()
        if self._listener is not None:
            self._listener.on_hangup()

    def _recorded(self, samples: NDArray[np.int16]) -> None:
        path, self._record_path, self._record_spec = self._record_path, None, None
        if path is None:
            return
        task = asyncio.ensure_future(self._write_recording(path, samples))
        task.add_done_callback(self._recording_written)

    async def _write_recording(self, path: Path, samples: NDArray[np.int16]) -> tuple[str, float]:
        await asyncio.to_thread(write_wav, path, samples, TARGET_RATE)
        return str(path), round(len(samples) / TARGET_RATE, 3)

    def _recording_written(self, task: asyncio.Future[tuple[str, float]]) -> None:
        try:
            path, duration = task.result()
            result = RecordResult(path, duration)
        except Exception:
            log.exception("call %s: recording failed", self.info.call_id)
            result = RecordResult(None, 0.0)
        if self._listener is not None and not self.ended:
            self._listener.on_recording_done(result)

    # --- prompts --------------------------------------------------------------------------

    def play(self, prompt: RenderedPrompt) -> int:
        return self._slots.add(prompt.id, self._prompt_audio(prompt))

    def _start_prompt(self, slot_id: int, audio: bytes | None) -> None:
        self.pump.play(slot_id, audio or b"")  # nothing to play still comes back as played

    def _prompt_played(self, slot_id: int) -> None:
        if self._listener is not None:
            self._listener.on_playback_done(slot_id)

    def stop_playback(self) -> None:
        self._slots.clear()
        self.pump.stop_playback()

    # --- input ----------------------------------------------------------------------------

    def listen(self, spec: ListenSpec) -> None:
        self.listening = spec
        if self.speech is not None and not self.ended:
            self.speech.listen(spec)

    def stop_listening(self) -> None:
        self.listening = None
        if self.speech is not None:
            self.speech.stop()

    # --- endings --------------------------------------------------------------------------

    def transfer(self, target: str) -> None:
        if self.ended:
            return
        log.warning("call %s: transfer to %s refused: %s", self.info.call_id, target, NO_REFER)
        self.loop.call_soon(self._transfer_failed)

    def _transfer_failed(self) -> None:
        if self._listener is not None and not self.ended:
            self._listener.on_transfer_result(False, NO_REFER)

    def ring_agent(self, offer: AgentOffer) -> None:
        # pyVoIP gives one call per thread and no way to relay one call's audio into another:
        # an agent queue needs the native transport (ivr serve).
        log.warning("call %s: cannot ring agent %s: %s", self.info.call_id, offer.agent,
                    NO_AGENT_LEGS)  # fmt: skip
        self.loop.call_soon(self._agent_failed, offer.id)

    def _agent_failed(self, offer_id: int) -> None:
        if self._listener is not None and not self.ended:
            self._listener.on_agent_leg(offer_id, FAILED)

    def stop_agent(self, offer_id: int) -> None:
        pass

    def record(self, spec: RecordSpec) -> None:
        if self.ended:
            return
        self._record_count += 1
        safe_id = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.info.call_id)
        self._record_path = self._recordings_dir / f"{safe_id}-{self._record_count}.wav"
        self._record_spec = spec
        self.pump.start_recording(spec.max_seconds)

    def hangup(self) -> None:
        if self.ended:
            return
        self._end()
        self.pump.hangup()

    def _end(self) -> None:
        self.ended = True
        self._slots.close()
        self.pump.stop_playback()
        self.pump.hearing = False
        if self.speech is not None:
            self.speech.stop()
        if self._record_spec is not None:
            self.pump.stop_recording()


class _LoopEvents:
    """The media loop's events, hopped onto the channel's event loop."""

    def __init__(self, channel: PyVoipChannel) -> None:
        self._channel = channel

    def _post(self, callback: Callable[..., None], *args: object) -> None:
        try:
            self._channel.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the server is gone
            log.debug("call %s: event after the loop closed", self._channel.info.call_id)

    def played(self, playback_id: int) -> None:
        self._post(self._channel._played, playback_id)

    def dtmf(self, digit: str) -> None:
        self._post(self._channel._dtmf, digit)

    def audio(self, frames: list[NDArray[np.int16]]) -> None:
        self._post(self._channel._audio, frames)

    def recorded(self, samples: NDArray[np.int16]) -> None:
        self._post(self._channel._recorded, samples)

    def ended(self) -> None:
        self._post(self._channel._gone)
