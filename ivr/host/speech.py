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

After a decision the next utterance opens at once with the same grammar (the node may stay:
a re-prompt after a no-match, a confirmation), unless the engine changed what it listens for
meanwhile.

A new utterance starts with the caller's last ``PRE_ROLL`` frames: the recognizer needs some
audio before the first word (its noise estimate and pre-roll), and a caller who speaks the
moment a prompt starts would otherwise give it none (measured with PocketSphinx on the bank
menu: "main menu" spoken 40 ms after the stream opened came out at confidence 0.14, below the
confirmation threshold, against 0.72 with 200 ms of audio before it). Digital silence makes up
a history shorter than that (the first node of a call, a caller who answers at once; measured
the same as real silence). The history is dropped after a decision, so the tail of one answer
never starts the next utterance.

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
from ivr.asr.service import AsrService, AsrStream
from ivr.engine.channel import ChannelListener, ListenSpec, SpeechResult

log = logging.getLogger("ivr.host")

DTMF_GUARD = 10  # frames (200 ms) after a key press before recognition resumes
PRE_ROLL = 25  # frames (500 ms) of the caller's audio a new utterance starts with
_SILENCE = np.zeros(160, dtype=np.int16)
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
    """

    def __init__(self, service: AsrService, listener: Callable[[], ChannelListener | None],
                 call_id: str,
                 on_decision: Callable[[str, float | None], None] | None = None) -> None:
        self.service = service
        # (decision, audio seconds from the end of speech to it): the engine's metrics
        self.on_decision = on_decision
        self._listener = listener
        self.call_id = call_id
        self.spec: ListenSpec | None = None
        self.utterance: AsrStream | None = None
        self._grammar: Grammar | None = None
        self._options = AsrOptions()
        self._guard = 0
        self._recent: deque[NDArray[np.int16]] = deque(maxlen=PRE_ROLL)

    def listen(self, spec: ListenSpec) -> None:
        """Start (or replace) recognition for ``spec``."""
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
        if not self._guard:
            self._open()

    def stop(self) -> None:
        """Stop recognising (the utterance in progress is dropped)."""
        self.spec = None
        self._close()

    def feed(self, frame: NDArray[np.int16]) -> None:
        """One decoded frame of the caller (from the media clock's pass: kept cheap)."""
        if self._guard:
            self._guard -= 1
            if not self._guard and self.spec is not None and self.utterance is None:
                self._open()
            return
        self._recent.append(frame)
        if self.utterance is not None:
            self.utterance.feed(frame)

    def dtmf(self) -> None:
        """An in-band key was detected: what was being heard is not speech; pause briefly."""
        self._guard = DTMF_GUARD
        self._recent.clear()
        self._close()

    def _open(self) -> None:
        assert self._grammar is not None
        self.utterance = utterance = self.service.open(self._grammar, self._options,
                                                       self._event, self.call_id)  # fmt: skip
        for _ in range(PRE_ROLL - len(self._recent)):
            utterance.feed(_SILENCE)
        for frame in self._recent:
            utterance.feed(frame)

    def _close(self) -> None:
        utterance, self.utterance = self.utterance, None
        if utterance is not None:
            utterance.close()

    def _event(self, event: AsrEvent) -> None:
        listener = self._listener()
        if isinstance(event, SpeechStarted):
            if listener is not None:
                listener.on_speech_start()
            return
        if not isinstance(event, Final | NoMatch | NoSpeech):
            return  # partials: the engine's speech net covers them
        spec = self.spec
        self._count(event)
        self._close()
        self._recent.clear()  # the end of this answer must not start the next utterance
        if listener is not None and isinstance(event, Final):
            log.info("call %s: heard %r (choice %s, confidence %.2f)", self.call_id, event.text,
                     event.choice, event.confidence)  # fmt: skip
            listener.on_speech(SpeechResult(event.text, event.confidence, event.choice))
        elif listener is not None and isinstance(event, NoMatch):
            log.info("call %s: heard %r: no match (confidence %.2f)", self.call_id, event.text,
                     event.confidence)  # fmt: skip
            listener.on_speech(SpeechResult(event.text, event.confidence, None, rejected=True))
        # The node may stay (a re-prompt, a confirmation): keep listening unless it moved on.
        if spec is not None and self.spec is spec and self.utterance is None and not self._guard:
            self._open()

    def _count(self, event: Final | NoMatch | NoSpeech) -> None:
        if self.on_decision is None:
            return
        if isinstance(event, NoSpeech):
            self.on_decision("no_speech", None)
        else:
            self.on_decision("match" if isinstance(event, Final) else "no_match",
                             event.decided_at - event.speech_end)
