"""Stopping a long-running command (``serve``, ``serve-pyvoip``) on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_on_signals() -> asyncio.Event:
    """An event the running loop sets on SIGTERM or SIGINT.

    Install it before announcing readiness, so a signal sent right after the announcement is
    never missed (where the loop cannot take signal handlers, nothing is installed).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop
