"""An ASR worker: decodes the streams the service pinned to it, off the event loop.

Run by :class:`~ivr.asr.service.AsrService` as ``python -m ivr.asr.worker --fd N ...`` (a process
of its own: PocketSphinx holds the GIL while it decodes, so processes scale where threads would
not), or on a thread for tests and simulation. Either way :func:`serve` reads one message per
media tick from its socket (:mod:`ivr.asr.wire`), feeds each stream's frames to its recognizer
and answers with the events they caused. It exits when the socket closes (the service stopped,
or the server process died).

Backends are loaded once per language at start, and decoders are pooled per grammar by the
backend itself, so opening a stream for a grammar seen before costs little.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ivr.asr import wire
from ivr.asr.base import (
    FRAME_SAMPLES,
    AsrError,
    AsrEvent,
    AsrOptions,
    Backend,
    Final,
    Grammar,
    NoMatch,
    NoSpeech,
    StreamRecognizer,
)
from ivr.core.priority import lower_to_normal

log = logging.getLogger("ivr.asr.worker")

BackendFactory = Callable[[str], Backend]  # language -> backend (raises AsrError, ImportError)
_DECIDED = (Final, NoMatch, NoSpeech)


def backend_factory(spec: str, models_dir: Path) -> BackendFactory:
    """A factory for backend ``spec``: ``auto``, ``pocketsphinx``, ``vosk``, or
    ``module:callable`` (called with ``(language, models_dir)``; for tests and custom engines)."""
    if ":" in spec:
        module, _, attr = spec.partition(":")

        def make(language: str) -> Backend:  # imported here: a failure is the language's
            factory = getattr(importlib.import_module(module), attr)
            return factory(language, models_dir)

        return make
    from ivr.asr.backends import get_backend

    return lambda language: get_backend(spec, language, models_dir)


def load_backends(factory: BackendFactory, languages: Iterable[str]
                  ) -> tuple[dict[str, Backend], dict[str, str | None]]:  # fmt: skip
    """One backend per language it can recognise, and for every language why not (or None)."""
    backends: dict[str, Backend] = {}
    status: dict[str, str | None] = {}
    shared: dict[str, Backend] = {}  # one instance per backend name
    for language in dict.fromkeys(languages):
        try:
            backend = factory(language)
            backend = shared.setdefault(backend.name, backend)
            available = backend.languages()
        except Exception as exc:  # AsrError, a missing package, a broken model: speech off
            status[language] = str(exc) if isinstance(exc, AsrError) else (
                f"{type(exc).__name__}: {exc}")
            continue
        if language in available:
            try:
                _warm(backend, language)  # the model now, not at the first caller's first word
            except Exception as exc:
                status[language] = f"the {language} model cannot load: {exc}"
                continue
            backends[language] = backend
            status[language] = None
        else:
            status[language] = (f"the {backend.name} backend has no {language} model "
                                f"(it has {', '.join(available) or 'none'})")  # fmt: skip
    return backends, status


def _warm(backend: Backend, language: str) -> None:
    """Load ``language``'s model: the backend's ``preload`` when it has one, else a yes/no
    stream opened and finished (which also leaves a pooled decoder behind)."""
    preload = getattr(backend, "preload", None)
    if callable(preload):
        preload(language)
        return
    try:
        stream = backend.open(Grammar(language, builtin="yes_no"), AsrOptions())
    except AsrError as exc:  # no yes/no words for this language: the first call loads it
        log.debug("warming %s: %s", language, exc)
        return
    stream.finish()


class Decoder:
    """The streams of one worker: open, feed, close; returns the events per message."""

    def __init__(self, backends: dict[str, Backend]) -> None:
        self.backends = backends
        self.streams: dict[int, StreamRecognizer] = {}

    def handle(self, ops: list[tuple[object, ...]]) -> list[tuple[int, object]]:
        out: list[tuple[int, object]] = []
        for op in ops:
            kind, sid = op[0], op[1]
            assert isinstance(sid, int)
            if kind == "audio":
                self._audio(sid, op[2], out)  # type: ignore[arg-type]
            elif kind == "open":
                self._open(sid, op[2], op[3], out)  # type: ignore[arg-type]
            elif kind == "finish":
                self._finish(sid, out)
            elif kind == "close":
                self._release(sid, finish=True)
        return out

    def _finish(self, sid: int, out: list[tuple[int, object]]) -> None:
        """Decide stream ``sid`` now, on the audio it has had."""
        recognizer = self.streams.pop(sid, None)
        if recognizer is None:
            return  # decided already: its decision is on its way
        try:
            out.extend((sid, event) for event in recognizer.finish())
        except Exception as exc:
            log.exception("stream %d: the recognizer failed to finish", sid)
            out.append((sid, wire.StreamFailed(f"{type(exc).__name__}: {exc}")))

    def _open(self, sid: int, grammar: Grammar, options: AsrOptions,
              out: list[tuple[int, object]]) -> None:  # fmt: skip
        self._release(sid, finish=True)
        backend = self.backends.get(grammar.language)
        if backend is None:
            out.append((sid, wire.StreamFailed(f"no recognizer for {grammar.language!r}")))
            return
        try:
            self.streams[sid] = backend.open(grammar, options)
        except Exception as exc:  # a bad grammar fails its stream, never the worker
            log.exception("stream %d: cannot open a recognizer", sid)
            out.append((sid, wire.StreamFailed(f"{type(exc).__name__}: {exc}")))

    def _audio(self, sid: int, data: bytes, out: list[tuple[int, object]]) -> None:
        recognizer = self.streams.get(sid)
        if recognizer is None:
            return  # decided already (the service stops sending soon) or failed
        frames = np.frombuffer(data, dtype=np.int16).reshape(-1, FRAME_SAMPLES)
        try:
            for frame in frames:
                events: list[AsrEvent] = recognizer.accept(frame)
                out.extend((sid, event) for event in events)
                if any(isinstance(event, _DECIDED) for event in events):
                    self._release(sid, finish=False)
                    return
        except Exception as exc:
            log.exception("stream %d: the recognizer failed", sid)
            out.append((sid, wire.StreamFailed(f"{type(exc).__name__}: {exc}")))
            self.streams.pop(sid, None)

    def _release(self, sid: int, *, finish: bool) -> None:
        """Forget stream ``sid``; an undecided one is finished or closed so the backend gets its
        decoder back for the next caller."""
        recognizer = self.streams.pop(sid, None)
        if recognizer is None:
            return
        close = getattr(recognizer, "close", None)
        try:
            if callable(close):
                close()
            elif finish:
                recognizer.finish()
        except Exception:
            log.exception("stream %d: releasing the recognizer failed", sid)


def serve(sock: socket.socket, factory: BackendFactory, languages: Iterable[str]) -> None:
    """Load the backends, say ready, then decode until the socket closes."""
    backends, status = load_backends(factory, languages)
    wire.send(sock, ("ready", os.getpid(), status))
    decoder = Decoder(backends)
    seq = 0
    while True:
        try:
            message = wire.recv(sock)
        except OSError:
            message = None
        if message is None:
            break
        seq += 1
        events = decoder.handle(message)
        try:
            wire.send(sock, ("events", seq, events))
        except OSError:
            break
    for sid in list(decoder.streams):
        decoder._release(sid, finish=True)


def main(argv: list[str] | None = None) -> int:
    """The worker process: ``--fd`` is its end of the socket pair."""
    parser = argparse.ArgumentParser(prog="ivr.asr.worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--models", default="asr_models")
    parser.add_argument("--languages", default="en")
    args = parser.parse_args(argv)
    lower_to_normal()  # decoding must not share the media clock's raised priority (sip.priority)
    # Ctrl-C reaches the whole process group, and a service manager's stop (systemd's SIGTERM
    # to the whole cgroup, `timeout`, `kill -- -PGID`) reaches us as well as the server: the
    # server drains its calls, which still need us, then closes our socket and we end; a server
    # that died closes it too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"asr-worker[{os.getpid()}] %(levelname)s %(message)s")
    sock = socket.socket(fileno=args.fd)
    sock.setblocking(True)
    try:
        serve(sock, backend_factory(args.backend, Path(args.models)),
              [lang for lang in args.languages.split(",") if lang])
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
