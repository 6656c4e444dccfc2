"""Speech recognition for live calls, decoded off the event loop by a pool of worker processes.

:class:`AsrService` is started and stopped with the server. On the event loop, a call's channel
opens an :class:`AsrStream` per utterance (:meth:`AsrService.open`), feeds it the caller's 20 ms
frames from the media clock's pass and gets the recognizer's events back on the loop. No decode
runs on the loop:

* **Workers are processes** (``python -m ivr.asr.worker``), each holding the backends of every
  configured language; the backend pools decoders per grammar. PocketSphinx holds the GIL while
  it decodes, so threads would not scale and would stall the media clock.
* **A stream is pinned** to the least loaded worker when it opens and stays there: a recognizer
  keeps state between frames.
* **Batched per media tick**: the frames fed during one clock pass (every listening call's frame,
  plus opens and closes) go to each worker as one message on its socket pair, sent by a single
  ``call_soon`` after the pass; answers come back on the same socket, read by the loop's
  selector (an asyncio transport: ``add_reader`` underneath, no thread per stream or worker).
* **A worker crash or stall never hangs a call.** A worker whose socket closes, or that has not
  answered for ``stall_timeout`` seconds (then it is killed), is replaced at once (restarts back
  off when a worker keeps dying young). Its streams where the caller was speaking end with a
  :class:`~ivr.asr.base.NoMatch` (the engine's no-match path runs: the caller is asked again);
  its idle streams move to another worker unnoticed. Audio fed to a worker still starting is
  dropped.

Measured here (PocketSphinx, the bank menu grammar, a shared 2-core machine): a listening call
whose caller is silent (line noise at -70 dBFS through μ-law) costs its worker about 0.06 % of a
core, 50 or 100 calls alike, since only the energy endpointer runs before speech starts (0.8 %
when the front end ran on every frame), and the loop's side (feeding, one message per worker
per tick, answers) 0.03-0.05 %; ``bench/asr/silence_cost.py`` measures it. Every open stream
holds a pooled decoder from the start (about 27 MB resident, and 0.1 s of the worker's time to
build when none is idle). Measured before that change: 3.5-4 % of a core while the caller
talks about half the time; one worker kept up with 20 such calls at 75 % of a core, with lag
spikes up to 2 s.

Live calls put the speech gate (:mod:`ivr.asr.gate`, in :mod:`ivr.host.speech`) ahead of this
service: a call opens a stream only when its caller makes a sound the gate takes for speech,
so a caller listening in silence sends a worker nothing at all (the figures above are for
streams open all along, as before the gate). :meth:`AsrStream.finish` asks for the decision
now, on the audio sent so far (the gate's "decide now", when a sound that never pauses
follows the speech).

``in_process=True`` runs the same worker code on threads (same sockets, same messages) for tests
and simulation, with a backend factory given directly; it does not protect the loop from the GIL.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ivr.asr import wire
from ivr.asr.base import (
    AsrEvent,
    AsrOptions,
    Final,
    Grammar,
    NoMatch,
    NoSpeech,
    SpeechStarted,
)
from ivr.asr.handle import WorkerHandle, WorkerStats
from ivr.asr.worker import BackendFactory, backend_factory, load_backends

log = logging.getLogger("ivr.asr")

EventCallback = Callable[[AsrEvent], None]
FRAME_SECONDS = 0.02
_DECIDED = (Final, NoMatch, NoSpeech)
_RESTART_MAX_DELAY = 30.0
_YOUNG = 10.0  # a worker that dies sooner than this after starting backs its restarts off


def speech_support(backend: str, models_dir: Path, languages: Iterable[str]
                   ) -> dict[str, str | None]:  # fmt: skip
    """Language -> why ``backend`` cannot recognise it (None: it can), as a server with these
    settings would find at start (blocking: loads the backends here)."""
    if backend == "off":
        return dict.fromkeys(languages, "speech recognition is off (asr.backend: off)")
    return load_backends(backend_factory(backend, Path(models_dir)), languages)[1]


class AsrStream:
    """One utterance of one call being recognised, pinned to one worker (see the module doc).

    Events reach ``on_event`` on the loop: at most one SpeechStarted, Partials, then exactly one
    Final, NoMatch or NoSpeech, after which the stream is *decided* and ignores more audio. A
    stream whose recognizer cannot run (a grammar the backend refuses) goes quiet with an error
    log, unless the caller was speaking: then it ends with a NoMatch.
    """

    def __init__(self, service: AsrService, sid: int, grammar: Grammar, options: AsrOptions,
                 on_event: EventCallback, label: str) -> None:  # fmt: skip
        self._service = service
        self.sid = sid
        self.grammar = grammar
        self.options = options
        self.label = label
        self._on_event = on_event
        self.worker: WorkerHandle | None = None
        self.state = "open"  # open | finishing | decided | failed | closed
        self.speaking = False
        self.frames = 0
        self._speech_at = 0.0

    @property
    def open(self) -> bool:
        """True while audio is wanted (not decided, failed or closed)."""
        return self.state == "open"

    def feed(self, frame: NDArray[np.int16]) -> None:
        """One 20 ms frame (int16, 160 samples at 8 kHz); cheap: it is queued for the tick's
        batch."""
        if self.state != "open" or self.worker is None:
            return
        self.frames += 1
        self.worker.queue_audio(self.sid, frame)

    def finish(self) -> None:
        """No more audio: the recognizer decides now on what it heard; the decision comes as
        usual (a stream on no worker, or failed, ends with a NoMatch at once if the caller was
        speaking)."""
        if self.state != "open":
            return
        self.state = "finishing"
        if self.worker is not None and self.worker.state != "lost":
            self.worker.queue(("finish", self.sid))
        elif self.speaking:
            self._terminate()
        else:
            self.state = "decided"
            self._service._unpin(self)
            self._emit(NoSpeech())

    def close(self) -> None:
        """No more audio and no more events (idempotent)."""
        if self.state == "closed":
            return
        self.state = "closed"
        self._service._forget(self)

    def _deliver(self, event: object) -> None:
        if self.state not in ("open", "finishing"):
            return
        if isinstance(event, wire.StreamFailed):
            self._failed(event.message)
            return
        if isinstance(event, SpeechStarted):
            self.speaking, self._speech_at = True, event.at
        elif isinstance(event, _DECIDED):
            self.state = "decided"
            self._service._unpin(self)
        self._emit(event)  # type: ignore[arg-type]

    def _failed(self, why: str) -> None:
        log.error("call %s: speech recognition failed: %s", self.label, why)
        if self.speaking:
            self._terminate()
            return
        self.state = "failed"
        self._service._unpin(self)

    def _terminate(self) -> None:
        """End the utterance now with a NoMatch (its worker is gone)."""
        self.state = "decided"
        self._service._unpin(self)
        now = self.frames * FRAME_SECONDS
        self._emit(NoMatch("", 0.0, self._speech_at, now, now))

    def _emit(self, event: AsrEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # one call's bug must not stop the other calls' events
            log.exception("call %s: speech event handler failed", self.label)


class AsrService:
    """The pool of decoding workers (see the module docstring).

    Args:
        backend: ``auto``, ``pocketsphinx``, ``vosk``, or ``module:callable`` (a factory called
            with ``(language, models_dir)`` in the worker).
        models_dir: Where Vosk models live (``<models_dir>/<language>/``).
        workers: Worker processes (threads with ``in_process``); at least 1.
        languages: Languages to load at start (the flows' languages).
        in_process: Run the workers on threads of this process.
        factory: With ``in_process``: ``(language) -> Backend``, instead of ``backend``.
        stall_timeout: Seconds without an answer after which a worker is killed and replaced.
        start_timeout: Seconds :meth:`start` waits for the workers to load their models.
    """

    def __init__(
        self,
        backend: str = "auto",
        models_dir: Path = Path("asr_models"),
        workers: int = 1,
        *,
        languages: Iterable[str] = ("en",),
        in_process: bool = False,
        factory: BackendFactory | None = None,
        stall_timeout: float = 10.0,
        start_timeout: float = 120.0,
    ) -> None:
        self.backend = backend
        self.models_dir = Path(models_dir).resolve()
        self.count = max(1, workers)
        self.languages = tuple(dict.fromkeys(languages))
        self.in_process = in_process
        self.factory = factory
        self.stall_timeout = stall_timeout
        self.start_timeout = start_timeout
        self.status: dict[str, str | None] = {}  # language -> why it cannot be recognised
        self.workers: list[WorkerHandle] = []
        self._ids = itertools.count(1)
        self._dirty_workers: list[WorkerHandle] = []
        self._flush_due = False
        self._stopping = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._restarts: list[asyncio.TimerHandle] = []
        self._orphans: dict[int, AsrStream] = {}
        self._failure: str | None = None  # why the last worker was lost
        self.loop: asyncio.AbstractEventLoop

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers and wait until they have loaded their models (bounded). Never
        raises for a missing engine or model: speech is then unavailable, with the reason in
        :meth:`unavailable`, and DTMF works as ever."""
        self.loop = asyncio.get_running_loop()
        self.workers = [self._spawn(i, 0) for i in range(self.count)]
        try:
            await asyncio.wait_for(
                asyncio.gather(*(w.ready for w in self.workers), return_exceptions=True),
                self.start_timeout)  # fmt: skip
        except TimeoutError:
            log.error("call -: ASR workers not ready after %.0f s", self.start_timeout)
        self._watchdog = self.loop.call_later(1.0, self._watch)
        ready = sum(w.state == "ready" for w in self.workers)
        log.info("call -: speech recognition: %s backend, %d/%d workers ready; %s", self.backend,
                 ready, self.count, self._describe_status())  # fmt: skip

    async def stop(self) -> None:
        """Close every stream and stop the workers (idempotent)."""
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        for worker in self.workers:
            for stream in list(worker.streams.values()):
                stream.state = "closed"
            worker.streams.clear()
            worker.lose("stopped")
            worker.close()  # EOF: the worker exits on its own
        await asyncio.gather(*(w.reap(5.0, quiet=True) for w in self.workers))
        for handle in self._restarts:
            handle.cancel()
        for task in list(self._tasks):
            task.cancel()
        for stream in self._orphans.values():
            stream.state = "closed"
        self._orphans.clear()
        self.workers = []

    def unavailable(self, language: str) -> str | None:
        """Why speech in ``language`` cannot be recognised, or None when it can."""
        if not self.workers or self._stopping:
            return "speech recognition is not running"
        if language in self.status:
            return self.status[language]
        if language not in self.languages:
            return f"{language!r} is not one of the languages loaded ({', '.join(self.languages)})"
        return f"the ASR workers never became ready ({self._failure or 'still loading'})"

    def open(self, grammar: Grammar, options: AsrOptions, on_event: EventCallback,
             label: str = "-") -> AsrStream:  # fmt: skip
        """Start recognising one utterance; events come to ``on_event`` on the loop.

        Raises:
            RuntimeError: the service is not running.
        """
        if not self.workers or self._stopping:
            raise RuntimeError("the ASR service is not running")
        stream = AsrStream(self, next(self._ids), grammar, options, on_event, label)
        self._pin(stream)
        return stream

    def stats(self) -> list[WorkerStats]:
        """The workers now."""
        now = self.loop.time()
        return [w.stats(now) for w in self.workers]

    # --- streams ----------------------------------------------------------------------------

    def _pin(self, stream: AsrStream) -> None:
        """Give ``stream`` to the least loaded worker (ready ones first) and open it there; with
        every worker down it waits for the first one back."""
        alive = [w for w in self.workers if w.state != "lost"]
        if not alive:
            stream.worker = None
            self._orphans[stream.sid] = stream
            return
        worker = min(alive, key=lambda w: (w.state != "ready", len(w.streams), w.index))
        stream.worker = worker
        worker.streams[stream.sid] = stream
        worker.queue(("open", stream.sid, stream.grammar, stream.options))

    def _unpin(self, stream: AsrStream) -> None:
        worker, stream.worker = stream.worker, None
        self._orphans.pop(stream.sid, None)
        if worker is not None:
            worker.streams.pop(stream.sid, None)

    def _forget(self, stream: AsrStream) -> None:
        worker = stream.worker
        self._unpin(stream)
        if worker is not None and worker.state != "lost":
            worker.queue(("close", stream.sid))

    # --- batching ---------------------------------------------------------------------------

    def worker_dirty(self, worker: WorkerHandle) -> None:
        self._dirty_workers.append(worker)
        if not self._flush_due:
            self._flush_due = True
            self.loop.call_soon(self._flush)  # after the media clock's pass: one batch per tick

    def _flush(self) -> None:
        self._flush_due = False
        dirty, self._dirty_workers = self._dirty_workers, []
        for worker in dict.fromkeys(dirty):
            worker.flush()

    # --- workers ----------------------------------------------------------------------------

    def _spawn(self, index: int, restarts: int) -> WorkerHandle:
        """Start worker ``index``; a worker that cannot start is lost at once (and retried)."""
        handle = WorkerHandle(self, index, restarts)
        try:
            if self.in_process:
                factory = self.factory or backend_factory(self.backend, self.models_dir)
                task = handle.start_thread(factory, self.languages)
            else:
                task = handle.start_process(self.backend, self.models_dir, self.languages)
        except OSError as exc:
            self.loop.call_soon(self.worker_lost, handle, f"it could not start: {exc}")
            return handle
        self._keep(task)
        return handle

    def worker_ready(self, worker: WorkerHandle, status: dict[str, str | None]) -> None:
        self.status.update(status)
        if worker.restarts:
            log.info("call -: ASR worker %d is back (pid %s)", worker.index, worker.pid)
        orphans, self._orphans = list(self._orphans.values()), {}
        for stream in orphans:
            if stream.state == "open":
                self._pin(stream)

    def worker_lost(self, worker: WorkerHandle, why: str) -> None:
        """A worker died, was killed or never started: replace it; end or move its streams."""
        if worker.state == "lost":
            return  # told twice (a stall kill, then its socket closing), or stopping
        worker.lose(why)
        if self._stopping or self.workers[worker.index] is not worker:
            return
        self._failure = why
        streams = list(worker.streams.values())
        worker.streams.clear()
        log.error("call -: ASR worker %d (pid %s) lost: %s; %d streams affected, restarting it",
                  worker.index, worker.pid, why, len(streams))  # fmt: skip
        self._keep(asyncio.ensure_future(worker.reap(2.0)))
        young = self.loop.time() - worker.started_at < _YOUNG
        restarts = worker.restarts + 1 if young else 0
        delay = min(_RESTART_MAX_DELAY, 0.5 * 2 ** (restarts - 1)) if young else 0.0
        if delay > 0:
            handle = self.loop.call_later(delay, self._restart, worker, restarts)
            self._restarts.append(handle)
        else:
            self._restart(worker, restarts)
        for stream in streams:
            stream.worker = None
            if stream.state not in ("open", "finishing"):
                continue
            if stream.speaking or stream.state == "finishing":
                stream._terminate()  # the caller's words are lost: the engine asks again
            else:
                self._pin(stream)  # idle: carry on elsewhere (or on the replacement), unnoticed

    def _restart(self, worker: WorkerHandle, restarts: int) -> None:
        if not self._stopping and self.workers[worker.index] is worker:
            self.workers[worker.index] = self._spawn(worker.index, restarts)

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _watch(self) -> None:
        """Once a second: kill a worker that has answered nothing for ``stall_timeout`` while
        it had work (a hung decoder), and warn about one that answers late (overloaded: killing
        it would only make things worse)."""
        now = self.loop.time()
        for worker in list(self.workers):
            if worker.state != "ready" or not worker.sent_at:
                continue
            silent = now - max(worker.answered_at, worker.sent_at[0])
            if silent > self.stall_timeout:
                log.error("call -: ASR worker %d (pid %s) has not answered for %.1f s: "
                          "killing it", worker.index, worker.pid, silent)  # fmt: skip
                worker.kill()
                self.worker_lost(worker, f"stalled for {silent:.1f} s")
                continue
            lag = now - worker.sent_at[0]
            if lag > 1.0 and now - worker.lag_warned_at > 60.0:
                worker.lag_warned_at = now
                log.warning("call -: ASR worker %d is %.1f s behind with %d streams: "
                            "recognition is slower than speech (more workers, or fewer "
                            "calls)", worker.index, lag, len(worker.streams))  # fmt: skip
        if not self._stopping:
            self._watchdog = self.loop.call_later(1.0, self._watch)

    def _describe_status(self) -> str:
        parts = [f"{lang}: {'yes' if why is None else 'no (' + why + ')'}"
                 for lang, why in self.status.items()]  # fmt: skip
        return ", ".join(parts) or "no languages loaded"

