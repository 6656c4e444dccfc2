"""The voices of the multi-voice ASR evaluation, split into tuning and held-out, and their speech.

Every voice is on the machine after ``make`` (Debian packages; nothing is downloaded):

* espeak-ng variants (``espeak-ng``), read with its command line (identical audio every time);
* Festival voices (``festival`` with ``festvox-kallpc16k``, ``festvox-kdlpc16k`` and
  ``festvox-us-slt-hts``), through ``text2wave``;
* flite's built-in voices (``flite``);
* the recorded Asterisk speaker, Allison (``asterisk-core-sounds-en-wav``): only what she
  recorded (digits, months, days, the NATO alphabet, a few words), see :data:`ALLISON`.

**Split.** A *speaker* is a person (or a synthesizer's voice) behind one or more voices: Festival's
and flite's ``slt`` are the same recorded woman, Festival's ``kal`` and flite's ``kal16`` the
same man. Splitting by speaker keeps one person from sitting on both sides. *Tuning* voices may
be looked at to choose any threshold or parameter of the recognizer (the recognizer was already
tuned on the espeak-ng voices and Allison's digits, so those can only be tuning); *held-out*
voices must never be: their figures are the ones that say how the recognizer does on voices it
was not fitted to.

Synthesized speech is cached under ``var/`` (8 kHz mono WAV, one file per voice and text, named
by a hash of both), so a rebuild synthesizes only what is new.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr.media.wav import load_8k_mono, write_wav  # noqa: E402

Engine = Literal["espeak", "festival", "flite", "asterisk"]
Split = Literal["tuning", "heldout"]
SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")  # asterisk-core-sounds-en-wav
SYNTH_TIMEOUT = 60.0  # seconds; a synthesizer that hangs must not hang the build
PACKAGES = {"espeak": "espeak-ng", "festival": "festival + festvox-kallpc16k, festvox-kdlpc16k, "
            "festvox-us-slt-hts", "flite": "flite", "asterisk": "asterisk-core-sounds-en-wav"}


@dataclass(frozen=True)
class Voice:
    """One voice: how to make it speak, who it is, and which side of the split it is on."""

    id: str  # unique, used in item ids and manifests' ``source``
    engine: Engine
    name: str  # the engine's name for it (espeak-ng -v, festival voice_<name>, flite -voice)
    speaker: str  # the person or synthetic speaker behind it (two engines may share one)
    split: Split
    wpm: int = 0  # espeak-ng speed, words a minute
    group: str = ""  # the results' voice group (filled from the engine when empty)

    @property
    def family(self) -> str:
        """The results table's voice group: espeak-ng, Festival, flite or recorded."""
        return self.group or {"espeak": "espeak-ng", "festival": "Festival", "flite": "flite",
                              "asterisk": "recorded"}[self.engine]


VOICES: tuple[Voice, ...] = (
    # Tuning: the recognizer's floors, variants and end-of-speech rules were chosen on these
    # espeak-ng voices and on Allison (docs/ASR.md), so they cannot be held out.
    Voice("espeak-en-us", "espeak", "en-us", "espeak-en-us", "tuning", 175),
    Voice("espeak-en-gb", "espeak", "en-gb", "espeak-en-gb", "tuning", 160),
    Voice("espeak-en-gb-scotland", "espeak", "en-gb-scotland", "espeak-en-gb-scotland",
          "tuning", 175),
    Voice("espeak-en-029", "espeak", "en-029", "espeak-en-029", "tuning", 150),
    Voice("espeak-en-us+m3", "espeak", "en-us+m3", "espeak-en-us+m3", "tuning", 190),
    Voice("espeak-en-gb+f2", "espeak", "en-gb+f2", "espeak-en-gb+f2", "tuning", 160),
    Voice("festival-kal", "festival", "kal_diphone", "kal", "tuning"),
    Voice("flite-kal16", "flite", "kal16", "kal", "tuning"),
    Voice("flite-awb", "flite", "awb", "awb", "tuning"),
    Voice("asterisk-allison", "asterisk", "en_US_f_Allison", "allison", "tuning"),
    # Held out: never used to choose a threshold or parameter. The espeak-ng base voice
    # en-us-nyc is in no tuning set and not among the voices ivr/asr/telephone_mllr.json was
    # estimated on (bench/asr/estimate_mllr.py).
    Voice("espeak-en-us-nyc+f4", "espeak", "en-us-nyc+f4", "espeak-en-us-nyc+f4", "heldout", 150),
    Voice("espeak-en-us-nyc+m7", "espeak", "en-us-nyc+m7", "espeak-en-us-nyc+m7", "heldout", 185),
    Voice("festival-ked", "festival", "ked_diphone", "ked", "heldout"),
    Voice("festival-slt-hts", "festival", "cmu_us_slt_arctic_hts", "slt", "heldout"),
    Voice("flite-slt", "flite", "slt", "slt", "heldout"),
    Voice("flite-rms", "flite", "rms", "rms", "heldout"),
)

# What Allison recorded, by the text said (prompt names under SOUNDS, without ".wav").
def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


NATO = _words("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
             "november oscar papa quebec romeo sierra tango uniform victor whiskey x-ray yankee "
             "zulu")
MONTHS = _words("january february march april may june july august september october "
               "november december")
DAYS = _words("sunday monday tuesday wednesday thursday friday saturday")  # as recorded
DIGITS = _words("zero one two three four five six seven eight nine")
ALLISON: dict[str, str] = {
    **{w: f"digits/{i}" for i, w in enumerate(DIGITS)},
    **{w: f"phonetic/{chr(ord('a') + i)}_p" for i, w in enumerate(NATO)},
    **{w: f"digits/mon-{i}" for i, w in enumerate(MONTHS)},
    **{w: f"digits/day-{i}" for i, w in enumerate(DAYS)},
    "oh": "digits/oh", "today": "digits/today", "tomorrow": "digits/tomorrow",
    "yesterday": "digits/yesterday",
    "no": "vm-no", "hours": "hours", "location": "location", "extension": "extension",
    "transfer": "transfer", "goodbye": "goodbye", "dot": "letters/dot", "dash": "letters/dash",
    "space": "letters/space", "at": "letters/at",
    # Out of every grammar of the set (single words and whole prompts).
    "hello": "hello", "sorry": "sorry", "invalid": "invalid",
    "something is terribly wrong": "something-terribly-wrong",
    "please try again": "please-try-again",
    "all circuits are busy now": "all-circuits-busy-now",
}
# Allison's babble (she is never her own babble): long prompts that are never test items.
ALLISON_BABBLE = ("demo-congrats", "demo-echotest", "demo-instruct", "demo-moreinfo",
                  "vm-options", "vm-msginstruct", "queue-periodic-announce", "dir-intro")


def by_id(voice_id: str, voices: tuple[Voice, ...] = VOICES) -> Voice:
    """The voice called ``voice_id``."""
    for voice in voices:
        if voice.id == voice_id:
            return voice
    raise KeyError(f"no voice {voice_id!r}")


def can_say(voice: Voice, text: str) -> bool:
    """Whether ``voice`` can say ``text`` (synthesizers say anything; Allison what she recorded)."""
    return voice.engine != "asterisk" or text in ALLISON


def speech(voice: Voice, text: str, cache: Path, sounds: Path = SOUNDS) -> NDArray:
    """``text`` said by ``voice`` as 8 kHz mono int16 (cached under ``cache`` when synthesized).

    Raises:
        FileNotFoundError: the program or recording is missing (the message names its package).
        KeyError: Allison never recorded ``text``.
    """
    if voice.engine == "asterisk":
        path = sounds / f"{ALLISON[text]}.wav"
        if not path.is_file():
            raise FileNotFoundError(f"{path} (install {PACKAGES['asterisk']}: make)")
        return load_8k_mono(path)
    version = engine_version(voice.engine)
    key = hashlib.sha256(f"{voice.engine}\0{version}\0{voice.name}\0{voice.wpm}\0{text}"
                         .encode()).hexdigest()
    cached = cache / voice.engine / f"{key[:24]}.wav"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_wav(cached, _synthesize(voice, text))
    return load_8k_mono(cached)


@functools.lru_cache(maxsize=8)
def engine_version(engine: Engine) -> str:
    """The installed versions of the engine's Debian packages (part of the cache key: an
    upgraded synthesizer may speak differently)."""
    packages = {"espeak": ["espeak-ng"], "flite": ["flite"],
                "festival": ["festival", "festvox-kallpc16k", "festvox-kdlpc16k",
                             "festvox-us-slt-hts"]}.get(engine)
    if not packages:
        return ""
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f", "${Version} ", *packages],
                              capture_output=True, text=True, check=False, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def prompt(name: str, sounds: Path = SOUNDS) -> NDArray:
    """An Asterisk prompt by name (Allison's babble)."""
    path = sounds / f"{name}.wav"
    if not path.is_file():
        raise FileNotFoundError(f"{path} (install {PACKAGES['asterisk']}: make)")
    return load_8k_mono(path)


def _synthesize(voice: Voice, text: str) -> NDArray:
    with tempfile.TemporaryDirectory(prefix="asr-voice-") as tmp:
        out = Path(tmp) / "say.wav"
        if voice.engine == "espeak":
            cmd = ["espeak-ng", "-v", voice.name, "-s", str(voice.wpm), "-w", str(out), text]
            stdin = None
        elif voice.engine == "festival":
            cmd = ["text2wave", "-eval", f"(voice_{voice.name})", "-o", str(out)]
            stdin = text.encode()
        else:
            cmd = ["flite", "-voice", voice.name, "-t", text, "-o", str(out)]
            stdin = None
        try:
            done = subprocess.run(cmd, input=stdin, capture_output=True, check=False,
                                  timeout=SYNTH_TIMEOUT)
        except FileNotFoundError:
            raise FileNotFoundError(f"{cmd[0]} is missing (install {PACKAGES[voice.engine]}: "
                                    "make bench-asr)") from None
        if done.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            # Festival says nothing and exits 0 when the voice is not installed.
            raise FileNotFoundError(f"{voice.id} could not say {text!r} (exit "
                                    f"{done.returncode}: {done.stderr.decode()[-200:]!r}; "
                                    f"install {PACKAGES[voice.engine]}: make bench-asr)")
        return load_8k_mono(out)
