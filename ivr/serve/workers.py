"""``ivr serve --workers N``: one engine process per core on one SIP port.

Python runs one thread of bytecode at a time, so one process uses one core (one process per
core, each with its own event loop and media clock: docs/ARCHITECTURE.md, "Processes and
threads"). The supervisor (this module, in the process the command started) checks the flows
and renders the prompts once (:func:`ivr.host.host.prepare_machine`), then starts N worker
processes. Each worker is a whole :class:`IvrServer` bound to the same
SIP port with SO_REUSEPORT; :mod:`ivr.sip.affinity` keeps every call on the worker its Call-ID
belongs to. RTP ports come from the shared range (each media engine skips ports in use), the
call records go to the one SQLite file (WAL, a busy timeout), each worker watches the flow
folder itself.

SIGTERM or SIGINT to the supervisor is passed to every worker, which drains as a single server
would; the supervisor exits when all have, with the worst exit status. A worker that dies on its
own is restarted (its calls are lost; the others' go on), unless workers keep dying.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from ivr.config import Config
from ivr.core.priority import raise_priority
from ivr.flow.errors import FlowError
from ivr.host.acd import machine_authority
from ivr.host.host import prepare_machine
from ivr.host.signals import stop_on_signals
from ivr.logs import setup_logging
from ivr.serve.server import IvrServer, ServeOptions, SharedPort
from ivr.store.db import CallStore

log = logging.getLogger("ivr.serve")

START_TIMEOUT = 120.0  # seconds for every worker to be listening
RESTARTS_ALLOWED = 5  # worker deaths within RESTART_WINDOW before the supervisor gives up
RESTART_WINDOW = 60.0


def worker_count(requested: int) -> int:
    """``requested`` workers, or one per available core for 0."""
    if requested > 0:
        return requested
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class SupervisorHooks:
    """What the supervisor tells an observer (the web console): every worker is listening,
    draining has begun, a worker process (its pid) is gone."""

    on_ready: Callable[[], None] = lambda: None
    on_draining: Callable[[], None] = lambda: None
    on_worker_exit: Callable[[int], None] = field(default=lambda pid: None)


@dataclass(frozen=True)
class _LogSettings:
    level: str
    path: str | None
    fmt: str = "text"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _worker_main(config: Config, options: ServeOptions, group: str, index: int, workers: int,
                 barrier: Any, ready: Any, logs: _LogSettings) -> None:
    """A worker process: one IvrServer on the shared port until SIGTERM."""
    setup_logging(logs.level, logs.path, tag=f"w{index}", fmt=logs.fmt)

    def wait_bound() -> None:
        if barrier is not None:  # a restarted worker joins siblings that are running
            barrier.wait(START_TIMEOUT)  # BrokenBarrierError when a sibling died at start

    shared = SharedPort(group, index, workers, wait_bound)
    try:
        asyncio.run(_run_worker(IvrServer(config, options, shared), ready, index))
    except FlowError as exc:
        print(f"ivr serve: worker {index}: flows refused:\n{exc}", file=sys.stderr)
        sys.exit(1)
    except (OSError, threading.BrokenBarrierError) as exc:
        print(f"ivr serve: worker {index}: {exc or 'a sibling worker failed to start'}",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)


async def _run_worker(server: IvrServer, ready: Any, index: int) -> None:
    stop = stop_on_signals()
    done = raise_priority(server.options.priority)
    if index == 0:
        log.info("engine priority %s", done)
    await server.start()
    ready.put(index)
    await stop.wait()
    await server.drain()


class Supervisor:
    """Starts, watches and stops the worker processes."""

    def __init__(self, config: Config, options: ServeOptions, workers: int,
                 logs: _LogSettings, hooks: SupervisorHooks | None = None) -> None:
        self.config = config
        self.hooks = hooks or SupervisorHooks()
        self.workers = workers
        self.logs = logs
        port = options.port or _free_port(options.host)
        # Workers only check flows and build prompts for reloads (index 0 does it), the
        # supervisor did it for the start.
        self.options = replace(options, port=port)
        self.group = f"{os.getpid()}-{port}"
        self._ctx = multiprocessing.get_context("spawn")
        self._ready = self._ctx.Queue()
        self._procs: dict[int, BaseProcess] = {}
        self._deaths: list[float] = []
        self._stopping = False

    def _spawn(self, index: int, barrier: Any) -> None:
        options = replace(self.options, build_prompts=self.options.build_prompts and index == 0)
        proc = self._ctx.Process(
            target=_worker_main, name=f"ivr-worker-{index}",
            args=(self.config, options, self.group, index, self.workers, barrier, self._ready,
                  self.logs),
        )  # fmt: skip
        proc.start()
        self._procs[index] = proc

    def _stop(self, signum: int, frame: object) -> None:
        self._stopping = True
        self.hooks.on_draining()
        for proc in self._procs.values():
            if proc.pid is not None and proc.exitcode is None:
                os.kill(proc.pid, signal.SIGTERM)

    def run(self) -> int:
        """Start the workers, announce, supervise, and return the exit status."""
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            barrier = self._ctx.Barrier(self.workers)
            for index in range(self.workers):
                self._spawn(index, barrier)
            if not self._wait_ready():
                barrier.abort()  # siblings waiting for a dead worker give up at once
                self._stopping = True
                self._stop(signal.SIGTERM, None)
                return max(1, self._join())
            print(f"ivr: answering SIP on {self.options.host}:{self.options.port} with "
                  f"{self.workers} worker processes (Ctrl-C or SIGTERM drains and stops)",
                  flush=True)  # fmt: skip
            self.hooks.on_ready()
            return self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _wait_ready(self) -> bool:
        started: set[int] = set()
        deadline = time.monotonic() + START_TIMEOUT
        while len(started) < self.workers:
            if self._stopping or time.monotonic() > deadline:
                return False
            if any(p.exitcode is not None for p in self._procs.values()):
                return False
            try:
                started.add(self._ready.get(timeout=0.2))
            except Exception:  # queue.Empty
                continue
        return True

    def _supervise(self) -> int:
        while True:
            alive = {p.sentinel: i for i, p in self._procs.items() if p.exitcode is None}
            if not alive:
                return self._join()
            for sentinel in wait(list(alive), timeout=1.0):
                index = alive[sentinel]  # type: ignore[index]  # wait() gives back ours
                proc = self._procs[index]
                proc.join()
                if proc.pid is not None:
                    self.hooks.on_worker_exit(proc.pid)
                if self._stopping:
                    continue
                if not self._may_restart():
                    log.error("call -: worker %d exited with %s; too many deaths, stopping",
                              index, proc.exitcode)
                    self._stop(signal.SIGTERM, None)
                    continue
                log.error("call -: worker %d exited with %s; restarting it (its calls are lost)",
                          index, proc.exitcode)
                self._spawn(index, None)

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW] + [now]
        return len(self._deaths) <= RESTARTS_ALLOWED

    def _join(self) -> int:
        worst = 0
        for proc in self._procs.values():
            proc.join()
            code = proc.exitcode or 0
            worst = max(worst, code if code > 0 else 1 if code < 0 and not self._stopping else 0)
        return worst


def serve_workers(config: Config, options: ServeOptions, workers: int, log_level: str,
                  log_file: str | None, log_format: str = "text",
                  hooks: SupervisorHooks | None = None) -> int:
    """Run ``workers`` engine processes on one SIP port until SIGTERM/SIGINT; the exit status.

    With ivr.yaml ``acd:`` the machine's queue authority runs here, in the supervisor, on a
    thread of its own; every worker reaches it over its control socket.

    Raises:
        FlowError: The flows do not validate (nothing was started).
        ServiceError, OSError: The queue authority's socket cannot be served.
    """
    prepare_machine(config, options.build_prompts)
    logs = _LogSettings(log_level, log_file, log_format)
    if config.acd is None:
        return Supervisor(config, options, workers, logs, hooks).run()
    store = CallStore(config.store_path)  # the agents' record
    authority = machine_authority(config.acd, on_state=store.agent_sink())
    try:
        authority.start()
        return Supervisor(config, options, workers, logs, hooks).run()
    finally:
        authority.stop()
        store.close()
