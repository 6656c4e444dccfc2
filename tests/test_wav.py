"""WAV reading (formats, chunks), resampling quality and 8 kHz writing."""

from __future__ import annotations

import struct
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from ivr.media.wav import WavError, load_8k_mono, read_wav, resample, to_int16, write_wav

ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
KSDATAFORMAT_PCM = bytes.fromhex("0100000000001000800000aa00389b71")  # the PCM subformat GUID


def riff(
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    data: bytes,
    *,
    extensible: bool = False,
    before_data: bytes = b"",
) -> bytes:
    """A WAV file built by hand, byte by byte."""
    block = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block, block, bits
    )
    if extensible:
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + KSDATAFORMAT_PCM[2:]
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + before_data
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def sine(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> NDArray[np.float64]:
    return amp * np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate)


def snr_db(signal: NDArray[np.float64], reference: NDArray[np.float64]) -> float:
    error = signal - reference
    return float(10 * np.log10(np.mean(reference**2) / np.mean(error**2)))


def test_write_then_read_8k(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    write_wav(tmp_path / "r.wav", pcm)
    samples, fmt = read_wav(tmp_path / "r.wav")
    assert (fmt.rate, fmt.channels, fmt.bits, fmt.is_float) == (8000, 1, 16, False)
    assert samples.shape == (6, 1)
    assert np.array_equal(load_8k_mono(tmp_path / "r.wav"), pcm)
    with wave.open(str(tmp_path / "r.wav")) as w:  # what other programs read
        header = (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    assert header == (8000, 1, 2, 6)


def test_stereo_44k1_is_averaged_and_resampled(tmp_path: Path) -> None:
    left = sine(1000, 44100)
    right = np.zeros_like(left)
    interleaved = to_int16(np.stack([left, right], axis=1).reshape(-1))
    with wave.open(str(tmp_path / "s.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(interleaved.tobytes())
    out = load_8k_mono(tmp_path / "s.wav")
    assert out.size == 8000
    expected = sine(1000, 8000, amp=0.25) * 32768  # half: averaged with a silent channel
    middle = slice(200, -200)  # away from the edges, where the filter sees the zero padding
    assert snr_db(out[middle].astype(np.float64), expected[middle]) > 60


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 16000])
def test_resampling_keeps_the_telephone_band_and_rejects_aliases(rate: int) -> None:
    middle = slice(400, -400)
    assert snr_db(resample(sine(1000, rate), rate, 8000)[middle], sine(1000, 8000)[middle]) > 90
    for freq in (300, 1000, 2000, 3000, 3400):
        gain = np.sqrt(2 * np.mean(resample(sine(freq, rate), rate, 8000)[middle] ** 2)) / 0.5
        assert abs(20 * np.log10(gain)) < 0.3, freq
    for freq in (4500, 5000, 7000):
        if freq < rate / 2:
            leak = np.sqrt(2 * np.mean(resample(sine(freq, rate), rate, 8000)[middle] ** 2)) / 0.5
            assert 20 * np.log10(leak) < -85, freq


def test_unusual_rate_keeps_length_and_pitch() -> None:
    out = resample(sine(440, 11111, seconds=2.0), 11111, 8000)
    assert out.size == 2 * 11111 * 8000 // 11111
    spectrum = np.abs(np.fft.rfft(out[1000:-1000] * np.hanning(out.size - 2000)))
    peak_hz = np.argmax(spectrum) * 8000 / (out.size - 2000)
    assert abs(peak_hz - 440) < 2


def _u8(x: NDArray[np.float64]) -> bytes:
    return (np.rint(x * 127) + 128).astype(np.uint8).tobytes()


def _s24(x: NDArray[np.float64]) -> bytes:
    return b"".join(int(v).to_bytes(3, "little", signed=True) for v in np.rint(x * 2**23))


def _s32(x: NDArray[np.float64]) -> bytes:
    return np.rint(x * 2**31).astype("<i4").tobytes()


def _f32(x: NDArray[np.float64]) -> bytes:
    return x.astype("<f4").tobytes()


def _f64(x: NDArray[np.float64]) -> bytes:
    return x.astype("<f8").tobytes()


@pytest.mark.parametrize(
    ("tag", "bits", "encode"),
    [(1, 8, _u8), (1, 24, _s24), (1, 32, _s32), (3, 32, _f32), (3, 64, _f64)],
)
def test_sample_formats(
    tmp_path: Path, tag: int, bits: int, encode: Callable[[NDArray[np.float64]], bytes]
) -> None:
    x = sine(500, 8000, seconds=0.05, amp=0.75)
    (tmp_path / "f.wav").write_bytes(riff(tag, 1, 8000, bits, encode(x)))
    samples, fmt = read_wav(tmp_path / "f.wav")
    assert (fmt.bits, fmt.is_float) == (bits, tag == 3)
    tolerance = 1 / 100 if bits == 8 else 1e-6
    assert np.max(np.abs(samples[:, 0] - x)) < tolerance


def test_extensible_header_and_odd_sized_chunks(tmp_path: Path) -> None:
    pcm = to_int16(sine(700, 16000, seconds=0.1))
    odd_chunk = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"  # padded to even length
    data = riff(1, 1, 16000, 16, pcm.tobytes(), extensible=True, before_data=odd_chunk)
    (tmp_path / "x.wav").write_bytes(data)
    samples, fmt = read_wav(tmp_path / "x.wav")
    assert (fmt.rate, fmt.bits, samples.shape) == (16000, 16, (1600, 1))
    assert np.array_equal(to_int16(samples[:, 0]), pcm)
    assert load_8k_mono(tmp_path / "x.wav").size == 800


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"RIFX0000WAVE", "not a RIFF/WAVE"),
        (b"RIFF\x04\x00\x00\x00WAVE", "missing fmt or data"),
        (riff(2, 1, 8000, 4, b"\x00" * 10), "unsupported WAV encoding"),
        (riff(1, 1, 8000, 12, b"\x00" * 10), "unsupported sample size"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(WavError, match=message):
        read_wav(tmp_path / "bad.wav")


def test_8k_recordings_load_unchanged() -> None:
    path = ALLISON / "digits" / "1.wav"
    with wave.open(str(path)) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert np.array_equal(load_8k_mono(path), raw)
