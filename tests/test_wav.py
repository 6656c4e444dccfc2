"""ivr.media.wav: WAV reading (formats, chunks), resampling quality, 8 kHz writing."""

from __future__ import annotations

import stat
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from debs import ALLISON
from numpy.typing import NDArray

from ivr.media.wav import (
    WavError,
    WavWriter,
    load_8k_mono,
    read_wav,
    read_wav_header,
    resample,
    to_int16,
    write_wav,
)

KSDATAFORMAT_PCM = bytes.fromhex("0100000000001000800000aa00389b71")  # the PCM subformat GUID
MIDDLE = slice(400, -400)  # away from the edges, where the filter sees the zero padding


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


def write_frames(path: Path, raw: bytes, width: int, channels: int = 1, rate: int = 8000) -> Path:
    """A WAV file written by the stdlib ``wave`` module (what most tools write)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def sine(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> NDArray[np.float64]:
    return amp * np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate)


def snr_db(signal: NDArray[np.float64], reference: NDArray[np.float64]) -> float:
    error = signal - reference
    return float(10 * np.log10(np.mean(reference**2) / np.mean(error**2)))


def gain_db(freq: float, rate: int) -> float:
    """The level of a half-scale sine at ``freq`` after resampling to 8 kHz, in dB."""
    out = resample(sine(freq, rate), rate, 8000)[MIDDLE]
    return float(20 * np.log10(np.sqrt(2 * np.mean(out**2)) / 0.5 + 1e-12))


# --- writing and reading back -----------------------------------------------------------------


def test_write_then_read_8k(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 1234, 16384], dtype=np.int16)
    write_wav(tmp_path / "r.wav", pcm)
    samples, fmt = read_wav(tmp_path / "r.wav")
    assert (fmt.rate, fmt.channels, fmt.bits, fmt.is_float) == (8000, 1, 16, False)
    assert fmt.is_telephone
    assert samples.shape == (7, 1)
    assert samples[[4, 6], 0].tolist() == [-1.0, 0.5]  # int16 / 32768
    assert np.array_equal(load_8k_mono(tmp_path / "r.wav"), pcm)
    with wave.open(str(tmp_path / "r.wav")) as w:  # what other programs read
        header = (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    assert header == (8000, 1, 2, 7)


def test_write_is_atomic_and_keeps_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    path = folder / "p.wav"
    path.write_bytes(b"an older take")
    write_wav(path, np.array([1, -1, 300], dtype=np.int16), rate=16000)
    assert sorted(p.name for p in folder.iterdir()) == ["p.wav"]  # no temporary file left
    samples, fmt = read_wav(path)
    assert fmt.rate == 16000 and not fmt.is_telephone
    assert to_int16(samples[:, 0]).tolist() == [1, -1, 300]
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)  # not 0600
    with pytest.raises(FileNotFoundError):  # the folder is the caller's to make
        write_wav(tmp_path / "absent" / "p.wav", np.zeros(3, dtype=np.int16))


def test_a_stereo_file_written_in_pieces_appears_whole_on_close(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    writer = WavWriter(path, channels=2)
    writer.write(np.array([[1, -1], [2, -2]], dtype=np.int16))
    assert not path.exists()  # only under its temporary name so far
    writer.write(np.array([[300, -300]], dtype=np.int16))
    with pytest.raises(ValueError, match="shape"):
        writer.write(np.zeros(4, dtype=np.int16))  # mono samples for a stereo file
    writer.close()
    samples, fmt = read_wav(path)
    assert (fmt.channels, fmt.rate, writer.frames) == (2, 8000, 3)
    assert to_int16(samples).tolist() == [[1, -1], [2, -2], [300, -300]]
    dropped = WavWriter(tmp_path / "dropped.wav")
    dropped.write(np.zeros(8, dtype=np.int16))
    dropped.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["call.wav"]


def test_header_only(tmp_path: Path) -> None:
    path = write_frames(tmp_path / "h.wav", np.zeros(5, dtype="<i2").tobytes(), 2, rate=22050)
    header = read_wav_header(path)
    assert (header.format.rate, header.format.channels, header.format.bits) == (22050, 1, 16)
    assert (header.data_offset, header.data_size, header.file_size) == (44, 10, 54)


# --- reading --------------------------------------------------------------------------------


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


def test_integer_widths_decode_to_the_same_values(tmp_path: Path) -> None:
    values = [0.0, 0.5, -0.5]
    u8 = bytes([128, 192, 64])
    s16 = np.array([0, 16384, -16384], dtype="<i2").tobytes()
    s24 = b"".join(int(v * 8388608).to_bytes(3, "little", signed=True) for v in values)
    s32 = np.array([0, 2**30, -(2**30)], dtype="<i4").tobytes()
    for width, raw in ((1, u8), (2, s16), (3, s24), (4, s32)):
        samples, fmt = read_wav(write_frames(tmp_path / f"w{width}.wav", raw, width))
        assert fmt.rate == 8000
        assert samples[:, 0].tolist() == values, width


def test_extensible_header_and_odd_sized_chunks(tmp_path: Path) -> None:
    pcm = to_int16(sine(700, 16000, seconds=0.1))
    odd_chunk = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\x00"  # padded to even length
    data = riff(1, 1, 16000, 16, pcm.tobytes(), extensible=True, before_data=odd_chunk)
    (tmp_path / "x.wav").write_bytes(data)
    samples, fmt = read_wav(tmp_path / "x.wav")
    assert (fmt.rate, fmt.bits, samples.shape) == (16000, 16, (1600, 1))
    assert np.array_equal(to_int16(samples[:, 0]), pcm)
    assert load_8k_mono(tmp_path / "x.wav").size == 800
    assert read_wav_header(tmp_path / "x.wav").data_offset == len(data) - pcm.nbytes


def test_a_cut_file_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    pcm = np.arange(10, dtype="<i2")
    whole = riff(1, 1, 8000, 16, pcm.tobytes())
    (tmp_path / "cut.wav").write_bytes(whole[:-5])  # two and a half samples missing
    samples, _ = read_wav(tmp_path / "cut.wav")
    assert to_int16(samples[:, 0]).tolist() == list(range(7))
    header = read_wav_header(tmp_path / "cut.wav")
    assert header.data_offset + header.data_size == header.file_size + 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"RIFX0000WAVE", "not a RIFF/WAVE"),
        (b"hello", "not a RIFF/WAVE"),
        (b"RIFF\x04\x00\x00\x00WAVE", "missing fmt or data"),
        (riff(2, 1, 8000, 4, b"\x00" * 10), "unsupported WAV encoding"),
        (riff(1, 1, 8000, 12, b"\x00" * 10), "unsupported sample size"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(WavError, match=message):
        read_wav(tmp_path / "bad.wav")
    with pytest.raises(WavError, match=r"bad\.wav"):
        read_wav_header(tmp_path / "bad.wav")


# --- to 8 kHz mono ------------------------------------------------------------------------------


def test_channels_are_averaged(tmp_path: Path) -> None:
    frames = np.array([[16384, 0], [-16384, -16384]], dtype="<i2").tobytes()
    path = write_frames(tmp_path / "st8k.wav", frames, 2, channels=2)
    assert load_8k_mono(path).tolist() == [8192, -16384]  # 0.25 and -0.5
    left = sine(1000, 44100)
    interleaved = to_int16(np.stack([left, np.zeros_like(left)], axis=1).reshape(-1))
    path = write_frames(tmp_path / "s.wav", interleaved.tobytes(), 2, channels=2, rate=44100)
    out = load_8k_mono(path)
    assert out.size == 8000
    expected = sine(1000, 8000, amp=0.25) * 32768  # half: averaged with a silent channel
    assert snr_db(out[MIDDLE].astype(np.float64), expected[MIDDLE]) > 60


@pytest.mark.usefixtures("asterisk_sounds")
def test_8k_recordings_load_unchanged() -> None:
    path = ALLISON / "digits" / "1.wav"
    with wave.open(str(path)) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert np.array_equal(load_8k_mono(path), raw)


def test_to_int16_rounds_and_clips() -> None:
    floats = np.array([0.0, 0.5, -0.5, 1.5, -1.5, 1.0 / 32768, 0.4 / 32768])
    assert to_int16(floats).tolist() == [0, 16384, -16384, 32767, -32768, 1, 0]


# --- resampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 16000, 11025])
def test_resampling_keeps_the_telephone_band_and_rejects_aliases(rate: int) -> None:
    out = resample(sine(1000, rate), rate, 8000)[MIDDLE]
    ideal = sine(1000, 8000)[MIDDLE]
    assert snr_db(out, ideal) > 90
    assert np.max(np.abs(out - ideal)) < 0.5e-3  # 1e-3 of full scale for a full-scale sine
    for freq in (300, 1000, 2000, 3000, 3400):
        assert abs(gain_db(freq, rate)) < 0.1, freq
    # Decimating without a filter would fold these to 3.8, 3.5, 3, 2 and 1 kHz at full level.
    for freq in (4200, 4500, 5000, 6000, 7000):
        if freq < rate / 2:
            assert gain_db(freq, rate) < -85, freq


def test_length_follows_the_ratio() -> None:
    assert resample(np.zeros(22050), 22050, 8000).size == 8000
    assert resample(np.zeros(22051), 22050, 8000).size == 8001  # rounded up
    assert resample(np.zeros(100), 8000, 16000).size == 200


def test_unusual_rate_keeps_length_and_pitch() -> None:
    out = resample(sine(440, 11111, seconds=2.0), 11111, 8000)
    assert out.size == 2 * 11111 * 8000 // 11111
    spectrum = np.abs(np.fft.rfft(out[1000:-1000] * np.hanning(out.size - 2000)))
    peak_hz = np.argmax(spectrum) * 8000 / (out.size - 2000)
    assert abs(peak_hz - 440) < 2


def test_upsampling_keeps_a_tone() -> None:
    out = resample(sine(1000, 6000), 6000, 8000)
    assert out.size == 8000
    assert abs(20 * np.log10(np.sqrt(2 * np.mean(out[MIDDLE] ** 2)) / 0.5)) < 0.1


def test_same_rate_and_empty_input_are_copies() -> None:
    x = sine(500, 8000, 0.1)
    out = resample(x, 8000, 8000)
    assert np.array_equal(out, x) and out is not x
    assert resample(np.zeros(0), 22050, 8000).size == 0


def test_dc_gain_is_one() -> None:
    out = resample(np.full(22050, 0.25), 22050, 8000)
    assert np.allclose(out[200:-200], 0.25, atol=1e-9)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10), 0, 8000)
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((10, 2)), 16000, 8000)
