"""RFC 4733 telephone events: payload, receiver (each press exactly once), sender."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from pcapfile import SIPP_PCAPS, read_udp

from ivr.media.g711 import ULAW_SILENCE, ulaw_decode, ulaw_encode
from ivr.rtp.dtmf import (
    MAX_DURATION,
    DtmfKey,
    DtmfParseError,
    DtmfReceiver,
    TelephoneEvent,
    dtmf_packets,
    dtmf_payloads,
    event_code,
)
from ivr.rtp.jitter import AudioFramer, JitterBuffer
from ivr.rtp.packet import RtpPacket

PTIME = 0.02


def feed_all(
    receiver: DtmfReceiver, packets: list[RtpPacket], start: float = 0.0
) -> list[tuple[int, DtmfKey]]:
    """Feed packets one per 20 ms; return (index, key) for each key reported."""
    keys = []
    for i, packet in enumerate(packets):
        key = receiver.feed_packet(packet, start + i * PTIME)
        if key is not None:
            keys.append((i, key))
    return keys


def digits_of(keys: list[tuple[int, DtmfKey]]) -> str:
    return "".join(key.digit for _, key in keys)


# ---- payload -----------------------------------------------------------------------------------


def test_parse_payloads_as_captured_by_sipp() -> None:
    assert TelephoneEvent.parse(bytes.fromhex("010a0000")) == TelephoneEvent(1, False, 10, 0)
    end = TelephoneEvent.parse(bytes.fromhex("018a08c0"))
    assert end == TelephoneEvent(event=1, end=True, volume=10, duration=2240)
    assert bytes(end) == bytes.fromhex("018a08c0")
    assert end.digit == "1"


def test_reserved_bit_is_ignored_and_sent_as_zero() -> None:
    event = TelephoneEvent.parse(bytes.fromhex("0bca0140"))  # E=1, R=1, volume 10
    assert event == TelephoneEvent(11, True, 10, 320)
    assert event.digit == "#"
    assert bytes(event) == bytes.fromhex("0b8a0140")


def test_short_payload_is_a_parse_error() -> None:
    with pytest.raises(DtmfParseError):
        TelephoneEvent.parse(b"\x01\x0a\x00")
    assert issubclass(DtmfParseError, ValueError)


def test_volume_out_of_range_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="volume"):
        bytes(TelephoneEvent(1, volume=64))


def test_event_codes() -> None:
    assert [event_code(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert event_code("a") == 12
    assert TelephoneEvent(16).digit is None
    for bad in ("E", "", "12", " "):
        with pytest.raises(ValueError, match="not a DTMF key"):
            event_code(bad)


# ---- sender ------------------------------------------------------------------------------------


def test_sender_packets_of_one_press() -> None:
    packets = dtmf_payloads("5", 13280, duration_ms=100, volume=7, ptime=20)
    events = [TelephoneEvent.parse(payload) for _, payload, _ in packets]
    assert [marker for marker, _, _ in packets] == [True] + [False] * 6
    assert {ts for _, _, ts in packets} == {13280}
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {(e.event, e.volume) for e in events} == {(5, 7)}


def test_sender_press_shorter_than_ptime_is_three_end_packets() -> None:
    packets = dtmf_payloads("0", 5, duration_ms=10)
    assert [m for m, _, _ in packets] == [True, False, False]
    assert {TelephoneEvent.parse(p) for _, p, _ in packets} == {TelephoneEvent(0, True, 10, 160)}


def test_sender_numbers_packets_and_wraps_sequence() -> None:
    packets = dtmf_packets("#", 1000, ssrc=0xABCD, seq=65534, duration_ms=60)
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1, 2]
    assert {(p.ssrc, p.payload_type, p.timestamp) for p in packets} == {(0xABCD, 101, 1000)}
    assert packets[0].marker and not any(p.marker for p in packets[1:])
    assert RtpPacket.parse(bytes(packets[-1])) == packets[-1]


def test_sender_cuts_long_events_into_segments() -> None:
    start = 2**32 - 1000  # the second segment's timestamp wraps
    packets = dtmf_payloads("9", start, duration_ms=9000)
    events = [TelephoneEvent.parse(p) for _, p, _ in packets]
    stamps = sorted({ts for _, _, ts in packets})
    assert stamps == sorted({start, (start + MAX_DURATION) & 0xFFFFFFFF})
    assert max(e.duration for e in events) == MAX_DURATION
    first_segment = [e for (_, _, ts), e in zip(packets, events, strict=True) if ts == start]
    assert first_segment[-1].duration == MAX_DURATION and not first_segment[-1].end
    assert events[-1] == TelephoneEvent(9, True, 10, 72000 - MAX_DURATION)
    assert sum(marker for marker, _, _ in packets) == 1


# ---- receiver ----------------------------------------------------------------------------------


def test_one_press_is_reported_once_on_its_first_packet() -> None:
    receiver = DtmfReceiver()
    keys = feed_all(receiver, dtmf_packets("7", 8000, 1, 100))
    assert keys == [(0, DtmfKey("7", 8000))]
    assert receiver.active is None  # the end bit closed it
    assert receiver.duration == 800


def test_key_is_held_until_the_end_packet() -> None:
    receiver = DtmfReceiver()
    packets = dtmf_packets("B", 0, 1, 0, duration_ms=200)
    feed_all(receiver, packets[:5])
    assert receiver.active == "B"
    feed_all(receiver, packets[5:], start=0.1)
    assert receiver.active is None


def test_lost_start_packets_report_the_press_on_the_first_seen() -> None:
    receiver = DtmfReceiver()
    packets = dtmf_packets("3", 4000, 1, 0)
    assert feed_all(receiver, packets[2:]) == [(0, DtmfKey("3", 4000))]


def test_only_end_packets_seen_still_reports_the_press() -> None:
    receiver = DtmfReceiver()
    packets = dtmf_packets("*", 4000, 1, 0)
    assert digits_of(feed_all(receiver, packets[-3:])) == "*"
    assert receiver.active is None


def test_lost_end_packets_then_same_key_again_is_a_second_press() -> None:
    receiver = DtmfReceiver()
    first = dtmf_packets("5", 1000, 1, 0)[:-3]  # no end packets arrive
    second = dtmf_packets("5", 1000 + 800 + 400, 1, 10)  # 50 ms later, a new timestamp
    keys = feed_all(receiver, first + second)
    assert keys == [(0, DtmfKey("5", 1000)), (4, DtmfKey("5", 2200))]


def test_event_without_end_is_over_after_the_timeout() -> None:
    receiver = DtmfReceiver(timeout=0.5)
    packets = dtmf_packets("8", 1000, 1, 0)
    feed_all(receiver, packets[:3])  # last update at t=0.04
    receiver.expire(0.3)
    assert receiver.active == "8"
    receiver.expire(0.6)
    assert receiver.active is None
    # Its stragglers arriving later are still the same event: no second press.
    assert receiver.feed_packet(packets[-1], 0.7) is None


def test_replayed_capture_is_the_same_event() -> None:
    receiver = DtmfReceiver()
    press = dtmf_packets("1", 13280, 1, 0)
    other = dtmf_packets("2", 23200, 1, 10)
    keys = feed_all(receiver, press + press + other + press)
    assert digits_of(keys) == "12"


def test_different_events_with_the_same_timestamp_are_both_reported() -> None:
    receiver = DtmfReceiver()
    keys = feed_all(receiver, dtmf_packets("1", 500, 1, 0) + dtmf_packets("2", 500, 1, 10))
    assert digits_of(keys) == "12"


def test_repeated_end_packets_and_reordering_do_not_double_count() -> None:
    receiver = DtmfReceiver()
    packets = dtmf_packets("0", 9000, 1, 0)
    shuffled = [packets[i] for i in (1, 0, 5, 3, 2, 6, 4, 5, 6, 6)]
    assert digits_of(feed_all(receiver, shuffled)) == "0"


def test_long_press_across_segments_is_one_press() -> None:
    receiver = DtmfReceiver()
    packets = dtmf_packets("9", 2**32 - 1000, 1, 0, duration_ms=20000)  # 3 segments
    assert len({p.timestamp for p in packets}) == 3
    keys = feed_all(receiver, packets)
    assert keys == [(0, DtmfKey("9", 2**32 - 1000))]
    assert receiver.duration == 160000
    assert receiver.active is None


def test_long_press_with_the_segment_end_lost_is_still_one_press() -> None:
    receiver = DtmfReceiver()
    packets = dtmf_packets("4", 0, 1, 0, duration_ms=10000)
    segment_end = next(
        i for i, p in enumerate(packets) if TelephoneEvent.parse(p.payload).duration == MAX_DURATION
    )
    kept = packets[: segment_end - 2] + packets[segment_end + 1 :]
    assert digits_of(feed_all(receiver, kept)) == "4"


def test_segments_cut_at_a_packet_boundary_continue_the_press() -> None:
    """A sender that ends each segment at its last whole ptime (65440) instead of 0xFFFF."""
    receiver = DtmfReceiver()
    first = [TelephoneEvent(2, False, 10, d) for d in range(160, 65441, 160)]
    second = [TelephoneEvent(2, False, 10, d) for d in range(160, 1601, 160)]
    second += [TelephoneEvent(2, True, 10, 1600)] * 3
    keys = [receiver.feed(e, 5000, i * PTIME) for i, e in enumerate(first)]
    keys += [receiver.feed(e, 5000 + 65440, 8.2 + i * PTIME) for i, e in enumerate(second)]
    assert [k for k in keys if k is not None] == [DtmfKey("2", 5000)]
    assert receiver.duration == 65440 + 1600


def test_consecutive_presses_of_different_keys() -> None:
    receiver = DtmfReceiver()
    packets = []
    ts, seq = 0, 0
    for digit in "6222#":
        press = dtmf_packets(digit, ts, 1, seq, duration_ms=120)
        packets += press
        ts += 120 * 8 + 80 * 8  # 80 ms gap between presses
        seq += len(press)
    assert digits_of(feed_all(receiver, packets)) == "6222#"


def test_non_dtmf_events_are_not_keys() -> None:
    receiver = DtmfReceiver()
    flash = RtpPacket(101, 1, 800, 1, bytes(TelephoneEvent(16, False, 10, 160)), True)
    assert receiver.feed_packet(flash, 0.0) is None
    assert receiver.active is None


def test_payload_that_is_not_an_event_raises() -> None:
    with pytest.raises(DtmfParseError):
        DtmfReceiver().feed_packet(RtpPacket(101, 1, 800, 1, b"\x01"), 0.0)


# ---- SIPp's bundled captures ---------------------------------------------------------------------


SIPP_DIGITS = {f"dtmf_2833_{d}.pcap": d for d in "0123456789"} | {
    "dtmf_2833_pound.pcap": "#",
    "dtmf_2833_star.pcap": "*",
}


def sipp_packets(name: str) -> list[tuple[float, RtpPacket]]:
    return [(d.time, RtpPacket.parse(d.payload)) for d in read_udp(SIPP_PCAPS / name)]


@pytest.mark.parametrize("name", sorted(SIPP_DIGITS))
def test_sipp_capture_decodes_to_its_digit(name: str) -> None:
    receiver = DtmfReceiver()
    captured = sipp_packets(name)
    assert {p.payload_type for _, p in captured} == {101}
    keys = [k for t, p in captured if (k := receiver.feed_packet(p, t)) is not None]
    assert [k.digit for k in keys] == [SIPP_DIGITS[name]]
    assert receiver.active is None  # its end packets were seen


def test_all_sipp_captures_in_one_stream_and_a_replay() -> None:
    assert sorted(p.name for p in Path(SIPP_PCAPS).glob("dtmf_2833_*.pcap")) == sorted(SIPP_DIGITS)
    receiver = DtmfReceiver()
    names = sorted(SIPP_DIGITS)
    digits = ""
    for round_, name in enumerate([*names, names[0]]):  # the first file is replayed at the end
        for t, packet in sipp_packets(name):
            key = receiver.feed_packet(packet, round_ * 10.0 + t % 1)
            digits += key.digit if key else ""
    assert digits == "".join(SIPP_DIGITS[n] for n in names)


# ---- over real UDP on loopback -----------------------------------------------------------------


def test_digits_and_audio_over_loopback_udp() -> None:
    """A caller's stream (μ-law audio with "12#" as RFC 4733 events) through a real socket."""
    ssrc, seq, ts = 0x1234, 65500, 0
    sent: list[RtpPacket] = []
    tone = np.rint(3000 * np.sin(2 * np.pi * 440 * np.arange(160) / 8000)).astype(np.int16)
    audio = ulaw_encode(tone).tobytes()
    for digit in "12#":
        for _ in range(5):  # 100 ms of audio, then the key press replaces the audio
            sent.append(RtpPacket(0, seq & 0xFFFF, ts, ssrc, audio, marker=not sent))
            seq, ts = seq + 1, ts + 160
        press = dtmf_packets(digit, ts, ssrc, seq & 0xFFFF, duration_ms=100)
        sent += press
        seq, ts = seq + len(press), ts + 800
    sent.append(RtpPacket(0, seq & 0xFFFF, ts, ssrc, audio))
    # The network reorders two pairs and duplicates one packet.
    wire = sent[:]
    wire[3], wire[4] = wire[4], wire[3]
    wire[20], wire[21] = wire[21], wire[20]
    wire.insert(10, wire[9])

    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5.0)
        for packet in wire:
            tx.sendto(bytes(packet), rx.getsockname())
        received = [rx.recvfrom(2048)[0] for _ in wire]

    jitter, dtmf, framer = JitterBuffer(window=4), DtmfReceiver(), AudioFramer(ULAW_SILENCE)
    digits, frames = "", []
    for i, data in enumerate(received):
        for packet in jitter.push(RtpPacket.parse(data)):
            if packet.payload_type == 101:
                key = dtmf.feed_packet(packet, i * PTIME)
                digits += key.digit if key else ""
            else:
                frames += framer.feed(packet.timestamp, packet.payload)
    for packet in jitter.flush():
        frames += framer.feed(packet.timestamp, packet.payload)

    assert digits == "12#"
    assert (jitter.stats.reordered, jitter.stats.duplicates, jitter.stats.lost) == (2, 1, 0)
    assert len(frames) == 3 * (5 + 5) + 1  # the events' 100 ms each became silence frames
    decoded = [ulaw_decode(f) for f in frames]
    assert np.array_equal(decoded[0], ulaw_decode(audio))
    assert not decoded[5].any() and not decoded[9].any()  # silence where "1" was pressed
    assert framer.filled == 3 * 800
