"""Speech input for one live call: the engine's :class:`ListenSpec` turned into ASR streams.

:class:`CallSpeech` sits between a :class:`~ivr.serve.channel.SipChannel` and the process's
:class:`~ivr.asr.service.AsrService`. While the engine listens it keeps one utterance open,
fed with the caller's decoded 20 ms frames from the media clock's pass, and passes the
recognizer's events on:

* SpeechStarted -> ``on_speech_start()`` (barge-in: the engine stops the prompt at once, so
  the next tick sends silence; it also stops the no-input timer and sets the engine's own net
  of ``max_speech`` + 2 s, which covers the partial results: they need no hook);
* Final -> ``on_speech(SpeechResult(text, confidence, choice))``;
* NoMatch -> ``on_speech(SpeechResult(text, confidence, None, rejected=True))``: the engine's
  no-match path (re-prompt, count, escalate);
* NoSpeech -> nothing.

**Gated.** No utterance is open while the caller is quiet: every frame goes through the call's
:class:`~ivr.asr.gate.SpeechGate` (one level per frame, on the loop), and only when it opens is
an utterance opened on the service (so a worker sees no frame of a silent caller and no decoder
is held for one). The gate gives up on an utterance the recognizer does not confirm as speech
within a second, on a steady sound (line noise, a tone) and at ``max_speech`` + 2 s; an utterance
it gives up on after the recognizer heard speech is decided at once on what was heard (speech
followed by babble or a hum never ends by its energy). After a decision the gate may open again
at once (a re-prompt, a confirmation), unless the utterance ran to its ``max_speech`` cut: then
only after a pause.

A new utterance starts with the caller's last ``PRE_ROLL`` frames: the recognizer needs some
audio before the first word (its noise estimate and pre-roll), and a caller who speaks the
moment a prompt starts would otherwise give it none (measured with PocketSphinx on the bank
menu: "main menu" spoken 40 ms after the stream opened came out at confidence 0.14, below the
confirmation threshold, against 0.72 with 200 ms of audio before it). A history shorter than
that (the start of a call) is made up with its quietest frame (:func:`ivr.asr.gate.pre_roll`).
The history is dropped after a decision, so the tail of one answer never starts the next
utterance.

On a call whose keys come as in-band tones, a key press discards the utterance in progress
and pauses recognition for ``DTMF_GUARD`` frames, so the tones (and a tone's tail) are never
taken for words (RFC 4733 and SIP INFO keys are not in the audio: no pause, which would clip
the first syllable of a caller who speaks right after a key). DTMF itself is handled by the
channel as ever, at every node. A language the service cannot recognise (Mandarin without a
model) gets no stream: DTMF only, and a log line, once per language, saying why.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from weakref import WeakKeyDictionary

import numpy as np
from numpy.typing import NDArray

from ivr.asr.base import (
    AsrEvent,
    AsrOptions,
    Builtin,
    Final,
    Grammar,
    NoMatch,
    NoSpeech,
    SpeechStarted,
)
from ivr.asr.gate import PRE_ROLL, GateAction, GateConfig, SpeechGate, pre_roll
from ivr.asr.service import AsrService, AsrStream
from ivr.engine.channel import ChannelListener, ListenSpec, SpeechResult

log = logging.getLogger("ivr.host")

DTMF_GUARD = 10  # frames (200 ms) after a key press before recognition resumes
_BUILTINS: dict[str, Builtin] = {"digits": "digits", "yes_no": "yes_no", "amount": "amount"}
# Languages whose missing recognizer was logged, per service (once, not per call).
_explained: WeakKeyDictionary[AsrService, set[str]] = WeakKeyDictionary()


def grammar_for(spec: ListenSpec) -> Grammar:
    """The recognizer grammar for what the engine listens for."""
    return Grammar(language=spec.language, choices=dict(spec.phrases),
                   builtin=_BUILTINS.get(spec.builtin or ""), min_digits=spec.min_digits,
                   max_digits=spec.max_digits)  # fmt: skip


class CallSpeech:
    """One call's speech recognition (see the module docstring).

    Args:
        service: The process's ASR service.
        listener: ``() -> the engine's listener`` (None before attach or after the end).
        call_id: For log lines.
        on_decision: ``(decision, audio seconds from the end of speech to it)``: the engine's
            metrics.
    """

    def __init__(self, service: AsrService, listener: Callable[[], ChannelListener | None],
                 call_id: str,
                 on_decision: Callable[[str, float | None], None] | None = None) -> None:
        self.service = service
        self.on_decision = on_decision
        self._listener = listener
        self.call_id = call_id
        self.spec: ListenSpec | None = None
        self.utterance: AsrStream | None = None
        self.gate = SpeechGate()
        self._grammar: Grammar | None = None
        self._options = AsrOptions()
        self._guard = 0
        self._told_start = False  # the engine was told speech started in this utterance
        self._recent: deque[NDArray[np.int16]] = deque(maxlen=PRE_ROLL)

    def listen(self, spec: ListenSpec) -> None:
        """Start (or replace) recognition for ``spec``; an utterance opens when the caller
        speaks."""
        self.stop()
        why = self.service.unavailable(spec.language)
        if why is not None:
            explained = _explained.setdefault(self.service, set())
            if spec.language not in explained:
                explained.add(spec.language)
                log.warning("call %s: no speech recognition in %r (DTMF only): %s",
                            self.call_id, spec.language, why)  # fmt: skip
            return
        self.spec = spec
        self._grammar = grammar_for(spec)
        self._options = AsrOptions(end_silence=spec.end_silence, max_speech=spec.max_speech)
        self.gate.config = GateConfig.for_max_speech(spec.max_speech)

    def stop(self) -> None:
        """Stop recognising (the utterance in progress is dropped)."""
        self.spec = None
        self._close()

    def feed(self, frame: NDArray[np.int16]) -> None:
        """One decoded frame of the caller (from the media clock's pass: kept cheap)."""
        if self._guard:
            self._guard -= 1
            return
        self._recent.append(frame)
        if self.spec is None:
            self.gate.track(frame)  # not listening: the pre-roll and the noise floor go on
            return
        if self.utterance is not None:
            self.utterance.feed(frame)
        action = self.gate.feed(frame)
        if action is GateAction.OPEN and self.utterance is None:
            self._open()
        elif action is GateAction.GIVE_UP:
            self._give_up()

    def dtmf(self) -> None:
        """An in-band key was detected: what was being heard is not speech; pause briefly."""
        self._guard = DTMF_GUARD
        self._recent.clear()
        self._close()  # the gate shuts too; the tones themselves never open it

    def _open(self) -> None:
        assert self._grammar is not None
        self._told_start = False
        self.utterance = utterance = self.service.open(self._grammar, self._options,
                                                       self._event, self.call_id)  # fmt: skip
        for frame in pre_roll(self._recent):
            utterance.feed(frame)

    def _close(self) -> None:
        utterance, self.utterance = self.utterance, None
        if utterance is not None:
            utterance.close()
            self.gate.done()

    def _give_up(self) -> None:
        """The gate gave up on the open utterance: one the recognizer never confirmed as speech
        is dropped; a confirmed one is decided now, on what was heard (the decision comes as
        any other)."""
        utterance = self.utterance
        if utterance is None:
            return
        if self._told_start and utterance.open:
            utterance.finish()
        else:
            self._close()  # not speech, or a stream that failed: nothing more will come

    def _event(self, event: AsrEvent) -> None:
        listener = self._listener()
        if isinstance(event, SpeechStarted):
            self.gate.confirm()
            self._told_start = True
            if listener is not None:
                listener.on_speech_start()
            return
        if not isinstance(event, Final | NoMatch | NoSpeech):
            return  # partials: the engine's speech net covers them
        self._count(event)
        cut = (not isinstance(event, NoSpeech)
               and event.decided_at - event.speech_start >= self._options.max_speech - 0.05)
        self._close()
        if cut:
            self.gate.reset()  # a sound that never paused: reopen only after a pause
        self._recent.clear()  # the end of this answer must not start the next utterance
        if listener is not None and isinstance(event, Final):
            log.info("call %s: heard %r (choice %s, confidence %.2f)", self.call_id, event.text,
                     event.choice, event.confidence)  # fmt: skip
            listener.on_speech(SpeechResult(event.text, event.confidence, event.choice))
        elif listener is not None and isinstance(event, NoMatch):
            log.info("call %s: heard %r: no match (confidence %.2f)", self.call_id, event.text,
                     event.confidence)  # fmt: skip
            listener.on_speech(SpeechResult(event.text, event.confidence, None, rejected=True))

    def _count(self, event: Final | NoMatch | NoSpeech) -> None:
        if self.on_decision is None:
            return
        if isinstance(event, NoSpeech):
            self.on_decision("no_speech", None)
        else:
            self.on_decision("match" if isinstance(event, Final) else "no_match",
                             event.decided_at - event.speech_end)
