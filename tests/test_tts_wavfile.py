"""ivr.tts.wavfile: recordings' formats, converting them to 8 kHz, telling a complete file."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from test_wav import riff
from tts_helpers import read, write_tone

from ivr.tts.wavfile import (
    PromptAudioError,
    convert_to_telephone,
    is_complete_wav,
    recording_format,
)


def test_recording_format(tmp_path: Path) -> None:
    assert recording_format(write_tone(tmp_path / "t.wav")).is_telephone
    assert not recording_format(write_tone(tmp_path / "w.wav", rate=16000)).is_telephone
    assert not recording_format(write_tone(tmp_path / "s.wav", channels=2)).is_telephone


def test_convert_to_telephone(tmp_path: Path) -> None:
    source = write_tone(tmp_path / "in.wav", rate=44100, seconds=1.0, channels=2, freq=1000)
    target = tmp_path / "sub" / "out.wav"  # a folder that does not exist yet
    frames = convert_to_telephone(source, target)
    out = read(target)
    assert (out.rate, out.channels, out.width) == (8000, 1, 2)
    assert frames == out.samples.size == 8000
    # A 1 kHz tone at half scale keeps its level: RMS = 0.5 * 32767 / sqrt(2).
    assert abs(out.rms - 0.5 * 32767 / np.sqrt(2)) < 200
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.wav"]


def test_a_float_recording_is_converted(tmp_path: Path) -> None:
    source = tmp_path / "float.wav"
    source.write_bytes(riff(3, 1, 16000, 32, np.full(1600, 0.5, dtype="<f4").tobytes()))
    assert not recording_format(source).is_telephone
    assert convert_to_telephone(source, tmp_path / "out.wav") == 800
    assert set(read(tmp_path / "out.wav").samples[100:700].tolist()) == {16384}  # half scale


def test_an_unreadable_recording_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "mulaw.wav"
    path.write_bytes(riff(7, 1, 8000, 8, bytes(8)))  # WAVE_FORMAT_MULAW
    with pytest.raises(PromptAudioError, match="sox"):
        convert_to_telephone(path, tmp_path / "out.wav")
    with pytest.raises(PromptAudioError, match=r"mulaw\.wav"):
        recording_format(path)
    assert not (tmp_path / "out.wav").exists()


def test_not_a_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "text.wav"
    path.write_text("hello")
    expected = r"text\.wav: not a PCM WAV file \(not a RIFF/WAVE file\); convert it with: sox"
    with pytest.raises(PromptAudioError, match=expected):
        recording_format(path)


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
