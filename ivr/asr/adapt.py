"""The PocketSphinx model adapted to telephone audio: MLLR mean transforms per phone class.

The wheel's en-us model is trained on 16 kHz wideband speech. On 8 kHz audio (even after
:class:`~ivr.asr.upsample.Wideband`) its Gaussians sit in the wrong place, above all for
fricatives. ``telephone_mllr.json`` holds affine transforms of the Gaussian means, one per phone
class (silence and noise, vowels and glides, fricatives, stops, everything else) and feature
stream, estimated here by maximum likelihood (MLLR, two EM iterations over forced alignments)
on synthesized speech in ten espeak-ng voices sent through ivr.asr's own front end.

Why classes: PocketSphinx applies an ``-mllr`` file with one class to every codebook. Then the
silence model moves with the speech models and starts to swallow speech: an out-of-grammar
sentence decoded as "yes please" plus a long "silence" scored as well as free phones do, which
breaks rejection. So the transforms are applied here, per codebook (the PTM model has one
codebook per base phone), and the decoder loads the resulting means file (``-mean``).

Measured (docs/ASR.md has the tables): recorded Asterisk words (a human voice never used to
estimate the transforms) 0.94 -> 0.97; isolated synthesized digits in other voices than the
estimation ones 0.74 -> 0.93; out-of-grammar separation by the likelihood ratio restored.

The means file (~0.8 MB) is written once into the temporary directory, named by a hash of its
inputs, atomically: concurrent processes agree on it and a stale one is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
import tempfile
import threading
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.asr.base import AsrError

TRANSFORMS = Path(__file__).with_name("telephone_mllr.json")
_FORMAT = 1  # bump when the written file's layout changes
_lock = threading.Lock()


def adapted_means(model: Path, transforms: Path = TRANSFORMS) -> Path:
    """The path of ``model``'s means with ``transforms`` applied (written on first use).

    Args:
        model: the acoustic model directory (``mdef``, ``means``, ...).
        transforms: the JSON transforms file.

    Raises:
        AsrError: the model or the transforms cannot be read or do not fit each other.
    """
    means = model / "means"
    try:
        spec = transforms.read_bytes()
        stat = means.stat()
    except OSError as exc:
        raise AsrError(f"cannot read the acoustic model adaptation: {exc}") from None
    tag = hashlib.sha256(spec + f"{means.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{_FORMAT}"
                         .encode()).hexdigest()[:16]  # fmt: skip
    target = Path(tempfile.gettempdir()) / f"ivr-asr-{tag}.means"
    with _lock:
        if not target.is_file():
            data = transform_means(read_gauden(means), read_ciphones(model / "mdef"),
                                   json.loads(spec))  # fmt: skip
            _write_atomic(target, gauden_bytes(data))
    return target


def read_ciphones(mdef: Path) -> list[str]:
    """The base phones of a binary model definition, in codebook order."""
    raw = mdef.read_bytes()
    if raw[:4] != b"BMDF":
        raise AsrError(f"{mdef}: not a binary model definition")
    text_len = struct.unpack_from("<i", raw, 8)[0]
    offset = 12 + text_len
    offset += -offset % 4
    n_ciphone = struct.unpack_from("<i", raw, offset)[0]
    names = raw[offset + 40 :].split(b"\0", n_ciphone)[:n_ciphone]
    return [n.decode("ascii") for n in names]


def read_gauden(path: Path) -> NDArray[np.float32]:
    """A Sphinx-3 Gaussian parameter file as (codebooks, streams, densities, length)."""
    raw = path.read_bytes()
    end = raw.find(b"endhdr\n")
    if end < 0:
        raise AsrError(f"{path}: not a Sphinx model parameter file")
    offset = end + len(b"endhdr\n")
    if struct.unpack_from("<I", raw, offset)[0] != 0x11223344:
        raise AsrError(f"{path}: unexpected byte order")
    n_cb, n_feat, n_dens = struct.unpack_from("<3i", raw, offset + 4)
    lengths = struct.unpack_from(f"<{n_feat}i", raw, offset + 16)
    if len(set(lengths)) != 1:
        raise AsrError(f"{path}: streams of different lengths are not supported")
    count = struct.unpack_from("<i", raw, offset + 16 + 4 * n_feat)[0]
    start = offset + 20 + 4 * n_feat
    values = np.frombuffer(raw, "<f4", count, start)
    return values.reshape(n_cb, n_feat, n_dens, lengths[0]).copy()


def transform_means(means: NDArray[np.float32], phones: list[str],
                    spec: dict[str, object]) -> NDArray[np.float32]:  # fmt: skip
    """Apply each class's transform to the codebooks of its phones (``*``: all the others)."""
    classes = spec.get("classes")
    if not isinstance(classes, list) or len(phones) != means.shape[0]:
        raise AsrError("the adaptation does not fit this acoustic model")
    out = means.astype(np.float64)
    done: set[int] = set()
    for entry in classes:
        members = set(entry["phones"])
        streams = np.asarray(entry["streams"], dtype=np.float64)  # (streams, rows, 1 + rows)
        if streams.shape[0] != means.shape[1] or streams.shape[1] != means.shape[3]:
            raise AsrError("the adaptation's dimensions do not fit this acoustic model")
        for cb, phone in enumerate(phones):
            if cb in done or not (phone in members or "*" in members):
                continue
            done.add(cb)
            for f, w in enumerate(streams):
                out[cb, f] = out[cb, f] @ w[:, 1:].T + w[:, 0]
    return out.astype(np.float32)


def gauden_bytes(values: NDArray[np.float32]) -> bytes:
    """``values`` in the Sphinx-3 binary format (no checksum)."""
    n_cb, n_feat, n_dens, length = values.shape
    header = b"s3\nversion 1.0\n  endhdr\n"  # padded so the data is 4-byte aligned
    body = struct.pack("<I3i", 0x11223344, n_cb, n_feat, n_dens)
    body += struct.pack(f"<{n_feat}i", *([length] * n_feat)) + struct.pack("<i", values.size)
    return header + body + values.astype("<f4").tobytes()


def _write_atomic(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AsrError(f"cannot write the adapted model to {target}: {exc}") from None


__all__ = ["TRANSFORMS", "adapted_means", "gauden_bytes", "read_ciphones", "read_gauden",
           "transform_means"]
