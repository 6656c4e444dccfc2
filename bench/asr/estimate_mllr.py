"""Estimate ivr/asr/telephone_mllr.json from scratch: MLLR mean transforms per phone class.

:mod:`ivr.asr.adapt` moves the Gaussian means of PocketSphinx's en-us model towards 8 kHz
telephone audio seen through ivr.asr's front end. This module makes those transforms:

1. **corpus**: :data:`SENTENCES` spoken by espeak-ng (its command line) in the ten
   :data:`VOICES`, each voice taking every other sentence (160 utterances), read at 8 kHz
   (:func:`ivr.media.wav.load_8k_mono`) with 0.3 s of silence on each side;
2. **front end**, as :class:`ivr.asr.sphinx.SphinxStream` runs it today: 20 ms frames through a
   streaming :class:`~ivr.asr.denoise.Denoiser` (when ``sphinx.DENOISE``; its 32 ms delay stays
   in, as on a call) and then :class:`~ivr.asr.upsample.Wideband`, giving 16 kHz audio;
3. **alignment**: PocketSphinx forced alignment of the text (word pass, then state pass) gives
   a senone per 10 ms frame; the frame's cepstra (``mfclogdir``) become the model's features
   (utterance cepstral mean removed, PocketSphinx's ``1s_c_d_dd`` deltas, three streams of 13);
4. **statistics**: within each frame's senone, the posterior of each of the 128 Gaussians of its
   codebook (the PTM model has one codebook per base phone), summed per Gaussian as occupancy
   and occupancy-weighted feature sum;
5. **solve**: per phone class (:data:`CLASSES`) and stream, the maximum-likelihood affine
   transform of the means for diagonal covariances, one 14x14 system per row (Leggetter and
   Woodland 1995): row ``i`` is ``G_i^-1 k_i`` with ``G_i = sum_g n_g / var_gi * xi_g xi_g^T`` and
   ``k_i = sum_g s_gi / var_gi * xi_g`` (``xi_g = [1, mean_g]``, ``n_g`` occupancy, ``s_g`` feature
   sum). A class seen for fewer than :data:`MIN_FRAMES` frames keeps the identity;
6. **iterate**: the next pass aligns with the adapted means (written by :mod:`ivr.asr.adapt`
   itself) and estimates again from the unadapted ones. As when the committed file was made,
   only the alignment uses the adapted model; the Gaussian posteriors within a senone always come
   from the unadapted means;
7. **write** the JSON that :func:`ivr.asr.adapt.adapted_means` reads (``about``; ``classes``, each
   with ``phones`` and ``streams``: per stream 13 rows of ``[bias, a1..a13]``; 6 decimals), check
   that :func:`ivr.asr.adapt.transform_means` accepts it, and print how far it is from the
   committed file.

Run: ``nice .venv/bin/python bench/asr/estimate_mllr.py [--out PATH] [--iterations N]``. It
writes ``var/asr-mllr/telephone_mllr.json`` unless ``--out`` says otherwise; only
``--out ivr/asr/telephone_mllr.json`` replaces the file the backend loads. It takes about
30 s on one core (synthesis, front end, two alignment passes per utterance and iteration);
needs espeak-ng and the pocketsphinx wheel, nothing is downloaded.

Measured 2026-11-28 against the committed file: max |difference| 1.05, mean 0.03 over the
transform entries (the front end has changed since the committed file was estimated); with the
regenerated transforms the tuning set scored commands 0.984, isolated digits 0.96, false accepts
0.103, against 0.989, 0.98 and 0.092 with the committed ones (whose rejection floors were chosen
with them). So the committed file stays; re-estimate, then re-tune the floors, together.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr.asr import sphinx  # noqa: E402
from ivr.asr.adapt import (  # noqa: E402
    TRANSFORMS,
    gauden_bytes,
    read_ciphones,
    read_gauden,
    transform_means,
)
from ivr.asr.base import FRAME_SAMPLES, SAMPLE_RATE  # noqa: E402
from ivr.asr.denoise import Denoiser  # noqa: E402
from ivr.asr.upsample import Wideband  # noqa: E402
from ivr.media.wav import load_8k_mono  # noqa: E402

DEFAULT_OUT = ROOT / "var" / "asr-mllr" / "telephone_mllr.json"
ABOUT = ("MLLR mean transforms (per phone class, per feature stream: 13 rows of [bias, a1..a13]) "
         "adapting the PocketSphinx 5.1.1 en-us model to 8 kHz telephone audio through ivr.asr's "
         "front end; estimated on synthesized speech (espeak-ng, 10 voices, 160 utterances), "
         "2 EM iterations. Applied by ivr.asr.adapt.")
VOICES: tuple[tuple[str, int], ...] = (
    ("en-gb-x-rp+m1", 150), ("en-gb-x-gbclan+m2", 170), ("en-gb-x-gbcwmd+f1", 160),
    ("en-us+m5", 150), ("en-us+f3", 180), ("en-029+m4", 140), ("en-us+m1", 170),
    ("en-gb-scotland+f1", 150), ("en-us+m6", 190), ("en-gb+m2", 160))  # (voice, words/min)
SENTENCES: tuple[str, ...] = (
    "please check my account balance", "I lost my credit card yesterday",
    "can I speak to a real person", "transfer five hundred dollars to savings",
    "what are your opening hours on saturday", "my phone number is seven one two",
    "the quick brown fox jumps over the lazy dog", "she sells sea shells by the sea shore",
    "fifty six thousand three hundred", "zero one two three four five six seven eight nine",
    "nine eight seven six five four three two one zero", "I would like to pay my bill please",
    "yes that is correct", "no that is wrong", "start over from the main menu",
    "technical support for my internet", "cancel my subscription", "send me a statement by mail",
    "six seven six seven", "five four five four", "three zero zero four",
    "the thick thistle sticks", "fresh fish for sale", "visit the village every seventh of june",
    "how much does shipping cost", "reset my password", "representative", "operator",
    "billing question", "check the status of my order", "good evening", "thanks very much")
# Phone classes in order; a phone belongs to the first class naming it, "*" takes the rest.
CLASSES: tuple[tuple[str, ...], ...] = (
    ("SIL", "+NSN+", "+SPN+"),
    ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW",
     "W", "Y", "R", "L"),
    ("F", "V", "TH", "DH", "S", "Z", "SH", "ZH", "HH", "CH", "JH"),
    ("B", "D", "G", "K", "P", "T"),
    ("*",))
PAD_SECONDS = 0.3  # silence before and after each utterance (like the decoders' pre-roll)
MIN_FRAMES = 200  # a class seen less keeps the identity transform
VAR_FLOOR = 1e-4  # PocketSphinx's default -varfloor
RIDGE = 1e-6  # keeps a row's system solvable when a class barely spans the space
_LOG_BASE = np.log(1.0001)  # PocketSphinx's log base; sendump holds -log(w) >> 10 in it


@dataclass(frozen=True)
class Model:
    """The parts of a PTM acoustic model the statistics need.

    Attributes:
        phones: base phones, in codebook order.
        means: (codebooks, streams, densities, length), unadapted.
        variances: same shape, floored at :data:`VAR_FLOOR`.
        log_weights: natural-log mixture weights, (streams, densities, senones).
    """

    phones: list[str]
    means: NDArray[np.float64]
    variances: NDArray[np.float64]
    log_weights: NDArray[np.float64]

    @property
    def log_norm(self) -> NDArray[np.float64]:
        """-0.5 * log det(2 pi var) per Gaussian, (codebooks, streams, densities)."""
        return -0.5 * np.log(2 * np.pi * self.variances).sum(-1)


@dataclass(frozen=True)
class Aligned:
    """One aligned utterance: features (frames, streams, length), senone and codebook per frame."""

    features: NDArray[np.float64]
    senones: NDArray[np.int64]
    codebooks: NDArray[np.int64]


@dataclass
class Stats:
    """Per-Gaussian sufficient statistics of one pass over the corpus."""

    occupancy: NDArray[np.float64]  # (codebooks, streams, densities)
    sums: NDArray[np.float64]  # (codebooks, streams, densities, length)
    frames: NDArray[np.int64]  # frames aligned to each codebook
    log_likelihood: float = 0.0
    failed: int = 0

    @classmethod
    def empty(cls, model: Model) -> Stats:
        """Zero statistics shaped for ``model``."""
        shape = model.means.shape
        return cls(np.zeros(shape[:3]), np.zeros(shape), np.zeros(shape[0], dtype=np.int64))


# --- model files ---------------------------------------------------------------------------------


def model_dir() -> Path:
    """The en-us acoustic model inside the pocketsphinx wheel (as the backend loads it)."""
    return sphinx._model_dir() / "en-us" / "en-us"


def read_sendump(path: Path) -> NDArray[np.uint8]:
    """PocketSphinx's quantized mixture weights, (streams, densities, senones)."""
    raw = path.read_bytes()
    offset = 0
    while True:  # length-prefixed header strings, ended by a zero length
        length = int.from_bytes(raw[offset : offset + 4], "little", signed=True)
        offset += 4 + length
        if length == 0:
            break
    rows, cols = np.frombuffer(raw, "<i4", 2, offset)
    data = np.frombuffer(raw, np.uint8, offset=offset + 8)
    return data.reshape(-1, int(rows), int(cols))


def load_model(path: Path) -> Model:
    """The unadapted model in ``path`` (``mdef``, ``means``, ``variances``, ``sendump``)."""
    log_weights = -read_sendump(path / "sendump").astype(np.float64) * 1024 * _LOG_BASE
    return Model(phones=read_ciphones(path / "mdef"),
                 means=read_gauden(path / "means").astype(np.float64),
                 variances=np.maximum(read_gauden(path / "variances").astype(np.float64),
                                      VAR_FLOOR),
                 log_weights=log_weights)  # fmt: skip


# --- corpus and front end ------------------------------------------------------------------------


def corpus() -> list[tuple[str, str, int]]:
    """(text, voice, speed) of the 160 training utterances."""
    return [(text, voice, speed) for i, (voice, speed) in enumerate(VOICES)
            for j, text in enumerate(SENTENCES) if (i + j) % 2 == 0]  # fmt: skip


def synthesize(text: str, voice: str, speed: int) -> NDArray[np.int16]:
    """``text`` spoken by espeak-ng at 8 kHz, with :data:`PAD_SECONDS` of silence around it."""
    with tempfile.TemporaryDirectory(prefix="mllr-espeak-") as tmp:
        wav = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
                       check=True, capture_output=True, timeout=60)  # fmt: skip
        speech = load_8k_mono(wav)
    pad = np.zeros(round(PAD_SECONDS * SAMPLE_RATE), dtype=np.int16)
    return np.concatenate([pad, speech, pad])


def front_end(audio: NDArray[np.int16]) -> NDArray[np.int16]:
    """8 kHz audio -> 16 kHz, frame by frame, as ``SphinxStream._front`` does it."""
    denoiser = Denoiser() if sphinx.DENOISE else None
    wideband = Wideband()
    out = []
    for start in range(0, audio.size, FRAME_SAMPLES):
        frame = audio[start : start + FRAME_SAMPLES]
        out.append(wideband.process(denoiser.process(frame) if denoiser else frame))
    return np.concatenate(out)


# --- alignment -----------------------------------------------------------------------------------


def read_mfc(path: Path) -> NDArray[np.float64]:
    """A Sphinx cepstra file as (frames, 13); the byte order is the one whose count fits."""
    raw = path.read_bytes()
    for order in (">", "<"):
        count = int(np.frombuffer(raw, f"{order}i4", 1)[0])
        if count * 4 + 4 == len(raw) and count % 13 == 0:
            return np.frombuffer(raw, f"{order}f4", count, 4).astype(np.float64).reshape(-1, 13)
    raise ValueError(f"{path}: not a cepstra file")


def dynamic_features(cepstra: NDArray[np.float64]) -> NDArray[np.float64]:
    """PocketSphinx's ``1s_c_d_dd`` with batch CMN: (frames, 3, 13) of c, delta, delta-delta.

    ``d[t] = c[t+2] - c[t-2]``, ``dd[t] = (c[t+3] - c[t-1]) - (c[t+1] - c[t-3])``; the first and
    last frames are repeated at the edges.
    """
    c = cepstra - cepstra.mean(0)
    n = len(c)
    p = np.concatenate([np.repeat(c[:1], 3, 0), c, np.repeat(c[-1:], 3, 0)])  # p[t + 3] = c[t]
    delta = p[5 : 5 + n] - p[1 : 1 + n]
    accel = (p[6 : 6 + n] - p[2 : 2 + n]) - (p[4 : 4 + n] - p[0:n])
    return np.stack([c, delta, accel], 1)


@dataclass
class Aligner:
    """A PocketSphinx decoder in alignment mode that also logs each utterance's cepstra."""

    model: Path
    phones: list[str]
    workdir: Path
    means: Path | None = None  # adapted means to align with (None: the model's own)
    _decoder: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import pocketsphinx

        self.workdir.mkdir(parents=True, exist_ok=True)
        words = str(self.model.parent / "cmudict-en-us.dict")
        config = pocketsphinx.Config(hmm=str(self.model), lm=None, loglevel="FATAL", dict=words)
        config["mfclogdir"] = str(self.workdir)
        if self.means is not None:
            config["mean"] = str(self.means)
        self._decoder = pocketsphinx.Decoder(config)

    def align(self, audio16: NDArray[np.int16], text: str) -> Aligned | None:
        """The state alignment of ``text`` on 16 kHz ``audio16``; None if it fails."""
        try:
            return self._align(audio16.tobytes(), text.lower())
        except RuntimeError:  # a word the dictionary lacks, or no path through the audio
            return None

    def _run(self, audio: bytes) -> None:
        for old in self.workdir.glob("*.mfc"):
            old.unlink()
        self._decoder.start_utt()
        self._decoder.process_raw(audio, full_utt=True)
        self._decoder.end_utt()

    def _align(self, audio: bytes, text: str) -> Aligned | None:
        self._decoder.set_align_text(text)  # word pass
        self._run(audio)
        if self._decoder.hyp() is None:
            return None
        self._decoder.set_alignment()  # state pass over the word alignment
        self._run(audio)
        alignment = self._decoder.get_alignment()
        logged = sorted(self.workdir.glob("*.mfc"))
        if alignment is None or not logged:
            return None
        cepstra = read_mfc(logged[-1])
        senones = np.full(len(cepstra), -1, dtype=np.int64)
        codebooks = np.full(len(cepstra), -1, dtype=np.int64)
        for word in alignment:
            for phone in word:
                for state in phone:
                    span = slice(state.start, state.start + state.duration)
                    senones[span] = int(state.name)
                    codebooks[span] = self.phones.index(phone.name)
        if len(cepstra) < 10:
            return None
        return Aligned(dynamic_features(cepstra), senones, codebooks)


# --- statistics and transforms -------------------------------------------------------------------


def accumulate(stats: Stats, model: Model, aligned: Aligned) -> None:
    """Add one utterance's per-Gaussian occupancy and feature sums to ``stats``."""
    keep = aligned.senones >= 0
    x, cb = aligned.features[keep], aligned.codebooks[keep]
    if not len(x):
        return
    diff = x[:, :, None, :] - model.means[cb]  # (frames, streams, densities, length)
    log_lik = (-0.5 * (diff * diff / model.variances[cb]).sum(-1) + model.log_norm[cb]
               + model.log_weights[:, :, aligned.senones[keep]].transpose(2, 0, 1))  # fmt: skip
    top = log_lik.max(-1, keepdims=True)
    post = np.exp(log_lik - top)
    total = post.sum(-1, keepdims=True)
    post /= total
    stats.log_likelihood += float((top + np.log(total)).sum())
    np.add.at(stats.occupancy, cb, post)
    np.add.at(stats.sums, cb, post[..., None] * x[:, :, None, :])
    np.add.at(stats.frames, cb, 1)


def class_members(phones: Sequence[str], classes: Sequence[Sequence[str]]) -> NDArray[np.int64]:
    """The class index of each codebook (first class naming its phone, else a ``*`` class)."""
    out = np.full(len(phones), -1, dtype=np.int64)
    for cb, phone in enumerate(phones):
        out[cb] = next((k for k, members in enumerate(classes)
                        if phone in members or "*" in members), -1)  # fmt: skip
    return out


def solve(stats: Stats, model: Model, codebooks: NDArray[np.bool_]) -> NDArray[np.float64]:
    """The MLLR mean transform of ``codebooks``: (streams, length, 1 + length) of [bias, A]."""
    occ, sums = stats.occupancy[codebooks], stats.sums[codebooks]
    inv_var = 1.0 / model.variances[codebooks]
    means = model.means[codebooks]
    xi = np.concatenate([np.ones((*means.shape[:-1], 1)), means], -1)  # (c, f, d, 1 + length)
    n_streams, length = means.shape[1], means.shape[3]
    out = np.zeros((n_streams, length, length + 1))
    for f in range(n_streams):
        x = xi[:, f].reshape(-1, length + 1)  # one row per Gaussian
        weight = (occ[:, f, :, None] * inv_var[:, f]).reshape(-1, length)
        k = (sums[:, f] * inv_var[:, f]).reshape(-1, length).T @ x  # (length, 1 + length)
        for i in range(length):
            g = (x * weight[:, i : i + 1]).T @ x + RIDGE * np.eye(length + 1)
            out[f, i] = np.linalg.solve(g, k[i])
    return out


def identity(n_streams: int, length: int) -> NDArray[np.float64]:
    """The transform that leaves means alone."""
    out = np.zeros((n_streams, length, length + 1))
    out[:, :, 1:] = np.eye(length)
    return out


def solve_classes(
    stats: Stats, model: Model, classes: Sequence[Sequence[str]] = CLASSES
) -> list[NDArray[np.float64]]:
    """One transform per class; a class with fewer than :data:`MIN_FRAMES` frames: identity."""
    member = class_members(model.phones, classes)
    out = []
    for k in range(len(classes)):
        codebooks = member == k
        if stats.frames[codebooks].sum() < MIN_FRAMES:
            out.append(identity(model.means.shape[1], model.means.shape[3]))
        else:
            out.append(solve(stats, model, codebooks))
    return out


def to_spec(
    transforms: Sequence[NDArray[np.float64]],
    classes: Sequence[Sequence[str]] = CLASSES,
    digits: int | None = 6,
) -> dict[str, Any]:
    """The JSON document :mod:`ivr.asr.adapt` reads (values rounded to ``digits``)."""
    def rounded(w: NDArray[np.float64]) -> list[Any]:
        return (np.round(w, digits) if digits is not None else w).tolist()  # type: ignore[no-any-return]

    return {"about": ABOUT,
            "classes": [{"phones": list(members), "streams": rounded(w)}
                        for members, w in zip(classes, transforms, strict=True)]}  # fmt: skip


# --- the estimation ------------------------------------------------------------------------------


def prepare(log: Any = print) -> list[tuple[str, NDArray[np.int16]]]:
    """(text, 16 kHz front-end output) of every corpus utterance."""
    out = []
    for text, voice, speed in corpus():
        out.append((text, front_end(synthesize(text, voice, speed))))
    log(f"corpus: {len(out)} utterances, {sum(a.size for _, a in out) / 16000:.0f} s")
    return out


def estimate(iterations: int = 2, log: Any = print) -> dict[str, Any]:
    """Run the whole estimation (see module doc); returns the JSON document (unrounded)."""
    path = model_dir()
    model = load_model(path)
    utterances = prepare(log)
    spec: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="mllr-") as tmp:
        work = Path(tmp)
        for it in range(iterations):
            started = time.monotonic()
            means = None
            if spec is not None:  # align with the means the previous pass adapted
                means = work / f"iteration{it}.means"
                adapted = transform_means(model.means.astype(np.float32), model.phones, spec)
                means.write_bytes(gauden_bytes(adapted))
            aligner = Aligner(path, model.phones, work / f"mfc{it}", means)
            stats = Stats.empty(model)
            for text, audio in utterances:
                aligned = aligner.align(audio, text)
                if aligned is None:
                    stats.failed += 1
                    continue
                accumulate(stats, model, aligned)
            spec = to_spec(solve_classes(stats, model), digits=None)
            frames = int(stats.frames.sum())
            log(f"iteration {it + 1}: {frames} frames, log-likelihood/frame "
                f"{stats.log_likelihood / max(frames, 1):.2f}, {stats.failed} failed, "
                f"{time.monotonic() - started:.0f} s")  # fmt: skip
    assert spec is not None
    return spec


def difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Max and mean absolute difference of two documents' transform entries (same classes)."""
    pairs = zip(a["classes"], b["classes"], strict=True)
    diffs = [np.abs(np.asarray(x["streams"]) - np.asarray(y["streams"])).ravel()
             for x, y in pairs]  # fmt: skip
    every = np.concatenate(diffs)
    return float(every.max()), float(every.mean())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"JSON to write (default {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--iterations", type=int, default=2, help="EM iterations (default 2)")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    started = time.monotonic()
    spec = to_spec([np.asarray(c["streams"]) for c in estimate(args.iterations)["classes"]])
    model = load_model(model_dir())
    transform_means(model.means.astype(np.float32), model.phones, spec)  # what adapt will do
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(spec, separators=(",", ":")))
    print(f"wrote {args.out} in {time.monotonic() - started:.0f} s")
    if args.out.resolve() != TRANSFORMS.resolve() and TRANSFORMS.is_file():
        worst, mean = difference(spec, json.loads(TRANSFORMS.read_text()))
        print(f"against {TRANSFORMS.relative_to(ROOT)}: max |diff| {worst:.4f}, mean {mean:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
