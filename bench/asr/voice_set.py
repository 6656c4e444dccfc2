"""Build the multi-voice evaluation set: many voices, four conditions, five grammar sizes.

What is said: the everyday words a date, name-spelling or branch-choice menu listens for, in five
grammars of plain phrases (:data:`GRAMMARS`: 2, 5, 15, 30 and 60 phrases), and out-of-grammar
speech (:data:`OOG_TEXTS`, single words and sentences holding no word of any grammar). Every
voice of :mod:`voices` says every phrase once (Allison only what she recorded); each utterance is
tried against **every grammar holding its phrase** (so "march" is an item of the 15-phrase date
grammar and of the 60-phrase one), each out-of-grammar utterance against every grammar.

Each utterance is trimmed to its speech, set to a level between -26 and -16 dBFS, placed after
0.05-0.7 s of silence (:data:`LEAD`; ``leads.json`` keeps each one) and followed by 1.5 s of it,
and written in four conditions: ``clean`` (8 kHz linear), ``ulaw`` (G.711 round trip), ``snr15``
and ``snr5`` (the μ-law audio plus babble 15 / 5 dB below the speech's power, measured over the
speech only). The babble is :data:`TALKERS` other voices reading :data:`BABBLE_TEXTS` (Allison:
long prompts) at random offsets, summed: only voices of the utterance's own split and never its
own speaker, so a held-out voice is never heard in a tuning item, even as noise.

The two splits are written apart: ``tuning.jsonl`` with ``tuning/audio/`` and ``heldout.jsonl``
with ``heldout/audio/`` (manifests of ``ivr asr eval``). Everything random comes from ``--seed``
and the utterance's id: the set is rebuilt bit for bit, and adding an utterance changes no other.

Run: ``.venv/bin/python bench/asr/voice_set.py [--small] [--out var/asr-voices]``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _path in (ROOT, HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import build_set as bs  # noqa: E402
import voices as vc  # noqa: E402

from ivr.asr.evaluate import ManifestItem, write_manifest  # noqa: E402
from ivr.media.wav import write_wav  # noqa: E402

DEFAULT_OUT = ROOT / "var" / "asr-voices"
BUILDER_VERSION = 2  # bump when the audio a plan yields changes
CONDITIONS = ("clean", "ulaw", "snr15", "snr5")
SPLITS: tuple[vc.Split, ...] = ("tuning", "heldout")
TALKERS = 4  # babble voices summed behind one utterance
# Silence before the speech, seconds. From 0.05 s: a caller who speaks the moment the recognizer
# starts listening (or a recording cut tight, as `ivr asr recognize` gets it) is part of what the
# recognizer must handle; the older set (build_set.py) always gives it 0.3 s or more.
LEAD = (0.05, 0.7)
SHORT_LEAD = 0.25  # the results' "short lead" bucket: less than this
CONFIRM_THRESHOLD = 0.5  # the flows' default `confidence:` (ivr/flow/model.py): below it, ask

_DIGITS, _NATO, _MONTHS = vc.DIGITS, vc.NATO, vc.MONTHS
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RELATIVE = ("today", "tomorrow", "yesterday")
# Plain phrase grammars (each phrase is its own choice), from 2 to 60 phrases.
GRAMMARS: dict[str, tuple[str, ...]] = {
    "yes-no": ("yes", "no"),
    "branch": ("hours", "location", "extension", "transfer", "goodbye"),
    "date": (*_MONTHS, *_RELATIVE),
    "spelling": (*_NATO, "dot", "dash", "space", "at"),
    # "november" is a letter and a month (one phrase); "oh" as in "four oh two" makes 60.
    "mixed": tuple(dict.fromkeys((*_DIGITS, "oh", *_NATO, *_MONTHS, *_DAYS, "yes", "no",
                                  *_RELATIVE))),
}
# Out-of-grammar speech: no word of any grammar above (tests/test_asr_voice_set.py checks).
OOG_TEXTS = ("what's the weather like", "i want to change my address",
             "can i speak to a real person", "maybe", "representative", "thanks")
ALLISON_OOG = ("hello", "sorry", "invalid", "something is terribly wrong",
               "please try again", "all circuits are busy now")
# What the babble talkers read (no grammar word either).
BABBLE_TEXTS = (
    "the meeting has been moved to the small room on the second floor",
    "please remember to bring the report and the receipts with you",
    "we walked along the river until the light began to fade",
    "she said the train would be late again this evening",
    "nobody knew where the keys had gone after the party",
    "the children were playing in the garden behind the old house",
)


@dataclass(frozen=True)
class Utterance:
    """One thing one voice says: a phrase of the grammars, or out-of-grammar speech."""

    id: str
    voice: vc.Voice
    text: str
    expected: str | None  # the phrase (its own choice key); None: out of grammar


def phrases() -> list[str]:
    """Every phrase of every grammar, once, in a fixed order."""
    return list(dict.fromkeys(p for g in GRAMMARS.values() for p in g))


def grammar_spec(name: str) -> str:
    """A grammar as an ``ivr asr`` spec: its phrases, each its own choice."""
    return " | ".join(GRAMMARS[name])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def plan(voices: Sequence[vc.Voice] = vc.VOICES, small: bool = False) -> list[Utterance]:
    """Every utterance of the set (``small``: a few phrases and out-of-grammar texts a voice)."""
    said = phrases()
    if small:
        said = ["yes", "no", "hours", "march", "sierra", "eight"]
    out: list[Utterance] = []
    for voice in voices:
        oog = ALLISON_OOG if voice.engine == "asterisk" else OOG_TEXTS
        for text in said:
            if vc.can_say(voice, text):
                out.append(Utterance(f"{voice.id}-{_slug(text)}", voice, text, text))
        for text in oog[:2] if small else oog:
            out.append(Utterance(f"{voice.id}-oog-{_slug(text)}", voice, text, None))
    return out


def items_for(utt: Utterance, condition: str, audio: str,
              speech_end: float) -> list[ManifestItem]:
    """The manifest items of one utterance in one condition: one per grammar it is tried on."""
    names = [n for n, g in GRAMMARS.items() if utt.expected is None or utt.expected in g]
    return [ManifestItem(
        id=f"{utt.id}-{name}-{condition}", audio=audio, grammar=grammar_spec(name),
        kind="oog" if utt.expected is None else "yes_no" if name == "yes-no" else "command",
        condition=condition, expected=utt.expected, source=utt.voice.id,
        speech_end=round(speech_end, 3), text=utt.text) for name in names]


# --- babble --------------------------------------------------------------------------------------


def babble_talkers(voice: vc.Voice, voices: Sequence[vc.Voice] = vc.VOICES) -> list[vc.Voice]:
    """The voices whose speech may be babble behind ``voice``: same split, another speaker."""
    return [v for v in voices if v.split == voice.split and v.speaker != voice.speaker]


def talker_clip(voice: vc.Voice, cache: Path) -> NDArray[np.float64]:
    """What one babble talker says, back to back with 0.3 s pauses, at unit RMS."""
    if voice.engine == "asterisk":
        parts = [vc.prompt(name) for name in vc.ALLISON_BABBLE]
    else:
        parts = [vc.speech(voice, text, cache) for text in BABBLE_TEXTS]
    gap = np.zeros(int(0.3 * bs.RATE))
    x = np.concatenate([np.concatenate([p.astype(np.float64), gap]) for p in parts])
    return x / np.sqrt(np.mean(x**2))


def babble(length: int, clips: Sequence[NDArray[np.float64]],
           rng: np.random.Generator) -> NDArray[np.float64]:
    """``length`` samples of :data:`TALKERS` of ``clips`` summed at random offsets (unit RMS)."""
    out = np.zeros(length)
    for index in rng.choice(len(clips), min(TALKERS, len(clips)), replace=False):
        clip = clips[int(index)]
        out += np.resize(np.roll(clip, -int(rng.integers(len(clip)))), length)
    return out / np.sqrt(np.mean(out**2))


# --- building ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendered:
    """One utterance's audio in each condition, where its speech lies, where the speech ends."""

    audio: dict[str, NDArray[np.int16]]
    speech: slice  # samples: the trimmed speech (over which the SNR is measured)
    speech_end: float  # seconds


def render(utt: Utterance, cache: Path, seed: int, names: Sequence[str],
           clips: Sequence[NDArray[np.float64]]) -> Rendered:
    """The utterance in each condition (``clips``: its babble talkers' speech)."""
    rng = bs.utterance_rng(seed, utt.id)
    speech, end = bs.trim(vc.speech(utt.voice, utt.text, cache))
    placed, where, speech_end = bs.place(speech, end, rng, LEAD)
    out = bs.conditions(placed, where, names, lambda length: babble(length, clips, rng))
    return Rendered(out, where, speech_end)


def talker_clips(voice: vc.Voice, voices: Sequence[vc.Voice], cache: Path,
                 memo: dict[str, NDArray[np.float64]]) -> list[NDArray[np.float64]]:
    """The babble talkers' speech for ``voice`` (made once per talker, kept in ``memo``)."""
    talkers = babble_talkers(voice, voices)
    for t in talkers:
        if t.id not in memo:
            memo[t.id] = talker_clip(t, cache)
    return [memo[t.id] for t in talkers]


def build(out: Path = DEFAULT_OUT, small: bool = False, seed: int = 1,
          voices: Sequence[vc.Voice] = vc.VOICES,
          names: Sequence[str] = CONDITIONS) -> dict[str, Path]:
    """Write both splits' manifests and audio into ``out`` (synthesized speech cached in
    ``out/cache``); the manifests' paths by split."""
    cache = out / "cache"
    clips: dict[str, NDArray[np.float64]] = {}
    manifests: dict[str, Path] = {}
    leads: dict[str, float] = {}  # utterance (audio path without the condition) -> lead, s
    utterances = plan(voices, small)
    for split in SPLITS:
        items: list[ManifestItem] = []
        (out / split / "audio").mkdir(parents=True, exist_ok=True)
        for utt in (u for u in utterances if u.voice.split == split):
            made = render(utt, cache, seed, names, talker_clips(utt.voice, voices, cache, clips))
            leads[f"{split}/audio/{utt.id}"] = made.speech.start / bs.RATE
            for condition, pcm in made.audio.items():
                rel = f"{split}/audio/{utt.id}-{condition}.wav"
                write_wav(out / rel, pcm)
                items += items_for(utt, condition, rel, made.speech_end)
        manifests[split] = out / f"{split}.jsonl"
        write_manifest(manifests[split], items)
    (out / "leads.json").write_text(json.dumps(leads, indent=0) + "\n", "utf-8")
    (out / "build.json").write_text(json.dumps(stamp(small, seed, voices)) + "\n", "utf-8")
    return manifests


def stamp(small: bool, seed: int, voices: Sequence[vc.Voice] = vc.VOICES) -> dict[str, object]:
    """What a built set depends on: the bench rebuilds when this differs."""
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                             check=False).stdout.split("  ")[0].strip()
    return {"builder": BUILDER_VERSION, "small": small, "seed": seed, "espeak": version,
            "voices": [[v.id, v.split] for v in voices], "grammars": GRAMMARS}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="set and cache folder")
    parser.add_argument("--small", action="store_true", help="a quick subset")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for split, path in build(args.out, args.small, args.seed).items():
        count = sum(1 for line in path.read_text("utf-8").splitlines() if line.strip())
        print(f"{split}: {count} items in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
