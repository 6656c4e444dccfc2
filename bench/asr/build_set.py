"""Build the labelled speech set that ``ivr asr eval`` and bench/asr/run.py measure.

Sources (all on the machine after ``make``; nothing is downloaded):

* recorded speech: the Asterisk core prompts (Debian ``asterisk-core-sounds-en-wav``, one
  professional female voice, 8 kHz): the digits ``digits/0..9``, 4- and 8-digit strings joined
  from them with 80-250 ms pauses, command-like words (``hours``, ``extension``, ``transfer``,
  ...) against a menu of those words, ``vm-no`` ("no") against ``@yes_no``, and whole prompts
  ("one moment, please") as out-of-grammar speech;
* synthetic speech: espeak-ng (its command line, which renders the same bytes every time; the
  pyttsx3 path of ivr.tts does not) in several accents, variants and speeds (VOICES x SPEEDS):
  the phrases of the bank flow's main menu and global commands (read from
  flows/bank-main.yaml:main_menu, so the set follows the flow), digits, digit strings, yes/no,
  out-of-grammar sentences, and Korean menu phrases for the Vosk backend (``ko.jsonl``).

Every utterance is trimmed to its speech, set to a level between -26 and -16 dBFS, placed after
0.3-0.7 s of silence and followed by 1.5 s of it, and written in four conditions:

* ``clean``: 8 kHz 16-bit linear;
* ``ulaw``: through G.711 μ-law and back (ivr.media.g711), as a phone call delivers it;
* ``snr15`` / ``snr5``: the μ-law audio plus babble at 15 / 5 dB below the speech (speech
  power measured over the speech only). The babble is six long Asterisk prompts that are never
  test items, each at a random offset, summed: speech-shaped, with pauses that come and go, far
  nearer to a busy room than white noise.

Everything random comes from ``--seed`` and the utterance id, so a set is rebuilt bit for bit.
Run: ``.venv/bin/python bench/asr/build_set.py [--small] [--out var/asr-eval]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr.asr.evaluate import Kind, ManifestItem, write_manifest  # noqa: E402
from ivr.asr.spec import format_grammar_spec  # noqa: E402
from ivr.host.grammars import grammar_from_flow  # noqa: E402
from ivr.media.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from ivr.media.wav import load_8k_mono, write_wav  # noqa: E402

RATE = 8000
SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")  # asterisk-core-sounds-en-wav
DEFAULT_OUT = ROOT / "var" / "asr-eval"
BUILDER_VERSION = 1  # bump when the audio a spec yields changes
CONDITIONS = ("clean", "ulaw", "snr15", "snr5")
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-us+m3", "en-gb+f2")
SPEEDS = (140, 175, 200)
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Asterisk prompts: command-like words, and whole sentences that no grammar here holds.
ASTERISK_COMMANDS = {"hours": "hours", "extension": "extension", "location": "location",
                     "goodbye": "goodbye", "hello": "hello", "pbx-transfer": "transfer",
                     "telephone-number": "telephone number", "call-forwarding": "call forwarding",
                     "call-waiting": "call waiting", "do-not-disturb": "do not disturb",
                     "speed-dial": "speed dial"}
ASTERISK_OOG = {"one-moment-please": "one moment please",
                "all-circuits-busy-now": "all circuits are busy now",
                "please-try-again": "please try again", "im-sorry": "i'm sorry",
                "something-terribly-wrong": "something is terribly wrong",
                "vm-nobodyavail": "nobody is available to take your call at the moment",
                "number-not-answering": "the number is not answering",
                "check-number-dial-again": "please check the number and dial again",
                "cannot-complete-as-dialed": "your call cannot be completed as dialed",
                "feature-not-avail-line": "that feature is not available on this line"}
BABBLE = ("demo-congrats", "demo-echotest", "demo-instruct", "demo-moreinfo", "demo-nogo",
          "dir-intro", "vm-options", "vm-msginstruct", "queue-periodic-announce", "tt-allbusy",
          "priv-callee-options", "screen-callee-options", "basic-pbx-ivr-main")
BABBLE_TALKERS = 6
# Out-of-grammar sentences; the grammar each is tried against holds none of its words.
ESPEAK_OOG = (
    ("what's the weather like", "yes_no"), ("i want to change my address", "menu"),
    ("hello is anybody there", "yes_no"), ("can you tell me the time", "digits"),
    ("i'd like to open a new account", "menu"), ("my internet stopped working", "menu"),
    ("please cancel my subscription", "menu"), ("where is the nearest train station", "yes_no"),
    ("i think i dialled the wrong number", "menu"), ("could you repeat that please", "digits"),
    ("put me through to sales", "menu"), ("i'm calling about my mortgage application", "menu"),
)
KOREAN_MENU = ("balance=잔액/잔액 조회 | card=분실 신고/카드 분실 | loan=대출 상환 | "
               "hours=영업 시간 | agent=상담원")
KOREAN_OOG = ("오늘 날씨 어때요", "주소를 변경하고 싶어요", "여보세요 거기 누구 없어요")


@dataclass(frozen=True)
class UtteranceSpec:
    """What one utterance says and how to make it (before any audio exists)."""

    id: str
    kind: Kind  # command | digit | digits | yes_no | oog
    grammar: str
    expected: str | None
    text: str
    source: str  # "asterisk" or "espeak:<voice>:<wpm>"
    clips: tuple[str, ...] = ()  # Asterisk prompt names, joined with short pauses
    language: str = "en"


@dataclass
class Babble:
    """Long prompts to mix into babble (loaded once)."""

    clips: list[NDArray[np.float64]] = field(default_factory=list)


# --- audio sources -------------------------------------------------------------------------------


def trim(x: NDArray[np.int16], margin: float = 0.03) -> tuple[NDArray[np.int16], int]:
    """``x`` cut to its speech (10 ms frames within 40 dB of the loudest, above -55 dBFS) plus
    ``margin`` seconds each side; also the sample where the speech ends in the cut."""
    n = len(x) // 80
    frames = x[: n * 80].astype(np.float64).reshape(n, 80)
    level = 10 * np.log10(np.mean(frames**2, axis=1) / 32768.0**2 + 1e-12)
    active = np.flatnonzero(level > max(level.max() - 40.0, -55.0))
    if active.size == 0:
        raise ValueError("no speech in the clip")
    pad = int(margin * RATE)
    start = max(0, active[0] * 80 - pad)
    end = (active[-1] + 1) * 80
    return x[start : min(len(x), end + pad)], end - start


def asterisk(name: str, sounds: Path = SOUNDS) -> tuple[NDArray[np.int16], int]:
    """An Asterisk prompt (``digits/4``, ``hours``) trimmed to its speech."""
    path = sounds / f"{name}.wav"
    if not path.is_file():
        raise FileNotFoundError(f"{path} (install asterisk-core-sounds-en-wav: make)")
    return trim(load_8k_mono(path))


def espeak(text: str, voice: str, wpm: int) -> tuple[NDArray[np.int16], int]:
    """``text`` spoken by espeak-ng ``voice`` at ``wpm``, at 8 kHz, trimmed to its speech."""
    with tempfile.TemporaryDirectory(prefix="asr-espeak-") as tmp:
        path = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(path), text],
                       check=True, capture_output=True, timeout=60)
        return trim(load_8k_mono(path))


def joined(parts: Sequence[tuple[NDArray[np.int16], int]],
           rng: np.random.Generator) -> tuple[NDArray[np.int16], int]:
    """Clips one after another with 80-250 ms pauses (a caller reading out digits)."""
    out: list[NDArray[np.int16]] = []
    end = 0
    for i, (clip, clip_end) in enumerate(parts):
        if i:
            out.append(np.zeros(int(rng.uniform(0.08, 0.25) * RATE), np.int16))
        end = sum(len(c) for c in out) + clip_end
        out.append(clip)
    return np.concatenate(out), end


def speech_for(spec: UtteranceSpec, rng: np.random.Generator,
               sounds: Path = SOUNDS) -> tuple[NDArray[np.int16], int]:
    """The trimmed speech of ``spec`` and where in it the speech ends."""
    if spec.source == "asterisk":
        return joined([asterisk(name, sounds) for name in spec.clips], rng)
    _engine, voice, wpm = spec.source.split(":")
    return espeak(spec.text, voice, int(wpm))


# --- conditions ----------------------------------------------------------------------------------


def place(speech: NDArray[np.int16], speech_end: int, rng: np.random.Generator,
          lead: tuple[float, float] = (0.3, 0.7)) -> tuple[NDArray[np.float64], slice, float]:
    """Speech at a random level (-26 to -16 dBFS) after ``lead`` seconds (drawn from the range)
    of silence, then 1.5 s of silence.

    Returns the signal (float, int16 scale), where the speech lies, and where it ends (s).
    """
    x = speech.astype(np.float64)
    rms = np.sqrt(np.mean(x**2))
    target = 32768.0 * 10 ** (rng.uniform(-26.0, -16.0) / 20)
    before = int(rng.uniform(*lead) * RATE)
    out = np.concatenate([np.zeros(before), x * (target / rms), np.zeros(int(1.5 * RATE))])
    return out, slice(before, before + len(x)), (before + speech_end) / RATE


def to_pcm(x: NDArray[np.float64]) -> NDArray[np.int16]:
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def ulaw(x: NDArray[np.int16]) -> NDArray[np.int16]:
    """Through G.711 μ-law and back."""
    return ulaw_decode(ulaw_encode(x))


def load_babble(sounds: Path = SOUNDS) -> Babble:
    """The babble talkers' prompts, each at unit RMS."""
    clips = []
    for name in BABBLE:
        clip = load_8k_mono(sounds / f"{name}.wav").astype(np.float64)
        clips.append(clip / np.sqrt(np.mean(clip**2)))
    return Babble(clips)


def babble(length: int, pool: Babble, rng: np.random.Generator) -> NDArray[np.float64]:
    """``length`` samples of :data:`BABBLE_TALKERS` prompts summed at random offsets (unit RMS)."""
    out = np.zeros(length)
    for index in rng.choice(len(pool.clips), BABBLE_TALKERS, replace=False):
        clip = pool.clips[int(index)]
        start = int(rng.integers(len(clip)))
        out += np.resize(np.roll(clip, -start), length)
    return out / np.sqrt(np.mean(out**2))


def add_noise(x: NDArray[np.int16], speech: slice, noise: NDArray[np.float64],
              snr_db: float) -> NDArray[np.int16]:
    """``x`` plus ``noise`` scaled to ``snr_db`` below the power of ``x[speech]``."""
    power = np.mean(x[speech].astype(np.float64) ** 2)
    gain = np.sqrt(power / 10 ** (snr_db / 10)) / np.sqrt(np.mean(noise**2))
    return to_pcm(x.astype(np.float64) + gain * noise)


Noise = Callable[[int], NDArray[np.float64]]  # samples wanted -> unit-RMS noise


def conditions(placed: NDArray[np.float64], speech: slice, names: Iterable[str],
               noise: Noise | None) -> dict[str, NDArray[np.int16]]:
    """The utterance in each named condition (``clean``, ``ulaw``, ``snr<dB>``); ``noise``
    makes the babble of each noisy condition (called once per condition, in order)."""
    clean = to_pcm(placed)
    coded = ulaw(clean)
    out: dict[str, NDArray[np.int16]] = {}
    for name in names:
        if name == "clean":
            out[name] = clean
        elif name == "ulaw":
            out[name] = coded
        else:
            if noise is None:
                raise ValueError(f"condition {name} needs babble")
            out[name] = add_noise(coded, speech, noise(len(coded)), float(name[3:]))
    return out


# --- what to say ---------------------------------------------------------------------------------


def utterance_rng(seed: int, utterance_id: str) -> np.random.Generator:
    """A generator of its own per utterance: adding items never changes the others."""
    return np.random.default_rng([seed, zlib.crc32(utterance_id.encode())])


def bank_menu_spec() -> str:
    """The spoken grammar of the bank flow's main menu, global commands included."""
    from ivr.config import load_config

    config = load_config(ROOT / "ivr.yaml")
    grammar = grammar_from_flow(ROOT / "flows" / "bank-main.yaml", "main_menu", "en", config)
    return format_grammar_spec(grammar)


def _voices(rng: np.random.Generator, count: int) -> list[str]:
    combos = [f"espeak:{v}:{s}" for v in VOICES for s in SPEEDS]
    return [combos[int(i)] for i in rng.choice(len(combos), count, replace=False)]


def plan(small: bool = False, seed: int = 1) -> list[UtteranceSpec]:
    """Every utterance of the set (``small``: a quick subset of each kind)."""
    rng = np.random.default_rng(seed)
    menu = bank_menu_spec()
    grammars = {"menu": menu, "yes_no": "@yes_no", "digits": "@digits:4"}
    n_say, n_digit, n_strings, n_oog = (1, 1, 1, 1) if small else (6, 4, 8, 3)
    out: list[UtteranceSpec] = []
    digits = range(0, 10, 3) if small else range(10)
    for d in digits:
        out.append(UtteranceSpec(f"ast-digit-{d}", "digit", "@digits:1", str(d),
                                 DIGIT_WORDS[d], "asterisk", (f"digits/{d}",)))
    for length in (4, 8):
        for i in range(n_strings):
            s = "".join(str(int(v)) for v in rng.integers(0, 10, length))
            out.append(UtteranceSpec(f"ast-digits{length}-{i}", "digits", f"@digits:{length}",
                                     s, " ".join(DIGIT_WORDS[int(c)] for c in s), "asterisk",
                                     tuple(f"digits/{c}" for c in s)))
    ast_menu = " | ".join(ASTERISK_COMMANDS.values())
    for name, words in list(ASTERISK_COMMANDS.items())[: 3 if small else None]:
        out.append(UtteranceSpec(f"ast-cmd-{name}", "command", ast_menu, words, words,
                                 "asterisk", (name,)))
    out.append(UtteranceSpec("ast-yesno-no", "yes_no", "@yes_no", "no", "no", "asterisk",
                             ("vm-no",)))
    for i, (name, text) in enumerate(list(ASTERISK_OOG.items())[: 2 if small else None]):
        which = ("menu", "digits", "menu")[i % 3]  # the yes_no builtin may hold "not"
        out.append(UtteranceSpec(f"ast-oog-{name}", "oog", grammars[which], None, text,
                                 "asterisk", (name,)))
    out += _espeak_plan(rng, grammars, small, (n_say, n_digit, n_strings, n_oog))
    return out


def _espeak_plan(rng: np.random.Generator, grammars: dict[str, str], small: bool,
                 counts: tuple[int, int, int, int]) -> list[UtteranceSpec]:
    from ivr.asr.spec import parse_grammar_spec

    n_say, n_digit, n_strings, n_oog = counts
    out: list[UtteranceSpec] = []
    menu = parse_grammar_spec(grammars["menu"])
    phrases = [(k, p) for k, ps in menu.choices.items() for p in ps]
    for i, (key, phrase) in enumerate(phrases[:: 4 if small else 1]):
        for j, src in enumerate(_voices(rng, n_say)):
            out.append(UtteranceSpec(f"tts-cmd-{i:02d}-{j}", "command", grammars["menu"], key,
                                     phrase, src))
    for d in range(0, 10, 4) if small else range(10):
        for j, src in enumerate(_voices(rng, n_digit)):
            out.append(UtteranceSpec(f"tts-digit-{d}-{j}", "digit", "@digits:1", str(d),
                                     DIGIT_WORDS[d], src))
    for length in (4, 8):
        for i, src in enumerate(_voices(rng, n_strings)):
            s = "".join(str(int(v)) for v in rng.integers(0, 10, length))
            out.append(UtteranceSpec(f"tts-digits{length}-{i}", "digits", f"@digits:{length}",
                                     s, " ".join(DIGIT_WORDS[int(c)] for c in s), src))
    for word in ("yes", "no"):
        for j, src in enumerate(_voices(rng, n_say)):
            out.append(UtteranceSpec(f"tts-yesno-{word}-{j}", "yes_no", "@yes_no", word, word,
                                     src))
    for i, (sentence, which) in enumerate(ESPEAK_OOG[:: 4 if small else 1]):
        for j, src in enumerate(_voices(rng, n_oog)):
            out.append(UtteranceSpec(f"tts-oog-{i:02d}-{j}", "oog", grammars[which], None,
                                     sentence, src))
    return out


def korean_plan(small: bool = False) -> list[UtteranceSpec]:
    """Korean menu phrases and out-of-grammar sentences (espeak-ng ``ko``) for Vosk."""
    from ivr.asr.spec import parse_grammar_spec

    grammar = parse_grammar_spec(KOREAN_MENU, "ko")
    out: list[UtteranceSpec] = []
    speeds = (175,) if small else SPEEDS
    for i, (key, phrase) in enumerate((k, p) for k, ps in grammar.choices.items() for p in ps):
        for wpm in speeds:
            out.append(UtteranceSpec(f"ko-cmd-{i:02d}-{wpm}", "command", KOREAN_MENU, key,
                                     phrase, f"espeak:ko:{wpm}", language="ko"))
    for i, sentence in enumerate(KOREAN_OOG):
        for wpm in speeds:
            out.append(UtteranceSpec(f"ko-oog-{i:02d}-{wpm}", "oog", KOREAN_MENU, None,
                                     sentence, f"espeak:ko:{wpm}", language="ko"))
    return out


# --- building ------------------------------------------------------------------------------------


def build_items(specs: Sequence[UtteranceSpec], out_dir: Path, seed: int = 1,
                names: Sequence[str] = CONDITIONS, sounds: Path = SOUNDS) -> list[ManifestItem]:
    """Render every spec in every condition into ``out_dir/audio``; the manifest items."""
    pool = load_babble(sounds) if any(n.startswith("snr") for n in names) else None
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    items: list[ManifestItem] = []
    for spec in specs:
        rng = utterance_rng(seed, spec.id)
        speech, end = speech_for(spec, rng, sounds)
        placed, where, speech_end = place(speech, end, rng)
        noise = None if pool is None else functools.partial(babble, pool=pool, rng=rng)
        for condition, pcm in conditions(placed, where, names, noise).items():
            item_id = f"{spec.id}-{condition}"
            audio = f"audio/{item_id}.wav"
            write_wav(out_dir / audio, pcm)
            items.append(ManifestItem(
                id=item_id, audio=audio, grammar=spec.grammar, kind=spec.kind,
                condition=condition, expected=spec.expected, language=spec.language,
                source=spec.source, speech_end=round(speech_end, 3), text=spec.text))
    return items


def build(out_dir: Path = DEFAULT_OUT, small: bool = False, seed: int = 1,
          korean: bool = True) -> dict[str, Path]:
    """Build the whole set: ``en.jsonl`` (and ``ko.jsonl``) plus ``build.json``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifests = {"en": out_dir / "en.jsonl"}
    write_manifest(manifests["en"], build_items(plan(small, seed), out_dir, seed))
    if korean:
        manifests["ko"] = out_dir / "ko.jsonl"
        write_manifest(manifests["ko"], build_items(korean_plan(small), out_dir, seed))
    (out_dir / "build.json").write_text(json.dumps(stamp(small, seed, korean)) + "\n", "utf-8")
    return manifests


def stamp(small: bool, seed: int, korean: bool) -> dict[str, object]:
    """What a built set depends on: run.py rebuilds when this differs."""
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                             check=False).stdout.split("  ")[0].strip()
    return {"builder": BUILDER_VERSION, "small": small, "seed": seed, "korean": korean,
            "espeak": version, "menu": bank_menu_spec()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="cache folder")
    parser.add_argument("--small", action="store_true", help="a quick subset of each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-korean", action="store_true", help="skip the Korean items")
    args = parser.parse_args(argv)
    manifests = build(args.out, args.small, args.seed, not args.no_korean)
    for lang, path in manifests.items():
        count = sum(1 for line in path.read_text("utf-8").splitlines() if line.strip())
        print(f"{lang}: {count} items in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
