"""The reference recognizer: plain PocketSphinx, as a new user would run it, with no tuning.

Same acoustic model and dictionary as ivr's backend (the ones in the PocketSphinx wheel), the
item's grammar written as JSGF (:func:`jsgf`: one alternative per phrase), the default decoder
settings, and nothing of ivr's front end: the 8 kHz recording is upsampled to the model's
16 kHz (band-limited, :func:`ivr.media.wav.resample`) and decoded in one go. There is no
rejection: whatever best path the grammar allows is the answer, and it always acts on it (its
``confidence`` is reported as 1.0), so every wrong answer counts as a confident one and every
out-of-grammar utterance that yields a phrase as a false accept. Only an empty hypothesis (the
decoder found no path to the grammar's end) is a ``nomatch``.

The results are :class:`ivr.asr.evaluate.ItemResult` (backend ``reference``), so
:mod:`ivr.asr.metrics` and the bench tables treat both recognizers alike.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr.asr.base import Grammar  # noqa: E402
from ivr.asr.evaluate import ItemResult, ManifestItem  # noqa: E402
from ivr.asr.grammar import normalise_phrase  # noqa: E402
from ivr.asr.offline import FileResult  # noqa: E402
from ivr.asr.spec import GrammarSpecError, parse_grammar_spec  # noqa: E402
from ivr.asr.sphinx import forget_noise  # noqa: E402
from ivr.media.wav import WavError, load_8k_mono, resample, to_int16  # noqa: E402

NAME = "reference"
MODEL_RATE = 16000
_ALT = re.compile(r"\(\d+\)$")  # PocketSphinx marks alternative pronunciations "word(2)"


def jsgf(grammar: Grammar) -> str:
    """``grammar``'s phrases as a JSGF grammar (public rule ``<g>``, one alternative a phrase).

    Raises:
        ValueError: a built-in grammar (yes/no, digits, amounts): the reference takes phrases only.
    """
    if grammar.builtin is not None:
        raise ValueError(f"the reference takes phrase grammars only, not @{grammar.builtin}")
    alternatives = list(dict.fromkeys(" ".join(normalise_phrase(p))
                                      for phrases in grammar.choices.values() for p in phrases))
    if not alternatives or not all(alternatives):
        raise ValueError("the grammar has no phrase")
    return "#JSGF V1.0;\ngrammar g;\npublic <g> = " + " | ".join(alternatives) + " ;\n"


def choice_of(grammar: Grammar, words: str) -> str | None:
    """The choice key whose phrase the decoder's words spell, or None."""
    said = " ".join(_ALT.sub("", w) for w in words.split())
    for key, phrases in grammar.choices.items():
        if any(" ".join(normalise_phrase(p)) == said for p in phrases):
            return key
    return None


class Reference:
    """One plain PocketSphinx decoder per grammar, made on first use and reused (each file is
    decoded as by a freshly loaded decoder)."""

    def __init__(self, model_dir: Path | None = None) -> None:
        import pocketsphinx

        self.model_dir = model_dir or Path(pocketsphinx.get_model_path()) / "en-us"
        self._decoders: dict[str, object] = {}
        self._cmn: dict[str, str] = {}  # each decoder's cepstral mean as loaded

    def decoder(self, grammar: Grammar) -> object:
        """The decoder for ``grammar`` (its JSGF loaded as the only search)."""
        key = grammar.key()
        if key not in self._decoders:
            import pocketsphinx

            with tempfile.TemporaryDirectory(prefix="asr-ref-") as tmp:
                path = Path(tmp) / "g.gram"
                path.write_text(jsgf(grammar), "utf-8")
                config = pocketsphinx.Config(hmm=str(self.model_dir / "en-us"),
                                             dict=str(self.model_dir / "cmudict-en-us.dict"),
                                             jsgf=str(path), lm=None, loglevel="FATAL")
                try:
                    decoder = pocketsphinx.Decoder(config)
                except RuntimeError as exc:  # a word not in the dictionary, most often
                    raise ValueError(f"PocketSphinx refused the grammar: {exc}") from None
            self._decoders[key] = decoder
            self._cmn[key] = decoder.get_cmn()
        return self._decoders[key]

    def recognize(self, pcm: NDArray[np.int16], grammar: Grammar, path: str = "") -> FileResult:
        """Decode 8 kHz mono ``pcm`` with ``grammar``; the answer as a :class:`FileResult`."""
        started = time.perf_counter()
        decoder = self.decoder(grammar)
        wide = to_int16(resample(pcm.astype(np.float64) / 32768.0, 8000, MODEL_RATE))
        # PocketSphinx carries two things into the next utterance: its noise estimate (the
        # model's feat.params turn remove_noise on; only start_stream forgets it) and its live
        # cepstral mean. Reset both, so every file is decoded as by a freshly loaded decoder.
        forget_noise(decoder)
        decoder.set_cmn(self._cmn[grammar.key()])  # type: ignore[attr-defined]
        decoder.start_utt()  # type: ignore[attr-defined]
        decoder.process_raw(wide.tobytes(), False, True)  # type: ignore[attr-defined]
        decoder.end_utt()  # type: ignore[attr-defined]
        hyp = decoder.hyp()  # type: ignore[attr-defined]
        text = hyp.hypstr if hyp is not None else ""
        choice = choice_of(grammar, text) if text else None
        elapsed = time.perf_counter() - started
        return FileResult(path=path, text=text, choice=choice,
                          confidence=1.0 if choice is not None else 0.0,
                          outcome="match" if choice is not None else "nomatch",
                          speech_start=None, speech_end=None, decided_at=None,
                          audio_seconds=pcm.size / 8000, decode_seconds=elapsed, backend=NAME)

    def run(self, item: ManifestItem, root: Path) -> ItemResult:
        """Recognise one manifest item (an error result, never a pass, when it cannot run)."""
        try:
            grammar = parse_grammar_spec(item.grammar, item.language)
            pcm = load_8k_mono(root / item.audio)
            return ItemResult(item, self.recognize(pcm, grammar, item.audio))
        except (GrammarSpecError, WavError, OSError, ValueError) as exc:
            return ItemResult(item, error=f"{type(exc).__name__}: {exc}")


_worker: Reference | None = None


def _init() -> None:
    global _worker
    _worker = Reference()


def _run(job: tuple[ManifestItem, Path]) -> ItemResult:
    assert _worker is not None
    return _worker.run(*job)


def run_reference(items: Sequence[ManifestItem], root: Path, jobs: int = 1) -> list[ItemResult]:
    """Every item through the reference, in ``jobs`` processes; results in the items' order."""
    work = [(item, root) for item in items]
    if jobs <= 1 or len(work) < 2:
        ref = Reference()
        return [ref.run(*job) for job in work]
    chunk = max(1, min(32, len(work) // (jobs * 4)))
    with ProcessPoolExecutor(jobs, initializer=_init) as pool:
        results: Iterable[ItemResult] = pool.map(_run, work, chunksize=chunk)
        return list(results)
