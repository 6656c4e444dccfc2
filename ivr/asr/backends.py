"""Choosing a recognition backend by name: ``pocketsphinx``, ``vosk`` or ``auto``.

``auto`` takes Vosk for a language whose model directory exists under the models folder
(``asr_models/<lang>/``) and PocketSphinx (whose wheel carries an English model) otherwise.
Backends are imported lazily: a machine without one still runs the other.
"""

from __future__ import annotations

from pathlib import Path

from ivr.asr.base import AsrError, Backend

DEFAULT_MODELS_DIR = Path("asr_models")
BACKEND_NAMES = ("auto", "pocketsphinx", "vosk")


def get_backend(name: str, language: str = "en", models_dir: Path = DEFAULT_MODELS_DIR) -> Backend:
    """The backend called ``name`` (``auto``: by what is installed for ``language``)."""
    if name == "auto":
        name = "vosk" if (models_dir / language).is_dir() else "pocketsphinx"
    if name == "pocketsphinx":
        from ivr.asr.sphinx import SphinxBackend

        return SphinxBackend()
    if name == "vosk":
        from ivr.asr.vosk import VoskBackend

        return VoskBackend(models_dir)
    raise AsrError(f"unknown ASR backend {name!r} (choose from {', '.join(BACKEND_NAMES)})")
