"""The multi-voice benchmark: ivr's recognizer beside plain PocketSphinx, on voices it was not
tuned on, per voice group x condition x grammar size -> docs/ASR.md.

Builds the set (bench/asr/voice_set.py, into var/asr-voices/) when it is missing or stale, runs
every item of both splits through ivr's PocketSphinx backend (the streaming path of ``ivr asr
eval``) and through the reference (bench/asr/reference.py: plain PocketSphinx, same model, same
grammar as JSGF, no rejection), prints the tables and writes them into docs/ASR.md between the
``asr-voices`` markers. Per-item results are left in var/asr-voices/results-*.jsonl.

Run with ``make bench-asr`` or ``nice .venv/bin/python bench/asr/voice_bench.py [--small]
[--jobs 2] [--no-doc]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _path in (ROOT, HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import reference as rf  # noqa: E402
import voice_set as vs  # noqa: E402
import voices as vc  # noqa: E402
from docsection import replace_section  # noqa: E402

from ivr.asr.evaluate import (  # noqa: E402
    ItemResult,
    ManifestItem,
    RunSettings,
    load_manifest,
    parse_item,
    run_items,
)
from ivr.asr.metrics import result_lines  # noqa: E402
from ivr.asr.offline import FileResult  # noqa: E402

BEGIN, END = "<!-- asr-voices:begin -->", "<!-- asr-voices:end -->"
DOC = ROOT / "docs" / "ASR.md"
Pair = tuple[ItemResult, ItemResult]  # (ours, reference) for one item
# Issue 14's goals for the recognizer (checked on the held-out voices).
GOAL_CONFIDENT_WRONG = 0.02
GOAL_FALSE_ACCEPT = 0.10


@dataclass
class Cell:
    """Counts for one group of items, ours beside the reference."""

    n: int = 0  # in-grammar items
    ours_ok: int = 0
    ref_ok: int = 0
    ours_cw: int = 0  # another phrase accepted at or above the confirmation threshold
    ref_cw: int = 0
    oog: int = 0
    ours_fa: int = 0
    ref_fa: int = 0
    errors: int = 0

    def add(self, ours: ItemResult, ref: ItemResult) -> None:
        if ours.result is None or ref.result is None:
            self.errors += 1
            return
        if not ours.in_grammar:
            self.oog += 1
            self.ours_fa += ours.result.outcome == "match"
            self.ref_fa += ref.result.outcome == "match"
            return
        self.n += 1
        self.ours_ok += ours.correct
        self.ref_ok += ref.correct
        self.ours_cw += confident_wrong(ours)
        self.ref_cw += confident_wrong(ref)


def confident_wrong(r: ItemResult) -> bool:
    """Another phrase of the grammar accepted at or above the flows' confirmation threshold."""
    res = r.result
    return (res is not None and r.in_grammar and res.outcome == "match" and not r.correct
            and res.confidence >= vs.CONFIRM_THRESHOLD)


def grammar_size(spec: str) -> int:
    """How many phrases a grammar spec of the set holds."""
    return len(spec.split("|"))


def cells(pairs: Sequence[Pair], key: Callable[[ItemResult], tuple[str, ...]]
          ) -> dict[tuple[str, ...], Cell]:
    out: dict[tuple[str, ...], Cell] = {}
    for ours, ref in pairs:
        out.setdefault(key(ours), Cell()).add(ours, ref)
    return out


def group_of(r: ItemResult) -> str:
    voice = vc.by_id(r.item.source)
    return f"{'held-out' if voice.split == 'heldout' else 'tuning'}: {voice.family}"


# --- running -------------------------------------------------------------------------------------


def ensure_set(out: Path, small: bool, seed: int) -> dict[str, Path]:
    """The set's manifests by split, built first when missing or built with other settings."""
    stamp_path = out / "build.json"
    wanted = json.loads(json.dumps(vs.stamp(small, seed)))
    if stamp_path.is_file() and json.loads(stamp_path.read_text("utf-8")) == wanted:
        return {split: out / f"{split}.jsonl" for split in vs.SPLITS}
    print(f"building the multi-voice set in {out} ...", flush=True)
    started = time.perf_counter()
    manifests = vs.build(out, small, seed)
    print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
    return manifests


def _ours(job: tuple[list[ManifestItem], Path]) -> list[ItemResult]:
    return run_items(job[0], job[1], RunSettings("pocketsphinx"), 1)


def _reference(job: tuple[list[ManifestItem], Path]) -> list[ItemResult]:
    return rf.run_reference(job[0], job[1], 1)


def sharded(run: Callable[[tuple[list[ManifestItem], Path]], list[ItemResult]],
            items: Sequence[ManifestItem], root: Path, jobs: int) -> list[ItemResult]:
    """``run`` over fixed shards of ``items`` (every ``jobs``-th item), one process each.

    Fixed shards were needed while ivr's recognizer answered an utterance differently
    depending on what its process decoded before; both recognizers now reset the decoder's
    carried state per utterance (docs/ASR.md, *Repeatable runs*), so the shards are only a
    simple way to split the work.
    """
    shards = [list(items[i::jobs]) for i in range(max(1, jobs))]
    if len(shards) == 1:
        return run((shards[0], root))
    with ProcessPoolExecutor(len(shards)) as pool:
        parts = list(pool.map(run, [(shard, root) for shard in shards]))
    out: list[ItemResult] = [None] * len(items)  # type: ignore[list-item]
    for i, part in enumerate(parts):
        out[i::len(shards)] = part
    return out


def stored_reference(path: Path, items: Sequence[ManifestItem]) -> list[ItemResult] | None:
    """The reference's results of an earlier run, when they are for exactly ``items``.

    The reference has no setting of ours (and resets its decoder per file), so its answers do
    not change while the recognizer is tuned; re-reading them halves a tuning round.
    """
    if not path.is_file():
        return None
    results = []
    for line in path.read_text("utf-8").splitlines():
        data = json.loads(line)
        result = data.get("result")
        results.append(ItemResult(parse_item(data["item"]),
                                  FileResult(**result) if result else None, data.get("error")))
    if [r.item for r in results] != list(items):
        return None
    return results


def evaluate(manifest: Path, jobs: int, reuse_reference: bool = False) -> list[Pair]:
    """Every item of ``manifest`` through ours and through the reference."""
    items = load_manifest(manifest)
    root = manifest.parent
    print(f"{manifest.name}: {len(items)} items ...", flush=True)
    started = time.perf_counter()
    ours = sharded(_ours, items, root, jobs)
    middle = time.perf_counter()
    stored = root / f"results-reference-{manifest.stem}.jsonl"
    ref = (stored_reference(stored, items) if reuse_reference else None) or sharded(
        _reference, items, root, jobs)
    done = time.perf_counter()
    print(f"  ours {middle - started:.0f} s, reference {done - middle:.0f} s", flush=True)
    for name, results in (("ours", ours), ("reference", ref)):
        (root / f"results-{name}-{manifest.stem}.jsonl").write_text(result_lines(results),
                                                                    "utf-8")
    return list(zip(ours, ref, strict=True))


# --- tables --------------------------------------------------------------------------------------


def _rate(k: int, n: int) -> str:
    return "–" if n == 0 else f"{k / n:.3f}"


def _pair(ours: int, ref: int, n: int, higher_is_better: bool) -> tuple[str, str]:
    """Ours and the reference's rates; ours in bold where it is worse than the reference."""
    a, b = _rate(ours, n), _rate(ref, n)
    worse = n > 0 and (ours < ref if higher_is_better else ours > ref)
    return (f"**{a}**" if worse else a), b


def cell_cells(c: Cell) -> str:
    acc = _pair(c.ours_ok, c.ref_ok, c.n, True)
    cw = _pair(c.ours_cw, c.ref_cw, c.n, False)
    fa = _pair(c.ours_fa, c.ref_fa, c.oog, False)
    return (f"{c.n} | {acc[0]} | {acc[1]} | {cw[0]} | {cw[1]} | {c.oog} | {fa[0]} | {fa[1]}")


HEADER = ["in-grammar | accuracy ours | ref | confident-wrong ours | ref | oog | "
          "false accept ours | ref |", "---|---|---|---|---|---|---|---|"]


def group_table(pairs: Sequence[Pair]) -> list[str]:
    """Rows of condition x grammar size for one voice group."""
    by = cells(pairs, lambda r: (r.item.condition, str(grammar_size(r.item.grammar))))
    rows = ["| condition | phrases | " + HEADER[0], "|---|---|" + HEADER[1]]
    for cond in vs.CONDITIONS:
        for size in sorted({int(k[1]) for k in by if k[0] == cond}):
            rows.append(f"| {cond} | {size} | {cell_cells(by[(cond, str(size))])} |")
    return rows


def voice_table(pairs: Sequence[Pair]) -> list[str]:
    """One row per voice, every grammar and condition pooled."""
    by = cells(pairs, lambda r: (r.item.source,))
    rows = ["| voice | split | " + HEADER[0], "|---|---|" + HEADER[1]]
    for voice in vc.VOICES:
        if (voice.id,) in by:
            split = "held-out" if voice.split == "heldout" else "tuning"
            rows.append(f"| {voice.id} | {split} | {cell_cells(by[(voice.id,)])} |")
    return rows


def lead_table(pairs: dict[str, list[Pair]], leads: dict[str, float]) -> list[str]:
    """Split x condition x lead silence (short: under voice_set.SHORT_LEAD), grammars pooled."""
    def key(r: ItemResult) -> tuple[str, ...]:
        lead = leads[r.item.audio.rsplit("-", 1)[0]]
        return (r.item.condition, "short" if lead < vs.SHORT_LEAD else "long")

    rows = ["| split | condition | lead | " + HEADER[0], "|---|---|---|" + HEADER[1]]
    for split in vs.SPLITS:
        by = cells(pairs[split], key)
        label = "held-out" if split == "heldout" else "tuning"
        for cond in vs.CONDITIONS:
            for bucket in ("short", "long"):
                if (cond, bucket) in by:
                    rows.append(f"| {label} | {cond} | {bucket} | "
                                f"{cell_cells(by[(cond, bucket)])} |")
    return rows


def goal_rows(pairs: Sequence[Pair], label: str) -> list[str]:
    """Issue 14's goals for one split: every (voice, condition, grammar) cell, and pooled."""
    by = cells(pairs, lambda r: (r.item.source, r.item.condition, r.item.grammar))
    graded = [c for c in by.values() if c.n]
    beaten = sum(c.ours_ok >= c.ref_ok for c in graded)
    pooled = Cell()
    for ours, ref in pairs:
        pooled.add(ours, ref)
    worst_cw = max((c.ours_cw / c.n for c in graded), default=0.0)
    oog = [c for c in by.values() if c.oog]
    worst_fa = max((c.ours_fa / c.oog for c in oog), default=0.0)
    cw_ok = sum(c.ours_cw <= GOAL_CONFIDENT_WRONG * c.n for c in graded)
    fa_ok = sum(c.ours_fa <= GOAL_FALSE_ACCEPT * c.oog for c in oog)
    return [
        f"| {label} | accuracy ≥ reference's | {beaten} of {len(graded)} cells | "
        f"{_rate(pooled.ours_ok, pooled.n)} vs {_rate(pooled.ref_ok, pooled.n)} | – |",
        f"| {label} | confident-wrong ≤ {GOAL_CONFIDENT_WRONG:.0%} | {cw_ok} of {len(graded)} "
        f"cells | {_rate(pooled.ours_cw, pooled.n)} (reference "
        f"{_rate(pooled.ref_cw, pooled.n)}) | {worst_cw:.3f} |",
        f"| {label} | out-of-grammar accepted ≤ {GOAL_FALSE_ACCEPT:.0%} | {fa_ok} of {len(oog)} "
        f"cells | {_rate(pooled.ours_fa, pooled.oog)} (reference "
        f"{_rate(pooled.ref_fa, pooled.oog)}) | {worst_fa:.3f} |",
    ]


def render(pairs: dict[str, list[Pair]], meta: dict[str, str],
           leads: dict[str, float]) -> str:
    everything = [p for ps in pairs.values() for p in ps]
    errors = sum(1 for o, r in everything if o.result is None or r.result is None)
    voices = {split: ", ".join(v.id for v in vc.VOICES if v.split == split)
              for split in vs.SPLITS}
    lines = [
        BEGIN, "",
        f"Measured {meta['date']} on {meta['machine']} (load average {meta['load']} at the "
        f"start; the machine is shared), {meta['set']}: {len(everything)} items, "
        f"{errors} could not run (in no rate). Ours: ivr's PocketSphinx backend, end-of-speech "
        f"silence 0.8 s; ref: plain PocketSphinx (bench/asr/reference.py). Generated by "
        "`bench/asr/voice_bench.py`; do not edit by hand.", "",
        f"*Tuning voices*: {voices['tuning']}. *Held-out voices* (never used to choose a "
        f"threshold or parameter): {voices['heldout']}.", "",
        "### Against issue 14's goals", "",
        "A *cell* is one voice x condition x grammar. Accuracy: right phrase accepted (at any "
        "confidence; below 0.5 the flow would confirm). Confident-wrong: another phrase accepted "
        "at or above the flows' confirmation threshold (0.5), over in-grammar items. The "
        "reference has no rejection and no confidence: it acts on every answer.", "",
        "| split | goal | cells met | pooled, ours | worst cell, ours |",
        "|---|---|---|---|---|",
    ]
    for split in vs.SPLITS:
        lines += goal_rows(pairs[split], "held-out" if split == "heldout" else "tuning")
    lines += ["", "### Per voice (every condition and grammar pooled)", "",
              *voice_table(everything), ""]
    lines += ["### By the silence before the speech (every grammar pooled)", "",
              f"*Short*: the speech starts less than {vs.SHORT_LEAD} s into the recording "
              f"(drawn from {vs.LEAD[0]}-{vs.LEAD[1]} s); a caller who answers at once, or a "
              "recording cut tight.", "", *lead_table(pairs, leads), ""]
    lines += ["### Per voice group, condition and grammar size", "",
              "**Bold**: ours worse than the reference in that cell.", ""]
    groups = sorted({group_of(o) for o, _ in everything}, key=lambda g: (g[0] != "h", g))
    for group in groups:
        lines += [f"#### {group}", "", *group_table([p for p in everything
                                                    if group_of(p[0]) == group]), ""]
    return "\n".join([*lines, END])


def write_doc(section: str, doc: Path = DOC) -> None:
    """Replace the text between the markers of ``doc`` (or append the section)."""
    replace_section(doc, BEGIN, END, section, "Many voices: results")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=vs.DEFAULT_OUT)
    parser.add_argument("--small", action="store_true", help="the quick set")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="decoding processes")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/ASR.md alone")
    parser.add_argument("--split", choices=("both", *vs.SPLITS), default="both",
                        help="run one split only (tuning: what to tune on); implies --no-doc")
    parser.add_argument("--reuse-reference", action="store_true",
                        help="read the reference's results of the last run when they are for "
                             "the same items (it has no setting of ours to change them)")
    args = parser.parse_args(argv)
    load = f"{os.getloadavg()[0]:.1f}"
    started = time.perf_counter()
    manifests = ensure_set(args.out, args.small, args.seed)
    chosen = {split: path for split, path in manifests.items()
              if args.split in ("both", split)}
    pairs = {split: evaluate(path, args.jobs, args.reuse_reference)
             for split, path in chosen.items()}
    if args.split != "both":
        for split, split_pairs in pairs.items():
            print("\n".join(goal_rows(split_pairs, split)))
            print("\n".join(voice_table(split_pairs)))
        return 0
    meta = {"date": time.strftime("%Y-%m-%d"), "load": load,
            "machine": f"{platform.machine()} / Python {platform.python_version()}",
            "set": f"{'small' if args.small else 'full'} set (seed {args.seed})"}
    leads = json.loads((args.out / "leads.json").read_text("utf-8"))
    section = render(pairs, meta, leads)
    print(section)
    print(f"took {time.perf_counter() - started:.0f} s")
    if not args.no_doc:
        write_doc(section)
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
