"""The prompt cache: where the audio for a prompt comes from, and rendering it once.

Layout under the prompts folder (``prompts_dir`` of ivr.yaml)::

    prompts/<lang>/<id>.wav    a recording for one language (wins)
    prompts/<id>.wav           a recording for every language
    prompts/cache/<key>.wav    synthesized text; <key>.json beside it says what it is
    prompts/cache/rec-<key>.wav  a recording converted to 8 kHz 16-bit mono on first use

The key of a synthesized prompt is the sha256 of its text, language, voice(s) and the
synthesizer's version (pyttsx3, espeak-ng, rate, output format, pipeline and Mandarin front-end
versions): an unchanged prompt is never rendered again, and a changed text, voice or engine
renders anew. A prompt mixing Chinese and Latin script names both voices
(``cmn-latn-pinyin+en-us``). Recordings are looked up by
prompt id (or the prompt's ``audio:`` id); one that is not already 8 kHz 16-bit mono is
converted once, keyed by its path, size and modification time.

Everything here blocks (file reads, resampling, synthesis): call it through
``asyncio.to_thread`` from an event loop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from ivr.tts.engine import PIPELINE_VERSION, Synthesizer
from ivr.tts.wavfile import PromptAudioError, convert_to_telephone, recording_format

log = logging.getLogger(__name__)

CACHE_DIR = "cache"


class PromptCache:
    """Prompt audio under one prompts folder.

    Args:
        prompts_dir: the prompts folder (recordings, and ``cache/`` for rendered audio).
        synthesizer: renders text; the default is a :class:`Synthesizer` with default voices.
    """

    def __init__(self, prompts_dir: str | Path, synthesizer: Synthesizer | None = None) -> None:
        self.prompts_dir = Path(prompts_dir)
        self.cache_dir = self.prompts_dir / CACHE_DIR
        self.synthesizer = synthesizer or Synthesizer()

    # --- synthesized text ----------------------------------------------------------------

    def key(self, text: str, language: str) -> str:
        """The cache key of ``text`` spoken in ``language`` by this synthesizer."""
        voice = self.synthesizer.voice_label(text, language)
        identity = [text, language, voice, self.synthesizer.version]
        return hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode()).hexdigest()

    def synthesized_path(self, text: str, language: str) -> Path:
        """Where the rendering of ``text`` in ``language`` lives (whether or not it exists)."""
        return self.cache_dir / f"{self.key(text, language)}.wav"

    def cached(self, text: str, language: str) -> Path | None:
        """The rendering of ``text`` in ``language`` if it was made already."""
        if not text.strip():
            return None
        path = self.synthesized_path(text, language)
        return path if path.is_file() else None

    def synthesize(self, text: str, language: str, force: bool = False) -> tuple[Path, bool]:
        """The rendering of ``text`` in ``language``, made now unless it is cached.

        Args:
            text: the final text (variables filled in).
            language: the language to speak it in.
            force: render again even when a cached file exists.

        Returns:
            The 8 kHz file and whether it was rendered by this call.

        Raises:
            TTSUnavailable: the synthesizer cannot run here.
            TTSError: the text could not be rendered.
        """
        path = self.synthesized_path(text, language)
        if path.is_file() and not force:
            return path, False
        self.synthesizer.render(text, language, path)
        self._describe(path, text, language)
        return path, True

    def render_dynamic(self, text: str, language: str) -> Path:
        """Call-time rendering of a prompt whose text was filled in for this call.

        Cached by text like every other prompt, so a value heard before (a common amount, the
        same account's digits) is not rendered twice.
        """
        return self.synthesize(text, language)[0]

    def _describe(self, path: Path, text: str, language: str) -> None:
        """The sidecar ``<key>.json``: what a cached file says, for people and for pruning."""
        meta = {
            "text": text,
            "language": language,
            "voice": self.synthesizer.voice_label(text, language),
            "synthesizer": self.synthesizer.version,
        }
        tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path.with_suffix(".json"))

    # --- recordings ------------------------------------------------------------------------

    def recording(self, prompt_id: str, language: str) -> Path | None:
        """The recorded WAV for ``prompt_id``: ``<lang>/<id>.wav``, else ``<id>.wav``, else None."""
        if not _safe_id(prompt_id):
            return None
        for path in (self.prompts_dir / language / f"{prompt_id}.wav",
                     self.prompts_dir / f"{prompt_id}.wav"):
            if path.is_file():
                return path
        return None

    def playable(self, recording: Path) -> Path:
        """``recording`` itself when it is 8 kHz 16-bit mono, else its converted copy.

        Raises:
            PromptAudioError: the file is not a WAV that can be converted.
        """
        if recording_format(recording).is_telephone:
            return recording
        stat = recording.stat()
        identity = f"{recording.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{PIPELINE_VERSION}"
        target = self.cache_dir / f"rec-{hashlib.sha256(identity.encode()).hexdigest()}.wav"
        if not target.is_file():
            convert_to_telephone(recording, target)
            log.info("converted %s to 8 kHz: %s", recording, target.name)
        return target

    def find_recording(self, ids: list[str], language: str) -> Path | None:
        """The first recording of ``ids`` for ``language`` (its 8 kHz path), or None.

        Raises:
            PromptAudioError: the recording found cannot be converted.
        """
        for prompt_id in ids:
            found = self.recording(prompt_id, language)
            if found is not None:
                return self.playable(found)
        return None

    # --- the call-time question ------------------------------------------------------------

    def lookup(
        self, prompt_id: str, language: str, text: str, audio: str | None = None
    ) -> Path | None:
        """The 8 kHz file to play for a prompt, or None when it must be synthesized first.

        A recording wins: by ``audio`` id when the prompt has one, then by ``prompt_id``; then the
        cached rendering of ``text``. A recording that cannot be read is logged and skipped (a
        prompt must never fail a call); ``ivr prompts build`` reports it as an error.

        Args:
            prompt_id: the prompt's id (``RenderedPrompt.id``).
            language: the call's language.
            text: the final text (``RenderedPrompt.text``).
            audio: the recorded prompt id (``RenderedPrompt.audio``), if any.
        """
        ids = [i for i in (audio, prompt_id) if i]
        try:
            found = self.find_recording(ids, language)
        except PromptAudioError as exc:
            log.warning("recorded prompt skipped: %s", exc)
            found = None
        return found or self.cached(text, language)


def _safe_id(prompt_id: str) -> bool:
    """A prompt id usable as a file name (no folders, no hidden files)."""
    return bool(prompt_id) and not prompt_id.startswith(".") and not any(
        sep in prompt_id for sep in ("/", "\\", "\0")
    )


__all__ = ["CACHE_DIR", "PromptCache"]
