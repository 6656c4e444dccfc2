"""Writing a benchmark's generated section into a document between its two markers."""

from __future__ import annotations

from pathlib import Path


def replace_section(doc: Path, begin: str, end: str, section: str, heading: str) -> None:
    """Put ``section`` (which carries the markers) between ``begin`` and ``end`` in ``doc``; a
    document without them gets it appended under ``## heading``."""
    text = doc.read_text("utf-8") if doc.is_file() else "# Speech recognition\n"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n" + section + "\n"
    doc.write_text(text, "utf-8")
