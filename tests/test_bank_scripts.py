"""Every call script in tests/scripts passes against the bank flows, with full coverage.

With ``--backend`` the actions that tests/scripts/stubs.yaml stubs call the demo bank API (the
``bank_api`` fixture) through ivr.yaml's ``bank_api: ${IVR_BANK_API:-...}``; ``main`` reads the
configuration after the fixture has set the variable. (Without it they need no backend:
tests/test_sim_stubs.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


def test_bank_scripts_pass_with_full_coverage(
    bank_api: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    status = main(
        ["-c", str(ROOT / "ivr.yaml"), "test", "--backend", "--coverage", "--require-coverage",
         "100", "tests/scripts"]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "0 failed" in out
    assert "total: nodes 100.0%, branches 100.0%" in out
