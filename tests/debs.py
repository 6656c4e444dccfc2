"""The Debian packages the tests read (the Makefile's DEBS: ``make test`` installs them).

A test that needs one fails when it is missing, naming the package: a skipped test would let a
machine without them pass ``make test`` having tested less. conftest.py turns these checks into
fixtures (``sipp_program``, ``asterisk_sounds``...) for ``pytest.mark.usefixtures``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NoReturn

import pytest

# Asterisk's English prompts: asterisk-core-sounds-en-wav installs them here (the
# /usr/share/asterisk/sounds/en link belongs to another package, asterisk-core-sounds-en).
SOUNDS_PACKAGE = "asterisk-core-sounds-en-wav"
ALLISON = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
# Festival's voices of the ASR evaluation (bench/asr/voices.py), by the package installing them.
FESTIVAL_VOICES = {
    Path("/usr/share/festival/voices/english/kal_diphone"): "festvox-kallpc16k",
    Path("/usr/share/festival/voices/english/ked_diphone"): "festvox-kdlpc16k",
    Path("/usr/share/festival/voices/us/cmu_us_slt_arctic_hts"): "festvox-us-slt-hts",
}


def missing(what: str, package: str) -> NoReturn:
    """Fail the test: ``what`` is missing, from the Debian package ``package``."""
    pytest.fail(f"{what} is missing: install the Debian package {package} "
                "(`make test` installs every package the tests need)", pytrace=False)  # fmt: skip


def program(name: str, package: str, *elsewhere: Path) -> str:
    """The path of the program ``name`` (on PATH or at one of ``elsewhere``), or fail."""
    found = shutil.which(name) or next((str(p) for p in elsewhere if p.is_file()), None)
    if found is None:
        missing(f"the program {name}", package)
    return found


def file(path: Path, package: str) -> Path:
    """``path`` when it is a file, or fail."""
    if not path.is_file():
        missing(str(path), package)
    return path
