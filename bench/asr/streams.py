"""How many recognition streams one core keeps up with, measured by running them.

N recognizers run in one process (one core: the decoders hold the GIL while they work) and are
fed like live calls: every 20 ms tick each stream gets its next 20 ms frame, then the loop
sleeps until the next tick. Each stream plays utterances of the labelled set back to back (its
own order, after 0-2 s of silence so that the streams do not speak in step), each followed by
silence until the recognizer decides; a new recognizer is opened for every utterance, as a call
opens one per prompt. The first :data:`WARMUP` seconds are not judged (the decoder pool grows to
one decoder per concurrent stream and grammar, as it would in the first minute of a server).
A run *keeps up* when 99 % of its ticks finish within :data:`MAX_LAG` seconds of their deadline
(a jitter buffer's worth; a lone spike, such as another process taking the core for a moment,
is absorbed) and it never falls :data:`GIVE_UP` behind; the largest N that keeps up is the
answer, found by doubling and then bisecting.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ivr.asr.base import (
    FRAME_SAMPLES,
    AsrOptions,
    Backend,
    Final,
    Grammar,
    NoMatch,
    NoSpeech,
    StreamRecognizer,
)

MAX_LAG = 0.2  # seconds behind real time that a jitter buffer would still absorb
GIVE_UP = 2.0  # this far behind, the run has clearly lost
# Seconds of audio before the lag is judged. A stream takes decoders only when its caller
# starts to speak, so the pool reaches one decoder per concurrent speaker and grammar only
# after a while (3 s measured 7 streams, 20 s 9: the builds, ~90 ms each, were the lag).
WARMUP = 20.0
TAIL_FRAMES = 75  # 1.5 s of silence after an utterance before finish() is forced
_SILENCE = np.zeros(FRAME_SAMPLES, np.int16)
DEFAULT_OPTIONS = AsrOptions()  # the platform defaults, as a call gets them


@dataclass(frozen=True)
class Clip:
    """One utterance to feed: its frames and its grammar."""

    frames: NDArray[np.int16]  # (n, 160)
    grammar: Grammar


@dataclass(frozen=True)
class Trial:
    streams: int
    kept_up: bool
    p99_lag: float  # seconds behind the tick deadlines (after the warm-up)
    max_lag: float
    busy: float  # fraction of the wall time spent feeding and decoding
    utterances: int  # decided during the trial


def to_frames(samples: NDArray[np.int16]) -> NDArray[np.int16]:
    """Samples cut into 20 ms frames (the last one padded with silence)."""
    n = -(-len(samples) // FRAME_SAMPLES)
    out = np.zeros(n * FRAME_SAMPLES, np.int16)
    out[: len(samples)] = samples
    return out.reshape(n, FRAME_SAMPLES)


class _Stream:
    """One simulated caller: utterance after utterance, each with its own recognizer."""

    def __init__(self, backend: Backend, clips: Sequence[Clip], start: int,
                 options: AsrOptions, lead_frames: int = 0) -> None:
        self.backend, self.clips, self.options = backend, clips, options
        self.next_clip = start
        self.decided = 0
        self._open()
        self.pos = -lead_frames  # silence first

    def _open(self) -> None:
        clip = self.clips[self.next_clip % len(self.clips)]
        self.next_clip += 1
        self.frames = clip.frames
        self.pos = 0
        self.rec: StreamRecognizer = self.backend.open(clip.grammar, self.options)

    def tick(self) -> None:
        if self.pos < 0:
            events = self.rec.accept(_SILENCE)
        elif self.pos < len(self.frames):
            events = self.rec.accept(self.frames[self.pos])
        elif self.pos < len(self.frames) + TAIL_FRAMES:
            events = self.rec.accept(_SILENCE)
        else:
            events = self.rec.finish()
        self.pos += 1
        if any(isinstance(e, Final | NoMatch | NoSpeech) for e in events):
            self.decided += 1
            self._open()


def trial(backend: Backend, clips: Sequence[Clip], streams: int, seconds: float,
          options: AsrOptions = DEFAULT_OPTIONS, seed: int = 1) -> Trial:
    """Run ``streams`` paced streams for ``seconds`` of audio after the warm-up."""
    rng = np.random.default_rng(seed)
    callers = [_Stream(backend, clips, i * 7, options, int(rng.integers(0, 100)))
               for i in range(streams)]
    warmup, ticks = int(WARMUP / 0.02), int(seconds / 0.02)
    lags: list[float] = []
    busy = 0.0
    start = time.perf_counter()
    for n in range(warmup + ticks):
        if n == warmup:  # judged from here: a fresh schedule
            start, busy = time.perf_counter() - 0.02 * warmup, 0.0
        began = time.perf_counter()
        for caller in callers:
            caller.tick()
        done = time.perf_counter()
        lag = done - (start + (n + 1) * 0.02)
        if n >= warmup:
            busy += done - began
            lags.append(lag)
            if lag > GIVE_UP:
                break
        if lag < 0:
            time.sleep(-lag)
    judged = np.asarray(lags)
    p99 = float(np.percentile(judged, 99))
    wall = 0.02 * len(lags) + max(0.0, float(judged[-1]))
    return Trial(streams, p99 <= MAX_LAG and judged.max() <= GIVE_UP, p99, float(judged.max()),
                 busy / wall, sum(c.decided for c in callers))


def streams_per_core(backend: Backend, clips: Sequence[Clip], seconds: float = 8.0,
                     limit: int = 1024,
                     report: Callable[[Trial], None] | None = None) -> tuple[int, list[Trial]]:
    """The most streams one process keeps up with in real time, and every trial run."""
    trials: list[Trial] = []

    def ok(n: int) -> bool:
        result = trial(backend, clips, n, seconds)
        trials.append(result)
        if report:
            report(result)
        return result.kept_up

    good, bad = 0, None
    n = 4
    while n <= limit:
        if not ok(n):
            bad = n
            break
        good, n = n, n * 2
    if bad is None:
        return good, trials
    while bad - good > max(1, good // 16):  # to within about 6 %
        mid = (good + bad) // 2
        if ok(mid):
            good = mid
        else:
            bad = mid
    return good, trials


def load_average() -> float:
    """The one-minute load average (how busy the shared machine was)."""
    return os.getloadavg()[0]
