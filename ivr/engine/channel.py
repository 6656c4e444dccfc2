"""The Channel interface: what the engine needs from a call, whatever carries it.

Transports (the SIP stack, pyVoIP, the simulator) implement :class:`Channel`; the engine's
:class:`~ivr.engine.session.Session` implements :class:`ChannelListener` and is attached to the
channel before the call starts. All calls in both directions happen on the session's event loop
thread; a transport with threads of its own hops onto the loop first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ivr.core.callinfo import CallInfo
from ivr.engine.queueing import AgentOffer
from ivr.flow.render import RenderedPrompt

__all__ = [
    "AgentOffer", "CallInfo", "Channel", "ChannelListener", "ListenSpec", "RecordResult",
    "RecordSpec", "RenderedPrompt", "SpeechResult",
]


@dataclass(frozen=True)
class ListenSpec:
    """What the engine is listening for now: speech phrases (per choice) and DTMF."""

    node: str
    language: str
    phrases: dict[str, tuple[str, ...]] = field(default_factory=dict)  # choice key -> phrases
    builtin: str | None = None  # amount | digits | yes_no
    end_silence: float = 0.8
    max_speech: float = 15.0
    min_digits: int | None = None  # how many digits a `digits` grammar takes (None: any)
    max_digits: int | None = None


@dataclass(frozen=True)
class SpeechResult:
    """A final recognition result."""

    text: str
    confidence: float = 1.0
    choice: str | None = None  # the choice key the recognizer matched, if any
    rejected: bool = False  # the recognizer heard speech it could not match (no-match)


@dataclass(frozen=True)
class RecordSpec:
    max_seconds: float = 120.0
    finish_key: str = "#"
    beep: bool = True


@dataclass(frozen=True)
class RecordResult:
    path: str | None
    duration: float


class ChannelListener(Protocol):
    """Events from the call to the engine."""

    def on_playback_done(self, playback_id: int) -> None:
        """A prompt finished playing (not sent when it was stopped)."""

    def on_dtmf(self, digit: str) -> None:
        """A key was pressed (RFC 4733, SIP INFO or in-band; de-duplicated by the transport)."""

    def on_speech_start(self) -> None:
        """The caller started speaking (barge-in; stops the no-input timer)."""

    def on_speech(self, result: SpeechResult) -> None:
        """A final recognition result."""

    def on_recording_done(self, result: RecordResult) -> None:
        """A recording finished (max length, finish key or silence)."""

    def on_transfer_result(self, ok: bool, reason: str) -> None:
        """The outcome of :meth:`Channel.transfer`."""

    def on_agent_leg(self, offer_id: int, state: str) -> None:
        """An agent leg of :meth:`Channel.ring_agent` moved on: answered (now bridged),
        rejected, no_answer, failed, or ended (the agent hung up after the bridge)."""

    def on_hangup(self) -> None:
        """The caller hung up or the call was lost."""


class Channel(Protocol):
    """Actions from the engine to the call."""

    info: CallInfo

    def attach(self, listener: ChannelListener) -> None:
        """Send every event of this call to ``listener`` from now on."""

    def play(self, prompt: RenderedPrompt) -> int:
        """Start (or queue after the current one) a prompt; returns a playback id."""

    def stop_playback(self) -> None:
        """Stop the playing prompt and drop queued ones, within one frame."""

    def listen(self, spec: ListenSpec) -> None:
        """Start or replace speech recognition for the current node."""

    def stop_listening(self) -> None:
        """Stop speech recognition."""

    def transfer(self, target: str) -> None:
        """Blind-transfer the call; the result comes to ``on_transfer_result``."""

    def ring_agent(self, offer: AgentOffer) -> None:
        """Call the agent (whispering ``offer.whisper`` to them only) and, when they answer,
        bridge them with the caller; every change comes to ``on_agent_leg``. A transport that
        cannot reach agents reports ``failed`` at once."""

    def stop_agent(self, offer_id: int) -> None:
        """Stop ringing that agent, or hang up their leg (no agent leg outlives its caller)."""

    def record(self, spec: RecordSpec) -> None:
        """Record the caller; the result comes to ``on_recording_done``."""

    def hangup(self) -> None:
        """End the call from our side."""
