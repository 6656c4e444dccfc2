"""WAV files in and out: any rate and channel count in, 8 kHz mono int16 for the call.

The one place this package reads, writes and resamples WAV audio: the media path (player,
recorder) and the prompt pipeline (:mod:`ivr.tts`) both use it.

Reading parses the RIFF chunks itself (the stdlib ``wave`` module of Python 3.11 refuses
WAVE_FORMAT_EXTENSIBLE files, which many editors write): integer PCM of 8, 16, 24 or 32 bits and
32/64-bit float, mono or multi-channel. Channels are averaged to mono. :func:`read_wav_header`
reads the chunk headers only, for a quick look at a file's format.

Resampling is band-limited interpolation, polyphase. Dropping samples would fold everything above
4 kHz back into the telephone band (sibilants turn into whistles), so the signal goes through a
Kaiser-windowed sinc low-pass designed for the conversion at hand:

* pass band flat up to 85 % of the lower Nyquist frequency (3.4 kHz going to 8 kHz: the
  telephone band), stop band from the lower Nyquist frequency on (4 kHz), attenuated by
  :data:`ATTENUATION_DB`, about as far as 16-bit output can show;
* rates in the ratio ``up/down`` (160/441 for 22,050 -> 8,000) have ``up`` distinct fractional
  positions between output and input samples, so the filter is tabulated once per position (one
  row of the bank per phase, normalised to exact unity gain at DC) and each output sample is one
  dot product; the outputs of one phase are computed together, one matrix product per phase.

Measured on this code going to 8 kHz from 22.05, 44.1, 48 and 16 kHz: the pass band is flat
within 0.001 dB up to 3.4 kHz; every tone from 4 kHz up, which would alias, is attenuated by more
than 90 dB; a 1 kHz tone comes out with the error more than 100 dB below it (tests/test_wav.py
holds these to 0.1 dB, 85 dB from 4.2 kHz, and 90 dB). Far beyond what G.711 (about 38 dB SNR)
carries. A minute of 44.1 kHz audio converts in about 0.1 s; prompts are converted once and
cached, never on the media path.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import secrets
import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import ArrayLike, NDArray

TARGET_RATE = 8000
ATTENUATION_DB = 90.0  # stop-band rejection the filter is designed for
PASSBAND = 0.85  # fraction of the lower Nyquist frequency kept flat
_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE
_FMT_BYTES = 40  # the longest fmt chunk read (WAVE_FORMAT_EXTENSIBLE)
_CHUNK = 4096  # output samples per matrix product: keeps the gathered windows small


class WavError(ValueError):
    """A file that is not a WAV this module can read."""


@dataclass(frozen=True)
class WavFormat:
    """What a WAV file holds: sample rate, channels, bits per sample, integer or float."""

    rate: int
    channels: int
    bits: int
    is_float: bool = False

    @property
    def is_telephone(self) -> bool:
        """True for 8 kHz 16-bit integer mono: what :func:`load_8k_mono` returns, as it is."""
        return (self.rate, self.channels, self.bits, self.is_float) == (TARGET_RATE, 1, 16, False)


@dataclass(frozen=True)
class WavHeader:
    """A WAV file's format and where its samples are, from the chunk headers alone."""

    format: WavFormat
    data_offset: int  # where the samples start in the file
    data_size: int  # bytes of samples the data chunk declares (a cut file holds fewer)
    file_size: int


def read_wav_header(path: str | Path) -> WavHeader:
    """The format of the WAV file at ``path`` and where its samples are; the samples are not read.

    Raises:
        WavError, OSError: as :func:`read_wav`.
    """
    with Path(path).open("rb") as fh:
        return _scan(fh, path)


def read_wav(path: str | Path) -> tuple[NDArray[np.float64], WavFormat]:
    """Read a WAV file's samples as float64 in -1..1, shape (frames, channels).

    Raises:
        WavError: not RIFF/WAVE, no fmt or data chunk, or an encoding other than PCM/float.
        OSError: the file cannot be read.
    """
    with Path(path).open("rb") as fh:
        header = _scan(fh, path)
        fh.seek(header.data_offset)
        # A truncated data chunk (a recording cut short) is read as far as it goes.
        raw = fh.read(max(0, min(header.data_size, header.file_size - header.data_offset)))
    return _decode(raw, header.format), header.format


def _scan(fh: BinaryIO, path: str | Path) -> WavHeader:
    """Walk the chunk headers of an open WAV file (seeking over the chunk bodies)."""
    size = os.fstat(fh.fileno()).st_size
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    fmt: WavFormat | None = None
    data: tuple[int, int] | None = None
    offset = 12
    while offset + 8 <= size:
        fh.seek(offset)
        chunk = fh.read(8)
        if len(chunk) < 8:  # the file shrank while we read it
            break
        chunk_id, chunk_size = struct.unpack("<4sI", chunk)
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(fh.read(min(chunk_size, _FMT_BYTES)), path)
        elif chunk_id == b"data":
            data = (offset + 8, chunk_size)
        offset += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to an even length
    if fmt is None or data is None:
        raise WavError(f"{path}: missing fmt or data chunk")
    return WavHeader(fmt, data[0], data[1], size)


def _parse_fmt(body: bytes, path: str | Path) -> WavFormat:
    if len(body) < 16:
        raise WavError(f"{path}: fmt chunk too short")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the subformat GUID
    if tag not in (_PCM, _FLOAT) or channels < 1 or rate < 1:
        raise WavError(f"{path}: unsupported WAV encoding (format {tag}, {channels} channels)")
    is_float = tag == _FLOAT
    if (is_float and bits not in (32, 64)) or (not is_float and bits not in (8, 16, 24, 32)):
        raise WavError(f"{path}: unsupported sample size {bits} bits")
    return WavFormat(rate, channels, bits, is_float)


def _decode(raw: bytes, fmt: WavFormat) -> NDArray[np.float64]:
    width = fmt.bits // 8
    usable = len(raw) - len(raw) % (width * fmt.channels)
    raw = raw[:usable]
    if fmt.is_float:
        x = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
    elif width == 1:  # 8-bit WAV is unsigned, centred on 128
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)
    else:
        dtype = "<i2" if width == 2 else "<i4"
        x = np.frombuffer(raw, dtype=dtype).astype(np.float64) / float(1 << (fmt.bits - 1))
    return x.reshape(-1, fmt.channels)


def resample(x: ArrayLike, rate_in: int, rate_out: int) -> NDArray[np.float64]:
    """``x`` (mono, float) converted from ``rate_in`` to ``rate_out`` Hz.

    Args:
        x: one-dimensional float samples, nominally in -1..1.
        rate_in: their sample rate in Hz.
        rate_out: the wanted sample rate in Hz.

    Returns:
        ``ceil(len(x) * rate_out / rate_in)`` samples (one for each output instant within the
        input), band-limited below the lower of the two Nyquist frequencies, with unity gain in
        the pass band; a copy of ``x`` when the rates are equal.

    Raises:
        ValueError: a rate that is not positive, or samples that are not one-dimensional.
    """
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    signal = np.asarray(x, dtype=np.float64)
    if signal.ndim != 1:
        raise ValueError(f"resample needs mono samples (one dimension), got shape {signal.shape}")
    if rate_in == rate_out or signal.size == 0:
        return signal.copy()
    bank, up, down = _filter_bank(rate_in, rate_out)
    taps = bank.shape[1]
    half = taps // 2
    padded = np.concatenate([np.zeros(half), signal, np.zeros(half)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, taps)
    n_out = -(-signal.size * up // down)  # ceil
    out = np.empty(n_out)
    # Output n sits at input position base + phase/up (base, phase = divmod(n * down, up)); its
    # taps cover inputs base-half+1 .. base+half, the window starting at padded index base+1.
    # Outputs n0, n0 + up, n0 + 2 up, ... share a phase and step `down` input samples apart.
    for n0 in range(min(up, n_out)):
        base, phase = divmod(n0 * down, up)
        starts = base + 1 + down * np.arange(len(range(n0, n_out, up)))
        for i in range(0, starts.size, _CHUNK):
            chunk = starts[i : i + _CHUNK]
            out[n0 + i * up : n0 + (i + chunk.size) * up : up] = windows[chunk] @ bank[phase]
    return out


@functools.lru_cache(maxsize=16)
def _filter_bank(rate_in: int, rate_out: int) -> tuple[NDArray[np.float64], int, int]:
    """The polyphase table (``up`` rows by taps), ``up`` and ``down`` for this conversion."""
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    nyquist = min(rate_in, rate_out) / 2
    # Frequencies in cycles per input sample: the sinc runs on the input's time axis.
    cutoff = (1 + PASSBAND) / 2 * nyquist / rate_in  # the middle of the transition band
    transition = (1 - PASSBAND) * nyquist / rate_in
    # Kaiser's formulas for the window's shape and the filter length.
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    length = (ATTENUATION_DB - 7.95) / (2.285 * 2 * math.pi * transition)
    half = max(2, math.ceil(length / 2))
    k = np.arange(-half + 1, half + 1, dtype=np.float64)
    frac = np.arange(up, dtype=np.float64) / up
    distance = k[None, :] - frac[:, None]  # input sample k seen from the output instant
    window = np.i0(beta * np.sqrt(np.clip(1 - (distance / half) ** 2, 0.0, None))) / np.i0(beta)
    bank = 2 * cutoff * np.sinc(2 * cutoff * distance) * window
    bank /= bank.sum(axis=1, keepdims=True)  # exact unity gain at DC for every phase
    bank.setflags(write=False)
    return bank, up, down


def to_int16(x: ArrayLike) -> NDArray[np.int16]:
    """Float samples in -1..1 to int16, rounded and clipped (no wrap-around)."""
    scaled = np.rint(np.asarray(x, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


def load_8k_mono(path: str | Path) -> NDArray[np.int16]:
    """Read any supported WAV and return it as 8 kHz mono int16 samples."""
    samples, fmt = read_wav(path)
    mono = samples.mean(axis=1)
    return to_int16(resample(mono, fmt.rate, TARGET_RATE))


def write_wav(path: str | Path, pcm: ArrayLike, rate: int = TARGET_RATE) -> None:
    """Write int16 mono samples as a 16-bit PCM WAV (recordings, converted prompts).

    The file appears atomically: a reader sees the old file or the whole new one, never half.
    """
    samples = np.asarray(pcm, dtype=np.int16).reshape(-1)
    writer = WavWriter(path, rate=rate)
    try:
        writer.write(samples)
    except BaseException:
        writer.discard()
        raise
    writer.close()


class WavWriter:
    """A 16-bit PCM WAV written piece by piece (a long recording), one or more channels.

    The file is written next to ``path`` under a temporary name and appears at ``path`` on
    :meth:`close`, complete (the ``wave`` module fixes the sizes in the header as it goes).
    Blocking file I/O: call it off the event loop.

    Args:
        path: Where the file appears; its directory must exist.
        channels: Interleaved channels (2: stereo).
        rate: Samples per second.
    """

    def __init__(self, path: str | Path, *, channels: int = 1, rate: int = TARGET_RATE) -> None:
        self.path = Path(path)
        self.channels = channels
        self.frames = 0  # samples per channel written
        self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        # os.open with 0o666 keeps the umask's permissions (mkstemp would make the file 0600).
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._fh = os.fdopen(fd, "wb")
        self._out = wave.open(self._fh, "wb")  # noqa: SIM115 (closed in close/discard)
        self._out.setnchannels(channels)
        self._out.setsampwidth(2)
        self._out.setframerate(rate)

    def write(self, pcm: ArrayLike) -> None:
        """Append samples: shape (n,) for mono, (n, channels) interleaved."""
        samples = np.asarray(pcm, dtype=np.int16)
        if samples.ndim != (1 if self.channels == 1 else 2) or (
            samples.ndim == 2 and samples.shape[1] != self.channels
        ):
            raise ValueError(f"samples of shape {samples.shape} for {self.channels} channel(s)")
        self._out.writeframes(samples.astype("<i2").tobytes())
        self.frames += samples.shape[0]

    def close(self) -> None:
        """Finish the file and move it to ``path``."""
        try:
            self._out.close()
            self._fh.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Drop the file (nothing appears at ``path``)."""
        with contextlib.suppress(Exception):
            self._out.close()
        self._fh.close()
        self._tmp.unlink(missing_ok=True)


__all__ = [
    "ATTENUATION_DB",
    "PASSBAND",
    "TARGET_RATE",
    "WavError",
    "WavFormat",
    "WavHeader",
    "WavWriter",
    "load_8k_mono",
    "read_wav",
    "read_wav_header",
    "resample",
    "to_int16",
    "write_wav",
]
