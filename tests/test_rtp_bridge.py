"""Bridge: two legs of a server's MediaEngine relaying audio and keys between two phones over
real UDP on 127.0.0.1. The phones are RTP streams of a second engine (their own media clock) or
raw sockets; verdicts come from what the phones received (dominant frequency, payload bytes,
keys), never from timings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from media_helpers import RawPeer, dominant_frequency, wait_until
from numpy.typing import NDArray

from ivr.media.g711 import ALAW_TO_ULAW, PCMA, PCMU, ULAW_TO_ALAW, alaw_decode
from ivr.media.player import EncodedAudio
from ivr.media.tones import tone
from ivr.media.wav import read_wav
from ivr.rtp.bridge import MAX_QUEUE, Bridge, _Relay
from ivr.rtp.engine import MediaEngine
from ivr.rtp.stream import RtpStream, StreamConfig

pytestmark = pytest.mark.timeout(60)
LOUD = 1000.0  # RMS above which a received frame holds a tone (the tones here are ~7000)


@dataclass
class Setup:
    server: MediaEngine  # the engine under test: legs la and lb, bridged
    phones: MediaEngine  # the far ends
    la: RtpStream
    lb: RtpStream
    pa: RtpStream  # phone A, talking to la
    pb: RtpStream  # phone B, talking to lb


def run(body: Callable[[Setup], Awaitable[None]], *, a_law: int = PCMU, b_law: int = PCMU,
        a_dtmf: int | None = 101, b_dtmf: int | None = 101) -> None:  # fmt: skip
    """Run ``body`` with two engines and two connected legs; always close the engines."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        config = StreamConfig(inactivity_timeout=None)
        server = MediaEngine(loop, seed=11, config=config)
        phones = MediaEngine(loop, seed=12, config=config)
        try:
            la, lb = await server.open_stream("leg-a"), await server.open_stream("leg-b")
            pa, pb = await phones.open_stream("phone-a"), await phones.open_stream("phone-b")
            for leg, phone, law, dtmf in ((la, pa, a_law, a_dtmf), (lb, pb, b_law, b_dtmf)):
                leg.start(phone.local_address, law, dtmf)
                phone.start(leg.local_address, law, dtmf)
            await body(Setup(server, phones, la, lb, pa, pb))
        finally:
            phones.close()
            server.close()

    asyncio.run(main())


class Ear:
    """Keeps every decoded frame a stream receives."""

    def __init__(self, stream: RtpStream) -> None:
        self.frames: list[NDArray[np.int16]] = []
        stream.on_audio = self.frames.append

    def loud(self, since: int = 0) -> list[NDArray[np.int16]]:
        return [f for f in self.frames[since:] if _rms(f) > LOUD]

    def heard(self, since: int = 0) -> float:
        """The dominant frequency of the loud frames received from frame ``since`` on."""
        return dominant_frequency(np.concatenate(self.loud(since)))


def _rms(frame: NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(frame.astype(np.float64) ** 2)))


def sine(freq: float, seconds: float = 2.0) -> NDArray[np.int16]:
    return tone((freq,), seconds, level_db=-10.0)


def nearest(freq: float, choices: tuple[float, ...]) -> float:
    """The one of ``choices`` closest to ``freq`` (a 20 ms frame resolves 50 Hz)."""
    return min(choices, key=lambda choice: abs(choice - freq))


@pytest.mark.parametrize(("a_law", "b_law"), [(PCMU, PCMU), (PCMA, PCMA), (PCMU, PCMA),
                                              (PCMA, PCMU)])  # fmt: skip
def test_each_legs_tone_reaches_the_other_phone(a_law: int, b_law: int) -> None:
    async def body(s: Setup) -> None:
        ear_a, ear_b = Ear(s.pa), Ear(s.pb)
        bridge = Bridge(s.la, s.lb)
        assert bridge.connected
        s.pa.player.play(sine(440))
        s.pb.player.play(sine(660))
        await wait_until(lambda: len(ear_a.loud()) >= 40 and len(ear_b.loud()) >= 40)
        assert ear_b.heard() == pytest.approx(440, abs=10)
        assert ear_a.heard() == pytest.approx(660, abs=10)
        for relay in (bridge.a_to_b, bridge.b_to_a):
            assert relay.stats.received >= 40 and relay.stats.sent >= 40
        bridge.stop()

    run(body, a_law=a_law, b_law=b_law)


@pytest.mark.parametrize("b_law", [PCMU, PCMA])
def test_payloads_pass_unchanged_or_through_the_law_table(b_law: int) -> None:
    async def body(s: Setup) -> None:
        raw = RawPeer(s.server.loop)  # phone B as a bare socket: what lb sends, byte for byte
        s.lb.start(raw.address, b_law, 101)
        Bridge(s.la, s.lb)
        audio = EncodedAudio.from_pcm(sine(440, 1.0))
        s.pa.player.play(audio)
        sent = audio.ulaw if b_law == PCMU else tuple(f.translate(ULAW_TO_ALAW) for f in audio.ulaw)
        payloads = lambda: b"".join(p.payload for p in raw.packets)  # noqa: E731
        await wait_until(lambda: b"".join(sent) in payloads())
        assert {p.payload_type for p in raw.packets} == {b_law}
        if b_law == PCMA:
            heard = alaw_decode(b"".join(sent))
            assert dominant_frequency(heard) == pytest.approx(440, abs=10)
        raw.close()

    run(body, a_law=PCMU)


def test_rfc4733_keys_are_sent_again_as_rfc4733_on_the_other_leg() -> None:
    async def body(s: Setup) -> None:
        keys_a: list[str] = []
        keys_b: list[str] = []
        s.pa.on_dtmf, s.pb.on_dtmf = keys_a.append, keys_b.append
        seen_by_leg: list[str] = []
        s.la.on_dtmf = seen_by_leg.append  # the legs still report their own keys
        bridge = Bridge(s.la, s.lb)
        s.pa.send_dtmf("15#")
        await wait_until(lambda: len(keys_b) == 3)
        s.pb.send_dtmf("9")
        await wait_until(lambda: len(keys_a) == 1)
        await asyncio.sleep(0.3)  # the end packets, and anything that should not come
        assert keys_b == ["1", "5", "#"] and keys_a == ["9"] and seen_by_leg == ["1", "5", "#"]
        # As events on the telephone-event type leg B negotiated (96, not A's 101).
        assert s.pb.stats.dtmf_keys == 3 and s.pb.stats.inband_keys == 0
        assert s.pa.stats.dtmf_keys == 1 and s.pa.stats.inband_keys == 0
        assert bridge.a_to_b.stats.keys == 3 and bridge.b_to_a.stats.keys == 1
        bridge.stop()

    run(body, b_dtmf=96)


def test_inband_tones_pass_as_audio() -> None:
    async def body(s: Setup) -> None:
        keys_b: list[str] = []
        s.pb.on_dtmf = keys_b.append
        bridge = Bridge(s.la, s.lb)
        s.pa.send_dtmf("73")  # no telephone-event on either leg: tones in the audio
        await wait_until(lambda: len(keys_b) == 2)
        await asyncio.sleep(0.3)
        assert keys_b == ["7", "3"] and s.pb.stats.inband_keys == 2
        assert bridge.a_to_b.stats.keys == 0 and s.pb.stats.dtmf_keys == 0
        bridge.stop()

    run(body, a_dtmf=None, b_dtmf=None)


def test_the_recording_holds_both_directions_one_per_channel(tmp_path: Path) -> None:
    out = tmp_path / "bridge.wav"

    async def body(s: Setup) -> None:
        ear_a, ear_b = Ear(s.pa), Ear(s.pb)
        bridge = Bridge(s.la, s.lb, record=out)
        s.pa.player.play(sine(440, 6.0))  # longer than one written piece (5 s)
        s.pb.player.play(sine(660, 6.0))
        await wait_until(lambda: len(ear_a.loud()) >= 300 and len(ear_b.loud()) >= 300, 20)
        bridge.stop()
        result = await bridge.recorded()
        assert result is not None
        path, seconds = result
        assert path == str(out) and seconds >= 6.0
        samples, fmt = read_wav(out)
        assert (fmt.rate, fmt.channels, fmt.bits) == (8000, 2, 16)
        assert samples.shape[0] == round(seconds * 8000)
        pcm = np.rint(samples * 32768).astype(np.int16)
        for channel, freq in ((0, 440), (1, 660)):
            track = pcm[:, channel]
            frames = [track[i : i + 160] for i in range(0, track.size - 159, 160)]
            loud = [f for f in frames if _rms(f) > LOUD]
            assert len(loud) >= 280  # ~6 s of tone on each channel, not mixed into the other
            assert dominant_frequency(np.concatenate(loud)) == pytest.approx(freq, abs=10)

    run(body, b_law=PCMA)


def test_stop_ends_the_relay_and_leaves_both_streams_usable() -> None:
    async def body(s: Setup) -> None:
        ear_a, ear_b = Ear(s.pa), Ear(s.pb)
        bridge = Bridge(s.la, s.lb)
        s.pa.player.play(sine(440, 30.0))
        await wait_until(lambda: len(ear_b.loud()) >= 20)
        bridge.stop()
        assert bridge.stopped and not bridge.connected
        assert s.la.feed is None and s.lb.feed is None
        assert s.la.receiver.relay is None and s.lb.receiver.relay is None
        received = s.la.stats.received
        await wait_until(lambda: s.la.stats.received >= received + 50)  # phone A still talks
        mark = len(ear_b.frames)
        await wait_until(lambda: len(ear_b.frames) >= mark + 50)
        assert not ear_b.loud(mark + 5)  # ... and nothing of it reaches phone B any more
        s.la.player.play(sine(1000, 1.0))  # the engine plays a prompt to the caller
        mark = len(ear_a.frames)
        await wait_until(lambda: len(ear_a.loud(mark)) >= 20)
        assert ear_a.heard(mark) == pytest.approx(1000, abs=10)
        assert await bridge.recorded() is None
        Bridge(s.la, s.lb).stop()  # and they can be bridged again

    run(body)


def test_the_whisper_goes_to_leg_b_only_then_the_legs_are_connected() -> None:
    async def body(s: Setup) -> None:
        ear_a, ear_b = Ear(s.pa), Ear(s.pb)
        s.la.player.play(sine(300, 30.0))  # the caller's music on hold
        s.pa.player.play(sine(440, 30.0))  # the caller talks all along
        s.pb.player.play(sine(660, 30.0))  # so does the agent
        await wait_until(lambda: len(ear_a.loud()) >= 10)
        connected: list[bool] = []
        bridge = Bridge(s.la, s.lb, whisper=sine(1000, 0.6),
                        on_connected=lambda: connected.append(True))  # fmt: skip
        assert not bridge.connected
        await wait_until(lambda: bool(connected))
        assert bridge.connected
        mark_a = len(ear_a.frames)
        await wait_until(lambda: len(ear_b.loud()) >= 80 and len(ear_a.loud(mark_a)) >= 50)
        # Phone B: the whisper (0.6 s: 30 frames), then the caller; nothing of the caller before.
        heard_b = [nearest(dominant_frequency(f), (1000, 440)) for f in ear_b.loud()]
        first_caller = heard_b.index(440)
        assert 27 <= first_caller <= 31 and set(heard_b[:first_caller]) == {1000}
        assert set(heard_b[first_caller:]) == {440}
        # Phone A: the music until the connection, the agent after it; never the whisper.
        assert ear_a.heard(mark_a + 5) == pytest.approx(660, abs=10)
        assert all(abs(dominant_frequency(f) - 1000) > 100 for f in ear_a.loud())
        bridge.stop()

    run(body)


def test_a_bridge_stopped_during_the_whisper_never_connects() -> None:
    async def body(s: Setup) -> None:
        connected: list[bool] = []
        bridge = Bridge(s.la, s.lb, whisper=sine(1000, 1.0),
                        on_connected=lambda: connected.append(True))  # fmt: skip
        await asyncio.sleep(0.2)
        bridge.stop()
        assert s.lb.player.playing is None  # the whisper was cut
        await asyncio.sleep(1.2)
        assert not connected and not bridge.connected and s.lb.feed is None

    run(body)


def test_a_stream_in_a_bridge_cannot_join_another() -> None:
    async def body(s: Setup) -> None:
        other = await s.server.open_stream("leg-c")
        bridge = Bridge(s.la, s.lb, whisper=sine(1000, 5.0))  # not connected yet, but taken
        with pytest.raises(RuntimeError, match="already bridged"):
            Bridge(other, s.lb)
        with pytest.raises(RuntimeError, match="itself"):
            Bridge(other, other)
        bridge.stop()
        Bridge(other, s.lb).stop()
        other.close()
        with pytest.raises(RuntimeError, match="closed"):
            Bridge(other, s.lb)

    run(body)


# --- one direction's queue, driven by hand (no sockets, no clock) -------------------------------


class KeyLog:
    """Stands in for the leg a relay sends to: only its keys are looked at."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def send_dtmf(self, digits: str) -> None:
        self.keys.append(digits)


def test_a_standing_queue_after_a_burst_shrinks_back_to_the_cushion() -> None:
    relay = _Relay(KeyLog(), None)  # type: ignore[arg-type]
    frames = [bytes([i]) * 160 for i in range(256)]
    relay.relay_frames(frames[:5], PCMU)  # a burst: five frames at once
    out = []
    for i in range(5, 256):  # then one in, one out per tick, for five seconds
        out.append(relay.next_frame(PCMU))
        relay.relay_frames([frames[i]], PCMU)
    assert len(relay._queue) == 2  # one left after each tick, and the one just in
    assert relay.stats.dropped == 3
    assert relay.stats.underruns == 0
    sent = [f[0] for f in out if f is not None]
    assert sent == sorted(sent) and len(set(sent)) == len(sent)  # in order, none twice


def test_a_queue_never_holds_more_than_max_queue_and_keys_go_to_the_other_leg() -> None:
    other = KeyLog()
    relay = _Relay(other, None)  # type: ignore[arg-type]
    relay.relay_frames([bytes([i]) * 160 for i in range(MAX_QUEUE + 3)], PCMU)
    assert len(relay._queue) == MAX_QUEUE and relay.stats.dropped == 3
    assert relay.next_frame(PCMU) == bytes([3]) * 160  # the oldest went
    relay.relay_frames([bytes([0xD5]) * 160], PCMA)  # the source changed law: start over
    assert relay.next_frame(PCMU) == bytes([ALAW_TO_ULAW[0xD5]]) * 160
    assert relay.next_frame(PCMU) is None and relay.stats.underruns == 1
    relay.relay_key("5")
    assert other.keys == ["5"] and relay.stats.keys == 1


def test_gap_silence_is_skipped_while_behind_but_not_real_audio() -> None:
    relay = _Relay(KeyLog(), None)  # type: ignore[arg-type]
    talk = [bytes([0x10 + i]) * 160 for i in range(3)]
    fill = bytes([0xFF]) * 160  # what the framer puts where the peer sent a key as events
    relay.relay_frames([talk[0], fill, fill, fill, fill, talk[1], talk[2]], PCMU)
    assert relay.next_frame(PCMU) == talk[0]
    assert relay.next_frame(PCMU) == talk[1] and relay.stats.dropped == 4  # the gap skipped
    relay.relay_frames([fill, fill], PCMU)  # silence that is not behind anything goes out
    assert [relay.next_frame(PCMU) for _ in range(4)] == [talk[2], fill, fill, None]
