"""Endpointing for one utterance: where speech starts, and when it is over.

Built on the media plane's energy VAD (:class:`ivr.media.vad.Vad`, adaptive noise floor): speech
starts after a few loud frames, as there. What this module adds is the end of the utterance,
decided here rather than by the VAD so that it can change while the caller speaks:

* **end of speech**: ``end_silence`` seconds with no voiced frame (a frame ``keep_db`` above the
  noise floor the VAD tracks). The recognizer may shorten :attr:`Endpointer.end_silence` while
  the utterance runs: when what was heard so far is already a complete, unambiguous grammar match
  nothing the caller adds can change the result, so waiting the full silence only adds latency
  (VoiceXML's ``completetimeout`` versus ``incompletetimeout``).
* **maximum length**: ``max_speech`` seconds after the start the utterance is cut, whatever the
  audio does. A noise that begins abruptly looks like speech to an energy detector, and the
  floor only rises slowly during speech (so quiet syllables are not lost), so in continuous
  noise this cut is what ends the turn.

The VAD itself is fed an end silence longer than any utterance: its own end decision is unused.
Times are seconds of audio fed; each event carries the time of its boundary (start of the first
loud frame, end of the last voiced frame, or the cut).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from numpy.typing import ArrayLike

from ivr.media.vad import FRAME_SECONDS, Vad, VadConfig, frame_level

EndReason = Literal["silence", "max_speech"]


@dataclass(frozen=True)
class SpeechStart:
    """Speech began at ``time`` (seconds of audio fed)."""

    time: float


@dataclass(frozen=True)
class SpeechEnd:
    """The utterance is over: decided at ``decided_at``; speech ended at ``time``."""

    time: float  # end of the last voiced frame (the cut itself for max_speech)
    decided_at: float  # seconds of audio fed when this was decided
    reason: EndReason


class Endpointer:
    """Finds one utterance in a stream of 20 ms frames.

    Args:
        end_silence: seconds of silence after speech that end the utterance.
        max_speech: longest utterance, in seconds from its start.
        vad: the energy detector's thresholds (its ``end_silence`` is ignored).
        frame_seconds: duration of one frame.
    """

    def __init__(
        self,
        end_silence: float = 0.8,
        max_speech: float = 15.0,
        vad: VadConfig | None = None,
        frame_seconds: float = FRAME_SECONDS,
    ) -> None:
        self.end_silence = end_silence
        self.max_speech = max_speech
        config = vad or VadConfig()
        self.keep_db = config.keep_db
        self.start_db = config.start_db
        self.min_level_db = config.min_level_db
        # The VAD must never end the utterance itself: its end silence outlasts max_speech.
        self._vad = Vad(replace(config, end_silence=max_speech + 3600.0), frame_seconds)
        self.frame_seconds = frame_seconds
        self.frames = 0  # frames fed
        self.speech_start: float | None = None
        self.last_voice: float | None = None  # end of the last voiced frame, seconds
        self.ended: SpeechEnd | None = None
        self._margins: list[float] = []  # per frame since speech started: dB over the floor
        self._first_voiced_frame = 0  # frame index of _margins[0]

    @property
    def in_speech(self) -> bool:
        """True between the start of speech and the end of the utterance."""
        return self.speech_start is not None and self.ended is None

    @property
    def now(self) -> float:
        """Seconds of audio fed so far."""
        return self.frames * self.frame_seconds

    def feed(self, frame: ArrayLike) -> SpeechStart | SpeechEnd | None:
        """Analyse one frame (int16); return an event when speech starts or the utterance ends."""
        return self.feed_level(frame_level(frame))

    def feed_level(self, level: float) -> SpeechStart | SpeechEnd | None:
        """:meth:`feed` for a frame whose level (dBFS) is already known."""
        if self.ended is not None:
            return None
        floor = self._vad.floor  # the floor this frame is judged against (before it moves)
        event = self._vad.feed_level(level)
        self.frames += 1
        if self.speech_start is None:
            if event is not None and event.kind == "start":
                self.speech_start = event.time
                self.last_voice = self.now
                start_frames = self.frames - round(event.time / self.frame_seconds)
                self._margins = [self.start_db] * start_frames  # the loud frames that started it
                self._first_voiced_frame = self.frames - start_frames
                return SpeechStart(event.time)
            return None
        margin = level - floor if floor is not None and level >= self.min_level_db else -100.0
        self._margins.append(margin)
        if floor is None or margin >= self.keep_db:
            self.last_voice = self.now
        return self._check_end()

    def voiced_seconds(self, start: float, end: float, margin_db: float | None = None) -> float:
        """Seconds of audio between ``start`` and ``end`` (since speech started) that were
        ``margin_db`` (default: the keep level) or more above the noise floor."""
        margin = self.keep_db if margin_db is None else margin_db
        first = max(0, int(start / self.frame_seconds + 0.5) - self._first_voiced_frame)
        last = max(0, int(end / self.frame_seconds + 0.5) - self._first_voiced_frame)
        return sum(m >= margin for m in self._margins[first:last]) * self.frame_seconds

    def peak_snr(self) -> float:
        """How far the loud part of the utterance stood over the noise floor, in dB.

        The 90th percentile of the per-frame margins since speech started (a few frames of
        the caller's loudest syllables, not one click). 0 before speech.
        """
        if not self._margins:
            return 0.0
        ordered = sorted(self._margins)
        return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    def finish(self) -> SpeechEnd | None:
        """No more audio: end the utterance now if speech started and it has not ended."""
        if self.speech_start is None or self.ended is not None:
            return None
        self.ended = SpeechEnd(self.last_voice or self.now, self.now, "silence")
        return self.ended

    def end_now(self, speech_end: float) -> SpeechEnd | None:
        """End the utterance now, speech having ended at ``speech_end`` (another detector saw it).

        The recognizer calls this when the decoder's best path has spent the end silence in
        silence while the energy here still looked like voice (a babble of other voices).
        """
        if self.speech_start is None or self.ended is not None:
            return None
        speech_end = min(max(speech_end, self.speech_start), self.now)
        self.ended = SpeechEnd(speech_end, self.now, "silence")
        return self.ended

    def _check_end(self) -> SpeechEnd | None:
        assert self.speech_start is not None and self.last_voice is not None
        now = self.now
        # Small epsilon: frame times are sums of 0.02 and must compare equal to the setting.
        if now - self.speech_start >= self.max_speech - 1e-9:
            self.ended = SpeechEnd(min(self.last_voice, now), now, "max_speech")
        elif now - self.last_voice >= self.end_silence - 1e-9:
            self.ended = SpeechEnd(self.last_voice, now, "silence")
        return self.ended


__all__ = ["EndReason", "Endpointer", "SpeechEnd", "SpeechStart"]
