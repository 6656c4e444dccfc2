"""``ivr call`` refusals and rejections (its calls to a real server: test_serve_e2e.py)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sip_phone import App, start_ua

from ivr.cli.cmd_call import _secret_entry_times, _shown
from ivr.cli.main import main
from ivr.core import events as ev
from ivr.core.events import MASK, Event
from ivr.sim.live_call import Sent


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


def test_keys_sent_into_a_secret_entry_are_masked_in_the_report() -> None:
    def event(seq: int, t: float, what: str, node: str | None, **data: object) -> Event:
        return Event("c", seq, t, what, node, dict(data))

    events = [
        event(1, 0.0, ev.NODE_ENTER, "main_menu", kind="menu"),
        event(2, 3.0, ev.INPUT, "main_menu", mode="dtmf", value="1"),
        event(3, 3.1, ev.NODE_ENTER, "ask_pin", kind="collect"),
        event(4, 9.0, ev.INPUT, "ask_pin", mode="dtmf", value=MASK),
        event(5, 9.1, ev.NODE_ENTER, "anything_else", kind="menu"),
    ]
    spans = _secret_entry_times(events)
    assert spans == [(3.1, 9.1)]
    assert _shown(Sent(2.0, "dtmf", "1"), 2.0, spans) == "1"
    assert _shown(Sent(8.0, "dtmf", "123456"), 8.0, spans) == MASK
    assert _shown(Sent(10.0, "dtmf", "2"), 10.0, spans) == "2"
