"""Evaluating a recognizer on a labelled set: the manifest, running it, and the metrics.

A manifest is JSON Lines, one utterance per line (blank lines and lines starting with ``#`` are
skipped)::

    {"id": "cmd-0007-ulaw", "audio": "audio/cmd-0007-ulaw.wav", "grammar": "balance | agent",
     "language": "en", "expected": "balance", "kind": "command", "condition": "ulaw",
     "source": "espeak:en-gb+f2:175", "speech_end": 1.62, "text": "balance"}

``audio`` is relative to the manifest's folder; ``grammar`` is a spec
(:mod:`ivr.asr.spec`); ``expected`` is the choice key (commands), the digit or digit string,
``yes``/``no``, or null for out-of-grammar speech (kind ``oog``). ``kind`` is one of
:data:`KINDS`, ``condition`` one of ``clean``, ``ulaw``, ``snr<dB>``. ``speech_end`` (seconds
into the file where the speech ends, when the set's builder knows it) gives the end-of-speech
latency; ``id`` defaults to ``audio`` and ``text`` (what is said) is for people.

The metrics are in :mod:`ivr.asr.metrics`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ivr.asr.backends import DEFAULT_MODELS_DIR, get_backend
from ivr.asr.base import AsrError, AsrOptions, Backend, Grammar
from ivr.asr.spec import GrammarSpecError, parse_grammar_spec

if TYPE_CHECKING:
    from ivr.asr.offline import FileResult

Kind = Literal["command", "digit", "digits", "yes_no", "oog"]
KINDS: tuple[Kind, ...] = ("command", "digit", "digits", "yes_no", "oog")
_REQUIRED = ("audio", "grammar", "kind", "condition")


class ManifestError(ValueError):
    """A manifest line that is not a valid item (the message names file and line)."""


@dataclass(frozen=True)
class ManifestItem:
    """One labelled utterance."""

    id: str
    audio: str
    grammar: str
    kind: Kind
    condition: str
    expected: str | None = None
    language: str = "en"
    source: str = ""
    speech_end: float | None = None
    text: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def parse_item(data: object, where: str = "<item>") -> ManifestItem:
    """A manifest item from one decoded JSON line.

    Raises:
        ManifestError: a missing or unknown key, a value of the wrong type, an unknown kind or
            condition, ``expected`` null on an in-grammar item (or set on an ``oog`` one), or a
            grammar spec that does not parse.
    """
    if not isinstance(data, dict):
        raise ManifestError(f"{where}: an item must be a JSON object")
    known = {f.name for f in fields(ManifestItem)}
    unknown = sorted(set(data) - known)
    missing = [k for k in _REQUIRED if k not in data]
    if unknown or missing:
        problems = [f"unknown key {k!r}" for k in unknown] + [f"missing {k!r}" for k in missing]
        raise ManifestError(f"{where}: {', '.join(problems)}")
    for key in ("audio", "grammar", "kind", "condition", "language", "source", "text", "id"):
        if key in data and not isinstance(data[key], str):
            raise ManifestError(f"{where}: {key!r} must be a string")
    item = ManifestItem(**{**data, "id": data.get("id") or data["audio"]})
    _check_item(item, where)
    return item


def _check_item(item: ManifestItem, where: str) -> None:
    if item.kind not in KINDS:
        raise ManifestError(f"{where}: kind {item.kind!r} is not one of {', '.join(KINDS)}")
    if not is_condition(item.condition):
        raise ManifestError(f"{where}: condition {item.condition!r} is not clean, ulaw or "
                            "snr<dB> (snr15, snr5)")
    if item.expected is not None and not isinstance(item.expected, str):
        raise ManifestError(f"{where}: 'expected' must be a string or null")
    if (item.expected is None) != (item.kind == "oog"):
        raise ManifestError(f"{where}: 'expected' is null exactly for kind 'oog' items")
    if item.kind == "digits" and not (item.expected or "").isdigit():
        raise ManifestError(f"{where}: a 'digits' item expects a digit string")
    end = item.speech_end
    if end is not None and (isinstance(end, bool) or not isinstance(end, int | float)):
        raise ManifestError(f"{where}: 'speech_end' must be a number of seconds or null")
    try:
        parse_grammar_spec(item.grammar, item.language)
    except GrammarSpecError as exc:
        raise ManifestError(f"{where}: grammar: {exc}") from None


def is_condition(name: str) -> bool:
    """``clean``, ``ulaw`` or ``snr<dB>``."""
    return name in ("clean", "ulaw") or (name.startswith("snr") and name[3:].isdigit())


def load_manifest(path: Path) -> list[ManifestItem]:
    """Every item of a manifest file.

    Raises:
        ManifestError: unreadable file, bad JSON, a bad item or a repeated id.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    items: list[ManifestItem] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: not JSON: {exc.msg}") from None
        item = parse_item(data, where)
        if item.id in seen:
            raise ManifestError(f"{where}: id {item.id!r} appears twice")
        seen.add(item.id)
        items.append(item)
    return items


def write_manifest(path: Path, items: Iterable[ManifestItem]) -> None:
    """Write ``items`` as JSON Lines (UTF-8, one object a line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(i.to_json(), ensure_ascii=False) + "\n" for i in items)
    path.write_text(text, encoding="utf-8")


# --- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    """An item and what the recognizer made of it (``error`` when it could not run)."""

    item: ManifestItem
    result: FileResult | None = None
    error: str | None = None

    @property
    def in_grammar(self) -> bool:
        return self.item.kind != "oog"

    @property
    def correct(self) -> bool:
        r = self.result
        return (r is not None and r.outcome == "match" and self.in_grammar
                and _same(r.choice, self.item.expected))

    @property
    def rejected(self) -> bool:
        return self.result is not None and self.result.outcome != "match"

    @property
    def latency(self) -> float | None:
        r, end = self.result, self.item.speech_end
        if r is None or r.decided_at is None or end is None:
            return None
        return r.decided_at - end

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"item": self.item.to_json()}
        if self.result is not None:
            out["result"] = self.result.to_json()
            out["correct"] = self.correct
        if self.error is not None:
            out["error"] = self.error
        return out


def _same(choice: str | None, expected: str | None) -> bool:
    return choice is not None and expected is not None and (
        choice.strip().lower() == expected.strip().lower())


@dataclass(frozen=True)
class RunSettings:
    """How items are recognised: backend name (``auto``, ``pocketsphinx``, ``vosk``), models
    folder, endpointing, the silence appended after each file, and whether the live calls'
    speech gate runs ahead of the recognizer (:mod:`ivr.asr.offline`)."""

    backend: str = "auto"
    models_dir: Path = DEFAULT_MODELS_DIR
    options: AsrOptions = field(default_factory=AsrOptions)
    trailing_silence: float = 1.0
    gate: bool = False


class _Recognizer:
    """Backends and grammars, made once per process and reused for every item."""

    def __init__(self, settings: RunSettings) -> None:
        self.settings = settings
        self._backends: dict[str, Backend] = {}

    def backend(self, language: str) -> Backend:
        if language not in self._backends:
            s = self.settings
            self._backends[language] = get_backend(s.backend, language, s.models_dir)
        return self._backends[language]

    def run(self, item: ManifestItem, root: Path) -> ItemResult:
        from ivr.asr.offline import recognize_file

        s = self.settings
        try:
            grammar = _grammar(item.grammar, item.language)
            result = recognize_file(root / item.audio, grammar, self.backend(item.language),
                                    s.options, s.trailing_silence, s.gate)
        except (AsrError, GrammarSpecError, OSError, ValueError) as exc:
            # One unreadable file or missing model must not stop the run; it is counted as an
            # error, never as a pass.
            return ItemResult(item, error=f"{type(exc).__name__}: {exc}")
        return ItemResult(item, result)


@functools.lru_cache(maxsize=256)
def _grammar(spec: str, language: str) -> Grammar:
    return parse_grammar_spec(spec, language)


_worker: _Recognizer | None = None


def _init_worker(settings: RunSettings) -> None:
    global _worker
    _worker = _Recognizer(settings)


def _run_in_worker(job: tuple[ManifestItem, Path]) -> ItemResult:
    assert _worker is not None
    return _worker.run(*job)


def run_items(items: Sequence[ManifestItem], root: Path, settings: RunSettings = RunSettings(),
              jobs: int = 1,
              progress: Callable[[int, int], None] | None = None) -> list[ItemResult]:
    """Recognise every item (audio paths relative to ``root``), in ``jobs`` processes.

    Results come back in the items' order. ``progress(done, total)`` is called as items finish.
    """
    results: list[ItemResult] = []
    work = [(item, root) for item in items]
    if jobs <= 1 or len(items) < 2:
        recognizer = _Recognizer(settings)
        outputs: Iterable[ItemResult] = (recognizer.run(*job) for job in work)
        for result in outputs:
            results.append(result)
            if progress:
                progress(len(results), len(work))
        return results
    chunk = max(1, min(16, len(work) // (jobs * 4)))
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(settings,)) as pool:
        for result in pool.map(_run_in_worker, work, chunksize=chunk):
            results.append(result)
            if progress:
                progress(len(results), len(work))
    return results
