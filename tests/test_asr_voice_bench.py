"""The multi-voice bench's counting (bench/asr/voice_bench.py) on known outcomes."""

from __future__ import annotations

from asr_helpers import load_bench

from ivr.asr.evaluate import ItemResult, ManifestItem
from ivr.asr.offline import FileResult

DATE = "march | may | today"


def item(expected: str | None, source: str = "festival-ked", cond: str = "clean") -> ManifestItem:
    return ManifestItem(id=f"{source}-{expected}-{cond}", audio=f"heldout/audio/x-{cond}.wav",
                        grammar=DATE, kind="oog" if expected is None else "command",
                        condition=cond, expected=expected, source=source)


def said(it: ManifestItem, choice: str | None, confidence: float = 0.9) -> ItemResult:
    outcome = "match" if choice is not None else "nomatch"
    return ItemResult(it, FileResult("x.wav", choice or "", choice, confidence,
                                     outcome, None, None, None, 2.0, 0.1, "t"))  # type: ignore[arg-type]


def test_cells_count_right_confident_wrong_and_false_accepts() -> None:
    vb = load_bench("voice_bench")
    march, may, oog = item("march"), item("may"), item(None)
    pairs = [
        (said(march, "march"), said(march, "march")),
        (said(march, "may", 0.5), said(march, "today")),  # at the threshold: confident-wrong
        (said(may, "today", 0.49), said(may, "may")),  # under it: the flow would confirm
        (said(may, None), said(may, "march")),  # ours rejected, the reference acted
        (said(oog, None), said(oog, "today")),
        (said(oog, "may", 0.3), said(oog, None)),  # a false accept at any confidence
        (ItemResult(march, error="OSError"), said(march, "march")),  # in no rate
    ]
    cell = vb.Cell()
    for ours, ref in pairs:
        cell.add(ours, ref)
    assert (cell.n, cell.ours_ok, cell.ref_ok) == (4, 1, 2)
    assert (cell.ours_cw, cell.ref_cw) == (1, 2)
    assert (cell.oog, cell.ours_fa, cell.ref_fa) == (2, 1, 1)
    assert cell.errors == 1
    assert vb.cell_cells(cell) == "4 | **0.250** | 0.500 | 0.250 | 0.500 | 2 | 0.500 | 0.500"


def test_groups_follow_the_voice_split() -> None:
    vb = load_bench("voice_bench")
    assert vb.group_of(said(item("may"), "may")) == "held-out: Festival"
    assert vb.group_of(said(item("may", "asterisk-allison"), "may")) == "tuning: recorded"
    assert vb.grammar_size(DATE) == 3
