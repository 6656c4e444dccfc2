"""The speech gate: which of a call's frames are worth a recognizer at all.

A call that listens for speech is silent most of the time (the prompt plays, the caller thinks,
presses a key). Shipping each of its 20 ms frames to a decoding worker costs the loop a copy and
a message, and the worker a wake-up and an endpointer pass, for nothing. The gate runs on the
event loop, ahead of the recognizer, on every frame of a listening call, and costs one dot product
per frame (the frame's level) while the line is quiet. It says when to open an utterance on the
ASR service and when to give up on one; the caller's last :data:`PRE_ROLL` frames are kept by
its user and fed to the new utterance first, so the recognizer's own endpointer and front end see
the same onset (and 0.5 s of the line before it) that they would have seen had every frame gone
to them.

When it opens (the same energy rule as the recognizer's endpointer, :class:`~ivr.media.vad.Vad`,
so it is never later than it): ``start_frames`` consecutive frames ``start_db`` above the noise
floor and above ``min_level_db``. The floor follows the level down at once and up slowly (3 dB/s
while shut, 0.5 dB/s while open), so steady line noise is learnt and never opens it. A frame
holding a DTMF key (the Goertzel detector of :mod:`ivr.media.goertzel`, run only on the rare
loud frames) does not count as loud: in-band key tones never open it.

What bounds an open gate (line noise that starts abruptly, hold music bleeding into the line,
a tone, anything an energy rule takes for a voice):

* **confirmation**: the recognizer must report speech (:meth:`SpeechGate.confirm`) within
  ``confirm_frames`` (1 s) of the gate opening, or the gate gives up (the utterance is dropped,
  its decoder goes back to the pool). Once confirmed, giving up means *decide now*: the
  recognizer is asked for its result on what it heard (speech followed by babble or a hum whose
  level never drops is otherwise only ended by ``max_speech``);
* **steadiness**: once open for ``steady_frames`` (1.5 s), a level whose spread (10th to 90th
  percentile of the frames' levels) over the last 1.5 s is under ``steady_db`` (8 dB) is a
  machine, not a voice: the gate gives up. Measured over 1.5 s windows (one every 0.2 s) of the
  Allison prompts through μ-law at -20 dBFS: speech spreads 11 dB or more in 99 % of windows,
  under 8 dB in 0.2 %; four of Asterisk's five hold-music tracks at -30 dBFS stay under 8 dB in
  56-93 % of windows (steady noise and tones: always). The fifth (macroform-the_simplicity, as
  dynamic as speech) is stopped only by the bounds below;
* **a hard cap**: ``max_frames`` (the node's ``max_speech`` plus 2 s: the recognizer cuts at
  ``max_speech`` itself; this covers a worker that never answers);
* **re-arming**: after it gave up or an utterance ran to its cap, the gate opens again only after
  ``rearm_frames`` (0.3 s) of quiet (within ``keep_db`` of the floor): noise that never pauses
  gets one bounded utterance, not one after another. After a normal decision the caller's own end
  silence has already re-armed it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
from numpy.typing import NDArray

from ivr.media.goertzel import classify_frame
from ivr.media.vad import FRAME_SECONDS, VadConfig, follow_floor, frame_level

PRE_ROLL = 25  # frames (500 ms) of the caller's audio a new utterance starts with
FRAME = 160  # samples in a 20 ms frame
_VAD = VadConfig()


def pre_roll(recent: Sequence[NDArray[np.int16]]) -> list[NDArray[np.int16]]:
    """The frames a new utterance starts with: the caller's last :data:`PRE_ROLL` frames, a
    shorter history (the start of a call) made up in front with its quietest frame repeated,
    so that the recognizer's noise floor starts at the line's (digital silence there would
    make any line noise look like speech to it)."""
    frames = list(recent)[-PRE_ROLL:]
    if len(frames) < PRE_ROLL:
        quietest = min(frames, key=frame_level) if frames else np.zeros(FRAME, np.int16)
        frames = [quietest] * (PRE_ROLL - len(frames)) + frames
    return frames


class GateAction(Enum):
    """What the gate's user should do after a frame."""

    NONE = "none"
    OPEN = "open"  # open an utterance (and feed it the pre-roll)
    GIVE_UP = "give_up"  # not speech, or speech is over: see SpeechGate.feed


@dataclass(frozen=True)
class GateConfig:
    """The gate's thresholds (levels in dB, lengths in 20 ms frames); see the module doc."""

    start_db: float = _VAD.start_db
    keep_db: float = _VAD.keep_db
    min_level_db: float = _VAD.min_level_db
    start_frames: int = _VAD.start_frames
    floor_rise_db: float = _VAD.floor_rise_db  # per second, shut
    floor_rise_open_db: float = _VAD.floor_rise_speech_db  # per second, open
    confirm_frames: int = 50
    steady_frames: int = 75
    steady_db: float = 8.0
    max_frames: int = 850  # 17 s: the default max_speech (15 s) + 2 s
    rearm_frames: int = 15

    @staticmethod
    def for_max_speech(max_speech: float) -> GateConfig:
        """The defaults, capped at ``max_speech`` + 2 s."""
        return GateConfig(max_frames=round((max_speech + 2.0) / FRAME_SECONDS))


class SpeechGate:
    """One call's gate (see the module docstring). Feed it every frame, in order."""

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()
        # Noise floor, dBFS: the first frame's level to begin with (as the VAD's), so a line
        # that is noisy from its first packet is learnt, not taken for a voice.
        self.floor: float | None = None
        self.is_open = False
        self.confirmed = False
        self.opened = 0  # times it opened (for tests and metrics)
        self.gave_up = 0  # times it gave up on an open utterance
        self._run = 0  # consecutive loud frames while shut
        self._quiet = 0  # consecutive quiet frames
        self._open_frames = 0
        self._armed = True
        self._levels: deque[float] = deque(maxlen=75)  # the last 1.5 s, while open

    def feed(self, frame: NDArray[np.int16]) -> GateAction:
        """Judge one frame; returns what to do now.

        ``GIVE_UP`` on an opening the recognizer never confirmed: drop the utterance (it was not
        speech). On a confirmed one (the sound went steady, or the cap): the caller has stopped
        or never will, so have the recognizer decide now on what it heard (in babble or hum its
        own endpointer may never see the end).
        """
        level = frame_level(frame)
        floor = self._track_floor(level)
        cfg = self.config
        quiet = level < floor + cfg.keep_db or level < cfg.min_level_db
        self._quiet = self._quiet + 1 if quiet else 0
        if self.is_open:
            return self._while_open(level)
        if self._quiet >= cfg.rearm_frames:
            self._armed = True
        loud = level >= floor + cfg.start_db and level >= cfg.min_level_db
        if loud and classify_frame(frame) >= 0:
            loud = False  # a key's tone pair, not a voice
        self._run = self._run + 1 if loud else 0
        if self._run >= cfg.start_frames and self._armed:
            self._run = 0
            self.is_open, self.confirmed, self._open_frames = True, False, 0
            self._levels.clear()
            self.opened += 1
            return GateAction.OPEN
        return GateAction.NONE

    def track(self, frame: NDArray[np.int16]) -> None:
        """A frame heard while nobody listens: only the noise floor learns from it."""
        self._track_floor(frame_level(frame))

    def confirm(self) -> None:
        """The recognizer heard speech in the open utterance."""
        self.confirmed = True

    def done(self) -> None:
        """The open utterance was decided (or dropped by its user): shut, ready to reopen."""
        self.is_open = False
        self._run = 0

    def reset(self) -> None:
        """Shut and disarmed until the line is quiet (an in-band key was pressed)."""
        self.done()
        self._armed = False
        self._quiet = 0

    def _while_open(self, level: float) -> GateAction:
        cfg = self.config
        self._open_frames += 1
        self._levels.append(level)
        if (
            (not self.confirmed and self._open_frames >= cfg.confirm_frames)
            or self._open_frames >= cfg.max_frames
            or (self._open_frames >= cfg.steady_frames and self._steady())
        ):
            self.reset()
            self.gave_up += 1
            return GateAction.GIVE_UP
        return GateAction.NONE

    def _steady(self) -> bool:
        levels = sorted(self._levels)
        spread = levels[int(0.9 * (len(levels) - 1))] - levels[int(0.1 * (len(levels) - 1))]
        return spread < self.config.steady_db

    def _track_floor(self, level: float) -> float:
        """Move the floor; returns the floor this frame is judged against (before it moved)."""
        cfg = self.config
        rate = cfg.floor_rise_open_db if self.is_open else cfg.floor_rise_db
        self.floor, judged = follow_floor(self.floor, level, rate * FRAME_SECONDS)
        return judged


__all__ = ["PRE_ROLL", "GateAction", "GateConfig", "SpeechGate", "pre_roll"]
