"""ivr.tts.wavfile: reading recordings, writing 8 kHz files, telling a complete file."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from tts_helpers import read, write_tone

from ivr.tts.wavfile import (
    PromptAudioError,
    convert_to_telephone,
    is_complete_wav,
    read_mono,
    wav_info,
    write_pcm16,
)


def _write_raw(path: Path, raw: bytes, width: int, channels: int = 1, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)
    return path


def test_sample_widths_decode_to_the_same_values(tmp_path: Path) -> None:
    values = [0.0, 0.5, -0.5]
    u8 = bytes([128, 192, 64])
    s16 = np.array([0, 16384, -16384], dtype="<i2").tobytes()
    s24 = b"".join(int(v * 8388608).to_bytes(3, "little", signed=True) for v in values)
    s32 = np.array([0, 2**30, -(2**30)], dtype="<i4").tobytes()
    for width, raw in ((1, u8), (2, s16), (3, s24), (4, s32)):
        mono, rate = read_mono(_write_raw(tmp_path / f"w{width}.wav", raw, width))
        assert rate == 8000
        assert mono.tolist() == values, width


def test_channels_are_averaged(tmp_path: Path) -> None:
    frames = np.array([[16384, 0], [-16384, -16384]], dtype="<i2").tobytes()
    mono, _ = read_mono(_write_raw(tmp_path / "st.wav", frames, 2, channels=2))
    assert mono.tolist() == [0.25, -0.5]


def test_write_then_info(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "p.wav"
    write_pcm16(path, np.array([1, -1, 300], dtype=np.int16))
    info = wav_info(path)
    assert (info.rate, info.channels, info.sample_width, info.frames) == (8000, 1, 2, 3)
    assert info.is_telephone
    assert read(path).samples.tolist() == [1, -1, 300]
    assert sorted(p.name for p in path.parent.iterdir()) == ["p.wav"]


def test_convert_to_telephone(tmp_path: Path) -> None:
    source = write_tone(tmp_path / "in.wav", rate=44100, seconds=1.0, channels=2, freq=1000)
    info = convert_to_telephone(source, tmp_path / "out.wav")
    out = read(tmp_path / "out.wav")
    assert (out.rate, out.channels, out.width) == (8000, 1, 2)
    assert info.frames == out.samples.size == 8000
    # A 1 kHz tone at half scale keeps its level: RMS = 0.5 * 32767 / sqrt(2).
    assert abs(out.rms - 0.5 * 32767 / np.sqrt(2)) < 200


def test_a_float_wav_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "float.wav"
    data = np.zeros(8, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)  # WAVE_FORMAT_IEEE_FLOAT
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(PromptAudioError, match="sox"):
        read_mono(path)
    with pytest.raises(PromptAudioError, match=r"float\.wav"):
        wav_info(path)


def test_not_a_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "text.wav"
    path.write_text("hello")
    with pytest.raises(PromptAudioError, match="not a PCM WAV"):
        wav_info(path)


def test_complete_only_when_all_the_data_is_there(tmp_path: Path) -> None:
    path = write_tone(tmp_path / "t.wav", seconds=0.1)
    assert is_complete_wav(path)
    whole = path.read_bytes()
    cut = tmp_path / "cut.wav"
    for size in (0, 10, 44, len(whole) - 1):  # empty, header begun, header only, last byte missing
        cut.write_bytes(whole[:size])
        assert not is_complete_wav(cut), size
    assert not is_complete_wav(tmp_path / "absent.wav")
    (tmp_path / "x.wav").write_bytes(b"RIFX" + whole[4:])
    assert not is_complete_wav(tmp_path / "x.wav")


def test_complete_skips_chunks_before_the_data(tmp_path: Path) -> None:
    data = np.zeros(4, dtype="<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    extra = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\0"  # odd size: one pad byte
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(data)) + data
    path = tmp_path / "list.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert is_complete_wav(path)
    path.write_bytes(path.read_bytes()[:-2])
    assert not is_complete_wav(path)
