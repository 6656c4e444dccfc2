"""A call's speech input (ivr.host.speech): the engine's ListenSpec in, listener events out.

The ASR service runs its workers on threads here, with the fake backend of asr_fakes.py; the
same path over real SIP/RTP with PocketSphinx is in test_serve_speech_e2e.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import numpy as np
import pytest
from asr_fakes import FakeBackend, silence, speech

from ivr.asr.service import AsrService
from ivr.engine.channel import ListenSpec, SpeechResult
from ivr.host.speech import DTMF_GUARD, PRE_ROLL, CallSpeech, grammar_for

pytestmark = pytest.mark.timeout(30)
MENU = ListenSpec("main_menu", "en", {"1": ("balance",), "global:agent": ("agent",)},
                  end_silence=0.1)  # fmt: skip


class Listener:
    """Keeps what the engine would be told."""

    def __init__(self) -> None:
        self.told: list[str | SpeechResult] = []

    def on_speech_start(self) -> None:
        self.told.append("speech_start")

    def on_speech(self, result: SpeechResult) -> None:
        self.told.append(result)

    def results(self) -> list[SpeechResult]:
        return [t for t in self.told if isinstance(t, SpeechResult)]


@asynccontextmanager
async def call_speech() -> AsyncIterator[tuple[CallSpeech, Listener]]:
    service = AsrService(workers=1, in_process=True, languages=("en", "zh"),
                         factory=FakeBackend)  # fmt: skip
    await service.start()
    listener = Listener()
    try:
        yield CallSpeech(service, lambda: listener, "call-1"), listener
    finally:
        await service.stop()


async def feed(speech_in: CallSpeech, frames: list[np.ndarray]) -> None:
    for frame in frames:
        speech_in.feed(frame)
        await asyncio.sleep(0.002)


async def until(check: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


def test_each_decision_is_told_with_its_latency() -> None:
    async def body() -> None:
        service = AsrService(workers=1, in_process=True, languages=("en",),
                             factory=FakeBackend)  # fmt: skip
        await service.start()
        listener, decisions = Listener(), []
        speech_in = CallSpeech(service, lambda: listener, "call-1",
                               on_decision=lambda d, latency: decisions.append((d, latency)))
        try:
            speech_in.listen(MENU)
            await feed(speech_in, silence(2) + speech(1) + silence(10))
            await until(lambda: decisions, "a decision")
            await feed(speech_in, speech(7) + silence(10))  # no 7th choice: no match
            await until(lambda: len(decisions) == 2, "a second decision")
        finally:
            await service.stop()
        assert [d for d, _ in decisions] == ["match", "no_match"]
        assert all(latency is not None and latency >= 0 for _, latency in decisions)
        assert [r.choice for r in listener.results()] == ["1", None]

    asyncio.run(body())


def test_the_grammar_is_what_the_engine_listens_for() -> None:
    spec = ListenSpec("ask", "en", {"1": ("one",)}, "digits", min_digits=4, max_digits=6)
    grammar = grammar_for(spec)
    assert (grammar.language, grammar.choices, grammar.builtin) == ("en", {"1": ("one",)},
                                                                     "digits")  # fmt: skip
    assert (grammar.min_digits, grammar.max_digits) == (4, 6)
    assert grammar_for(ListenSpec("x", "zh", builtin="nonsense")).builtin is None


def test_speech_starts_then_a_result_and_the_next_utterance_opens_when_the_caller_speaks() -> None:
    async def scenario() -> None:
        async with call_speech() as (speech_in, listener):
            speech_in.listen(MENU)
            assert speech_in.utterance is None  # the gate is shut: nothing goes to a worker
            await feed(speech_in, silence(2) + speech(2, 3))  # choice 2: agent
            first = speech_in.utterance
            assert first is not None and first.open
            await feed(speech_in, speech(2, 7) + silence(10))
            await until(lambda: listener.results(), "a result")
            assert listener.told[0] == "speech_start"
            assert listener.results() == [SpeechResult("agent", 0.9, "global:agent")]
            assert speech_in.utterance is None
            await feed(speech_in, speech(7) + silence(10))  # no 7th choice: no match
            await until(lambda: len(listener.results()) == 2, "a second result")
            assert listener.results()[1] == SpeechResult("mumble", 0.2, None, rejected=True)
            assert speech_in.gate.opened == 2

    asyncio.run(scenario())


def test_a_caller_listening_in_silence_sends_nothing_to_the_workers() -> None:
    async def scenario() -> None:
        async with call_speech() as (speech_in, listener):
            worker = speech_in.service.workers[0]
            sent = worker.sent
            speech_in.listen(MENU)
            quiet = [np.random.default_rng(i).integers(-30, 30, 160).astype(np.int16)
                     for i in range(100)]  # line noise around -60 dBFS, 2 s
            await feed(speech_in, quiet)
            assert speech_in.utterance is None and worker.sent == sent
            await feed(speech_in, speech(1) + silence(10))
            await until(lambda: listener.results(), "a result")
            assert worker.sent > sent
            assert listener.results() == [SpeechResult("balance", 0.9, "1")]

    asyncio.run(scenario())


def test_speech_into_a_steady_sound_is_decided_when_the_gate_gives_up_and_does_not_reopen(
) -> None:
    async def scenario() -> None:
        async with call_speech() as (speech_in, listener):
            speech_in.listen(MENU)
            # A constant level (a hum) the fake takes for choice 1: it never pauses, so the
            # fake's endpointer never ends it; the gate does, and the recognizer decides.
            await feed(speech_in, silence(5) + speech(1, 90))
            await until(lambda: listener.results(), "a result")
            assert listener.told[0] == "speech_start"
            assert listener.results() == [SpeechResult("balance", 0.9, "1")]
            assert speech_in.gate.gave_up == 1
            await feed(speech_in, speech(1, 100))  # the hum goes on: no new utterance
            assert speech_in.utterance is None and speech_in.gate.opened == 1

    asyncio.run(scenario())


def test_an_opening_the_recognizer_never_confirms_is_dropped_quietly() -> None:
    async def scenario() -> None:
        async with call_speech() as (speech_in, listener):
            speech_in.listen(MENU)
            # Loud to the gate, silence to the fake (mean zero: a tone), for 1.2 s.
            t = np.arange(160 * 60) / 8000
            buzz = (8000 * np.sin(2 * np.pi * 400 * t)).astype(np.int16).reshape(60, 160)
            await feed(speech_in, silence(5) + list(buzz))
            assert speech_in.gate.opened == 1 and speech_in.gate.gave_up == 1
            assert speech_in.utterance is None and listener.told == []

    asyncio.run(scenario())


def test_a_key_press_drops_what_was_heard_and_recognition_resumes_after_the_guard() -> None:
    async def scenario() -> None:
        async with call_speech() as (speech_in, listener):
            speech_in.listen(MENU)
            await feed(speech_in, silence(2) + speech(1, 3))
            await until(lambda: listener.told, "speech start")
            speech_in.dtmf()
            assert speech_in.utterance is None
            await feed(speech_in, speech(1, DTMF_GUARD))  # the guard: not even the gate hears
            assert speech_in.utterance is None and speech_in.gate.opened == 1
            speech_in.listen(MENU)
            await feed(speech_in, silence(1) + speech(1, 3))
            assert speech_in.utterance is not None
            await feed(speech_in, speech(1, 7) + silence(10))
            await until(lambda: len(listener.results()) == 1, "a result")
            assert listener.results() == [SpeechResult("balance", 0.9, "1")]

    asyncio.run(scenario())


def test_stop_and_a_new_listen_replace_the_utterance() -> None:
    async def scenario() -> None:
        async with call_speech() as (speech_in, listener):
            speech_in.listen(MENU)
            await feed(speech_in, silence(2) + speech(1, 3))
            old = speech_in.utterance
            speech_in.listen(ListenSpec("confirm", "en", builtin="yes_no"))
            assert old is not None and not old.open and speech_in.utterance is None
            speech_in.stop()
            assert speech_in.utterance is None and speech_in.spec is None
            await feed(speech_in, silence(5) + speech(1) + silence(10))
            assert speech_in.utterance is None
            assert [t for t in listener.told if t != "speech_start"] == []

    asyncio.run(scenario())


def test_a_language_without_a_model_listens_for_nothing_and_says_why_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with call_speech() as (speech_in, listener):
            for _ in range(2):
                speech_in.listen(ListenSpec("main_menu", "zh", {"1": ("余额",)}))
                assert speech_in.utterance is None
            await feed(speech_in, speech(1) + silence(10))
            assert listener.told == []

    with caplog.at_level(logging.WARNING, logger="ivr.serve"):
        asyncio.run(scenario())
    why = [r.message for r in caplog.records if "no speech recognition in 'zh'" in r.message]
    assert len(why) == 1 and "the fake backend has no zh model" in why[0]


def test_a_new_utterance_starts_with_the_callers_last_half_second_but_not_an_old_answer() -> None:
    async def scenario() -> None:
        async with call_speech() as (speech_in, listener):
            await feed(speech_in, silence(40))  # heard before the node listens
            speech_in.listen(MENU)
            await feed(speech_in, speech(1, 3))
            assert speech_in.utterance is not None
            assert speech_in.utterance.frames == PRE_ROLL  # the last 0.5 s, onset included
            await feed(speech_in, speech(1, 7) + silence(10))
            await until(lambda: listener.results(), "a result")
            # The next one starts with what came after the decision, padded with silence.
            await feed(speech_in, silence(4) + speech(2, 3))
            assert speech_in.utterance is not None and speech_in.utterance.frames == PRE_ROLL
            speech_in.dtmf()  # an in-band key: its tones are dropped from the history
            await feed(speech_in, silence(DTMF_GUARD + 3) + speech(2, 3))
            assert speech_in.utterance is not None and speech_in.utterance.frames == PRE_ROLL

    asyncio.run(scenario())
