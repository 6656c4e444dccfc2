"""The service's side of one ASR worker: its process (or thread), socket, streams and batch.

A :class:`WorkerHandle` starts the worker on one end of a Unix socket pair and keeps the other end
on the event loop as an asyncio protocol (``add_reader`` underneath): it queues the operations of
the current media tick (opens, audio, closes) and sends them as one message when the service
flushes, reads the worker's answers and hands each event to the stream it belongs to, and tells
its owner (:class:`~ivr.asr.service.AsrService`) when the worker is ready, has work to send, or
is gone. Its end of the pair is the only other copy of the socket, so a worker that exits for
any reason closes it and the loop sees EOF at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ivr.asr import wire
from ivr.asr.worker import BackendFactory, serve

log = logging.getLogger("ivr.asr")


class Owner(Protocol):
    """What a handle tells its service."""

    loop: asyncio.AbstractEventLoop

    def worker_dirty(self, worker: WorkerHandle) -> None:
        """Operations are waiting: flush after the current media tick."""

    def worker_ready(self, worker: WorkerHandle, status: dict[str, str | None]) -> None:
        """The worker loaded its backends (``status``: language -> why not, or None)."""

    def worker_lost(self, worker: WorkerHandle, why: str) -> None:
        """The worker's socket closed or broke."""


class Stream(Protocol):
    """A stream as a handle sees it."""

    def _deliver(self, event: object) -> None: ...


@dataclass(frozen=True)
class WorkerStats:
    """One worker as the service sees it (for logs, benchmarks and tests)."""

    index: int
    pid: int | None
    state: str  # starting | ready | lost
    streams: int
    backlog: int  # messages sent and not answered yet
    lag: float  # seconds the oldest unanswered message has waited
    restarts: int


class WorkerHandle(asyncio.Protocol):
    """One worker (see the module docstring). ``state``: starting, ready or lost."""

    def __init__(self, owner: Owner, index: int, restarts: int) -> None:
        self.owner = owner
        self.loop = owner.loop
        self.index = index
        self.restarts = restarts
        self.state = "starting"
        self.streams: dict[int, Any] = {}  # sid -> Stream
        self.pending: list[tuple[Any, ...]] = []
        self.audio: dict[int, bytearray] = {}
        self.transport: asyncio.Transport | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        self.pid: int | None = None
        self.ready: asyncio.Future[dict[str, str | None]] = self.loop.create_future()
        self.started_at = self.loop.time()
        self.sent_at: deque[float] = deque()  # loop time of each unanswered message
        self.answered_at = self.started_at  # loop time of the last answer
        self.lag_warned_at = -1e9
        self.acked = 0
        self.sent = 0
        self._reader = wire.FrameReader()

    # --- starting -----------------------------------------------------------------------------

    def start_process(self, backend: str, models_dir: Path, languages: Iterable[str]
                      ) -> asyncio.Future[Any]:  # fmt: skip
        """Run the worker as ``python -m ivr.asr.worker``; returns the connecting task.

        Raises:
            OSError: the process could not be started.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ)
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        env.setdefault("OMP_NUM_THREADS", "1")
        # Whatever this process can import, the worker can (a backend factory given by module).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        fd = theirs.fileno()
        args = [sys.executable, "-m", "ivr.asr.worker", "--fd", str(fd), "--backend", backend,
                "--models", str(models_dir), "--languages", ",".join(languages)]  # fmt: skip
        try:
            self.process = subprocess.Popen(args, pass_fds=(fd,), env=env,
                                            stdin=subprocess.DEVNULL)  # fmt: skip
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()  # only the worker holds its end now: its exit is our EOF
        return self._connect(ours)

    def start_thread(self, factory: BackendFactory, languages: Iterable[str]
                     ) -> asyncio.Future[Any]:  # fmt: skip
        """Run the worker on a thread of this process (tests, simulation)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        wanted = tuple(languages)

        def run() -> None:
            try:
                serve(theirs, factory, wanted)
            except Exception:
                log.exception("call -: in-process ASR worker %d failed", self.index)
            finally:
                theirs.close()

        self.thread = threading.Thread(target=run, name=f"asr-worker-{self.index}", daemon=True)
        self.thread.start()
        return self._connect(ours)

    def _connect(self, sock: socket.socket) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self.loop.connect_accepted_socket(lambda: self, sock))

    # --- queueing (on the loop, during the media clock's pass) -----------------------------

    def queue(self, op: tuple[Any, ...]) -> None:
        self.pending.append(op)
        self.owner.worker_dirty(self)

    def queue_audio(self, sid: int, frame: NDArray[np.int16]) -> None:
        if self.state != "ready":
            return  # starting: nothing decodes yet (audio is dropped, not hoarded)
        chunk = self.audio.get(sid)
        if chunk is None:
            self.audio[sid] = chunk = bytearray()
            self.queue(("audio", sid, chunk))
        chunk += frame.tobytes()

    def flush(self) -> None:
        """Send the pending operations as one message (a worker still starting keeps its opens
        and closes and drops audio)."""
        self.audio = {}
        if not self.pending:
            return
        if self.state != "ready" or self.transport is None:
            self.pending = [op for op in self.pending if op[0] != "audio"]
            return
        ops, self.pending = self.pending, []
        self.transport.write(wire.encode(ops))
        self.sent += 1
        self.sent_at.append(self.loop.time())

    # --- the socket (asyncio.Protocol) -----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            messages = self._reader.feed(data)
        except ValueError as exc:
            self.owner.worker_lost(self, str(exc))
            self.kill()
            return
        for message in messages:
            if message[0] == "ready":
                self._ready(message[1], message[2])
            elif message[0] == "events":
                self._answered(message[1], message[2])

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.owner.worker_lost(self, "its socket closed" if exc is None else str(exc))

    def _ready(self, pid: int, status: dict[str, str | None]) -> None:
        self.pid = pid
        self.state = "ready"
        if not self.ready.done():
            self.ready.set_result(status)
        self.owner.worker_ready(self, status)
        self.flush()

    def _answered(self, seq: int, events: list[tuple[int, object]]) -> None:
        self.answered_at = self.loop.time()
        while self.acked < seq and self.sent_at:
            self.sent_at.popleft()
            self.acked += 1
        for sid, event in events:
            stream = self.streams.get(sid)
            if stream is not None:
                stream._deliver(event)

    # --- the end ----------------------------------------------------------------------------

    def stats(self, now: float) -> WorkerStats:
        lag = now - self.sent_at[0] if self.sent_at else 0.0
        return WorkerStats(self.index, self.pid, self.state, len(self.streams),
                           len(self.sent_at), lag, self.restarts)  # fmt: skip

    def lose(self, why: str) -> None:
        """Mark the worker lost (once); its ``ready`` future fails if it never got ready."""
        self.state = "lost"
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
            self.ready.exception()  # retrieved: no "never retrieved" warning

    def close(self) -> None:
        """Close our end: the worker sees EOF and exits by itself."""
        if self.transport is not None:
            self.transport.close()

    def kill(self) -> None:
        """Stop the worker the hard way (a stall); its socket closing does the rest."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.transport is not None:
            self.transport.abort()

    async def reap(self, timeout: float, quiet: bool = False) -> None:
        """Wait for the process (or thread) to end; kill it past ``timeout``; log its status.

        Args:
            timeout: seconds to wait before killing it.
            quiet: the service is stopping it (:meth:`close` was its stop): an exit with 0, or
                by a SIGTERM sent to the whole process group by whoever stops the server, is
                the stop and not logged; any other status is.
        """
        proc, thread = self.process, self.thread
        if thread is not None:
            await asyncio.to_thread(thread.join, timeout)
            return
        if proc is None:
            return
        try:
            code = await asyncio.to_thread(proc.wait, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
            log.warning("call -: ASR worker %d (pid %s) did not end within %.0f s: killed",
                        self.index, proc.pid, timeout)  # fmt: skip
            return
        if quiet and code in (0, -signal.SIGTERM):
            return
        log.warning("call -: ASR worker %d (pid %s) exited with status %s", self.index,
                    proc.pid, code)  # fmt: skip
