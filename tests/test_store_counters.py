"""Counts across calls: the SQLite store's counters and the flow's counter node using them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from engine_harness import Call

from ivr.core import events as ev
from ivr.engine.counters import MemoryCounters
from ivr.flow.loader import check_text
from ivr.store.counters import StoreCounters

KEY = "login:6222021000000013"


def test_counts_add_read_expire_and_reset(tmp_path: Path) -> None:
    counters = StoreCounters(tmp_path / "calls.db")
    assert counters.update(KEY, 0, False, 900, 1000.0) == 0
    assert counters.update(KEY, 1, False, 900, 1000.0) == 1
    assert counters.update(KEY, 1, False, 900, 1100.0) == 2  # expiry slides with each increase
    assert counters.update(KEY, 0, False, 900, 1999.0) == 2
    assert counters.update(KEY, 0, False, 900, 2000.0) == 0  # 900 s after the last increase
    assert counters.update(KEY, 1, False, 900, 2001.0) == 1  # an expired count starts again
    assert counters.update(KEY, 0, True, 900, 2002.0) == 0
    assert counters.update(KEY, 0, False, 900, 2003.0) == 0
    counters.close()


def test_two_processes_share_counts_and_keys_are_stored_hashed(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    one, two = StoreCounters(path), StoreCounters(path)  # two connections, as two workers
    one.update(KEY, 1, False, 900, 0.0)
    two.update(KEY, 1, False, 900, 0.0)
    assert one.update(KEY, 0, False, 900, 1.0) == 2
    one.close()
    two.close()
    with sqlite3.connect(path) as db:
        keys = [row[0] for row in db.execute("SELECT key FROM counters")]
    assert len(keys) == 1 and "6222021000000013" not in keys[0] and len(keys[0]) == 64


LOGIN = """
flow: login
languages: [en]
start: pin
defaults: {escalate: locked}
nodes:
  pin:
    collect: {prompt: "PIN.", into: pin, min: 4, max: 4, secret: true, next: check}
  check:
    counter: {key: "login:{call.caller}", into: failures, next: locked_now}
  locked_now:
    branch: {when: [{if: "failures >= 3", goto: locked}], else: verify}
  verify:
    branch: {when: [{if: "pin == '1234'", goto: ok}], else: wrong}
  wrong:
    counter: {key: "login:{call.caller}", add: 1, expire: 600, into: failures, next: bye}
  ok:
    counter: {key: "login:{call.caller}", reset: true, into: failures, next: welcome}
  welcome: {hangup: {prompt: "Welcome."}}
  bye: {hangup: {prompt: "Wrong PIN.", outcome: failed}}
  locked: {hangup: {prompt: "Locked.", outcome: locked}}
"""


def _call(counters: MemoryCounters | StoreCounters, pin: str, call_id: str,
          wall: float = 1_800_000_000.0) -> Call:  # fmt: skip
    call = Call(LOGIN, counters=counters, call_id=call_id, wall=wall).start().finish_prompt()
    return call.press(pin).run(5)


@pytest.mark.parametrize("kind", ["memory", "store"])
def test_a_lockout_lasts_across_calls_until_it_expires(tmp_path: Path, kind: str) -> None:
    counters = MemoryCounters() if kind == "memory" else StoreCounters(tmp_path / "calls.db")
    for i in range(3):
        assert _call(counters, "0000", f"c{i}").outcome == "failed"
    locked = _call(counters, "1234", "c3")  # the right PIN, but locked by earlier calls
    assert locked.outcome == "locked"
    assert locked.of(ev.VAR_SET)[-1].data == {"name": "failures", "value": 3, "flow": "login"}
    later = _call(counters, "1234", "c4", wall=1_800_000_000.0 + 601)
    assert later.outcome == "self_service"


def test_the_counter_key_never_appears_in_events() -> None:
    call = Call(LOGIN.replace("{call.caller}", "{pin}"), call_id="k").start().finish_prompt()
    call.press("9071").run(5)
    assert call.of(ev.VAR_SET)[-1].data["value"] == 1  # counted under the key "login:9071"
    assert all("9071" not in str(e.data) for e in call.events)


def test_validate_checks_counter_nodes() -> None:
    loaded = check_text(
        "flow: t\nlanguages: [en]\nstart: a\nnodes:\n"
        "  a: {counter: {key: 'k{x', add: 1, reset: true, into: 1x, next: b}}\n"
        "  b: {hangup: {}}\n", "t.yaml")
    messages = [d.message for d in loaded.diagnostics]
    assert any("unclosed '{'" in m for m in messages)
    assert any("either adds or resets" in m for m in messages)
    assert any("into '1x' is not a variable name" in m for m in messages)
