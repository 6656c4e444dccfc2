"""RTP packets (RFC 3550 §5.1) and sequence-number arithmetic."""

from __future__ import annotations

import pytest
from pcapfile import SIPP_PCAPS, read_udp

from ivr.rtp.packet import (
    MAX_DROPOUT,
    RtpExtension,
    RtpPacket,
    RtpParseError,
    SequenceCounter,
    seq_diff,
    seq_newer,
    ts_diff,
)

# V=2, M=1, PT=0, seq=0x1234, ts=0x11223344, SSRC=0xDEADBEEF, payload "abc"
PLAIN = bytes.fromhex("80 80 1234 11223344 deadbeef") + b"abc"


def test_parse_fixed_header() -> None:
    packet = RtpPacket.parse(PLAIN)
    assert packet == RtpPacket(
        payload_type=0,
        sequence_number=0x1234,
        timestamp=0x11223344,
        ssrc=0xDEADBEEF,
        payload=b"abc",
        marker=True,
    )
    assert bytes(packet) == PLAIN


def test_parse_payload_type_without_marker() -> None:
    packet = RtpPacket.parse(bytes.fromhex("80 65 0001 00000000 00000001") + b"\x01\x0a\x00\xa0")
    assert (packet.payload_type, packet.marker) == (101, False)


def test_csrcs_extension_and_padding_round_trip() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence_number=65535,
        timestamp=2**32 - 1,
        ssrc=7,
        payload=b"\xd5" * 160,
        marker=False,
        csrcs=(1, 2, 3),
        extension=RtpExtension(0xBEDE, b"\x10\x01\x00\x00"),
        padding_size=4,
    )
    data = bytes(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 3  # V=2, P, X, CC=3
    assert len(data) == 12 + 3 * 4 + 4 + 4 + 160 + 4
    assert data[-1] == 4
    assert RtpPacket.parse(data) == packet


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00\x00", "too short"),
        (bytes.fromhex("40 00 0000 00000000 00000000"), "version 1"),
        (bytes.fromhex("c0 00 0000 00000000 00000000"), "version 3"),
        (bytes.fromhex("82 00 0000 00000000 00000000 00000001"), "too short for 2 CSRCs"),
        (bytes.fromhex("90 00 0000 00000000 00000000 bede"), "extension header"),
        (bytes.fromhex("90 00 0000 00000000 00000000 bede0002 00000000"), "runs past"),
        (bytes.fromhex("a0 00 0000 00000000 00000000 616200"), "padding count 0"),
        (bytes.fromhex("a0 00 0000 00000000 00000000 616205"), "padding count 5"),
    ],
)
def test_malformed_packets_raise_rtp_parse_error(data: bytes, reason: str) -> None:
    with pytest.raises(RtpParseError):
        RtpPacket.parse(data)
    assert issubclass(RtpParseError, ValueError), reason


def test_too_many_csrcs_cannot_be_serialized() -> None:
    with pytest.raises(ValueError, match="15 CSRCs"):
        bytes(RtpPacket(csrcs=tuple(range(16))))


def test_extension_must_be_whole_words() -> None:
    with pytest.raises(ValueError, match="32-bit words"):
        RtpExtension(1, b"abc")


def test_captured_packets_round_trip_byte_for_byte() -> None:
    datagrams = read_udp(SIPP_PCAPS / "g711a.pcap")
    assert len(datagrams) == 236
    for datagram in datagrams:
        packet = RtpPacket.parse(datagram.payload)
        assert packet.payload_type == 8
        assert len(packet.payload) == 240
        assert bytes(packet) == datagram.payload
    first = RtpPacket.parse(datagrams[0].payload)
    assert (first.marker, first.sequence_number, first.timestamp, first.ssrc) == (
        True,
        59133,
        240,
        0xDEE0EE8F,
    )


def test_seq_diff_wraps_around() -> None:
    assert seq_diff(2, 65534) == 4
    assert seq_diff(65534, 2) == -4
    assert seq_diff(100, 100) == 0
    assert seq_diff(0x8000 + 5, 5) == -32768  # half-way: taken as older (RFC 1982 undefined)
    assert seq_newer(0, 65535)
    assert not seq_newer(65535, 0)


def test_ts_diff_wraps_around() -> None:
    assert ts_diff(80, 2**32 - 80) == 160
    assert ts_diff(2**32 - 80, 80) == -160


def test_counter_counts_rollovers() -> None:
    counter = SequenceCounter()
    extended = [counter.extend(seq & 0xFFFF) for seq in range(65530, 65545)]
    assert extended == list(range(65530, 65545))
    assert counter.cycles == 1
    assert counter.highest == 65544


def test_counter_gives_a_late_packet_from_before_the_wrap_the_old_cycle() -> None:
    counter = SequenceCounter()
    for seq in (65534, 65535, 0, 1):
        counter.extend(seq)
    assert counter.extend(65533) == 65533  # reordered across the wrap
    assert counter.extend(2) == 65536 + 2
    assert counter.extend(1) == 65536 + 1  # a duplicate gets the same number again


def test_counter_drops_a_single_wild_jump() -> None:
    counter = SequenceCounter()
    for seq in range(10, 20):
        counter.extend(seq)
    assert counter.extend(30000) is None
    assert counter.extend(20) == 20  # the stream goes on as if nothing happened
    assert counter.restarts == 0


def test_counter_follows_a_restarted_sender_after_two_sequential_packets() -> None:
    counter = SequenceCounter()
    for seq in range(100, 110):
        counter.extend(seq)
    assert counter.extend(40000) is None
    restarted = counter.extend(40001)
    assert restarted is not None
    assert restarted & 0xFFFF == 40001
    assert restarted > 109 + MAX_DROPOUT  # never goes backwards, far from the old numbers
    assert counter.extend(40002) == restarted + 1
    assert counter.restarts == 1


def test_counter_accepts_loss_up_to_max_dropout() -> None:
    counter = SequenceCounter()
    counter.extend(65000)
    assert counter.extend((65000 + MAX_DROPOUT) & 0xFFFF) == 65000 + MAX_DROPOUT
