"""RtpStream over real UDP sockets on 127.0.0.1: sending, DTMF both ways, VAD, inactivity,
malformed and foreign datagrams, latching, RTCP."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np
import pytest
from media_helpers import HELLO, RawPeer, event_packet, wait_until

from ivr.media.g711 import ALAW_SILENCE, PCMA, PCMU, ULAW_SILENCE
from ivr.media.tones import dtmf_tones
from ivr.media.wav import load_8k_mono
from ivr.rtp.engine import MediaEngine
from ivr.rtp.packet import RtpPacket
from ivr.rtp.stream import RtpStream, StreamConfig


def run(body: Callable[[MediaEngine], Awaitable[None]]) -> None:
    """Run ``body`` with a fresh engine on a fresh event loop; always close the engine."""

    async def main() -> None:
        engine = MediaEngine(asyncio.get_running_loop(), seed=1)
        try:
            await body(engine)
        finally:
            engine.close()

    asyncio.run(main())


async def pair(
    engine: MediaEngine, payload_type: int = PCMU, dtmf_pt: int | None = 101
) -> tuple[RtpStream, RtpStream]:
    """Two streams of one engine sending to each other."""
    a = await engine.open_stream("call-a")
    b = await engine.open_stream("call-b")
    a.start(b.local_address, payload_type, dtmf_pt)
    b.start(a.local_address, payload_type, dtmf_pt)
    return a, b


def check_continuous(packets: list[RtpPacket]) -> None:
    """One SSRC, sequence numbers +1 and timestamps +160 from packet to packet."""
    assert len({p.ssrc for p in packets}) == 1
    for prev, cur in itertools.pairwise(packets):
        assert cur.sequence_number == (prev.sequence_number + 1) & 0xFFFF
        assert cur.timestamp == (prev.timestamp + 160) & 0xFFFF_FFFF


@pytest.mark.parametrize(("payload_type", "silence"), [(PCMU, ULAW_SILENCE), (PCMA, ALAW_SILENCE)])
def test_sends_continuous_silence_with_one_marker(payload_type: int, silence: int) -> None:
    async def body(engine: MediaEngine) -> None:
        sink = RawPeer(engine.loop)
        a = await engine.open_stream()
        a.start(sink.address, payload_type, 101)
        await wait_until(lambda: len(sink.datagrams) >= 20)
        packets = sink.packets
        check_continuous(packets)
        assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
        assert {p.payload_type for p in packets} == {payload_type}
        assert all(p.payload == bytes([silence]) * 160 for p in packets)
        assert {addr for _, addr in sink.datagrams} == {a.local_address}
        sink.close()

    run(body)


def test_seeded_engines_choose_the_same_ssrc_and_sequence() -> None:
    seen: list[tuple[int, int]] = []

    async def body(engine: MediaEngine) -> None:
        stream = await engine.open_stream()
        seen.append((stream.ssrc, stream.sequence))

    run(body)
    run(body)
    assert seen[0] == seen[1]


@pytest.mark.usefixtures("asterisk_sounds")
def test_sequence_and_timestamps_stay_continuous_when_the_clock_wakes_late() -> None:
    async def body(engine: MediaEngine) -> None:
        sink = RawPeer(engine.loop)
        a = await engine.open_stream()
        a.start(sink.address, PCMU, None)
        a.player.play(load_8k_mono(HELLO))
        await wait_until(lambda: len(sink.datagrams) >= 5)
        time.sleep(0.15)  # block the loop: 7 or more ticks come due at once
        await wait_until(lambda: len(sink.datagrams) >= 30)
        check_continuous(sink.packets)
        stats = engine.clock.stats()
        assert stats.caught_up >= 5 and stats.skipped == 0
        sink.close()

    run(body)


def test_rfc4733_digits_arrive_exactly_once_each(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ivr.rtp")

    async def body(engine: MediaEngine) -> None:
        a, b = await pair(engine)
        digits: list[str] = []
        a.on_dtmf = digits.append
        b.send_dtmf("123#")
        await wait_until(lambda: len(digits) == 4)
        await asyncio.sleep(0.3)  # the three end packets of "#" and any stragglers
        assert digits == ["1", "2", "3", "#"]
        assert a.stats.dtmf_keys == 4 and a.stats.inband_keys == 0
        assert a.receiver.jitter.stats.lost == 0

    run(body)
    dtmf_lines = [r.getMessage() for r in caplog.records if "DTMF" in r.getMessage()]
    assert dtmf_lines, "the keys are logged (without their values) at debug"
    assert not any(d in line for line in dtmf_lines for d in "123#")  # a PIN is never logged


@pytest.mark.parametrize("payload_type", [PCMU, PCMA])
def test_inband_tones_are_detected_when_no_telephone_event(payload_type: int) -> None:
    async def body(engine: MediaEngine) -> None:
        a, b = await pair(engine, payload_type, dtmf_pt=None)
        digits: list[str] = []
        a.on_dtmf = digits.append
        b.player.play(dtmf_tones("4821*", duration_ms=100, gap_ms=100))
        b.send_dtmf("90")  # no telephone-event: sent as tones too
        await wait_until(lambda: len(digits) == 7)
        await asyncio.sleep(0.2)
        assert "".join(digits) == "4821*90"
        assert a.stats.inband_keys == 7 and a.stats.dtmf_keys == 0

    run(body)


@pytest.mark.usefixtures("asterisk_sounds")
def test_speech_start_and_end_when_the_peer_plays_a_prompt() -> None:
    async def body(engine: MediaEngine) -> None:
        a, b = await pair(engine)
        events: list[str] = []
        a.on_speech_start = lambda: events.append("start")
        a.on_speech_end = lambda: events.append("end")
        frames: list[np.ndarray] = []
        a.on_audio = frames.append
        await asyncio.sleep(0.1)
        assert events == []  # silence is not speech
        b.player.play(load_8k_mono(HELLO))
        await wait_until(lambda: "end" in events)
        assert events[0] == "start"
        assert all(f.shape == (160,) and f.dtype == np.int16 for f in frames)

    run(body)


def test_inactivity_fires_once_when_the_peer_goes_quiet() -> None:
    async def body(engine: MediaEngine) -> None:
        config = StreamConfig(inactivity_timeout=0.5)
        a = await engine.open_stream("call-a", config)
        b = await engine.open_stream("call-b")
        a.start(b.local_address, PCMU, 101)
        b.start(a.local_address, PCMU, 101)
        fired: list[float] = []
        a.on_inactive = lambda: fired.append(engine.loop.time())
        await wait_until(lambda: a.stats.received >= 25)  # 0.5 s of packets: no timeout
        assert fired == []
        b.close()
        await wait_until(lambda: len(fired) == 1)
        await asyncio.sleep(0.5)
        assert len(fired) == 1

    run(body)


def test_malformed_datagrams_are_counted_and_dropped() -> None:
    async def body(engine: MediaEngine) -> None:
        peer = RawPeer(engine.loop)
        a = await engine.open_stream()
        a.start(peer.address, PCMU, 101)
        digits: list[str] = []
        a.on_dtmf = digits.append
        bad = [
            b"",
            b"\x80",
            b"\x40" + bytes(30),  # RTP version 1
            b"\x8f" + bytes(11),  # 15 CSRCs announced, none present
            b"\x90" + bytes(11),  # extension bit, no extension
            bytes(RtpPacket(101, 1, 0, 7, b"\x01")),  # telephone event of 1 byte
        ]
        for data in bad:
            peer.send(data, a.local_address)
        peer.send(event_packet(5, 1000, 2), a.local_address)
        await wait_until(lambda: digits == ["5"])
        assert a.stats.malformed == len(bad)
        sent = a.stats.sent
        await wait_until(lambda: a.stats.sent > sent + 2)  # still sending
        peer.close()

    run(body)


def test_packets_from_a_foreign_source_are_ignored() -> None:
    async def body(engine: MediaEngine) -> None:
        a, b = await pair(engine)
        intruder = RawPeer(engine.loop)
        digits: list[str] = []
        a.on_dtmf = digits.append
        for i in range(5):
            intruder.send(event_packet(9, 5000 + 800 * i, 100 + i), a.local_address)
        await asyncio.sleep(0.1)
        b.send_dtmf("5")
        await wait_until(lambda: digits == ["5"])
        await asyncio.sleep(0.1)
        assert digits == ["5"]
        intruder.close()

    run(body)


def test_latching_takes_the_first_source_and_ignores_others() -> None:
    async def body(engine: MediaEngine) -> None:
        sdp_address = RawPeer(engine.loop)  # what the SDP said; the peer sends from elsewhere
        a = await engine.open_stream()
        b = await engine.open_stream()
        a.start(sdp_address.address, PCMU, 101, latch=True)
        b.start(a.local_address, PCMU, 101)
        await wait_until(lambda: a.remote_address == b.local_address)
        received = b.stats.received
        await wait_until(lambda: b.stats.received > received + 5)  # a now sends to b
        intruder = RawPeer(engine.loop)
        digits: list[str] = []
        a.on_dtmf = digits.append
        intruder.send(event_packet(9, 5000, 100), a.local_address)
        b.send_dtmf("7")
        await wait_until(lambda: digits == ["7"])
        assert a.remote_address == b.local_address
        sdp_address.close()
        intruder.close()

    run(body)


def test_rtcp_on_either_port_is_ignored() -> None:
    async def body(engine: MediaEngine) -> None:
        peer = RawPeer(engine.loop)
        a = await engine.open_stream()
        a.start(peer.address, PCMU, 101)
        receiver_report = bytes([0x80, 201, 0, 1]) + (7).to_bytes(4, "big")
        host, port = a.local_address
        peer.send(receiver_report, (host, port))
        peer.send(receiver_report, (host, port + 1))
        await wait_until(lambda: a.stats.rtcp == 2)
        assert a.stats.malformed == 0 and a.stats.received == 0
        peer.close()

    run(body)


def test_bad_arguments_are_refused() -> None:
    async def body(engine: MediaEngine) -> None:
        a = await engine.open_stream()
        with pytest.raises(ValueError):
            a.start(("127.0.0.1", 4000), 18)  # G.729 is not supported
        with pytest.raises(ValueError):
            a.start(("localhost", 4000), PCMU)  # numeric addresses only
        a.start(("127.0.0.1", 4000), PCMU, 101)
        with pytest.raises(ValueError):
            a.send_dtmf("12x")
        a.close()
        with pytest.raises(RuntimeError):
            a.start(("127.0.0.1", 4000), PCMU)

    run(body)


def test_a_gap_between_received_packets_is_reported_and_the_cadence_is_not() -> None:
    async def body(engine: MediaEngine) -> None:
        gaps: list[float] = []
        a = await engine.open_stream("call-a", StreamConfig(on_gap=gaps.append))
        b = await engine.open_stream("call-b")
        a.start(b.local_address, PCMU, 101)
        b.start(a.local_address, PCMU, 101)
        await wait_until(lambda: a.stats.received >= 10)
        before = len(gaps)
        time.sleep(0.2)  # the loop stalls: nothing is read for 200 ms, then all at once
        await wait_until(lambda: len(gaps) > before)
        assert max(gaps) >= 0.2
        assert a.stats.received > len(gaps)  # not every packet: only the gaps past 30 ms

    run(body)
