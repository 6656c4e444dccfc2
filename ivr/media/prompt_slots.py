"""Prompts that keep their play order while their audio is still being loaded or rendered.

A channel asks for a prompt's audio when the engine plays it, and the answers come back in any
order: a cached recording is ready at once, a text with variables must be synthesized first. So
each play gets a slot in an ordered queue, and a slot's audio reaches the output (a player, a
media loop) only when every earlier slot's has. The output plays what it is given back to back
and reports the end of each slot to :meth:`PromptSlots.played`, which tells the engine once;
a slot dropped by :meth:`PromptSlots.clear` (barge-in, hang-up) is never reported.

Generic over the audio type: the native SIP channel hands
:class:`~ivr.media.player.EncodedAudio` to its RTP stream's player, the pyVoIP channel 8-bit PCM
bytes to its call's media loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("ivr.media.prompt_slots")

T = TypeVar("T")


@dataclass
class _Slot(Generic[T]):
    """One prompt waiting for its audio, in play order."""

    id: int
    name: str
    audio: asyncio.Future[T | None]
    started: bool = False


class PromptSlots(Generic[T]):
    """An ordered queue of prompts whose audio may not be ready yet.

    Args:
        start: ``(slot_id, audio)``: play this slot after whatever the output plays now, and
            call :meth:`played` with ``slot_id`` when it has played. ``audio`` is None when the
            prompt has nothing to play (missing, empty, failed to load); the output must still
            report the slot played, so that the engine goes on.
        finished: ``(slot_id)``: a slot has played to its end.
        has_audio: Whether loaded audio holds anything to play (default: its truth value).
        call_id: For log lines.
    """

    def __init__(
        self,
        start: Callable[[int, T | None], None],
        finished: Callable[[int], None],
        *,
        has_audio: Callable[[T], bool] = bool,
        call_id: str = "-",
    ) -> None:
        self._start = start
        self._finished = finished
        self._has_audio = has_audio
        self._call_id = call_id
        self._ids = itertools.count(1)
        self._slots: deque[_Slot[T]] = deque()
        self.closed = False

    def __len__(self) -> int:
        """Slots queued or playing (not yet reported played, not dropped)."""
        return len(self._slots)

    def add(self, name: str, audio: asyncio.Future[T | None]) -> int:
        """Queue prompt ``name`` whose audio ``audio`` will give; returns the slot id.

        On a closed queue (the call ended) the audio is cancelled and the id never plays.
        """
        slot = _Slot(next(self._ids), name, audio)
        if self.closed:
            audio.cancel()
            return slot.id
        self._slots.append(slot)
        audio.add_done_callback(self._ready)
        return slot.id

    def played(self, slot_id: int) -> None:
        """The output finished slot ``slot_id``: tell ``finished`` (unless it was dropped)."""
        slot = next((s for s in self._slots if s.id == slot_id), None)
        if slot is None:  # dropped by clear(), or reported twice
            return
        self._slots.remove(slot)
        self._finished(slot_id)

    def clear(self) -> None:
        """Drop every slot (their audio still loading is cancelled); none will be reported."""
        slots, self._slots = self._slots, deque()
        for slot in slots:
            slot.audio.cancel()

    def close(self) -> None:
        """Clear, and refuse every later :meth:`add` (the call has ended)."""
        self.closed = True
        self.clear()

    def _ready(self, _audio: asyncio.Future[T | None]) -> None:
        """Hand every slot whose audio is ready, in order, to the output."""
        # Looked up afresh each time: the output may report a slot played (or the engine clear
        # the queue) from inside start().
        while True:
            slot = next((s for s in self._slots if not s.started), None)
            if slot is None or not slot.audio.done():
                return
            slot.started = True
            self._start(slot.id, self._audio_of(slot))

    def _audio_of(self, slot: _Slot[T]) -> T | None:
        future = slot.audio
        if not future.cancelled() and future.exception() is not None:
            log.warning("call %s: prompt %s: its audio failed: %r", self._call_id, slot.name,
                        future.exception())  # fmt: skip
            return None
        audio = None if future.cancelled() else future.result()
        if audio is None or not self._has_audio(audio):
            log.warning("call %s: prompt %s has no audio", self._call_id, slot.name)
            return None
        return audio
