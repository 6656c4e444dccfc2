"""Choose the PocketSphinx backend's decision thresholds on the TUNING voices, by a stated rule.

The recognizer's decision (:mod:`ivr.asr.confidence`) compares the first pass's best path with a
rival pass's, per frame. This script

1. runs ivr's recognizer over ``var/asr-voices/tuning.jsonl`` (the tuning voices of the
   many-voice set; it refuses a held-out manifest) and keeps each item's :class:`Evidence`
   (cached in ``var/asr-voices/decision-evidence.jsonl``, keyed by the recognizer's source, so a
   second run with the same code only re-chooses);
2. chooses the constants by this rule, with groups = condition x grammar size over the tuning
   voices:

   - *rejection* (``reject_garbage``, ``reject_phrase``, ``rescue``): the thresholds that give
     the most right answers (at any confidence) while out-of-grammar speech is accepted in at
     most 8 % of items pooled and at most 10 % in every group (ties: the stricter thresholds);
   - *confirmation* (``confirm_garbage``, ``confirm_phrase``): the margins that leave the most
     right answers at or above 0.5 while another phrase is accepted at or above 0.5 in at most
     1.5 % of in-grammar items pooled and at most 2 % in every group;

3. prints them with the tuning figures (before: the decision in use when the evidence was
   gathered; after: the chosen one) and writes them to ``ivr/asr/decision.json``, the one place
   the backend reads them from.

Run after any change to the front end, the decoder or the grammar's garbage path::

    nice .venv/bin/python bench/asr/tune_decision.py [--jobs 1] [--no-write] [--every N]

One core: about 8 minutes (collecting) plus seconds (choosing). ``--every N`` takes every N-th
item for a quick look (and never writes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
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
    Constants,
    Evidence,
    decide,
    load_constants,
)
from ivr.asr.evaluate import ManifestItem, load_manifest  # noqa: E402
from ivr.asr.spec import parse_grammar_spec  # noqa: E402

DEFAULT_MANIFEST = ROOT / "var" / "asr-voices" / "tuning.jsonl"
MAX_FA_POOLED, MAX_FA_GROUP = 0.08, 0.10
MAX_CW_POOLED, MAX_CW_GROUP = 0.015, 0.02
# The grids searched (margins per frame, 1e-4 log units); NEVER = the case is always rejected.
NEVER = 1e9
REJECT_GRID = np.arange(-10.0, 30.01, 0.5)
RESCUE_GRID = np.concatenate([np.arange(-10.0, 40.01, 0.5), [NEVER]])
CONFIRM_GRID = np.arange(-5.0, 40.01, 0.5)
# Sources whose change changes the evidence (the decision's own module and file do not).
SOURCES = ("sphinx.py", "rival.py", "grammar.py", "denoise.py", "upsample.py", "endpoint.py",
           "adapt.py", "telephone_mllr.json")  # fmt: skip


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
    from ivr.asr.sphinx import SphinxBackend

    backend = SphinxBackend()
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
    right: NDArray[np.bool_]  # the phrase the case would accept is the expected one


def table(records: Sequence[Record]) -> Table:
    keys = sorted({(r.item.condition, len(r.item.grammar.split("|"))) for r in records})
    index = {k: i for i, k in enumerate(keys)}
    n = len(records)
    t = Table(keys, np.zeros(n, np.int64), np.zeros(n, bool), np.full(n, -1), np.zeros(n),
              np.zeros(n, bool))  # fmt: skip
    for i, r in enumerate(records):
        t.group[i] = index[(r.item.condition, len(r.item.grammar.split("|")))]
        t.in_grammar[i] = r.item.expected is not None
        ev = r.evidence
        if ev is None or ev.margin is None:
            continue
        if ev.garbage_won and ev.rival_choice is None:
            continue
        t.case[i] = 2 if ev.garbage_won else (0 if ev.rival_garbage else 1)
        t.margin[i] = ev.margin
        phrase = ev.rival_choice if ev.garbage_won else ev.choice
        t.right[i] = _same(phrase, r.item.expected)
    return t


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().lower() == b.strip().lower()


def _counts(t: Table, case: int, grid: NDArray[np.float64], mask: NDArray[np.bool_]
            ) -> NDArray[np.int32]:
    """[threshold, group] counts of items of ``case`` and ``mask`` with margin >= threshold."""
    sel = (t.case == case) & mask
    ok = t.margin[sel][None, :] >= grid[:, None]
    out = np.zeros((grid.size, len(t.groups)), np.int32)
    for g in range(len(t.groups)):
        out[:, g] = ok[:, t.group[sel] == g].sum(axis=1)
    return out


def choose_rejection(t: Table) -> tuple[float, float, float]:
    """(reject_garbage, reject_phrase, rescue): most right answers within the false-accept
    limits; ties go to the stricter thresholds."""
    oog = ~t.in_grammar
    good = t.in_grammar & t.right
    n_oog = np.bincount(t.group[oog], minlength=len(t.groups))
    grids = (REJECT_GRID, REJECT_GRID, RESCUE_GRID)
    fa = [_counts(t, c, g, oog) for c, g in enumerate(grids)]
    ok = [_counts(t, c, g, good).sum(axis=1) for c, g in enumerate(grids)]
    fa_all = fa[0][:, None, None, :] + fa[1][None, :, None, :] + fa[2][None, None, :, :]
    within = ((fa_all.sum(axis=3) <= MAX_FA_POOLED * n_oog.sum())
              & np.all(fa_all <= MAX_FA_GROUP * n_oog, axis=3))  # fmt: skip
    right = ok[0][:, None, None] + ok[1][None, :, None] + ok[2][None, None, :]
    score = np.where(within, right, -1)
    best = score.max()
    if best < 0:
        raise SystemExit("no thresholds keep false accepts within the limits")
    # Ties: the largest (strictest) thresholds, searched from the end.
    flat = np.flatnonzero(score.ravel() == best)[-1]
    i, j, k = np.unravel_index(flat, score.shape)
    return float(REJECT_GRID[i]), float(REJECT_GRID[j]), float(RESCUE_GRID[k])


def choose_confirmation(t: Table, c: Constants) -> tuple[float, float]:
    """(confirm_garbage, confirm_phrase): most right answers at >= 0.5 within the
    confident-wrong limits, among items the rejection accepts."""
    n_in = np.bincount(t.group[t.in_grammar], minlength=len(t.groups))
    accepted = ((t.case == 0) & (t.margin >= c.reject_garbage)) | (
        (t.case == 1) & (t.margin >= c.reject_phrase))
    wrong = t.in_grammar & ~t.right & accepted
    right = t.in_grammar & t.right & accepted
    cw = [_counts(t, case, CONFIRM_GRID, wrong) for case in (0, 1)]
    sure = [_counts(t, case, CONFIRM_GRID, right).sum(axis=1) for case in (0, 1)]
    cw_all = cw[0][:, None, :] + cw[1][None, :, :]
    within = ((cw_all.sum(axis=2) <= MAX_CW_POOLED * n_in.sum())
              & np.all(cw_all <= MAX_CW_GROUP * n_in, axis=2))  # fmt: skip
    score = np.where(within, sure[0][:, None] + sure[1][None, :], -1)
    if score.max() < 0:
        raise SystemExit("no margins keep confident-wrong answers within the limits")
    flat = np.flatnonzero(score.ravel() == score.max())[-1]
    i, j = np.unravel_index(flat, score.shape)
    return float(CONFIRM_GRID[i]), float(CONFIRM_GRID[j])


# --- reporting -----------------------------------------------------------------------------------


def figures(records: Sequence[Record], c: Constants) -> dict[str, float]:
    """Pooled tuning figures under constants ``c`` (and the worst condition x grammar group)."""
    groups: dict[tuple[str, int], list[int]] = {}
    n = ok = cw = oog = fa = 0
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
        wrong = choice is not None and not _same(choice, r.item.expected) and conf >= CONFIRM
        cw += wrong
        g[0] += 1
        g[1] += wrong
    return {
        "accuracy": round(ok / max(n, 1), 4),
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
    reject_garbage, reject_phrase, rescue = choose_rejection(t)
    chosen = replace(before, reject_garbage=reject_garbage, reject_phrase=reject_phrase,
                     rescue=rescue)  # fmt: skip
    confirm_garbage, confirm_phrase = choose_confirmation(t, chosen)
    chosen = replace(chosen, confirm_garbage=confirm_garbage, confirm_phrase=confirm_phrase)
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
