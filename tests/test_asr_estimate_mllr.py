"""bench/asr/estimate_mllr.py: what the telephone MLLR transforms may be estimated on, and a real
estimation step (flite speech, PocketSphinx alignment, the transform solved and applied)."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from asr_helpers import load_bench

from ivr.asr.adapt import transform_means


def em() -> ModuleType:
    return load_bench("estimate_mllr")


def test_neutral_sentences_hold_no_word_of_the_evaluation() -> None:
    m, vs = em(), load_bench("voice_set")
    words = {w for g in vs.GRAMMARS.values() for p in g for w in p.split()}
    held = {*vs.OOG_TEXTS, *vs.ALLISON_OOG, *vs.BABBLE_TEXTS}
    for text in m.NEUTRAL:
        assert not set(re.findall(r"[a-z'-]+", text)) & words, text
        assert text not in held, text


def test_the_engines_corpus_has_tuning_speakers_only() -> None:
    m, vc = em(), load_bench("voices")
    held_out = {v.speaker for v in vc.VOICES if v.split == "heldout"}
    corpus = m.corpus("engines")
    speakers = {voice.speaker for _, voice in corpus}
    assert not speakers & held_out
    assert {"kal", "awb"} <= speakers  # the natural-sounding engines are in it
    assert {text for text, _ in corpus} == set(m.NEUTRAL)
    with pytest.raises(ValueError):
        m.corpus("heldout")


def test_every_neutral_word_is_in_the_dictionary() -> None:
    m = em()
    dictionary = m.model_dir().parent / "cmudict-en-us.dict"
    known = {line.split(maxsplit=1)[0] for line in dictionary.read_text().splitlines() if line}
    missing = {w for t in m.NEUTRAL for w in t.split()} - known
    assert not missing  # alignment would fail on them


@pytest.mark.usefixtures("synth_voices")
def test_one_estimation_pass_with_two_classes_moves_speech_and_fits_the_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    m, vc = em(), load_bench("voices")
    monkeypatch.setattr(m, "CACHE", tmp_path / "cache")
    model = m.load_model(m.model_dir())
    aligner = m.Aligner(m.model_dir(), model.phones, tmp_path / "mfc")
    stats = m.Stats.empty(model)
    voice = vc.by_id("flite-kal16")
    aligned_count = 0
    for text in m.NEUTRAL[:6]:  # the unadapted model fails to align some (estimate skips them)
        aligned = aligner.align(m.front_end(m.synthesize(text, voice)), text)
        if aligned is not None:
            aligned_count += 1
            m.accumulate(stats, model, aligned)
    assert aligned_count >= 3
    transforms = m.solve_classes(stats, model, m.SPEECH_CLASSES)
    assert len(transforms) == 2
    speech = transforms[1]
    assert not np.allclose(speech, m.identity(*speech.shape[:2]))
    assert np.all(np.isfinite(speech))
    spec = m.to_spec(transforms, m.SPEECH_CLASSES)
    adapted = transform_means(model.means.astype(np.float32), model.phones, spec)
    assert adapted.shape == model.means.shape
    silence = model.phones.index("SIL")
    moved = np.abs(adapted - model.means).max(axis=(1, 2, 3))
    if stats.frames[silence] < m.MIN_FRAMES:  # too little silence: it keeps its means
        assert moved[silence] < 1e-4
    assert moved[model.phones.index("AA")] > 1e-3
