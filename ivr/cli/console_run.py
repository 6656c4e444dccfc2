"""The web console beside ``ivr serve`` (ivr/console): started before the server, stopped after.

Kept apart from ``cmd_serve`` so that command stays about SIP; this module puts the console's
parts together for both shapes of the server (one process, or a supervisor and workers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from prometheus_client import CollectorRegistry

from ivr.config import Config
from ivr.console.server import ConsoleThread
from ivr.console.source import ConsoleSource, ServerState

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def console_for(config: Config, registry: CollectorRegistry, state: ServerState,
                enabled: bool = True) -> Iterator[ConsoleThread | None]:  # fmt: skip
    """The console of ivr.yaml ``console:`` running for the block (None: no such section, or
    ``enabled`` False).

    Raises:
        ConsoleError: an open address without users.
        OSError: the console's address cannot be bound (the message names it).
    """
    if config.console is None or not enabled:
        yield None
        return
    console = ConsoleThread(config.console, ConsoleSource(config, state, registry))
    try:
        console.start()
    except OSError as exc:
        where = f"{config.console.host}:{config.console.port}"
        raise OSError(exc.errno, f"console.listen {where}: {exc.strerror or exc}") from None
    host, port = console.address or (config.console.host, config.console.port)
    print(f"ivr: console on http://{host}:{port}/", flush=True)
    try:
        yield console
    finally:
        console.stop()


@contextlib.contextmanager
def worker_metrics() -> Iterator[str]:
    """A private folder for the workers' metrics (prometheus-client multiprocess mode), named in
    the environment the worker processes start with; removed afterwards."""
    folder = tempfile.mkdtemp(prefix="ivr-metrics-")
    before = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = folder
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = before
        shutil.rmtree(folder, ignore_errors=True)
