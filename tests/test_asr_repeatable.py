"""Same audio, same answer: an utterance's result does not depend on what the process decoded
before (ivr's PocketSphinx backend and the bench's reference), in one process in two orders and
in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from asr_helpers import ROOT, load_bench
from sphinx_audio import asterisk, espeak, needs_espeak, needs_sounds, padded, ulaw, with_noise

from ivr.asr.base import AsrOptions
from ivr.asr.offline import recognize_file
from ivr.asr.spec import parse_grammar_spec
from ivr.asr.sphinx import DecoderPool, SphinxBackend
from ivr.media.wav import write_wav

GRAMMAR = ("zero | one | two | three | four | five | six | seven | eight | nine | alpha | "
           "bravo | charlie | tango | sierra | yankee | march | may | monday | today | tomorrow")
Answer = tuple[str, str | None, float, str]

# Decodes the files named on the command line with a freshly loaded recognizer per file.
FRESH = """
import json, sys
from pathlib import Path
from ivr.asr.base import AsrOptions
from ivr.asr.offline import recognize_file
from ivr.asr.spec import parse_grammar_spec
from ivr.asr.sphinx import DecoderPool, SphinxBackend
grammar = parse_grammar_spec(sys.argv[1])
out = []
for name in sys.argv[2:]:
    r = recognize_file(Path(name), grammar, SphinxBackend(DecoderPool()), AsrOptions())
    out.append([r.text, r.choice, r.confidence, r.outcome])
print(json.dumps(out))
"""


def _files(tmp_path: Path) -> list[Path]:
    """Recorded and synthesized words, clean, μ-law and noisy (the noisy ones move a carried
    noise estimate the most), each with a short lead (a carried estimate matters most there)."""
    sounds = [padded(asterisk("digits/8"), 0.1, 0.6), padded(ulaw(asterisk("digits/0")), 0.3, 0.6),
              padded(with_noise(espeak("tango"), 8.0, seed=3), 0.1, 0.6),
              padded(with_noise(ulaw(espeak("tomorrow", "en-gb")), 5.0, seed=4), 0.2, 0.6),
              padded(espeak("hello there how are you"), 0.05, 0.6)]
    paths = []
    for i, pcm in enumerate(sounds):
        paths.append(tmp_path / f"u{i}.wav")
        write_wav(paths[-1], np.asarray(pcm, np.int16), 8000)
    return paths


def _ours(backend: SphinxBackend, paths: list[Path]) -> dict[Path, Answer]:
    grammar = parse_grammar_spec(GRAMMAR)
    out = {}
    for path in paths:
        r = recognize_file(path, grammar, backend, AsrOptions())
        out[path] = (r.text, r.choice, r.confidence, r.outcome)
    return out


@needs_sounds
@needs_espeak
def test_ours_answers_the_same_in_any_order_and_in_a_fresh_process(tmp_path: Path) -> None:
    paths = _files(tmp_path)
    backend = SphinxBackend(DecoderPool())  # one pooled decoder serves every utterance
    forward = _ours(backend, paths)
    backward = _ours(backend, paths[::-1])
    assert backend.pool.created == 1
    assert forward == backward
    run = subprocess.run([sys.executable, "-c", FRESH, GRAMMAR, *map(str, paths)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    fresh = {p: tuple(a) for p, a in zip(paths, json.loads(run.stdout), strict=True)}
    assert fresh == forward
    # Something was heard: the test would pass vacuously on five no-matches.
    assert sum(a[3] == "match" for a in forward.values()) >= 2


@needs_sounds
@needs_espeak
def test_the_reference_answers_the_same_in_any_order(tmp_path: Path) -> None:
    from ivr.media.wav import load_8k_mono

    paths = _files(tmp_path)
    grammar = parse_grammar_spec(GRAMMAR)
    pcm = {p: load_8k_mono(p) for p in paths}

    def answer(ref: object, path: Path) -> tuple[str, int]:
        """The text and the best path's score (the score moves before the text does)."""
        text = ref.recognize(pcm[path], grammar).text  # type: ignore[attr-defined]
        hyp = ref.decoder(grammar).hyp()  # type: ignore[attr-defined]
        return text, hyp.score if hyp is not None else 0

    first = load_bench("reference").Reference()
    forward = {p: answer(first, p) for p in paths}
    backward = {p: answer(first, p) for p in paths[::-1]}
    fresh = {p: answer(load_bench("reference").Reference(), p) for p in paths}
    assert forward == backward == fresh
    assert sum(bool(a[0]) for a in forward.values()) >= 3
