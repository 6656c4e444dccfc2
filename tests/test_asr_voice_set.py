"""The multi-voice evaluation set (bench/asr/voice_set.py, voices.py): real synthesizers and the
recorded Asterisk speaker, built twice and compared; babble SNR measured on the written files;
the held-out split checked from the catalogue down to the audio bytes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from asr_helpers import load_bench

from ivr.asr.evaluate import load_manifest
from ivr.asr.spec import parse_grammar_spec
from ivr.media.wav import load_8k_mono

pytestmark = pytest.mark.usefixtures("espeak_program", "asterisk_sounds", "synth_voices")

# One voice of every engine on both sides (kal: the same speaker in two engines, like slt).
TINY = ("espeak-en-us", "flite-kal16", "festival-kal", "asterisk-allison", "festival-ked",
        "flite-rms", "espeak-en-us-nyc+f4")


def vs() -> ModuleType:
    return load_bench("voice_set")


def tiny_voices() -> tuple[Any, ...]:
    vc = load_bench("voices")
    return tuple(vc.by_id(v) for v in TINY)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("voices") / "a"
    vs().build(out, small=True, seed=5, voices=tiny_voices())
    return out


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.wav")) if "cache" not in p.parts}


def test_grammars_have_the_asked_sizes_and_no_oog_text_holds_a_grammar_word() -> None:
    m = vs()
    sizes = [len(parse_grammar_spec(m.grammar_spec(n)).choices) for n in m.GRAMMARS]
    assert sizes == [2, 5, 15, 30, 60]
    words = {w for g in m.GRAMMARS.values() for p in g for w in p.split()}
    for text in (*m.OOG_TEXTS, *m.ALLISON_OOG, *m.BABBLE_TEXTS):
        assert not set(re.findall(r"[a-z'-]+", text)) & words, text


def test_every_utterance_is_tried_against_each_grammar_holding_it(built: Path) -> None:
    items = load_manifest(built / "tuning.jsonl") + load_manifest(built / "heldout.jsonl")
    m = vs()
    march = [i for i in items if i.text == "march" and i.source == "festival-ked"]
    assert sorted(len(i.grammar.split("|")) for i in march if i.condition == "clean") == [15, 60]
    oog = [i for i in items if i.kind == "oog" and i.condition == "snr5"]
    assert oog and all(i.expected is None for i in oog)
    assert {len(i.grammar.split("|")) for i in oog} == {2, 5, 15, 30, 60}
    # Allison says only what she recorded: no "yes" from her, her "no" is there.
    allison = {i.text for i in items if i.source == "asterisk-allison"}
    assert "no" in allison and "yes" not in allison
    assert {i.condition for i in items} == set(m.CONDITIONS)


def test_the_build_is_deterministic(built: Path, tmp_path: Path) -> None:
    again = tmp_path / "b"  # its own synthesizer cache: everything is made anew
    vs().build(again, small=True, seed=5, voices=tiny_voices())
    for split in ("tuning", "heldout"):
        assert (built / f"{split}.jsonl").read_text() == (again / f"{split}.jsonl").read_text()
    assert digests(built) == digests(again)
    other = tmp_path / "c"
    vs().build(other, small=True, seed=6, voices=tiny_voices())
    assert digests(other) != digests(built)  # the seed matters


@pytest.mark.parametrize("snr", [15, 5])
def test_babble_is_added_at_the_asked_snr(built: Path, snr: int) -> None:
    m = vs()
    memo: dict[str, np.ndarray] = {}
    measured = []
    for utt in m.plan(tiny_voices(), small=True)[::3]:
        clips = m.talker_clips(utt.voice, tiny_voices(), built / "cache", memo)
        made = m.render(utt, built / "cache", 5, m.CONDITIONS, clips)
        noisy = made.audio[f"snr{snr}"]
        # What was rendered is what the set holds.
        written = built / utt.voice.split / "audio" / f"{utt.id}-snr{snr}.wav"
        assert np.array_equal(load_8k_mono(written), noisy)
        coded = made.audio["ulaw"].astype(float)
        noise = noisy - coded
        assert np.abs(noise[: made.speech.start]).max() > 0  # babble before the speech too
        power = np.mean(coded[made.speech] ** 2)
        measured.append(10 * np.log10(power / np.mean(noise**2)))
    assert len(measured) >= 10
    far = [round(x, 2) for x in measured if abs(x - snr) > 0.05]
    assert not far, far


def test_babble_is_other_speakers_of_the_same_split() -> None:
    vc = load_bench("voices")
    for voice in vc.VOICES:
        talkers = vs().babble_talkers(voice)
        assert len(talkers) >= vs().TALKERS
        assert all(t.split == voice.split and t.speaker != voice.speaker for t in talkers)


def test_the_splits_share_no_speaker() -> None:
    vc = load_bench("voices")
    tuning = {v.speaker for v in vc.VOICES if v.split == "tuning"}
    heldout = {v.speaker for v in vc.VOICES if v.split == "heldout"}
    assert tuning and heldout and not tuning & heldout
    assert vc.by_id("festival-slt-hts").split == vc.by_id("flite-slt").split == "heldout"


def test_held_out_voices_never_reach_the_tuning_set(built: Path, tmp_path: Path) -> None:
    vc = load_bench("voices")
    held = {v.id for v in vc.VOICES if v.split == "heldout"}
    tuning_text = (built / "tuning.jsonl").read_text()
    assert not any(f'"{v}"' in tuning_text for v in held)
    for split in ("tuning", "heldout"):
        for item in load_manifest(built / f"{split}.jsonl"):
            assert vc.by_id(item.source).split == split
            assert item.audio.startswith(f"{split}/audio/")
    # The tuning audio, babble included, is the same bytes with the held-out voices gone.
    alone = tmp_path / "tuning-only"
    tuning_voices = tuple(v for v in tiny_voices() if v.split == "tuning")
    vs().build(alone, small=True, seed=5, voices=tuning_voices)
    assert digests(alone / "tuning") == digests(built / "tuning")
    assert not list((alone / "heldout" / "audio").iterdir())
