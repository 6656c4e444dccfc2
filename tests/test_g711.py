"""G.711 μ-law and A-law tables, checked against known code points and error bounds."""

from __future__ import annotations

import numpy as np
import pytest
from pcapfile import SIPP_PCAPS, read_udp

from ivr.media.g711 import (
    ALAW,
    ALAW_SILENCE,
    ULAW,
    ULAW_SILENCE,
    alaw_decode,
    alaw_encode,
    codec_for,
    ulaw_decode,
    ulaw_encode,
)
from ivr.rtp.packet import RtpPacket

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


@pytest.mark.parametrize(
    ("code", "linear"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xF0, 120), (0x70, -120), (0xEF, 132)],
)
def test_ulaw_decodes_known_codes(code: int, linear: int) -> None:
    assert ulaw_decode(bytes([code]))[0] == linear


@pytest.mark.parametrize(
    ("linear", "code"),
    [(0, 0xFF), (-1, 0x7F), (32767, 0x80), (-32768, 0x00), (32124, 0x80), (-32124, 0x00)],
)
def test_ulaw_encodes_known_values(linear: int, code: int) -> None:
    assert ulaw_encode(np.array([linear], dtype=np.int16))[0] == code


@pytest.mark.parametrize(
    ("code", "linear"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0x80, 5504)],
)
def test_alaw_decodes_known_codes(code: int, linear: int) -> None:
    assert alaw_decode(bytes([code]))[0] == linear


@pytest.mark.parametrize(
    ("linear", "code"),
    [(0, 0xD5), (7, 0xD5), (8, 0xD5), (-1, 0x55), (-8, 0x55), (32767, 0xAA), (-32768, 0x2A)],
)
def test_alaw_encodes_known_values(linear: int, code: int) -> None:
    assert alaw_encode(np.array([linear], dtype=np.int16))[0] == code


def test_silence_codes_decode_to_near_zero() -> None:
    assert ulaw_decode(bytes([ULAW_SILENCE]))[0] == 0
    assert alaw_decode(bytes([ALAW_SILENCE]))[0] == 8


def test_decode_tables_are_monotonic_per_sign() -> None:
    # Positive μ-law codes run 0x80 (loudest) .. 0xFF (zero); A-law's positive half is 0x80..0xFF
    # with even bits inverted, so sort by decoded value instead of checking code order.
    u = ulaw_decode(ALL_CODES).astype(np.int32)
    assert np.all(np.diff(u[0x80:]) < 0) and np.all(np.diff(u[:0x80]) > 0)
    a = np.sort(alaw_decode(ALL_CODES).astype(np.int32))
    assert len(np.unique(a)) == 256 and a[0] == -32256 and a[-1] == 32256


def test_every_code_survives_decode_then_encode() -> None:
    ulaw_again = ulaw_encode(ulaw_decode(ALL_CODES))
    mismatched = np.nonzero(ulaw_again != ALL_CODES)[0].tolist()
    assert mismatched == [0x7F]  # "negative zero" decodes to 0, which encodes as 0xFF
    assert np.array_equal(alaw_encode(alaw_decode(ALL_CODES)), ALL_CODES)


def test_ulaw_round_trip_error_is_at_most_half_a_step() -> None:
    x = ALL_INT16.astype(np.int32)
    error = np.abs(ulaw_decode(ulaw_encode(ALL_INT16)).astype(np.int32) - x)
    in_range = np.abs(x) <= 32635
    # Steps double per segment: 8, 16, ... 1024 (16-bit units); relative error under 1/30.
    assert np.all(error[in_range] <= 4 + np.abs(x[in_range]) / 30)
    assert error[in_range].max() == 512
    assert error.max() == 32768 - 32124  # -32768, beyond the clip level


def test_alaw_round_trip_error_is_at_most_half_a_step() -> None:
    x = ALL_INT16.astype(np.int32)
    error = np.abs(alaw_decode(alaw_encode(ALL_INT16)).astype(np.int32) - x)
    assert np.all(error <= 8 + np.abs(x) / 30)
    assert error.max() == 512


def test_sine_snr_is_that_of_g711() -> None:
    t = np.arange(8000) / 8000
    sine = np.rint(16000 * np.sin(2 * np.pi * 1004 * t)).astype(np.int16)
    for law in (ULAW, ALAW):
        out = law.decode(law.encode(sine)).astype(np.float64)
        noise = out - sine
        snr = 10 * np.log10(np.mean(sine.astype(np.float64) ** 2) / np.mean(noise**2))
        assert 35 < snr < 45, (law.name, snr)  # G.711's ~38 dB for a loud sine


def test_any_shape_and_bytes_in() -> None:
    frames = np.zeros((3, 160), dtype=np.int16)
    codes = ulaw_encode(frames)
    assert codes.shape == (3, 160) and codes.dtype == np.uint8
    assert np.all(codes == ULAW_SILENCE)
    assert ulaw_decode(codes.tobytes()).shape == (480,)
    assert alaw_decode(bytearray(b"\xd5\xd5")).tolist() == [8, 8]


def test_codec_for_payload_types() -> None:
    assert codec_for(0) is ULAW and codec_for(8) is ALAW
    assert (ULAW.name, ALAW.name) == ("PCMU", "PCMA")
    with pytest.raises(ValueError, match=r"not G\.711"):
        codec_for(18)


def test_sipp_g711a_capture_decodes_to_speech_level_audio() -> None:
    payload = b"".join(
        RtpPacket.parse(d.payload).payload for d in read_udp(SIPP_PCAPS / "g711a.pcap")
    )
    pcm = alaw_decode(payload).astype(np.float64)
    assert len(pcm) == 236 * 240  # 7.08 s
    level = 10 * np.log10(np.mean(pcm**2) / 32768**2)
    assert -35 < level < -15, level  # speech, neither silence nor full-scale noise
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    frame_levels = 10 * np.log10(np.mean(frames**2, axis=1) / 32768**2)
    assert np.mean(frame_levels > -50) > 0.5
    assert frame_levels[:5].max() < -60  # it starts with A-law silence (0xD5)
    # The wrong law turns the same bytes into loud noise: the law matters.
    wrong = ulaw_decode(payload).astype(np.float64)
    assert 10 * np.log10(np.mean(wrong**2) / 32768**2) > level + 10
