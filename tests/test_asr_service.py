"""The ASR service (ivr.asr.service): worker processes, pinning, batching, crash and stall recovery.

The workers are real processes (``python -m ivr.asr.worker``) running the fake backend of
asr_fakes.py, so these tests exercise the sockets, the messages and the process handling without
the cost of a real recognizer; test_serve_speech_e2e.py runs PocketSphinx.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asr_fakes import FakeBackend, silence, speech

from ivr.asr import wire
from ivr.asr.base import AsrEvent, AsrOptions, Final, Grammar, NoMatch, Partial, SpeechStarted
from ivr.asr.service import AsrService, AsrStream, speech_support
from ivr.config import load_config

pytestmark = pytest.mark.timeout(60)
FAKE = "asr_fakes:make_fake"
MENU = Grammar("en", {"balance": ("balance",), "card": ("lost card",)})  # 1: balance, 2: card
QUICK = AsrOptions(end_silence=0.1)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def until(check: Callable[[], object], timeout: float, what: str) -> None:
    """Wait (bounded) until ``check()`` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.02)


async def say(streams: list[AsrStream], frames: list[np.ndarray]) -> None:
    """Feed ``frames`` to every stream, one frame per tick (as the media clock does)."""
    for frame in frames:
        for stream in streams:
            stream.feed(frame)
        await asyncio.sleep(0.005)


def pid_of(events: list[AsrEvent]) -> int:
    partial = next(e for e in events if isinstance(e, Partial))
    return int(partial.text.split()[1])


def test_streams_go_to_the_least_loaded_worker_and_stay_there() -> None:
    async def scenario() -> None:
        service = AsrService(FAKE, workers=2)
        await service.start()
        try:
            heard: list[list[AsrEvent]] = [[] for _ in range(4)]
            streams = [service.open(MENU, QUICK, heard[i].append, f"call-{i}") for i in range(4)]
            assert sorted(w.streams for w in service.stats()) == [2, 2]
            await say(streams, silence(3) + speech(2) + silence(10))
            await until(lambda: all(any(isinstance(e, Final) for e in h) for h in heard), 10,
                        "every stream decided")  # fmt: skip
            pids = {w.pid for w in service.stats()}
            assert {pid_of(h) for h in heard} == pids and len(pids) == 2
            for events in heard:
                final = next(e for e in events if isinstance(e, Final))
                assert (final.choice, final.text) == ("card", "lost card")
                assert isinstance(events[0], SpeechStarted) and events[-1] is final
            # decided streams leave their worker
            assert [w.streams for w in service.stats()] == [0, 0]
        finally:
            await service.stop()

    run(scenario())


def test_the_frames_of_one_tick_reach_a_worker_as_one_message() -> None:
    async def scenario() -> None:
        service = AsrService(FAKE, workers=1)
        await service.start()
        try:
            streams = [service.open(MENU, QUICK, lambda e: None) for _ in range(5)]
            await asyncio.sleep(0)  # the opens: one message
            await say(streams, silence(20))  # 20 ticks of 5 frames
            worker = service.workers[0]
            await until(lambda: worker.acked == worker.sent, 5, "all messages answered")
            assert worker.sent == 21  # not 101: a message per tick, not per frame
            assert service.stats()[0].backlog == 0
        finally:
            await service.stop()

    run(scenario())


def test_a_killed_worker_ends_the_speaking_stream_and_moves_the_idle_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        service = AsrService(FAKE, workers=1)
        await service.start()
        try:
            speaking: list[AsrEvent] = []
            idle: list[AsrEvent] = []
            talker = service.open(MENU, QUICK, speaking.append, "talker")
            waiter = service.open(MENU, QUICK, idle.append, "waiter")
            await say([talker], speech(1, 3))
            await until(lambda: speaking, 5, "speech started")
            old = service.stats()[0].pid
            assert old is not None and old != os.getpid()
            os.kill(old, signal.SIGKILL)
            await until(lambda: any(isinstance(e, NoMatch) for e in speaking), 10,
                        "the speaking stream ended with a NoMatch")  # fmt: skip
            assert not talker.open
            await until(lambda: service.stats()[0].state == "ready", 20, "a new worker")
            assert service.stats()[0].pid != old and service.stats()[0].restarts == 1
            assert idle == [] and waiter.open
            await say([waiter], speech(1) + silence(10))  # the idle stream goes on, elsewhere
            await until(lambda: any(isinstance(e, Final) for e in idle), 10, "a Final")
            assert pid_of(idle) == service.stats()[0].pid
        finally:
            await service.stop()

    with caplog.at_level(logging.ERROR, logger="ivr.asr"):
        run(scenario())
    assert any("ASR worker 0" in r.message and "lost" in r.message for r in caplog.records)


def test_a_stalled_worker_is_killed_and_the_caller_gets_a_no_match() -> None:
    async def scenario() -> None:
        service = AsrService(FAKE, workers=1, stall_timeout=1.0)
        await service.start()
        try:
            heard: list[AsrEvent] = []
            stream = service.open(Grammar("en", {"hang": ("hang",)}), QUICK, heard.append)
            await say([stream], speech(1, 1))
            await until(lambda: heard, 5, "speech started")
            await say([stream], speech(1, 1))  # the fake blocks on this frame
            await until(lambda: any(isinstance(e, NoMatch) for e in heard), 15,
                        "a NoMatch after the stall")  # fmt: skip
            await until(lambda: service.stats()[0].state == "ready", 20, "a new worker")
            assert service.stats()[0].restarts == 1
        finally:
            await service.stop()

    run(scenario())


def test_languages_without_a_model_and_engines_that_cannot_load_are_explained() -> None:
    async def scenario() -> None:
        service = AsrService(FAKE, workers=1, languages=("en", "zh"))
        await service.start()
        try:
            assert service.unavailable("en") is None
            assert service.unavailable("zh") == "the fake backend has no zh model (it has en)"
            assert "not one of the languages loaded" in (service.unavailable("fr") or "")
        finally:
            await service.stop()
        assert service.unavailable("en") == "speech recognition is not running"
        broken = AsrService("no_such_asr_module:make", workers=1)
        await broken.start()  # never raises: speech is off, DTMF works
        try:
            assert "No module named 'no_such_asr_module'" in (broken.unavailable("en") or "")
        finally:
            await broken.stop()

    run(scenario())


def test_in_process_workers_use_the_same_code_and_close_stops_events() -> None:
    backends: list[FakeBackend] = []

    def factory(language: str) -> FakeBackend:
        backends.append(FakeBackend(language))
        return backends[-1]

    async def scenario() -> None:
        service = AsrService(workers=2, in_process=True, factory=factory)
        await service.start()
        try:
            kept: list[AsrEvent] = []
            dropped: list[AsrEvent] = []
            stream = service.open(MENU, QUICK, kept.append)
            closed = service.open(MENU, QUICK, dropped.append)
            closed.close()
            await say([stream, closed], speech(1) + silence(10))
            await until(lambda: any(isinstance(e, Final) for e in kept), 10, "a Final")
            assert dropped == [] and not closed.open
            assert next(e for e in kept if isinstance(e, Final)).choice == "balance"
            # each worker warmed its backend with one stream at start, then ours
            assert len(backends) == 2 and sum(b.opened for b in backends) == 2 + 2
        finally:
            await service.stop()

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
    assert speech_support(FAKE, tmp_path, ["en", "zh"]) == {
        "en": None, "zh": "the fake backend has no zh model (it has en)"}  # fmt: skip


def test_a_grammar_the_backend_refuses_silences_its_stream_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        service = AsrService(FAKE, workers=1)
        await service.start()
        try:
            refused: list[AsrEvent] = []
            fine: list[AsrEvent] = []
            bad = service.open(Grammar("en", {"refuse": ("no",)}), QUICK, refused.append, "c1")
            good = service.open(MENU, QUICK, fine.append, "c2")
            await until(lambda: bad.state == "failed", 5, "the refused stream failed")
            await say([bad, good], speech(1) + silence(10))
            await until(lambda: any(isinstance(e, Final) for e in fine), 10, "a Final")
            assert refused == [] and service.stats()[0].restarts == 0
        finally:
            await service.stop()

    with caplog.at_level(logging.ERROR, logger="ivr.asr"):
        run(scenario())
    assert any("call c1: speech recognition failed: AsrError: the fake refuses this grammar"
               in r.message for r in caplog.records)  # fmt: skip
