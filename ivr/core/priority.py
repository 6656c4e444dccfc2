"""The scheduling priority of an engine process (ivr.yaml ``sip.priority``).

Each engine process sends every call's next RTP packet from one media-clock pass every 20 ms. On
a machine shared with other busy processes, a pass that the kernel wakes late delays all of that
process's streams alike: the callers hear it as jitter (docs/PERFORMANCE.md, "Agent queue under
load"). Telephony servers therefore run their media at a raised priority: Asterisk with
``highpriority`` / ``-p``, FreeSWITCH with ``-hp`` / ``-rp``. The modes:

- ``normal``: leave the process as it was started;
- ``high``: nice -10 (the scheduler favours the engine when the cores are contended, and the
  engine still cannot starve anything: it only gets a larger share);
- ``realtime``: SCHED_RR at the lowest real-time priority (as Asterisk's ``-p``); the kernel's
  real-time throttling (``sched_rt_runtime_us``) still leaves the rest of the machine 5 %.

Raising a priority needs root or CAP_SYS_NICE. Without it the process stays as it is and says so
once: a server must start the same whatever its privileges. Linux keeps nice values per thread
and children inherit the creating thread's, so processes the engine starts that should not share
the raise (speech decoders) call :func:`lower_to_normal` first.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("ivr.serve")  # said by the serving process

PRIORITIES = ("normal", "high", "realtime")
#: the nice value of ``high``
HIGH_NICE = -10


def raise_priority(mode: str) -> str:
    """Apply ``mode`` to the calling thread (the engine's event loop); return what was done.

    Raises:
        ValueError: ``mode`` is not one of :data:`PRIORITIES`.
    """
    if mode not in PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}, not {mode!r}")
    if mode == "normal":
        return "normal"
    try:
        if mode == "realtime":
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
            return "realtime (SCHED_RR 1)"
        if os.getpriority(os.PRIO_PROCESS, 0) > HIGH_NICE:
            os.setpriority(os.PRIO_PROCESS, 0, HIGH_NICE)
        return f"high (nice {os.getpriority(os.PRIO_PROCESS, 0)})"
    except (PermissionError, OSError) as exc:
        log.info("sip.priority %s not applied (%s): needs root or CAP_SYS_NICE; running at "
                 "normal priority", mode, exc.strerror or exc)  # fmt: skip
        return "normal"


def lower_to_normal() -> None:
    """Give the calling thread normal priority back (a child that should not share the raise)."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        if os.getpriority(os.PRIO_PROCESS, 0) < 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:  # lowering is always allowed; a sandbox that refuses it leaves it as it is
        pass
