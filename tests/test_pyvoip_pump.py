"""The pyVoIP call's media loop (ivr.pyvoip.pump) on a stand-in for pyVoIP's sender and receiver.

:class:`Line` behaves like pyVoIP's RTP client as the loop sees it: written audio waits in a
buffer that the "sender" empties by 160 bytes every 20 ms (silence when it is empty); received
frames come from a script. Time is virtual: the loop's sleep advances it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from ivr.media.goertzel import COL_FREQS, KEYS, ROW_FREQS
from ivr.pyvoip.pump import SILENCE, CallPump, from_unsigned8, to_unsigned8


class Line:
    """pyVoIP's side of one call, on a virtual clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.buffer = bytearray()
        self.sent: list[bytes] = []
        self.inbound: deque[bytes] = deque()
        self.keys = ""
        self.ended = False
        self.hung_up = False
        self._next_send = 0.02
        self.at: dict[int, Callable[[], None]] = {}  # frame number sent -> action

    # MediaLeg
    def queued(self) -> int:
        return len(self.buffer)

    def write(self, audio: bytes) -> None:
        self.buffer += audio

    def read(self) -> bytes:
        return self.inbound.popleft() if self.inbound else SILENCE

    def dtmf(self) -> str:
        keys, self.keys = self.keys, ""
        return keys

    def hangup(self) -> None:
        self.hung_up = True

    # the clock
    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        while self.now + 1e-9 >= self._next_send:
            frame = bytes(self.buffer[:160]).ljust(160, b"\x80")
            del self.buffer[:160]
            self.sent.append(frame)
            self._next_send += 0.02
            action = self.at.pop(len(self.sent), None)
            if action is not None:
                action()
        if self.now > 30:
            self.ended = True  # a runaway test ends


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, object]] = []

    def played(self, playback_id: int) -> None:
        self.log.append(("played", playback_id))

    def dtmf(self, digit: str) -> None:
        self.log.append(("dtmf", digit))

    def recorded(self, samples: NDArray[np.int16]) -> None:
        self.log.append(("recorded", samples))

    def ended(self) -> None:
        self.log.append(("ended", None))


def make(line: Line) -> tuple[CallPump, Events]:
    pump = CallPump(line, clock=line.clock, sleep=line.sleep)
    events = Events()
    pump.events = events
    return pump, events


def frames(value: int, count: int) -> bytes:
    return bytes([value]) * (160 * count)


def test_prompts_play_back_to_back_and_count_as_played_when_sent() -> None:
    line = Line()
    pump, events = make(line)
    pump.play(1, frames(0x90, 3))
    pump.play(2, frames(0xA0, 2)[:-40])  # a short last frame is padded with silence
    line.at[12] = lambda: setattr(line, "ended", True)
    pump.run()
    audio = [f[0] for f in line.sent]
    assert audio[:5] == [0x90, 0x90, 0x90, 0xA0, 0xA0]  # no gap between the prompts
    assert line.sent[4][-40:] == b"\x80" * 40
    assert set(audio[5:]) == {0x80}
    assert [e for e in events.log if e[0] == "played"] == [("played", 1), ("played", 2)]
    assert events.log[-1] == ("ended", None)


def test_stop_playback_silences_within_one_frame() -> None:
    line = Line()
    pump, events = make(line)
    pump.play(1, frames(0x90, 50))
    stopped_after: list[int] = []

    def stop() -> None:
        stopped_after.append(len(line.sent))
        pump.stop_playback()

    line.at[10] = stop
    line.at[20] = lambda: setattr(line, "ended", True)
    pump.run()
    prompt_frames = sum(1 for f in line.sent if f[0] == 0x90)
    assert prompt_frames <= stopped_after[0] + 1  # at most the one frame already queued
    assert ("played", 1) not in events.log  # a stopped prompt is not "played"


def test_engine_hangup_ends_the_loop_without_an_ended_event() -> None:
    line = Line()
    pump, events = make(line)
    line.at[3] = pump.hangup
    pump.run()
    assert line.hung_up
    assert events.log == []
    assert pump.done.is_set()


def key_frames(digit: str, count: int) -> list[bytes]:
    index = KEYS.index(digit)
    t = np.arange(160 * count) / 8000.0
    x = 0.2 * 32767 * (np.sin(2 * np.pi * ROW_FREQS[index // 4] * t)
                       + np.sin(2 * np.pi * COL_FREQS[index % 4] * t))  # fmt: skip
    audio = to_unsigned8(x.astype(np.int16))
    return [audio[i : i + 160] for i in range(0, len(audio), 160)]


def test_inband_keys_until_rfc2833_arrives_and_no_double_count() -> None:
    line = Line()
    pump, events = make(line)
    line.inbound.extend(key_frames("5", 6) + [SILENCE] * 5)
    # The same key by RFC 2833 right after the tone: one key, not two.
    line.at[8] = lambda: setattr(line, "keys", "5")
    # From now on in-band detection is off: a tone is not a key, an event is.
    line.at[12] = lambda: line.inbound.extend(key_frames("6", 6) + [SILENCE] * 5)
    line.at[25] = lambda: setattr(line, "keys", "7")
    line.at[30] = lambda: setattr(line, "ended", True)
    pump.run()
    assert [e for e in events.log if e[0] == "dtmf"] == [("dtmf", "5"), ("dtmf", "7")]
    assert pump.rfc2833_seen


def test_recording_stops_at_its_limit_with_the_received_audio() -> None:
    line = Line()
    pump, events = make(line)
    tone = to_unsigned8((8000 * np.sin(np.arange(1600) * 0.3)).astype(np.int16))
    line.inbound.extend(tone[i : i + 160] for i in range(0, 1600, 160))
    pump.start_recording(0.1)  # 5 frames
    line.at[15] = lambda: setattr(line, "ended", True)
    pump.run()
    recorded = [e[1] for e in events.log if e[0] == "recorded"]
    assert len(recorded) == 1
    samples = recorded[0]
    assert isinstance(samples, np.ndarray) and len(samples) == 800
    assert np.array_equal(samples, from_unsigned8(tone[:800]))
    assert not pump.recording


@pytest.mark.parametrize("value", [-32768, -129, -128, 0, 127, 128, 255, 32767])
def test_unsigned8_conversion_round_trips_within_one_step(value: int) -> None:
    pcm = np.array([value], dtype=np.int16)
    back = from_unsigned8(to_unsigned8(pcm))
    assert abs(int(back[0]) - value) <= 256
