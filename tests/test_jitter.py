"""Jitter buffer (reordering, loss, duplicates) and the 20 ms audio framer."""

from __future__ import annotations

import numpy as np
import pytest
from pcapfile import SIPP_PCAPS, read_udp

from ivr.media.g711 import ALAW_SILENCE, ULAW_SILENCE
from ivr.rtp.jitter import AudioFramer, JitterBuffer
from ivr.rtp.packet import RtpPacket


def pkt(seq: int, ts: int | None = None, payload: bytes = b"") -> RtpPacket:
    seq &= 0xFFFF
    return RtpPacket(0, seq, 160 * seq if ts is None else ts, 1, payload or bytes([seq & 0xFF]))


def run(buffer: JitterBuffer, seqs: list[int]) -> list[list[int]]:
    """Push packets by sequence number; return what each push released."""
    return [[p.sequence_number for p in buffer.push(pkt(s))] for s in seqs]


def test_in_order_packets_pass_straight_through() -> None:
    buffer = JitterBuffer(window=4)
    assert run(buffer, [10, 11, 12]) == [[10], [11], [12]]
    assert buffer.stats.received == 3 and buffer.stats.lost == 0


def test_reordering_within_the_window_is_repaired() -> None:
    buffer = JitterBuffer(window=4)
    assert run(buffer, [1, 3, 4, 2, 5]) == [[1], [], [], [2, 3, 4], [5]]
    assert buffer.stats.reordered == 1 and buffer.stats.lost == 0


def test_missing_packet_is_declared_lost_after_window_newer_ones() -> None:
    buffer = JitterBuffer(window=3)
    assert run(buffer, [1, 3, 4, 5, 6]) == [[1], [], [], [3, 4, 5], [6]]
    assert buffer.stats.lost == 1
    assert run(buffer, [2]) == [[]]  # arrives after its place was given up
    assert buffer.stats.late == 1


def test_duplicates_are_dropped_held_or_released() -> None:
    buffer = JitterBuffer()
    assert run(buffer, [1, 1, 3, 3, 2, 2]) == [[1], [], [], [], [2, 3], []]
    assert buffer.stats.duplicates == 3


def test_burst_loss_is_counted() -> None:
    buffer = JitterBuffer(window=2)
    released = [s for batch in run(buffer, [1, 7, 8, 9]) for s in batch]
    assert released == [1, 7, 8, 9]
    assert buffer.stats.lost == 5


def test_order_is_kept_across_the_sequence_wrap() -> None:
    buffer = JitterBuffer(window=4)
    order = [65533, 65535, 65534, 1, 0, 2]
    released = [s for batch in run(buffer, order) for s in batch]
    assert released == [65533, 65534, 65535, 0, 1, 2]


def test_restarted_sender_is_followed() -> None:
    buffer = JitterBuffer()
    run(buffer, [100, 101, 102])
    assert run(buffer, [30000, 30001, 30002]) == [[], [30001], [30002]]
    assert buffer.stats.resyncs == 1 and buffer.stats.invalid == 1
    assert buffer.stats.lost == 0  # a restart is not loss


def test_flush_releases_held_packets_over_gaps() -> None:
    buffer = JitterBuffer(window=5)
    run(buffer, [1, 3, 5])
    assert [p.sequence_number for p in buffer.flush()] == [3, 5]
    assert buffer.stats.lost == 2
    assert buffer.flush() == []


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        JitterBuffer(window=0)


def test_framer_cuts_30_ms_packets_into_20_ms_frames() -> None:
    framer = AudioFramer(ALAW_SILENCE)
    out = []
    for i in range(4):  # 4 x 240 samples = 960 = 6 frames
        out += framer.feed(240 * i, bytes([i]) * 240)
    assert [len(f) for f in out] == [160] * 6
    assert b"".join(out) == b"".join(bytes([i]) * 240 for i in range(4))
    assert framer.flush() == []


def test_framer_fills_a_timestamp_gap_with_silence() -> None:
    framer = AudioFramer(ULAW_SILENCE)
    out = framer.feed(1000, b"\x01" * 160)
    out += framer.feed(1000 + 480, b"\x02" * 160)  # two packets missing
    assert out == [b"\x01" * 160, b"\xff" * 160, b"\xff" * 160, b"\x02" * 160]
    assert framer.filled == 320


def test_framer_drops_what_overlaps_and_restarts_after_long_gaps() -> None:
    framer = AudioFramer(ULAW_SILENCE, max_gap=8000)
    framer.feed(0, b"\x01" * 160)
    assert framer.feed(80, b"\x02" * 160) == []  # half overlaps: only 80 new samples
    assert framer.feed(0, b"\x03" * 160) == []  # wholly old
    assert framer.feed(240, b"\x04" * 80) == [b"\x02" * 80 + b"\x04" * 80]
    assert framer.feed(320 + 100_000, b"\x05" * 160) == [b"\x05" * 160]  # hold: not filled
    assert framer.discontinuities == 1 and framer.filled == 0


def test_framer_flush_pads_the_last_frame() -> None:
    framer = AudioFramer(ULAW_SILENCE)
    assert framer.feed(2**32 - 100, b"\x07" * 200) == [b"\x07" * 160]  # ts wraps inside
    assert framer.feed(100, b"\x08" * 20) == []  # continues after the wrap, no gap
    assert framer.flush() == [b"\x07" * 40 + b"\x08" * 20 + b"\xff" * 100]
    assert framer.filled == 0


def test_shuffled_capture_comes_out_as_the_original_audio() -> None:
    packets = [RtpPacket.parse(d.payload) for d in read_udp(SIPP_PCAPS / "g711a.pcap")]
    rng = np.random.default_rng(1)
    shuffled = packets[:]
    for i in range(0, len(shuffled) - 3, 3):  # move packets up to 2 places
        window = shuffled[i : i + 3]
        rng.shuffle(window)
        shuffled[i : i + 3] = window
    shuffled.insert(50, shuffled[40])  # a late duplicate
    dropped = shuffled.pop(100)

    buffer, framer = JitterBuffer(window=4), AudioFramer(ALAW_SILENCE)
    frames = []
    for packet in shuffled:
        for ready in buffer.push(packet):
            frames += framer.feed(ready.timestamp, ready.payload)
    for ready in buffer.flush():
        frames += framer.feed(ready.timestamp, ready.payload)
    frames += framer.flush()

    expected = b"".join(
        p.payload if p is not dropped else bytes([ALAW_SILENCE]) * 240 for p in packets
    )
    assert b"".join(frames) == expected
    assert (buffer.stats.lost, buffer.stats.duplicates) == (1, 1)
    assert buffer.stats.reordered > 20
    assert framer.filled == 240
