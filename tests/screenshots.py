"""Where the browser tests save their screenshots.

The pictures in docs/ (shown by the README) come from the browser tests, but a test run must not
rewrite tracked files: by default a screenshot goes to the test's temporary folder (taking it
still proves the page renders). ``make screenshots`` (``IVR_DOCS_SCREENSHOTS=1``) saves them
into docs/ instead.
"""

from __future__ import annotations

import os
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """docs/NAME when refreshing the docs' pictures, else NAME in ``tmp_path``."""
    if os.environ.get("IVR_DOCS_SCREENSHOTS") == "1":
        return DOCS / name
    return tmp_path / name
