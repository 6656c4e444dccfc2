"""Metrics of an evaluation run (:mod:`ivr.asr.evaluate`), overall and per group.

Over the items that ran (items that could not run are counted apart, never as passes):

* accuracy: in-grammar items (every kind but ``oog``) that matched the expected choice;
* digit error rate: for digit strings, the edit distance between the delivered digits (the
  matched value; nothing when rejected) and the reference, over the reference length;
* false accept: out-of-grammar items that matched anything; false reject: in-grammar items
  that got ``nomatch`` or ``nospeech``;
* end-of-speech latency: ``decided_at - speech_end`` (it includes the end-silence window);
* decided in the audio: of the items decided (match or no-match), those decided before the
  recording's end, i.e. without the help of the digital silence appended after it; in noise
  this says whether the endpointer finds the end of speech at all (a call's noise never stops);
* real-time factor: decode time over audio time, summed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ivr.asr.evaluate import ItemResult


@dataclass(frozen=True)
class Metrics:
    """The figures of one group of results (``None``: the group has no such items)."""

    items: int  # items that ran
    errors: int  # items that could not run (not in any rate)
    in_grammar: int
    correct: int
    accuracy: float | None
    false_rejects: int
    false_reject_rate: float | None
    oog: int
    false_accepts: int
    false_accept_rate: float | None
    digit_strings: int
    digit_error_rate: float | None
    latency_p50: float | None  # seconds, decided_at - speech_end
    latency_p95: float | None
    decided: int  # items with a match or no-match
    decided_in_audio: int  # ... decided before the recording's end
    decided_in_audio_rate: float | None
    audio_seconds: float
    decode_seconds: float
    rtf: float | None

    def to_json(self) -> dict[str, object]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (substitutions, insertions and deletions all cost 1)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def compute_metrics(results: Sequence[ItemResult]) -> Metrics:
    """The metrics of ``results`` (see the module docstring)."""
    ran = [r for r in results if r.result is not None]
    grammar = [r for r in ran if r.in_grammar]
    oog = [r for r in ran if not r.in_grammar]
    correct = sum(r.correct for r in grammar)
    rejects = sum(r.rejected for r in grammar)
    accepts = sum(not r.rejected for r in oog)
    strings = [r for r in ran if r.item.kind == "digits"]
    ref_len = sum(len(r.item.expected or "") for r in strings)
    errors = sum(edit_distance(_delivered(r), r.item.expected or "") for r in strings)
    latencies = [lat for lat in (r.latency for r in ran) if lat is not None]
    decided = [r.result for r in ran if r.result and r.result.decided_at is not None]
    in_audio = sum(1 for d in decided if (d.decided_at or 0.0) <= d.audio_seconds)
    audio = math.fsum(r.result.audio_seconds for r in ran if r.result)
    decode = math.fsum(r.result.decode_seconds for r in ran if r.result)
    p50, p95 = (np.percentile(latencies, [50, 95]).tolist() if latencies else (None, None))
    return Metrics(
        items=len(ran), errors=len(results) - len(ran), in_grammar=len(grammar),
        correct=correct, accuracy=_rate(correct, len(grammar)),
        false_rejects=rejects, false_reject_rate=_rate(rejects, len(grammar)),
        oog=len(oog), false_accepts=accepts, false_accept_rate=_rate(accepts, len(oog)),
        digit_strings=len(strings), digit_error_rate=_rate(errors, ref_len),
        latency_p50=p50, latency_p95=p95, decided=len(decided), decided_in_audio=in_audio,
        decided_in_audio_rate=_rate(in_audio, len(decided)),
        audio_seconds=audio, decode_seconds=decode,
        rtf=decode / audio if audio > 0 else None,
    )  # fmt: skip


def _delivered(r: ItemResult) -> str:
    """The digits the application received: the matched value, nothing when rejected."""
    res = r.result
    if res is None or res.outcome != "match" or res.choice is None:
        return ""
    return "".join(c for c in res.choice if c.isdigit())


def group_by(results: Sequence[ItemResult],
             key: Callable[[ItemResult], str]) -> dict[str, list[ItemResult]]:
    """``results`` split by ``key`` (groups in first-seen order)."""
    groups: dict[str, list[ItemResult]] = {}
    for r in results:
        groups.setdefault(key(r), []).append(r)
    return groups


@dataclass(frozen=True)
class Summary:
    """Metrics overall, per condition, per kind, and per condition and kind."""

    overall: Metrics
    by_condition: dict[str, Metrics]
    by_kind: dict[str, Metrics]
    by_condition_kind: dict[str, dict[str, Metrics]]
    backends: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]  # (item id, reason)

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_json(),
            "by_condition": {k: m.to_json() for k, m in self.by_condition.items()},
            "by_kind": {k: m.to_json() for k, m in self.by_kind.items()},
            "by_condition_kind": {c: {k: m.to_json() for k, m in kinds.items()}
                                  for c, kinds in self.by_condition_kind.items()},
            "backends": list(self.backends),
            "errors": [{"id": i, "error": e} for i, e in self.errors],
        }


def summarize(results: Sequence[ItemResult]) -> Summary:
    """Every grouping of ``results`` that the report shows."""
    def cond(r: ItemResult) -> str:
        return r.item.condition

    def kind(r: ItemResult) -> str:
        return r.item.kind

    by_cond = group_by(results, cond)
    return Summary(
        overall=compute_metrics(results),
        by_condition={c: compute_metrics(rs) for c, rs in by_cond.items()},
        by_kind={k: compute_metrics(rs) for k, rs in group_by(results, kind).items()},
        by_condition_kind={c: {k: compute_metrics(g) for k, g in group_by(rs, kind).items()}
                           for c, rs in by_cond.items()},
        backends=tuple(sorted({r.result.backend for r in results if r.result is not None})),
        errors=tuple((r.item.id, r.error or "") for r in results if r.result is None),
    )


def format_table(summary: Summary) -> str:
    """A plain-text table of the summary: one row overall, per condition and per kind."""
    head = (f"{'group':<16}{'items':>6}{'acc':>7}{'DER':>7}{'FA':>7}{'FR':>7}"
            f"{'lat50':>7}{'lat95':>7}{'RTF':>7}")
    rows = [head, "-" * len(head), _row("all", summary.overall)]
    rows += [_row(f"condition {c}", m) for c, m in summary.by_condition.items()]
    rows += [_row(f"kind {k}", m) for k, m in summary.by_kind.items()]
    if summary.overall.errors:
        rows.append(f"{summary.overall.errors} item(s) could not run (not counted)")
    return "\n".join(rows)


def _row(name: str, m: Metrics) -> str:
    def f(x: float | None, digits: int = 3) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    return (f"{name:<16}{m.items:>6}{f(m.accuracy):>7}{f(m.digit_error_rate):>7}"
            f"{f(m.false_accept_rate):>7}{f(m.false_reject_rate):>7}{f(m.latency_p50, 2):>7}"
            f"{f(m.latency_p95, 2):>7}{f(m.rtf):>7}")


def result_lines(results: Sequence[ItemResult]) -> str:
    """Per-item results as JSON Lines."""
    return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in results)

