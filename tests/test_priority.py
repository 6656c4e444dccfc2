"""The engine process's scheduling priority (ivr/core/priority.py, ivr.yaml ``sip.priority``).

Linux keeps nice values and scheduling policies per thread, so each case runs on a thread of its
own and the test process keeps its priority. Raising needs root or CAP_SYS_NICE: without it the
mode must fall back to normal and say so, never fail the start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ivr.core.priority import HIGH_NICE, lower_to_normal, raise_priority


def on_a_thread(fn: Callable[[], Any]) -> Any:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join(10)
    return out[0]


def privileged() -> bool:
    """Whether this process may raise priorities (root or CAP_SYS_NICE)."""
    def attempt() -> bool:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, -1)
        except PermissionError:
            return False
        return True
    return bool(on_a_thread(attempt))


def test_high_raises_the_calling_thread_only_or_falls_back_to_normal() -> None:
    def run() -> tuple[str, int]:
        return raise_priority("high"), os.getpriority(os.PRIO_PROCESS, 0)

    before = os.getpriority(os.PRIO_PROCESS, 0)
    said, nice = on_a_thread(run)
    if privileged():
        assert (said, nice) == (f"high (nice {HIGH_NICE})", HIGH_NICE)
    else:
        assert (said, nice) == ("normal", before)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # this thread untouched


def test_realtime_takes_round_robin_and_lower_to_normal_gives_it_back() -> None:
    def run() -> tuple[str, int, int, int]:
        said = raise_priority("realtime")
        policy = os.sched_getscheduler(0)
        lower_to_normal()
        return said, policy, os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)

    said, policy, after, nice = on_a_thread(run)
    if privileged():
        assert (said, policy) == ("realtime (SCHED_RR 1)", os.SCHED_RR)
    else:
        assert (said, policy) == ("normal", os.SCHED_OTHER)
    assert after == os.SCHED_OTHER and nice >= 0


def test_normal_changes_nothing_and_an_unknown_mode_is_refused() -> None:
    before = on_a_thread(lambda: (raise_priority("normal"), os.getpriority(os.PRIO_PROCESS, 0)))
    assert before == ("normal", os.getpriority(os.PRIO_PROCESS, 0))
    with pytest.raises(ValueError, match="normal, high, realtime"):
        raise_priority("urgent")
