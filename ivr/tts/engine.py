"""Speech synthesis: pyttsx3 driving espeak-ng, rendered to 8 kHz 16-bit mono WAV files.

Facts about pyttsx3 2.99 with espeak-ng this module is built around (measured here):

* espeak-ng always renders at 22,050 Hz; we resample to 8 kHz (:func:`ivr.media.wav.resample`).
* ``runAndWait()`` returns before the file exists: espeak-ng synthesizes on a thread of its own
  and pyttsx3 writes the WAV from that thread's callback. We render to a fresh temporary name and
  wait until the file is complete (its size is stable and the RIFF header's data length reaches
  the end of the file), with a timeout.
* ``runAndWait()`` cancels whatever espeak-ng is still doing when it starts, and the
  cancellation then also hits the new text: an empty file (seen here, 3 to 10 times in the
  bank flow's 68 prompts, before the waits below). espeak-ng is busy after a render until the
  callback has finished (it goes on after writing the file), and after a rate change (a command
  on its queue). So a render waits for the driver and espeak-ng to be idle after the file, and
  for espeak-ng to be idle after setting the voice and rate.
* espeak-ng can be initialised once per process only, and pyttsx3's driver keeps per-utterance
  state (file name, sample buffer) that a second render started before the first finished would
  overwrite. So there is one engine per process, owned by one worker thread, and renders run
  one at a time on it. :meth:`Synthesizer.render` blocks; call it through ``asyncio.to_thread``
  from an event loop.
* pyttsx3's driver prints ``Audio saved to ...`` on stdout after every file; that line goes to
  the debug log instead (stdout belongs to the CLI).
* A process that forks after the engine started cannot use it in the child (espeak-ng's thread
  is not copied): render in the parent, or start the engine in the child only.

Voices: English is espeak-ng's ``en-us``; Mandarin is ``cmn-latn-pinyin``, which reads pinyin
with tone numbers correctly (the ``cmn`` voice reads Chinese characters but speaks the tone
numbers as English words, "cha two"). A Mandarin prompt, and the Chinese part of a prompt in
any other language, goes through :mod:`ivr.tts.mandarin` first: Chinese runs become pinyin for
the pinyin voice, Latin runs ("ATM", "For English, press 1.") go to the Latin voice (English
for a Mandarin prompt, the prompt's own voice otherwise). Each segment is rendered on its own
and the pieces are joined with a short pause into one file.
"""

from __future__ import annotations

import atexit
import ctypes
import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from ivr.media.wav import TARGET_RATE, WavError, read_wav, resample, to_int16, write_wav
from ivr.tts import mandarin
from ivr.tts.mandarin import Segment
from ivr.tts.wavfile import is_complete_wav, join_with_pauses

log = logging.getLogger(__name__)

ESPEAK_LIBRARY = "libespeak-ng.so.1"
ESPEAK_FIX = "espeak-ng is not installed: apt-get install espeak-ng"
DEFAULT_VOICES: Mapping[str, str] = {"en": "en-us", "zh": mandarin.PINYIN_VOICE}
DEFAULT_RATE = 160  # words per minute; espeak's 175 (pyttsx3 sets 200) is brisk for a phone line
ESPEAK_RATE = 22050  # what espeak-ng renders at, whatever the voice
PIPELINE_VERSION = 3  # bump when the conversion changes: every cached prompt renders again
PYPINYIN_FIX = "pypinyin is not installed: pip install pypinyin (or make)"
# Languages whose own writing uses Chinese characters: not read as Mandarin.
_HAN_NATIVE = frozenset({"ja", "ko", "yue"})
_POLL = 0.01

T = TypeVar("T")


class TTSError(RuntimeError):
    """A prompt could not be rendered; the message says why."""


class TTSUnavailable(TTSError):
    """The synthesizer cannot run here (espeak-ng or pyttsx3 missing); the message has the fix."""


def espeak_version(library: str = ESPEAK_LIBRARY) -> str | None:
    """espeak-ng's version (``1.51``), or None when its library cannot be loaded.

    ``espeak_Info`` only returns a static string, so this is safe before initialisation and
    does not start the engine.
    """
    try:
        lib = ctypes.CDLL(library)
    except OSError:
        return None
    info = lib.espeak_Info
    info.restype = ctypes.c_char_p
    info.argtypes = [ctypes.c_void_p]
    raw = info(None)
    return raw.decode("utf-8", "replace").split()[0] if raw else "unknown"


def pyttsx3_version() -> str | None:
    """The installed pyttsx3 version, or None when it is not installed."""
    try:
        return metadata.version("pyttsx3")
    except metadata.PackageNotFoundError:
        return None


def base_language(language: str) -> str:
    """``zh-CN`` -> ``zh``, ``en_GB`` -> ``en``."""
    return language.replace("_", "-").split("-")[0].lower()


class Synthesizer:
    """Renders text in a language to an 8 kHz, 16-bit, mono WAV file.

    Every instance shares the process's one engine; instances differ only in settings (voices,
    rate). Thread-safe: renders from any thread are serialised on the engine's thread.

    Args:
        voices: language -> espeak-ng voice name; languages not listed use their own code as
            the voice name (espeak-ng knows ``fr``, ``de``, ...).
        rate: speaking rate in words per minute.
        timeout: seconds to wait for one file, on top of an allowance per character of text.
        library: the espeak-ng shared library checked before starting (tests name a missing
            one to see the error).
    """

    def __init__(
        self,
        voices: Mapping[str, str] | None = None,
        rate: int = DEFAULT_RATE,
        timeout: float = 15.0,
        library: str = ESPEAK_LIBRARY,
    ) -> None:
        self.voices = dict(DEFAULT_VOICES if voices is None else voices)
        self.rate = rate
        self.timeout = timeout
        self.library = library
        self._version: str | None = None

    def voice_for(self, language: str) -> str:
        """The espeak-ng voice that speaks ``language``."""
        base = base_language(language)
        return self.voices.get(language) or self.voices.get(base) or base

    @property
    def version(self) -> str:
        """Everything besides text and voice that changes the audio; part of the cache key."""
        if self._version is None:
            self._version = (
                f"pyttsx3-{pyttsx3_version() or 'missing'}"
                f"/espeak-ng-{espeak_version(self.library) or 'missing'}"
                f"/rate-{self.rate}/{TARGET_RATE}Hz-pcm16-mono/v{PIPELINE_VERSION}"
                f"/zh-frontend-{mandarin.FRONTEND_VERSION}"
            )
        return self._version

    def available(self) -> bool:
        """True when espeak-ng and pyttsx3 are installed (the engine is not started)."""
        return espeak_version(self.library) is not None and pyttsx3_version() is not None

    def render(self, text: str, language: str, path: str | Path) -> Path:
        """Speak ``text`` in ``language`` into ``path`` (8 kHz, 16-bit, mono); blocking.

        The file appears atomically: a reader sees the old file or the whole new one.

        Raises:
            TTSUnavailable: espeak-ng or pyttsx3 is missing or could not start.
            TTSError: nothing to say, an unknown voice, or no complete file within the timeout.
        """
        samples = self.render_samples(text, language)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_wav(target, samples)
        return target

    def render_samples(self, text: str, language: str) -> NDArray[np.int16]:
        """Speak ``text`` in ``language``; the 8 kHz 16-bit samples; blocking."""
        if not text.strip():
            raise TTSError("nothing to say: the prompt text is empty")
        if espeak_version(self.library) is None:
            raise TTSUnavailable(ESPEAK_FIX)
        if pyttsx3_version() is None:
            raise TTSUnavailable("pyttsx3 is not installed: pip install pyttsx3==2.99 (or make)")
        parts = self.segments(text, language)
        if not parts:
            raise TTSError(f"nothing to say: the prompt text has no words ({text[:40]!r})")
        raw = [self._speak(part) for part in parts]
        # Joining and resampling run here, on the caller's thread, so the engine can start the
        # next text.
        pauses = [part.pause_after for part in parts[:-1]]
        return to_int16(resample(join_with_pauses(raw, pauses, ESPEAK_RATE), ESPEAK_RATE,
                                 TARGET_RATE))

    def segments(self, text: str, language: str) -> list[Segment]:
        """What espeak-ng is given for ``text`` in ``language``: (voice, text) pieces.

        A Mandarin prompt, or one with Chinese characters in a language that does not write
        with them, goes through the Mandarin front-end (:mod:`ivr.tts.mandarin`).

        Raises:
            TTSUnavailable: the text needs pypinyin and it is not installed.
        """
        if not self._uses_mandarin(text, language):
            return [Segment(self.voice_for(language), text)]
        pinyin_voice, latin_voice, zh = self._mandarin_voices(language)
        try:
            return mandarin.segments(text, pinyin_voice, latin_voice, chinese_default=zh)
        except ImportError:
            raise TTSUnavailable(PYPINYIN_FIX) from None

    def voice_label(self, text: str, language: str) -> str:
        """The voices that speak ``text`` in ``language``, ``+``-joined; part of the cache key.

        Cheap: the text is split by script, not converted (``cmn-latn-pinyin+en-us``).
        """
        if not self._uses_mandarin(text, language):
            return self.voice_for(language)
        pinyin_voice, latin_voice, zh = self._mandarin_voices(language)
        runs = mandarin.split_scripts(text, chinese_default=zh)
        voices = dict.fromkeys(pinyin_voice if run.chinese else latin_voice for run in runs)
        return "+".join(voices) or self.voice_for(language)

    def _mandarin_voices(self, language: str) -> tuple[str, str, bool]:
        """(pinyin voice, Latin-script voice, is the prompt Mandarin) for ``language``."""
        zh = base_language(language) in ("zh", "cmn")
        pinyin_voice = self.voice_for(language if base_language(language) == "zh" else "zh")
        return pinyin_voice, self.voice_for("en" if zh else language), zh

    def _uses_mandarin(self, text: str, language: str) -> bool:
        base = base_language(language)
        return base in ("zh", "cmn") or (base not in _HAN_NATIVE and mandarin.has_han(text))

    def _speak(self, segment: Segment) -> NDArray[np.float64]:
        timeout = self.timeout + 0.05 * len(segment.text)
        return _host().call(
            lambda host: host.synthesize(segment.text, segment.voice, self.rate, timeout)
        )


class _Host:
    """The process's pyttsx3 engine and the single thread that uses it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-tts")
        self.engine: Any = None
        self.errors: list[BaseException] = []
        self.tmpdir = Path(tempfile.mkdtemp(prefix="ivr-tts-"))
        self.counter = itertools.count(1)
        atexit.register(shutil.rmtree, self.tmpdir, ignore_errors=True)

    def call(self, fn: Callable[[_Host], T]) -> T:
        """Run ``fn(self)`` on the engine's thread and wait for its result."""
        return self.executor.submit(fn, self).result()

    def synthesize(self, text: str, voice: str, rate: int, timeout: float) -> NDArray[np.float64]:
        """Render on the engine's thread: 22,050 Hz samples, floats in -1..1.

        An empty result (espeak-ng cancelled the text, see the module doc) is tried once more.
        """
        samples = self._synthesize_once(text, voice, rate, timeout)
        if samples.size == 0:
            log.warning("espeak-ng returned no audio for %r; rendering it again", text[:40])
            samples = self._synthesize_once(text, voice, rate, timeout)
        if samples.size == 0:
            raise TTSError("espeak-ng produced no audio")
        return samples

    def _synthesize_once(
        self, text: str, voice: str, rate: int, timeout: float
    ) -> NDArray[np.float64]:
        engine = self.start()
        from pyttsx3.drivers.espeak import EspeakDriver

        deadline = time.monotonic() + timeout
        self.wait_idle(deadline, driver=False)  # pyttsx3 reports busy until the first render
        # Set directly on the driver: pyttsx3's engine.setProperty is queued and silently
        # drops errors (an unknown voice would render in the previous voice).
        try:
            EspeakDriver.setProperty("voice", voice)
            EspeakDriver.setProperty("rate", rate)
        except ValueError as exc:
            hint = " (Mandarin needs espeak-ng 1.50 or later)" if "pinyin" in voice else ""
            raise TTSError(f"espeak-ng has no voice {voice!r}{hint}: {exc}") from None
        # Setting the rate is a command on espeak-ng's queue: while it runs espeak-ng counts as
        # playing, and runAndWait() would cancel it and with it the text (an empty file).
        self.wait_idle(deadline, driver=False)
        path = self.tmpdir / f"{next(self.counter)}.wav"  # fresh name: no stale file to mistake
        self.errors.clear()
        engine.save_to_file(text, str(path))
        engine.runAndWait()
        if self.errors:
            raise TTSError(f"espeak-ng failed: {self.errors[0]}")
        try:
            self.wait_for(path, deadline)
            self.wait_idle(deadline)
            samples = _read_espeak(path)
        finally:
            path.unlink(missing_ok=True)
        return samples

    def wait_for(self, path: Path, deadline: float) -> None:
        """Return once ``path`` is a complete WAV whose size has stopped changing."""
        last_size = -1
        while True:
            size = path.stat().st_size if path.exists() else -1
            if size > 0 and size == last_size and is_complete_wav(path):
                return
            last_size = size
            self._check(deadline, "finish a file")
            time.sleep(_POLL)

    def wait_idle(self, deadline: float, driver: bool = True) -> None:
        """Return once espeak-ng (and with ``driver``, pyttsx3's driver) has finished with the
        last utterance (see the module doc)."""
        from pyttsx3.drivers import _espeak

        while (driver and self.engine.isBusy()) or _espeak.IsPlaying():
            self._check(deadline, "go idle")
            time.sleep(_POLL)

    def _check(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            self.engine.stop()  # cancel, so a late callback cannot write into the next file
            raise TTSError(f"espeak-ng did not {what} in time")

    def start(self) -> Any:
        """The pyttsx3 engine, started on first use."""
        if self.engine is not None:
            return self.engine
        try:
            import pyttsx3
            import pyttsx3.drivers.espeak as espeak_driver

            engine = pyttsx3.init("espeak")
        except ImportError as exc:
            raise TTSUnavailable(f"pyttsx3 cannot load espeak-ng ({exc}); {ESPEAK_FIX}") from None
        except Exception as exc:  # pyttsx3 raises RuntimeError, OSError, ... when espeak fails
            raise TTSUnavailable(
                f"pyttsx3 could not start espeak-ng ({exc}); {ESPEAK_FIX}"
            ) from None
        # The driver module looks `print` up in its globals: this sends its per-file chatter
        # to the debug log without touching sys.stdout, which other threads are using.
        espeak_driver.print = _driver_print
        engine.connect("error", self._on_error)
        self.engine = engine
        log.debug("espeak-ng started through pyttsx3 in process %d", self.pid)
        return engine

    def _on_error(self, name: Any = None, exception: BaseException | None = None, **_: Any) -> None:
        self.errors.append(exception or TTSError("unknown pyttsx3 error"))


def _driver_print(*args: Any, **_: Any) -> None:
    log.debug("pyttsx3: %s", " ".join(str(a) for a in args))


def _read_espeak(path: Path) -> NDArray[np.float64]:
    """The samples of espeak-ng's file (22,050 Hz, 16-bit, mono) as floats in -1..1."""
    try:
        samples, fmt = read_wav(path)
    except WavError as exc:
        raise TTSError(f"unreadable espeak-ng output: {exc}") from None
    if (fmt.rate, fmt.channels, fmt.bits, fmt.is_float) != (ESPEAK_RATE, 1, 16, False):
        raise TTSError(
            f"unexpected espeak-ng output: {fmt.rate} Hz, {fmt.channels} channel(s), "
            f"{fmt.bits} bits{' float' if fmt.is_float else ''}"
        )
    return samples[:, 0]


_HOST: _Host | None = None
_HOST_LOCK = threading.Lock()


def _host() -> _Host:
    """The process's engine host, created on first use."""
    global _HOST
    with _HOST_LOCK:
        if _HOST is not None and _HOST.pid != os.getpid():
            if _HOST.engine is not None:
                raise TTSError(
                    "the speech engine was started before this process forked and cannot be "
                    "used here: start rendering in the child process only"
                )
            _HOST = None  # forked before the engine started: this process gets its own
        if _HOST is None:
            _HOST = _Host()
        return _HOST


__all__ = [
    "DEFAULT_RATE",
    "DEFAULT_VOICES",
    "ESPEAK_FIX",
    "PIPELINE_VERSION",
    "PYPINYIN_FIX",
    "Synthesizer",
    "TTSError",
    "TTSUnavailable",
    "base_language",
    "espeak_version",
    "pyttsx3_version",
]
