"""The reference recognizer of the ASR bench (bench/asr/reference.py): plain PocketSphinx with
the item's grammar as JSGF, run on the recorded Asterisk speaker."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from asr_helpers import load_bench

from ivr.asr.evaluate import ManifestItem
from ivr.asr.spec import parse_grammar_spec
from ivr.media.wav import load_8k_mono, write_wav

DATE = "january | february | march | april | may | today | tomorrow"


def rf() -> ModuleType:
    return load_bench("reference")


def padded(sounds: Path, name: str) -> np.ndarray:
    """An Asterisk prompt with half a second of silence each side, as the set places speech."""
    pcm = load_8k_mono(sounds / f"{name}.wav")
    pad = np.zeros(4000, np.int16)
    return np.concatenate([pad, pcm, pad])


def test_jsgf_has_one_alternative_per_phrase() -> None:
    grammar = parse_grammar_spec("yes | no | x-ray | card=lost card/stolen card")
    assert rf().jsgf(grammar) == ("#JSGF V1.0;\ngrammar g;\npublic <g> = yes | no | x-ray | "
                                  "lost card | stolen card ;\n")
    with pytest.raises(ValueError, match="phrase grammars only"):
        rf().jsgf(parse_grammar_spec("@digits:4"))


def test_words_map_back_to_choices() -> None:
    grammar = parse_grammar_spec("yes | no | card=lost card/stolen card")
    assert rf().choice_of(grammar, "no(2)") == "no"
    assert rf().choice_of(grammar, "stolen card") == "card"
    assert rf().choice_of(grammar, "lost") is None


@pytest.mark.usefixtures("asterisk_sounds")
def test_the_reference_recognises_recorded_speech(asterisk_sounds: Path) -> None:
    ref = rf().Reference()
    date = parse_grammar_spec(DATE)
    result = ref.recognize(padded(asterisk_sounds, "digits/mon-2"), date)
    assert (result.outcome, result.choice, result.backend) == ("match", "march", "reference")
    result = ref.recognize(padded(asterisk_sounds, "digits/tomorrow"), date)
    assert result.choice == "tomorrow"
    yes_no = parse_grammar_spec("yes | no")
    assert ref.recognize(padded(asterisk_sounds, "vm-no"), yes_no).choice == "no"


@pytest.mark.usefixtures("asterisk_sounds")
def test_the_reference_never_rejects(asterisk_sounds: Path) -> None:
    """Out-of-grammar speech comes out as some phrase, acted on (no rejection, no confidence)."""
    result = rf().Reference().recognize(padded(asterisk_sounds, "all-circuits-busy-now"),
                                        parse_grammar_spec(DATE))
    assert result.outcome == "match" and result.choice in DATE.split(" | ")
    assert result.confidence == 1.0


@pytest.mark.usefixtures("asterisk_sounds")
def test_run_reference_keeps_order_and_reports_errors(asterisk_sounds: Path,
                                                       tmp_path: Path) -> None:
    for name in ("mon-0", "mon-3", "today"):
        write_wav(tmp_path / f"{name}.wav", padded(asterisk_sounds, f"digits/{name}"))
    expected = {"mon-0": "january", "mon-3": "april", "today": "today"}
    items = [ManifestItem(id=n, audio=f"{n}.wav", grammar=DATE, kind="command",
                          condition="clean", expected=e) for n, e in expected.items()]
    items.append(ManifestItem(id="gone", audio="gone.wav", grammar=DATE, kind="command",
                              condition="clean", expected="may"))
    results = rf().run_reference(items, tmp_path, jobs=2)
    assert [r.item.id for r in results] == ["mon-0", "mon-3", "today", "gone"]
    assert [r.correct for r in results[:3]] == [True, True, True]
    assert results[3].result is None and results[3].error and not results[3].correct


@pytest.mark.usefixtures("asterisk_sounds")
def test_each_file_is_decoded_as_by_a_fresh_decoder(asterisk_sounds: Path) -> None:
    """Nothing of one utterance (PocketSphinx's noise estimate, its live cepstral mean)
    reaches the next: same text and same path score as on a fresh decoder."""
    date = parse_grammar_spec(DATE)
    fresh = rf().Reference()
    first = fresh.recognize(padded(asterisk_sounds, "digits/mon-4"), date)
    first_score = fresh.decoder(date).hyp().score
    used = rf().Reference()
    used.recognize(padded(asterisk_sounds, "all-circuits-busy-now"), date)
    after = used.recognize(padded(asterisk_sounds, "digits/mon-4"), date)
    assert (after.text, after.choice) == (first.text, first.choice) == ("may", "may")
    assert used.decoder(date).hyp().score == first_score
