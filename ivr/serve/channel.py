"""SipChannel: the engine's :class:`~ivr.engine.channel.Channel` over a SIP call and its RTP stream.

Every flow that runs in the simulator runs here unchanged: prompts become audio (a recording, a
cached synthesis, or a synthesis made now for text with variables), keys come from RFC 4733,
in-band tones or SIP INFO (whichever arrives; the transport layers de-duplicate their own), speech
is recognised by the host's speech input (:mod:`ivr.host.speech`), the caller's hang-up and
RTP silence end the session, transfers are REFERs.

Prompt order is kept even when a prompt must be synthesized first: each play gets a slot in an
ordered queue (:class:`~ivr.media.prompt_slots.PromptSlots`) and reaches the player only when
every earlier slot has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from ivr.core.textsafe import file_stem
from ivr.engine.channel import (
    AgentOffer,
    CallInfo,
    ChannelListener,
    ListenSpec,
    RecordResult,
    RecordSpec,
    RenderedPrompt,
)
from ivr.engine.queueing import ANSWERED, FAILED
from ivr.host.speech import CallSpeech
from ivr.media.player import EncodedAudio
from ivr.media.prompt_slots import PromptSlots
from ivr.media.recorder import Recorder
from ivr.rtp.stream import RtpStream
from ivr.serve.agents import AgentDialer, AgentLeg
from ivr.sip.call import SipCall

log = logging.getLogger("ivr.serve")

PromptSource = Callable[[RenderedPrompt], "asyncio.Future[EncodedAudio | None]"]
# (call id, () -> the engine's listener) -> the call's speech input (None: DTMF only)
SpeechFactory = Callable[[str, Callable[[], ChannelListener | None]], CallSpeech | None]


class SipChannel:
    """A live call as the engine sees it.

    Args:
        call: The SIP call (already accepted).
        stream: Its RTP stream (already started with the negotiated media).
        prompt_audio: ``(prompt) -> future of EncodedAudio`` (None: nothing to play).
        recordings_dir: Where ``record`` nodes write WAV files.
        speech: Makes the call's speech input (the host's; None: DTMF only).
        agents: Rings the queue's agents for this caller and bridges them (None: no agents).
    """

    def __init__(
        self,
        call: SipCall,
        stream: RtpStream,
        prompt_audio: PromptSource,
        recordings_dir: Path,
        speech: SpeechFactory | None = None,
        agents: AgentDialer | None = None,
    ) -> None:
        self.call = call
        self.stream = stream
        self.info: CallInfo = call.info()
        self._prompt_audio = prompt_audio
        self._recordings_dir = recordings_dir
        self._listener: ChannelListener | None = None
        self._slots: PromptSlots[EncodedAudio] = PromptSlots(
            self._start_prompt, self._prompt_played, has_audio=lambda a: a.frames > 0,
            call_id=self.info.call_id)  # fmt: skip
        self._recorder: Recorder | None = None
        self._record_spec: RecordSpec | None = None
        self._record_count = 0
        self.listening: ListenSpec | None = None
        self.speech = speech(self.info.call_id, lambda: self._listener) if speech else None
        self._agents = agents
        self._legs: dict[int, AgentLeg] = {}
        self.ended = False

    # --- wiring ---------------------------------------------------------------------------

    def attach(self, listener: ChannelListener) -> None:
        self._listener = listener
        self.stream.on_dtmf = self._dtmf
        self.call.on_dtmf = self._dtmf
        if self.speech is not None:
            self.stream.on_audio = self.speech.feed
        self.stream.on_inactive = self._inactive
        self.call.on_hangup = self._remote_hangup
        self.call.on_transfer_result = self._transfer_result

    def _dtmf(self, digit: str) -> None:
        if self.ended or self._listener is None:
            return
        if self.speech is not None and self.stream.receiver.rx_inband:
            self.speech.dtmf()  # a tone in the audio is not a word: drop what was heard
        if self._record_spec is not None and digit == self._record_spec.finish_key:
            self._finish_recording()
            return
        self._listener.on_dtmf(digit)

    def _inactive(self) -> None:
        log.warning("call %s: no RTP from the caller: hanging up", self.info.call_id)
        if self.ended:
            return
        self.hangup()  # BYE (ends the channel: _gone() would now return early)
        if self._listener is not None:
            self._listener.on_hangup()  # the caller is lost: the engine must not wait for it

    def _remote_hangup(self) -> None:
        self._gone()

    def _gone(self) -> None:
        if self.ended:
            return
        self._end()
        if self._listener is not None:
            self._listener.on_hangup()

    def _transfer_result(self, ok: bool, reason: str) -> None:
        if self._listener is not None:
            self._listener.on_transfer_result(ok, reason)

    # --- prompts --------------------------------------------------------------------------

    def play(self, prompt: RenderedPrompt) -> int:
        return self._slots.add(prompt.id, self._prompt_audio(prompt))

    def _start_prompt(self, slot_id: int, audio: EncodedAudio | None) -> None:
        if audio is None:  # nothing to play: played, told from the next pass of the loop
            self.stream.loop.call_soon(self._slots.played, slot_id)
            return
        self.stream.player.play(audio, lambda _player_id: self._slots.played(slot_id))

    def _prompt_played(self, slot_id: int) -> None:
        if self._listener is not None:
            self._listener.on_playback_done(slot_id)

    def stop_playback(self) -> None:
        self._slots.clear()
        self.stream.player.stop()

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
        if not self.ended:
            self.call.transfer(target)

    def ring_agent(self, offer: AgentOffer) -> None:
        if self.ended:
            return
        if self._agents is None:  # a server without agent legs: every ring fails at once
            log.warning("call %s: cannot ring agent %s: this server places no calls",
                        self.info.call_id, offer.agent)  # fmt: skip
            self.stream.loop.call_soon(self._agent_leg, offer.id, FAILED)
            return
        self._legs[offer.id] = self._agents.ring(offer, self.stream, self.info.caller,
                                                 offer.language, self._agent_leg)  # fmt: skip

    def _agent_leg(self, offer_id: int, state: str) -> None:
        if state != ANSWERED:
            self._legs.pop(offer_id, None)
        if self._listener is not None and not self.ended:
            self._listener.on_agent_leg(offer_id, state)

    def stop_agent(self, offer_id: int) -> None:
        leg = self._legs.pop(offer_id, None)
        if leg is not None:
            leg.stop()

    def record(self, spec: RecordSpec) -> None:
        if self.ended:
            return
        self._record_count += 1
        # The Call-ID is the caller's ("../" is legal in it): a safe stem keeps the file here.
        stem = file_stem(self.info.call_id)
        path = self._recordings_dir / f"{stem}-{self._record_count}.wav"
        self._recorder = Recorder(self.stream)
        self._record_spec = spec
        self._recorder.start(path, spec.max_seconds, on_limit=self._finish_recording)

    def _finish_recording(self) -> None:
        recorder, self._recorder, self._record_spec = self._recorder, None, None
        if recorder is None:
            return
        task = asyncio.ensure_future(recorder.stop())
        task.add_done_callback(self._recording_written)

    def _recording_written(self, task: asyncio.Future[tuple[str, float]]) -> None:
        try:
            path, duration = task.result()
        except Exception:
            log.exception("call %s: recording failed", self.info.call_id)
            path, duration = None, 0.0
        # Also after the end: a message the caller's hang-up (or a drain) ended is still the
        # call's; the engine links it to the record (Session.on_recording_done).
        if self._listener is not None:
            self._listener.on_recording_done(RecordResult(path, duration))

    def hangup(self) -> None:
        if self.ended:
            return
        self._end()
        self.call.hangup()

    def _end(self) -> None:
        self.ended = True
        for leg in self._legs.values():  # no agent leg outlives its caller
            leg.stop()
        self._legs.clear()
        self._slots.close()
        self.stream.player.stop()
        if self.speech is not None:
            self.speech.stop()
        if self._recorder is not None:
            self._finish_recording()
        self.stream.close()
