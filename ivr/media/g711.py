"""G.711 μ-law (PCMU) and A-law (PCMA) by table lookup on numpy arrays.

The four tables are computed once, at import, from the segment/mantissa definition of G.711
(ITU-T G.711 tables 1 and 2, scaled to 16-bit linear PCM), vectorised over every possible
input. Encoding is then one gather over a 64 Ki-entry table indexed by the int16 sample's bit
pattern, decoding one gather over a 256-entry table: no per-sample Python, and any array shape
works, so one call can encode the frames of many calls at once.

Quantization: μ-law decodes to the middle of each step (error at most half a step, 4..512 in
16-bit units; inputs beyond ±32635 clip to ±32124); A-law works on the top 13 bits and has no
zero code (0 and -1 decode to ±8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

PCMU: Final = 0  # static RTP payload types, RFC 3551 table 4
PCMA: Final = 8
ULAW_SILENCE: Final = 0xFF  # the code for linear 0
ALAW_SILENCE: Final = 0xD5  # the code for linear +8, the smallest positive level

_ULAW_BIAS = 0x84  # 132: shifts every segment to start at a power of two
_ULAW_CLIP = 32635  # largest magnitude that still fits after the bias is added

# Segment boundaries (first magnitude of segments 1..7).
_ULAW_SEGMENT_STARTS = np.array([1 << k for k in range(8, 15)])
_ALAW_SEGMENT_STARTS = np.array([1 << k for k in range(5, 12)])


def _all_int16() -> NDArray[np.int32]:
    """Every int16 value, ordered by its bit pattern (the encode tables' index)."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)


def _ulaw_encode_table() -> NDArray[np.uint8]:
    x = _all_int16()
    sign = (x < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.searchsorted(_ULAW_SEGMENT_STARTS, magnitude, side="right")
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    # Codes are sent inverted (G.711 §A: all-ones is the zero level, helping line clocking).
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _ulaw_decode_table() -> NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_encode_table() -> NDArray[np.uint8]:
    x = _all_int16() >> 3  # A-law quantizes 13-bit linear samples
    negative = x < 0
    magnitude = np.where(negative, -x - 1, x)
    segment = np.searchsorted(_ALAW_SEGMENT_STARTS, magnitude, side="right")
    mantissa = np.where(segment < 2, magnitude >> 1, magnitude >> np.maximum(segment, 1)) & 0x0F
    # Even bits are inverted on the wire (XOR 0x55); the sign bit is 1 for positive values.
    mask = np.where(negative, 0x55, 0xD5)
    return (((segment << 4) | mantissa) ^ mask).astype(np.uint8)


def _alaw_decode_table() -> NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code >> 4) & 0x07
    base = ((code & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    level: NDArray[np.int32] = base << np.maximum(segment - 1, 0)
    return np.where(code & 0x80, level, -level).astype(np.int16)


_ULAW_ENC: Final = _ulaw_encode_table()
_ULAW_DEC: Final = _ulaw_decode_table()
_ALAW_ENC: Final = _alaw_encode_table()
_ALAW_DEC: Final = _alaw_decode_table()


def _bit_patterns(pcm: ArrayLike) -> NDArray[np.uint16]:
    return np.asarray(pcm, dtype=np.int16).view(np.uint16)


def _codes(data: bytes | ArrayLike) -> NDArray[np.uint8]:
    if isinstance(data, bytes | bytearray | memoryview):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8)


def ulaw_encode(pcm: ArrayLike) -> NDArray[np.uint8]:
    """Encode int16 linear PCM (any shape) to μ-law codes of the same shape."""
    return _ULAW_ENC[_bit_patterns(pcm)]


def ulaw_decode(data: bytes | ArrayLike) -> NDArray[np.int16]:
    """Decode μ-law codes (bytes or a uint8 array of any shape) to int16 linear PCM."""
    return _ULAW_DEC[_codes(data)]


def alaw_encode(pcm: ArrayLike) -> NDArray[np.uint8]:
    """Encode int16 linear PCM (any shape) to A-law codes of the same shape."""
    return _ALAW_ENC[_bit_patterns(pcm)]


def alaw_decode(data: bytes | ArrayLike) -> NDArray[np.int16]:
    """Decode A-law codes (bytes or a uint8 array of any shape) to int16 linear PCM."""
    return _ALAW_DEC[_codes(data)]


@dataclass(frozen=True)
class G711Codec:
    """One G.711 law as the RTP layer sees it: name, static payload type, silence code."""

    name: str
    payload_type: int
    silence: int
    encode: Callable[[ArrayLike], NDArray[np.uint8]]
    decode: Callable[[bytes | ArrayLike], NDArray[np.int16]]


# One law to the other through linear PCM, as 256-byte tables for ``bytes.translate``: a frame
# changes law in one C call (about 0.1 µs for 160 bytes), with no numpy on the media path.
ULAW_TO_ALAW: Final = alaw_encode(ulaw_decode(np.arange(256, dtype=np.uint8))).tobytes()
ALAW_TO_ULAW: Final = ulaw_encode(alaw_decode(np.arange(256, dtype=np.uint8))).tobytes()

ULAW: Final = G711Codec("PCMU", PCMU, ULAW_SILENCE, ulaw_encode, ulaw_decode)
ALAW: Final = G711Codec("PCMA", PCMA, ALAW_SILENCE, alaw_encode, alaw_decode)


def codec_for(payload_type: int) -> G711Codec:
    """The codec of a static payload type (0 or 8).

    Raises:
        ValueError: any other payload type.
    """
    if payload_type == PCMU:
        return ULAW
    if payload_type == PCMA:
        return ALAW
    raise ValueError(f"payload type {payload_type} is not G.711")
