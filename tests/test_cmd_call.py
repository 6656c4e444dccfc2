"""``ivr call`` refusals and rejections (its calls to a real server: test_serve_e2e.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sip_phone import App, start_ua

from ivr.cli.main import main


def test_a_target_that_is_not_a_sip_uri_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["-c", str(tmp_path / "none.yaml"), "call", "http://example.com"]) == 2
    assert "not a SIP URI" in capsys.readouterr().err


def test_a_rejected_call_fails_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ua = asyncio.run_coroutine_threadsafe(start_ua(on_incoming=App(reject=486)), loop).result(5)
    try:
        host, port = ua.address
        code = main(["-c", str(tmp_path / "none.yaml"), "call", f"sip:95588@{host}:{port}",
                     "--db", str(tmp_path / "calls.db")])  # fmt: skip
    finally:
        asyncio.run_coroutine_threadsafe(ua.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
    out = capsys.readouterr().out
    assert code == 1
    assert f"to sip:95588@{host}:{port}: 100 Trying, 180 Ringing, 486 Busy Here" in out
