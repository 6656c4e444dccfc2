"""Choose the PocketSphinx backend's decision thresholds on the TUNING voices, by a stated rule.

The recognizer's decision (:mod:`ivr.asr.confidence`) compares the first pass's best path with a
rival pass's, per frame. This script

1. runs ivr's recognizer over ``var/asr-voices/tuning.jsonl`` (the tuning voices of the
   many-voice set; it refuses a held-out manifest) and keeps each item's :class:`Evidence`
   (cached in ``var/asr-voices/decision-evidence.jsonl``, keyed by the recognizer's source, so a
   second run with the same code only re-chooses);
2. chooses the constants by this rule, with groups = condition x grammar size over the tuning
   voices:

   - *rejection* (the first pass's floors ``floor_garbage``, ``floor_phrase`` and, on quiet
     lines, ``*_quiet`` with the point ``quiet_snr``; their rise with the log of the grammar's
     size ``floor_per_log_phrases``; the charge for slow speech ``pace``, ``pace_charge``): the
     thresholds that give the most right answers (at any confidence) while out-of-grammar
     speech is accepted in at most 8 % of items pooled and at most 10 % in every group
     (searched by pricing a false accept, then loosening one floor at a time,
     :func:`choose_rejection`);
   - *rescue* (``rescue``, ``rescue_snr``, ``rescue_share``, ``rescue_per_doubling``: when the
     first pass ended on the garbage path): the values that give the most right answers while
     the rescued out-of-grammar items stay at most :data:`MAX_RESCUE_FA_GROUP` of every group
     and the limits above still hold with them (:func:`choose_rescue`);
   - *confirmation* (``confirm_garbage``, ``confirm_phrase`` and the first pass's score's
     weights ``weight_garbage``, ``weight_phrase`` in ``margin + weight * score``, from a short
     list): the values that leave the most
     right answers at or above 0.5 while another phrase is accepted at or above 0.5 in at most
     1.5 % of in-grammar items pooled and at most 2 % in every group;

3. prints them with the tuning figures (before: the decision in use when the evidence was
   gathered; after: the chosen one) and writes them to ``ivr/asr/decision.json``, the one place
   the backend reads them from.

Run after any change to the front end, the decoder or the grammar's garbage path::

    nice .venv/bin/python bench/asr/tune_decision.py [--jobs 1] [--no-write] [--every N]

One core: about 8 minutes (collecting) plus about a minute (choosing). ``--every N`` takes
every N-th item for a quick look (and never writes).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr.asr.base import FRAME_SAMPLES, SAMPLE_RATE, AsrOptions, Final, NoMatch, NoSpeech  # noqa: E402
from ivr.asr.confidence import (  # noqa: E402
    CONFIRM,
    DECISION_FILE,
    NEVER,
    Constants,
    Evidence,
    decide,
    load_constants,
    seconds_per_phone,
)
from ivr.asr.evaluate import ManifestItem, load_manifest  # noqa: E402
from ivr.asr.spec import parse_grammar_spec  # noqa: E402

DEFAULT_MANIFEST = ROOT / "var" / "asr-voices" / "tuning.jsonl"
# Every group at 10 %: with one floor for every grammar and one price for every floor this
# cost a quarter of the right answers (0.41 vs 0.56 pooled, tuning voices); with floors that
# rise with the grammar's size, the slow-speech charge and the loosening pass it costs 67 of
# 4,472 (0.556 vs 0.571; docs/ASR.md, "Rejection and confidence").
MAX_FA_POOLED, MAX_FA_GROUP = 0.08, 0.10
MAX_CW_POOLED, MAX_CW_GROUP = 0.015, 0.02
# The grids searched (margins per frame, 1e-4 log units); NEVER = the case is always rejected.
FLOOR_GRID = np.arange(-80.0, -15.0, 1.0)  # the first pass's score per frame
RESCUE_GRID = np.concatenate([np.arange(-10.0, 40.01, 0.5), [NEVER]])
RESCUE_SNR_GRID = (10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0, NEVER)  # dB
SHARE_GRID = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DOUBLING_GRID = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
# Rescued out-of-grammar items per group, at most (a rescue is never confident, so false
# accepts are its only price; the goal is at most 10 % per group, floors included).
MAX_RESCUE_FA_GROUP = 0.05
QUIET_GRID = (20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 60.0, NEVER)  # dB; NEVER: one floor
PRICE_GRID = np.geomspace(0.05, 100.0, 120)  # right answers one false accept is worth
PACE_GRID = (0.0, 0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.18)  # seconds_per_phone free
PACE_CHARGE_GRID = (0.0, 50.0, 100.0, 200.0, 400.0)  # the charge per second per phone over
LOG_PHRASES_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # floors' rise per log of the grammar's size
WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)  # of the first pass's score in the confidence
# Sources whose change changes the evidence (the decision's own module and file do not).
SOURCES = ("sphinx.py", "rival.py", "rescue.py", "grammar.py", "denoise.py", "upsample.py",
           "endpoint.py", "adapt.py", "telephone_mllr.json")  # fmt: skip


@dataclass(frozen=True)
class Record:
    """One item's evidence (None: no speech, or a path of silence only: always a no-match)."""

    item: ManifestItem
    evidence: Evidence | None
    decode_seconds: float
    audio_seconds: float


def stamp() -> str:
    """A hash of the recognizer's sources: cached evidence is reused only while it matches."""
    h = hashlib.sha256()
    for name in SOURCES:
        path = ROOT / "ivr" / "asr" / name
        h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()[:16]


# --- collecting ----------------------------------------------------------------------------------


def evidence_for(item: ManifestItem, root: Path, backend: object) -> Record:
    """Run the streaming recognizer over one item (1 s of silence appended, as ``ivr asr
    eval`` does) and keep what its decision was made on."""
    from ivr.media.wav import load_8k_mono

    pcm = load_8k_mono(root / item.audio)
    padded = np.concatenate([pcm, np.zeros(SAMPLE_RATE, np.int16)])
    grammar = parse_grammar_spec(item.grammar, item.language)
    started = time.perf_counter()
    stream = backend.open(grammar, AsrOptions())  # type: ignore[attr-defined]
    decided = False
    for i in range(0, padded.size - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        events = stream.accept(padded[i : i + FRAME_SAMPLES])
        if any(isinstance(e, (Final, NoMatch, NoSpeech)) for e in events):
            decided = True
            break
    if not decided:
        stream.finish()
    elapsed = time.perf_counter() - started
    return Record(item, stream.evidence, elapsed, pcm.size / SAMPLE_RATE)


def _collect_shard(job: tuple[list[ManifestItem], Path]) -> list[Record]:
    from ivr.asr import sphinx

    sphinx.RESCUE_ALWAYS = True  # the rescue's evidence for every item, whatever decision.json
    backend = sphinx.SphinxBackend(full_evidence=True)  # and every item's rival pass
    return [evidence_for(item, job[1], backend) for item in job[0]]


def collect(items: Sequence[ManifestItem], root: Path, jobs: int) -> list[Record]:
    """Evidence for every item; ``jobs`` processes, each a fixed share (every N-th) in order,
    so a rerun with the same ``jobs`` gives the same evidence."""
    shards = [(list(items[k::jobs]), root) for k in range(jobs)]
    if jobs <= 1:
        parts = [_collect_shard(shards[0])]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            parts = list(pool.map(_collect_shard, shards))
    out: list[Record] = []
    for k in range(len(items)):
        out.append(parts[k % jobs][k // jobs])
    return out


def load_cache(path: Path, items: Sequence[ManifestItem], key: str) -> list[Record] | None:
    """The cached evidence when it covers exactly these items and this code."""
    if not path.is_file():
        return None
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    if len(rows) != len(items) or any(r["stamp"] != key for r in rows):
        return None
    out = []
    for item, row in zip(items, rows, strict=True):
        if row["id"] != item.id:
            return None
        ev = Evidence(**row["evidence"]) if row["evidence"] is not None else None
        out.append(Record(item, ev, row["decode_seconds"], row["audio_seconds"]))
    return out


def save_cache(path: Path, records: Sequence[Record], key: str) -> None:
    lines = [json.dumps({"id": r.item.id, "stamp": key, "decode_seconds": r.decode_seconds,
                         "audio_seconds": r.audio_seconds,
                         "evidence": r.evidence.to_json() if r.evidence else None})
             for r in records]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", "utf-8")


# --- choosing ------------------------------------------------------------------------------------


@dataclass
class Table:
    """Per item: its group, whether in grammar, its case and margin, and whether the phrase the
    case would accept is the expected one."""

    groups: list[tuple[str, int]]
    group: NDArray[np.int64]
    in_grammar: NDArray[np.bool_]
    case: NDArray[np.int64]  # 0 rival was garbage, 1 rival was a phrase, 2 garbage won, -1 none
    margin: NDArray[np.float64]
    score: NDArray[np.float64]  # the first pass's score per frame
    snr: NDArray[np.float64]  # the caller's loud syllables over the noise floor, dB
    right: NDArray[np.bool_]  # the phrase the case would accept is the expected one
    log_phrases: NDArray[np.float64]  # natural log of the grammar's number of phrases
    pace: NDArray[np.float64]  # confidence.seconds_per_phone (0: not measured)
    share: NDArray[np.float64]  # garbage won: share of the loud audio in the spotted phrase
    doublings: NDArray[np.float64]  # log2(phrases / 2): the grammar's size


def table(records: Sequence[Record]) -> Table:
    keys = sorted({(r.item.condition, len(r.item.grammar.split("|"))) for r in records})
    index = {k: i for i, k in enumerate(keys)}
    n = len(records)
    t = Table(keys, np.zeros(n, np.int64), np.zeros(n, bool), np.full(n, -1), np.zeros(n),
              np.zeros(n), np.zeros(n), np.zeros(n, bool), np.zeros(n), np.zeros(n), np.zeros(n),
              np.zeros(n))  # fmt: skip
    for i, r in enumerate(records):
        t.group[i] = index[(r.item.condition, len(r.item.grammar.split("|")))]
        t.in_grammar[i] = r.item.expected is not None
        ev = r.evidence
        if ev is None or ev.margin is None:
            continue
        if ev.garbage_won and ev.rival_choice is None:
            continue
        t.case[i] = 2 if ev.garbage_won else (0 if ev.garbage_rival else 1)
        t.margin[i] = ev.margin
        t.score[i] = ev.score
        t.snr[i] = ev.snr
        t.log_phrases[i] = np.log(max(ev.phrases, 1))
        t.pace[i] = seconds_per_phone(ev)
        t.share[i] = ev.rescue_share
        t.doublings[i] = np.log2(max(ev.phrases, 2) / 2)
        phrase = ev.rival_choice if ev.garbage_won else ev.choice
        t.right[i] = _same(phrase, r.item.expected)
    return t


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().lower() == b.strip().lower()


@dataclass(frozen=True)
class Rejection:
    """The rejection's constants (see :class:`ivr.asr.confidence.Constants`)."""

    floor_garbage: float
    floor_phrase: float
    quiet_snr: float
    floor_garbage_quiet: float
    floor_phrase_quiet: float
    floor_per_log_phrases: float = 0.0
    pace: float = NEVER
    pace_charge: float = 0.0


def fit(t: Table, pace: float, pace_charge: float) -> NDArray[np.float64]:
    """The first pass's score less the charge for slow speech (:func:`ivr.asr.confidence.fit`)."""
    return t.score - pace_charge * np.maximum(0.0, t.pace - pace)


def _buckets(t: Table, quiet_snr: float, per_log: float, score: NDArray[np.float64]
             ) -> list[tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]]:
    """(items, values, threshold grid) for each threshold the rejection chooses, in the order
    of :class:`Rejection`'s fields without ``quiet_snr``. The floors are compared with the
    fit (``score``) less ``per_log`` times the log of the grammar's size: the same as raising
    the floors by it."""
    quiet = t.snr >= quiet_snr
    score = score - per_log * t.log_phrases
    return [
        ((t.case == 0) & ~quiet, score, FLOOR_GRID),
        ((t.case == 1) & ~quiet, score, FLOOR_GRID),
        ((t.case == 0) & quiet, score, FLOOR_GRID),
        ((t.case == 1) & quiet, score, FLOOR_GRID),
    ]


def _bucket_counts(t: Table, sel: NDArray[np.bool_], values: NDArray[np.float64],
                   grid: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.int32]:
    """[threshold, group] counts of items in ``sel`` and ``mask`` with values >= threshold."""
    pick = sel & mask
    ok = values[pick][None, :] >= grid[:, None]
    out = np.zeros((grid.size, len(t.groups)), np.int32)
    for g in range(len(t.groups)):
        out[:, g] = ok[:, t.group[pick] == g].sum(axis=1)
    return out


# Per threshold: (grid, right answers per grid point, false accepts per [grid point, group]).
Counts = list[tuple[NDArray[np.float64], NDArray[np.int32], NDArray[np.int32]]]


def _within(counts: Counts, picks: Sequence[int], n_oog: NDArray[np.int64]) -> bool:
    """Whether the thresholds ``picks`` keep false accepts within the pooled and group limits."""
    fa = sum(f[k] for (_, _, f), k in zip(counts, picks, strict=True))
    return bool(np.sum(fa) <= MAX_FA_POOLED * n_oog.sum() and np.all(fa <= MAX_FA_GROUP * n_oog))


def _right(counts: Counts, picks: Sequence[int]) -> int:
    return int(sum(ok[k] for (_, ok, _), k in zip(counts, picks, strict=True)))


def _by_price(counts: Counts, n_oog: NDArray[np.int64]) -> list[int] | None:
    """The thresholds with the most right answers among those that maximise ``right - lam *
    false accepts`` on their own, for each price ``lam``; None when none is within limits."""
    best: tuple[int, list[int] | None] = (-1, None)
    for lam in PRICE_GRID:
        picks = [len(ok) - 1 - int(np.argmax((ok - lam * fa.sum(axis=1))[::-1]))
                 for _, ok, fa in counts]  # fmt: skip
        if _within(counts, picks, n_oog) and _right(counts, picks) > best[0]:
            best = (_right(counts, picks), picks)
    return best[1]


def _loosen(counts: Counts, picks: list[int], n_oog: NDArray[np.int64]) -> list[int]:
    """From ``picks``, loosen one threshold at a time, each time the move that gains the most
    right answers and stays within limits (one price for every threshold cannot spend the
    false accepts one group has left on the thresholds that group's items meet)."""
    picks = list(picks)
    while True:
        base = _right(counts, picks)
        move: tuple[int, int, int] = (0, -1, -1)  # (gain, threshold, grid point)
        for b, (_, ok, _) in enumerate(counts):
            for k in range(picks[b] - 1, -1, -1):
                trial = [*picks[:b], k, *picks[b + 1 :]]
                gain = int(ok[k] - ok[picks[b]])
                if gain > move[0] and _within(counts, trial, n_oog):
                    move = (gain, b, k)
        if move[1] < 0:
            return picks
        picks[move[1]] = move[2]
        assert _right(counts, picks) > base


def choose_rejection(t: Table) -> Rejection:
    """The rejection that gives the most right answers within the false-accept limits.

    For each charge for slow speech (:data:`PACE_GRID` x :data:`PACE_CHARGE_GRID`), rise of
    the floors with the log of the grammar's size (:data:`LOG_PHRASES_GRID`) and quiet-line
    point (:data:`QUIET_GRID`): the floors are
    first set by a price ``lam`` of a false accept (each threshold on its own maximises
    ``right - lam * false accepts``; ties: the stricter), then loosened one at a time while the
    limits hold (:func:`_loosen`). The most right answers wins (ties: fewer false accepts).
    """
    oog = ~t.in_grammar
    good = t.in_grammar & t.right
    n_oog = np.bincount(t.group[oog], minlength=len(t.groups))
    best: tuple[tuple[int, int], Rejection | None] = ((-1, 0), None)
    charges = [(NEVER, 0.0)] + [(p, w) for p in PACE_GRID for w in PACE_CHARGE_GRID if w > 0]
    for (pace, charge), per_log, quiet_snr in itertools.product(charges, LOG_PHRASES_GRID,
                                                                QUIET_GRID):  # fmt: skip
        buckets = _buckets(t, quiet_snr, per_log, fit(t, pace, charge))
        counts = [(grid, _bucket_counts(t, sel, v, grid, good).sum(axis=1),
                   _bucket_counts(t, sel, v, grid, oog)) for sel, v, grid in buckets]  # fmt: skip
        start = _by_price(counts, n_oog)
        if start is None:
            continue
        picks = _loosen(counts, start, n_oog)
        fa = int(sum(f[k].sum() for (_, _, f), k in zip(counts, picks, strict=True)))
        rank = (_right(counts, picks), -fa)
        if rank > best[0]:
            v = [float(grid[k]) for (grid, _, _), k in zip(counts, picks, strict=True)]
            best = (rank, Rejection(v[0], v[1], float(quiet_snr), v[2], v[3],
                                    float(per_log), float(pace), float(charge)))  # fmt: skip
    if best[1] is None:
        raise SystemExit("no thresholds keep false accepts within the limits")
    return best[1]


@dataclass(frozen=True)
class Rescue:
    """The rescue's constants (see :class:`ivr.asr.confidence.Constants`)."""

    rescue: float
    rescue_snr: float
    rescue_share: float
    rescue_per_doubling: float


def choose_rescue(t: Table, c: Constants) -> Rescue:
    """The rescue that gives the most right answers within the false-accept limits.

    Every combination of the grids is tried (for each, the lowest margin threshold within the
    limits): the rescued out-of-grammar items at most :data:`MAX_RESCUE_FA_GROUP` of each
    group, and with the false accepts the floors of ``c`` already let through, at most
    :data:`MAX_FA_POOLED` pooled and :data:`MAX_FA_GROUP` per group (or none added where the
    floors alone are over it). Ties: the highest margin threshold, then the first combination.
    """
    oog = ~t.in_grammar
    good = t.in_grammar & t.right
    n_oog = np.bincount(t.group[oog], minlength=len(t.groups))
    floors_fa = np.bincount(t.group[oog & accepted(t, c)], minlength=len(t.groups))
    best: tuple[int, Rescue] = (0, Rescue(NEVER, NEVER, 0.0, 0.0))
    for snr in RESCUE_SNR_GRID:
        for share in SHARE_GRID:
            sel = (t.case == 2) & (t.snr < snr) & (t.share >= share)
            for per in DOUBLING_GRID:
                values = t.margin - per * t.doublings
                right = _bucket_counts(t, sel, values, RESCUE_GRID, good).sum(axis=1)
                fa = _bucket_counts(t, sel, values, RESCUE_GRID, oog)
                total = fa + floors_fa[None, :]
                within = (np.all(fa <= MAX_RESCUE_FA_GROUP * n_oog, axis=1)
                          & np.all(total <= np.maximum(MAX_FA_GROUP * n_oog, floors_fa), axis=1)
                          & (total.sum(axis=1) <= MAX_FA_POOLED * n_oog.sum()))  # fmt: skip
                score = np.where(within, right, -1)
                k = len(score) - 1 - int(np.argmax(score[::-1]))  # ties: the higher threshold
                if score[k] > best[0]:
                    best = (int(score[k]), Rescue(float(RESCUE_GRID[k]), float(snr), share, per))
    return best[1]


def accepted(t: Table, c: Constants) -> NDArray[np.bool_]:
    """Items of cases 0 and 1 whose first pass clears its floor under ``c``."""
    quiet = t.snr >= c.quiet_snr
    floor = np.where(t.case == 0, np.where(quiet, c.floor_garbage_quiet, c.floor_garbage),
                     np.where(quiet, c.floor_phrase_quiet, c.floor_phrase))  # fmt: skip
    floor = floor + c.floor_per_log_phrases * t.log_phrases
    return (t.case >= 0) & (t.case <= 1) & (fit(t, c.pace, c.pace_charge) >= floor)


def _grid(values: NDArray[np.float64], size: int = 240) -> NDArray[np.float64]:
    """Candidate thresholds: the values' quantiles, and one over them all (confirm every one)."""
    if values.size == 0:
        return np.array([NEVER])
    return np.concatenate([np.unique(np.quantile(values, np.linspace(0.0, 1.0, size))), [NEVER]])


def choose_confirmation(t: Table, c: Constants) -> tuple[float, float, float, float]:
    """(confirm_garbage, confirm_phrase, weight_garbage, weight_phrase): most right answers at
    >= 0.5 within the confident-wrong limits, among items the rejection accepts; the confidence
    is measured on ``margin + weight * score`` (score: the first pass's per frame)."""
    n_in = np.bincount(t.group[t.in_grammar], minlength=len(t.groups))
    passed = accepted(t, c)
    wrong = t.in_grammar & ~t.right & passed
    right = t.in_grammar & t.right & passed
    score = fit(t, c.pace, c.pace_charge)
    best: tuple[int, tuple[float, float, float, float]] = (-1, (NEVER, NEVER, 0.0, 0.0))
    per_case = []
    for case in (0, 1):
        options = []
        for w in WEIGHT_GRID:
            values = t.margin + w * score
            grid = _grid(values[(t.case == case) & t.in_grammar & passed])
            sel = t.case == case
            options.append((w, grid, _bucket_counts(t, sel, values, grid, wrong),
                            _bucket_counts(t, sel, values, grid, right).sum(axis=1)))  # fmt: skip
        per_case.append(options)
    for w0, g0, cw0, sure0 in per_case[0]:
        for w1, g1, cw1, sure1 in per_case[1]:
            cw_all = cw0[:, None, :] + cw1[None, :, :]
            within = ((cw_all.sum(axis=2) <= MAX_CW_POOLED * n_in.sum())
                      & np.all(cw_all <= MAX_CW_GROUP * n_in, axis=2))  # fmt: skip
            score = np.where(within, sure0[:, None] + sure1[None, :], -1)
            if score.max() > best[0]:
                i, j = np.unravel_index(int(np.argmax(score)), score.shape)
                best = (int(score.max()), (float(g0[i]), float(g1[j]), float(w0), float(w1)))
    if best[0] < 0:
        raise SystemExit("no margins keep confident-wrong answers within the limits")
    return best[1]


# --- reporting -----------------------------------------------------------------------------------


def figures(records: Sequence[Record], c: Constants) -> dict[str, float]:
    """Pooled tuning figures under constants ``c`` (and the worst condition x grammar group)."""
    groups: dict[tuple[str, int], list[int]] = {}
    n = ok = sure = cw = oog = fa = 0
    for r in records:
        g = groups.setdefault((r.item.condition, len(r.item.grammar.split("|"))), [0, 0, 0, 0])
        choice, conf = outcome(r.evidence, c)
        if r.item.expected is None:
            oog += 1
            fa += choice is not None
            g[2] += 1
            g[3] += choice is not None
            continue
        n += 1
        ok += _same(choice, r.item.expected)
        sure += _same(choice, r.item.expected) and conf >= CONFIRM
        wrong = choice is not None and not _same(choice, r.item.expected) and conf >= CONFIRM
        cw += wrong
        g[0] += 1
        g[1] += wrong
    return {
        "accuracy": round(ok / max(n, 1), 4),
        "right_confident": round(sure / max(ok, 1), 4),
        "confident_wrong": round(cw / max(n, 1), 4),
        "confident_wrong_worst_group": round(max(g[1] / g[0] for g in groups.values() if g[0]), 4),
        "false_accept": round(fa / max(oog, 1), 4),
        "false_accept_worst_group": round(max(g[3] / g[2] for g in groups.values() if g[2]), 4),
        "in_grammar": n,
        "out_of_grammar": oog,
    }


def outcome(ev: Evidence | None, c: Constants) -> tuple[str | None, float]:
    """(accepted choice or None, confidence) as the backend decides with constants ``c``."""
    if ev is None or ev.margin is None:
        return None, 0.0
    accepted, confidence = decide(ev, c)
    if not accepted:
        return None, confidence
    return (ev.rival_choice if ev.garbage_won else ev.choice), confidence


def rtf(records: Sequence[Record]) -> float:
    return sum(r.decode_seconds for r in records) / max(sum(r.audio_seconds for r in records), 1e-9)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--every", type=int, default=1, help="every N-th item (a quick look)")
    ap.add_argument("--no-write", action="store_true", help="print, do not write decision.json")
    ap.add_argument("--out", type=Path, default=DECISION_FILE)
    args = ap.parse_args(argv)
    if "heldout" in args.manifest.name:
        raise SystemExit("thresholds are chosen on the tuning voices only")
    items = load_manifest(args.manifest)[:: max(1, args.every)]
    cache = args.manifest.with_name(
        "decision-evidence.jsonl" if args.every <= 1 else f"decision-evidence-{args.every}.jsonl")
    key = stamp()
    records = load_cache(cache, items, key)
    if records is None:
        print(f"collecting evidence over {len(items)} tuning items ...", flush=True)
        started = time.perf_counter()
        records = collect(items, args.manifest.parent, max(1, args.jobs))
        save_cache(cache, records, key)
        print(f"  {time.perf_counter() - started:.0f} s, decode RTF {rtf(records):.4f}",
              flush=True)  # fmt: skip
    before = load_constants(args.out)
    t = table(records)
    chosen = replace(before, **asdict(choose_rejection(t)))
    chosen = replace(chosen, **asdict(choose_rescue(t, chosen)))
    confirm_garbage, confirm_phrase, weight_garbage, weight_phrase = choose_confirmation(t, chosen)
    chosen = replace(chosen, confirm_garbage=confirm_garbage, confirm_phrase=confirm_phrase,
                     weight_garbage=weight_garbage, weight_phrase=weight_phrase)  # fmt: skip
    report = {"before": figures(records, before), "after": figures(records, chosen)}
    print(json.dumps({"constants": chosen.to_json(), **report}, indent=1))
    if args.every <= 1 and not args.no_write:
        body = {
            "chosen_by": "bench/asr/tune_decision.py (tuning voices only; rule in its docstring)",
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "items": len(records),
            "decode_rtf": round(rtf(records), 4),
            "constants": chosen.to_json(),
            "tuning": report["after"],
        }
        args.out.write_text(json.dumps(body, indent=1) + "\n", "utf-8")
        print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
