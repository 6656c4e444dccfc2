"""The ASR service (ivr.asr.service): worker processes, pinning, batching, crash and stall recovery.

Everything here is real: the workers are ``python -m ivr.asr.worker`` processes running the
PocketSphinx backend (its model ships in the wheel), fed Asterisk's recorded digits; a crashed
worker is SIGKILLed and a stalled one SIGSTOPped by pid. Every stream hears its own digit, so a
stream whose frames reached another worker's recognizer, or were split between two, would come
back with the wrong digit or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from sphinx_audio import asterisk, needs_sounds, padded

from ivr.asr import wire
from ivr.asr.base import (
    FRAME_SAMPLES,
    AsrEvent,
    AsrOptions,
    Final,
    Grammar,
    NoMatch,
    Partial,
    SpeechStarted,
)
from ivr.asr.handle import WorkerHandle
from ivr.asr.service import AsrService, AsrStream, speech_support
from ivr.asr.sphinx import DecoderPool, SphinxBackend, SphinxStream
from ivr.config import load_config

pytestmark = pytest.mark.timeout(60)
SPHINX = "pocketsphinx"
DIGIT = Grammar("en", builtin="digits", min_digits=1, max_digits=1)
OPTIONS = AsrOptions()
DIGITS = "1279"  # the recordings PocketSphinx gets right with confidence 0.95 or more
Frames = list[np.ndarray]
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def run_for(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def until(check: Callable[[], object], timeout: float, what: str) -> None:
    """Wait (bounded: a safety net, not a measurement) until ``check()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


def frames(pcm: np.ndarray) -> Frames:
    return [pcm[i:i + FRAME_SAMPLES] for i in range(0, pcm.size - FRAME_SAMPLES + 1,
                                                     FRAME_SAMPLES)]  # fmt: skip


def digit(d: str, before: float = 0.3, after: float = 1.2) -> Frames:
    """Asterisk's recording of digit ``d`` with silence around it, in 20 ms frames."""
    return frames(padded(asterisk(f"digits/{d}"), before, after))


def silence(count: int) -> Frames:
    return [np.zeros(FRAME_SAMPLES, np.int16) for _ in range(count)]


async def play(*feeds: tuple[AsrStream, Frames]) -> None:
    """Feed each stream its frames, one frame per stream per tick (as the media clock does)."""
    for tick in range(max(len(f) for _, f in feeds)):
        for stream, audio in feeds:
            if tick < len(audio):
                stream.feed(audio[tick])
        await asyncio.sleep(0.005)


def split_at_speech(audio: Frames) -> tuple[Frames, Frames]:
    """``audio`` cut a few frames after the speech in it starts (the caller is mid-word)."""
    loud = next(i for i, f in enumerate(audio) if np.abs(f.astype(np.int32)).max() > 1000)
    return audio[:loud + 8], audio[loud + 8:]


class Caller:
    """One stream's events, and the pid of the worker each event came through."""

    def __init__(self, service: AsrService, label: str, grammar: Grammar = DIGIT) -> None:
        self.events: list[AsrEvent] = []
        self.pids: list[int | None] = []
        self.stream = service.open(grammar, OPTIONS, self._on_event, label)

    def _on_event(self, event: AsrEvent) -> None:
        self.events.append(event)
        worker = self.stream.worker  # None for the deciding event (the stream is unpinned)
        self.pids.append(worker.pid if worker is not None else None)

    def started(self) -> bool:
        return any(isinstance(e, SpeechStarted) for e in self.events)

    def final(self) -> Final | None:
        return next((e for e in self.events if isinstance(e, Final)), None)

    def no_match(self) -> NoMatch | None:
        return next((e for e in self.events if isinstance(e, NoMatch)), None)


def signalled(handle: WorkerHandle) -> int | None:
    """The signal that ended ``handle``'s process (None: still running or exited)."""
    assert handle.process is not None
    code = handle.process.poll()
    return -code if code is not None and code < 0 else None


@pytest.fixture
def cont_on_exit() -> Iterator[list[WorkerHandle]]:
    """Handles whose processes get a SIGCONT at the end if still alive (a test that stopped one
    must never leave it stopped)."""
    handles: list[WorkerHandle] = []
    yield handles
    for handle in handles:
        if handle.process is not None and handle.process.poll() is None:
            os.kill(handle.process.pid, signal.SIGCONT)



@contextlib.asynccontextmanager
async def started(service: AsrService) -> AsyncIterator[AsrService]:
    """``service`` started for the block, stopped after it (also when the block fails)."""
    await service.start()
    try:
        yield service
    finally:
        await service.stop()

@needs_sounds
def test_streams_go_to_the_least_loaded_worker_and_stay_there() -> None:
    async def scenario() -> None:
        async with started(AsrService(SPHINX, workers=2)) as service:
            pids = {w.pid for w in service.stats()}
            assert len(pids) == 2 and os.getpid() not in pids
            callers = [Caller(service, f"call-{d}") for d in DIGITS]
            assert [w.streams for w in service.stats()] == [2, 2]
            at_open = [c.stream.worker.pid for c in callers if c.stream.worker is not None]
            assert set(at_open) == pids
            await play(*((c.stream, digit(d)) for c, d in zip(callers, DIGITS, strict=True)))
            await until(lambda: all(c.final() or c.no_match() for c in callers), 20,
                        "every stream decided")  # fmt: skip
            for caller, d, pid in zip(callers, DIGITS, at_open, strict=True):
                final = caller.final()
                assert final is not None and final.choice == d, caller.events
                assert isinstance(caller.events[0], SpeechStarted) and caller.events[-1] is final
                # every event before the decision came through the worker chosen at open
                assert set(caller.pids[:-1]) == {pid} and caller.pids[-1] is None
            assert [w.streams for w in service.stats()] == [0, 0]  # decided streams leave
            # a new stream goes to the worker with fewer streams
            first = Caller(service, "first")
            second = Caller(service, "second")
            assert {first.stream.worker, second.stream.worker} == set(service.workers)
            roomy = second.stream.worker
            second.stream.close()
            late = Caller(service, "late")
            assert late.stream.worker is roomy
            await play((late.stream, digit("7")))
            await until(lambda: late.final() or late.no_match(), 10, "the late stream decided")
            final = late.final()
            assert final is not None and final.choice == "7"

    run(scenario())


def test_the_frames_of_one_tick_reach_a_worker_as_one_message() -> None:
    async def scenario() -> None:
        async with started(AsrService(SPHINX, workers=1)) as service:
            callers = [Caller(service, f"call-{i}") for i in range(5)]
            await asyncio.sleep(0)  # the opens: one message
            await play(*((c.stream, silence(20)) for c in callers))  # 20 ticks of 5 frames
            worker = service.workers[0]
            await until(lambda: worker.acked == worker.sent, 5, "all messages answered")
            assert worker.sent == 21  # not 101: a message per tick, not per frame
            assert service.stats()[0].backlog == 0
            assert all(c.events == [] and c.stream.open for c in callers)  # nobody spoke

    run(scenario())


@needs_sounds
def test_a_killed_worker_ends_the_speaking_stream_and_moves_the_idle_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with started(AsrService(SPHINX, workers=1)) as service:
            talker = Caller(service, "talker")
            waiter = Caller(service, "waiter")
            begun, rest = split_at_speech(digit("2"))
            await play((talker.stream, begun), (waiter.stream, silence(len(begun))))
            await until(talker.started, 5, "speech started")
            old = service.workers[0]
            assert old.pid is not None and old.pid != os.getpid()
            os.kill(old.pid, signal.SIGKILL)
            await until(talker.no_match, 10, "the speaking stream ended with a NoMatch")
            no_match = talker.no_match()
            assert no_match is not None and not talker.stream.open
            assert talker.events[0] == SpeechStarted(no_match.speech_start)
            assert talker.events[-1] is no_match
            assert all(isinstance(e, Partial) for e in talker.events[1:-1])
            heard = len(talker.events)
            await until(lambda: signalled(old) == signal.SIGKILL, 10, "the old worker reaped")
            await until(lambda: service.stats()[0].state == "ready", 20, "a new worker")
            new = service.stats()[0]
            assert new.pid != old.pid and new.restarts == 1
            assert waiter.events == [] and waiter.stream.open
            assert waiter.stream.worker is service.workers[0]
            await play((talker.stream, rest), (waiter.stream, digit("9")))  # the talker is gone
            await until(waiter.final, 10, "the moved stream's Final")
            final = waiter.final()
            assert final is not None and final.choice == "9"
            assert set(waiter.pids[:-1]) == {new.pid}
            assert len(talker.events) == heard  # nothing after the NoMatch

    with caplog.at_level(logging.ERROR, logger="ivr.asr"):
        run(scenario())
    assert any("ASR worker 0" in r.message and "lost" in r.message for r in caplog.records)


def asr_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.levelname} {r.message}" for r in caplog.records if r.name.startswith("ivr.asr")]


def test_a_clean_stop_logs_no_warning_even_after_the_whole_group_got_sigterm(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A service manager stops a server by sending SIGTERM to its whole process group (systemd,
    ``timeout``): the workers leave it to the server, which drains and then stops them."""
    async def scenario() -> list[WorkerHandle]:
        async with started(AsrService(SPHINX, workers=1)) as service:
            plain = service.workers[0]
        async with started(AsrService(SPHINX, workers=1)) as service:
            worker = service.workers[0]
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGTERM)
            caller = Caller(service, "draining")
            await play((caller.stream, silence(10)))
            await until(lambda: worker.sent and worker.acked == worker.sent, 10,
                        "the worker still answering after SIGTERM")  # fmt: skip
            assert service.workers[0] is worker and worker.state == "ready"
        return [plain, worker]

    with caplog.at_level(logging.INFO, logger="ivr.asr"):
        handles = run_for(scenario())
    assert [h.process.returncode for h in handles if h.process is not None] == [0, 0]
    assert [line for line in asr_log(caplog) if not line.startswith("INFO")] == []


def test_a_worker_killed_while_serving_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with started(AsrService(SPHINX, workers=1)) as service:
            old = service.workers[0]
            assert old.pid is not None
            os.kill(old.pid, signal.SIGKILL)
            await until(lambda: any("exited with status -9" in line for line in asr_log(caplog)),
                        10, "the warning")  # fmt: skip
            await until(lambda: service.stats()[0].state == "ready", 20, "a new worker")

    with caplog.at_level(logging.INFO, logger="ivr.asr"):
        run(scenario())
    problems = [line for line in asr_log(caplog) if not line.startswith("INFO")]
    assert problems[0].startswith("ERROR call -: ASR worker 0") and "lost" in problems[0]
    assert problems[1].startswith("WARNING call -: ASR worker 0")
    assert problems[1].endswith("exited with status -9")
    assert len(problems) == 2  # the replacement's clean stop adds nothing


@needs_sounds
def test_a_stalled_worker_is_killed_and_the_caller_gets_a_no_match(
    caplog: pytest.LogCaptureFixture, cont_on_exit: list[WorkerHandle]
) -> None:
    async def scenario() -> None:
        async with started(AsrService(SPHINX, workers=1, stall_timeout=1.0)) as service:
            talker = Caller(service, "talker")
            waiter = Caller(service, "waiter")
            begun, rest = split_at_speech(digit("1"))
            await play((talker.stream, begun), (waiter.stream, silence(len(begun))))
            await until(talker.started, 5, "speech started")
            old = service.workers[0]
            assert old.pid is not None
            cont_on_exit.append(old)
            os.kill(old.pid, signal.SIGSTOP)
            await play((talker.stream, rest))  # unanswered: the worker is stopped
            await until(talker.no_match, 15, "a NoMatch after the stall")
            assert not talker.stream.open and talker.final() is None
            await until(lambda: signalled(old) == signal.SIGKILL, 10, "the stalled worker killed")
            await until(lambda: service.stats()[0].state == "ready", 20, "a new worker")
            assert service.stats()[0].restarts == 1 and service.stats()[0].pid != old.pid
            assert waiter.events == [] and waiter.stream.open
            await play((waiter.stream, digit("7")))
            await until(waiter.final, 10, "the moved stream's Final")
            final = waiter.final()
            assert final is not None and final.choice == "7"

    with caplog.at_level(logging.ERROR, logger="ivr.asr"):
        run(scenario())
    assert any("has not answered for" in r.message and "killing it" in r.message
               for r in caplog.records)  # fmt: skip


def test_languages_without_a_model_and_engines_that_cannot_load_are_explained() -> None:
    async def scenario() -> None:
        async with started(AsrService(SPHINX, workers=1, languages=("en", "zh"))) as service:
            assert service.unavailable("en") is None
            assert service.unavailable("zh") == (
                "the pocketsphinx backend has no zh model (it has en)")  # fmt: skip
            assert "not one of the languages loaded" in (service.unavailable("fr") or "")
        assert service.unavailable("en") == "speech recognition is not running"
        broken = AsrService("no_such_asr_module:make", workers=1)
        await broken.start()  # never raises: speech is off, DTMF works
        try:
            assert "No module named 'no_such_asr_module'" in (broken.unavailable("en") or "")
        finally:
            await broken.stop()

    run(scenario())


class CountingSphinx(SphinxBackend):
    """The real backend, counting the recognizers it opened."""

    def __init__(self) -> None:
        super().__init__(DecoderPool())
        self.opened = 0

    def open(self, grammar: Grammar, options: AsrOptions) -> SphinxStream:
        self.opened += 1
        return super().open(grammar, options)


@needs_sounds
def test_in_process_workers_use_the_same_code_and_close_stops_events() -> None:
    backends: list[CountingSphinx] = []

    def factory(language: str) -> CountingSphinx:
        backends.append(CountingSphinx())
        return backends[-1]

    async def scenario() -> None:
        async with started(AsrService(workers=2, in_process=True, factory=factory)) as service:
            assert [w.pid for w in service.stats()] == [os.getpid()] * 2
            kept = Caller(service, "kept")
            dropped = Caller(service, "dropped")
            dropped.stream.close()
            await play((kept.stream, digit("2")), (dropped.stream, digit("2")))
            await until(kept.final, 10, "a Final")
            assert dropped.events == [] and not dropped.stream.open
            final = kept.final()
            assert final is not None and final.choice == "2"
            # each worker warmed its backend with one stream at start, then ours
            assert len(backends) == 2 and sum(b.opened for b in backends) == 2 + 2

    run(scenario())


def test_wire_frames_survive_any_split() -> None:
    messages = [("events", 1, [(3, Final("yes", "yes", 0.9, 0.1, 0.5, 1.3))]),
                [("audio", 7, bytearray(b"\x01\x00" * 160))]]  # fmt: skip
    data = b"".join(wire.encode(m) for m in messages)
    reader = wire.FrameReader()
    got = [m for i in range(len(data)) for m in reader.feed(data[i:i + 1])]
    assert got == messages
    with pytest.raises(ValueError, match="corrupt"):
        wire.FrameReader().feed(b"\xff\xff\xff\xff")
    left, right = socket.socketpair()
    with left, right:
        wire.send(left, messages[0])
        assert wire.recv(right) == messages[0]
        left.shutdown(socket.SHUT_WR)
        assert wire.recv(right) is None


def test_the_asr_section_of_ivr_yaml_and_what_it_supports(tmp_path: Path) -> None:
    default = load_config(tmp_path / "missing.yaml")
    assert (default.asr.backend, default.asr.workers) == ("auto", 0)
    assert default.asr.models_dir == tmp_path / "asr_models" and default.asr.worker_count >= 1
    (tmp_path / "ivr.yaml").write_text("asr: {backend: off, workers: 3, models_dir: /srv/m}\n")
    config = load_config(tmp_path / "ivr.yaml")
    assert (config.asr.backend, config.asr.worker_count, config.asr.models_dir) == (
        "off", 3, Path("/srv/m"))  # fmt: skip
    assert speech_support("off", tmp_path, ["en"]) == {
        "en": "speech recognition is off (asr.backend: off)"}  # fmt: skip
    assert speech_support(SPHINX, tmp_path, ["en", "zh"]) == {
        "en": None, "zh": "the pocketsphinx backend has no zh model (it has en)"}  # fmt: skip


@needs_sounds
def test_a_grammar_the_backend_refuses_silences_its_stream_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with started(AsrService(SPHINX, workers=1)) as service:
            refused = Caller(service, "c1", Grammar("en", {"odd": ("zzqxjv",)}))
            foreign = Caller(service, "c2", Grammar("fr", {"oui": ("oui",)}))
            fine = Caller(service, "c3")
            await until(lambda: refused.stream.state == foreign.stream.state == "failed", 5,
                        "the refused streams failed")  # fmt: skip
            await play((refused.stream, digit("9")), (foreign.stream, digit("9")),
                       (fine.stream, digit("9")))  # fmt: skip
            await until(fine.final, 10, "a Final")
            final = fine.final()
            assert final is not None and final.choice == "9"
            assert refused.events == foreign.events == [] and service.stats()[0].restarts == 0

    with caplog.at_level(logging.ERROR, logger="ivr.asr"):
        run(scenario())
    failures = [r.message for r in caplog.records if "speech recognition failed" in r.message]
    assert any(m.startswith("call c1: speech recognition failed: AsrError: not in the "
                            "PocketSphinx English dictionary: 'zzqxjv'") for m in failures)
    assert "call c2: speech recognition failed: no recognizer for 'fr'" in failures


@needs_sounds
def test_finish_decides_a_speaking_stream_on_what_it_heard() -> None:
    """The speech gate's "decide now" (speech followed by a sound whose level never drops):
    asked while the caller is still mid-word, the recognizer decides at once."""
    async def scenario() -> None:
        async with started(AsrService(SPHINX, workers=1)) as service:
            caller = Caller(service, "call-finish")
            head, tail = split_at_speech(digit("7"))
            await play((caller.stream, head))
            await until(caller.started, 10, "speech started")
            assert caller.final() is None and caller.no_match() is None
            caller.stream.finish()
            for frame in tail:  # ignored once finishing
                caller.stream.feed(frame)
            await until(lambda: caller.final() or caller.no_match(), 10, "a decision")
            decisions = [e for e in caller.events if isinstance(e, Final | NoMatch)]
            assert len(decisions) == 1 and caller.events[-1] is decisions[0]
            assert decisions[0].decided_at <= len(head) * 0.02 + 1e-6  # on the head alone
            assert service.stats()[0].streams == 0

    run(scenario())
