"""PromptSlots (ivr.media.prompt_slots) on a real event loop: order, reports, drops, closing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from ivr.media.prompt_slots import PromptSlots


class Output:
    """A player that keeps what it is given; the test says when a slot has played."""

    def __init__(self) -> None:
        self.started: list[tuple[int, bytes | None]] = []
        self.finished: list[int] = []

    def start(self, slot_id: int, audio: bytes | None) -> None:
        self.started.append((slot_id, audio))

    def done(self, slot_id: int) -> None:
        self.finished.append(slot_id)


def run(test: Callable[[asyncio.AbstractEventLoop], Awaitable[None]]) -> None:
    async def main() -> None:
        await test(asyncio.get_running_loop())

    asyncio.run(main())


async def settle() -> None:
    """Let the done callbacks of resolved futures run."""
    for _ in range(3):
        await asyncio.sleep(0)


def future(loop: asyncio.AbstractEventLoop, audio: bytes | None = None,
           *, ready: bool = True) -> asyncio.Future[bytes | None]:  # fmt: skip
    fut: asyncio.Future[bytes | None] = loop.create_future()
    if ready:
        fut.set_result(audio)
    return fut


def test_a_later_prompt_ready_first_waits_for_the_earlier_one() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        out = Output()
        slots: PromptSlots[bytes] = PromptSlots(out.start, out.done)
        slow = future(loop, ready=False)
        first = slots.add("synthesized", slow)
        second = slots.add("recorded", future(loop, b"\x80" * 160))
        await settle()
        assert out.started == []  # the recorded prompt must not jump the queue
        slow.set_result(b"\x7f" * 320)
        await settle()
        assert out.started == [(first, b"\x7f" * 320), (second, b"\x80" * 160)]
        assert (first, second) == (1, 2)

    run(test)


def test_each_slot_is_reported_once_when_played_and_leaves_the_queue() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        out = Output()
        slots: PromptSlots[bytes] = PromptSlots(out.start, out.done)
        a = slots.add("a", future(loop, b"a"))
        b = slots.add("b", future(loop, b"b"))
        await settle()
        assert len(slots) == 2
        slots.played(a)
        slots.played(a)  # a second report of the same slot
        slots.played(99)  # a slot this queue never had
        assert out.finished == [a] and len(slots) == 1
        slots.played(b)
        assert out.finished == [a, b] and len(slots) == 0

    run(test)


@pytest.mark.parametrize("outcome", ["none", "empty", "failed", "cancelled"])
def test_a_prompt_without_audio_starts_as_none_and_does_not_hold_up_the_next(
    outcome: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        out = Output()
        slots: PromptSlots[bytes] = PromptSlots(out.start, out.done, call_id="c-1")
        broken = future(loop, ready=False)
        first = slots.add("broken", broken)
        second = slots.add("fine", future(loop, b"ok"))
        if outcome == "none":
            broken.set_result(None)
        elif outcome == "empty":
            broken.set_result(b"")
        elif outcome == "failed":
            broken.set_exception(OSError("espeak died"))
        else:
            broken.cancel()
        await settle()
        assert out.started == [(first, None), (second, b"ok")]
        slots.played(first)
        assert out.finished == [first]

    with caplog.at_level(logging.WARNING, logger="ivr.media.prompt_slots"):
        run(test)
    assert "call c-1: prompt broken" in caplog.text
    assert ("espeak died" in caplog.text) == (outcome == "failed")


def test_the_audio_test_decides_what_counts_as_nothing_to_play() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        out = Output()
        # An audio type whose emptiness is not its truth value (like EncodedAudio.frames).
        slots: PromptSlots[bytes] = PromptSlots(out.start, out.done,
                                                has_audio=lambda a: len(a) >= 160)  # fmt: skip
        short = slots.add("short", future(loop, b"\x80" * 10))
        full = slots.add("full", future(loop, b"\x80" * 160))
        await settle()
        assert out.started == [(short, None), (full, b"\x80" * 160)]

    run(test)


def test_clear_drops_the_queue_cancels_loading_audio_and_reports_nothing_dropped() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        out = Output()
        slots: PromptSlots[bytes] = PromptSlots(out.start, out.done)
        playing = slots.add("playing", future(loop, b"p"))
        loading = future(loop, ready=False)
        slots.add("loading", loading)
        await settle()
        slots.clear()
        assert loading.cancelled() and len(slots) == 0
        slots.played(playing)  # the output's late report of the stopped prompt
        assert out.finished == []
        after = slots.add("after", future(loop, b"n"))  # a cleared queue takes new prompts
        await settle()
        assert out.started == [(playing, b"p"), (after, b"n")]
        assert after == 3  # ids are never reused
        slots.played(after)
        assert out.finished == [after]

    run(test)


def test_a_closed_queue_cancels_new_audio_and_never_starts_it() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        out = Output()
        slots: PromptSlots[bytes] = PromptSlots(out.start, out.done)
        before = future(loop, ready=False)
        slots.add("before", before)
        slots.close()
        late = future(loop, ready=False)
        late_id = slots.add("late", late)
        await settle()
        assert before.cancelled() and late.cancelled() and slots.closed
        slots.played(late_id)
        assert out.started == [] and out.finished == [] and len(slots) == 0

    run(test)


def test_an_output_that_reports_played_at_once_keeps_the_order() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        finished: list[int] = []
        started: list[int] = []
        slots: PromptSlots[bytes]

        def start(slot_id: int, audio: bytes | None) -> None:
            started.append(slot_id)
            slots.played(slot_id)  # an output with nothing to wait for

        slots = PromptSlots(start, finished.append)
        slow = future(loop, ready=False)
        ids = [slots.add("one", slow), slots.add("two", future(loop, b"2")),
               slots.add("three", future(loop, b"3"))]  # fmt: skip
        await settle()
        assert started == []
        slow.set_result(b"1")
        await settle()
        assert started == ids and finished == ids and len(slots) == 0

    run(test)


def test_the_engine_clearing_from_a_played_report_stops_the_rest() -> None:
    async def test(loop: asyncio.AbstractEventLoop) -> None:
        out = Output()
        slots: PromptSlots[bytes]

        def done(slot_id: int) -> None:
            out.done(slot_id)
            slots.clear()  # barge-in decided while the first prompt's report is handled

        slots = PromptSlots(out.start, done)
        first = slots.add("first", future(loop, b"1"))
        slots.add("second", future(loop, ready=False))
        await settle()
        slots.played(first)
        await settle()
        assert out.started == [(first, b"1")] and out.finished == [first] and len(slots) == 0

    run(test)
