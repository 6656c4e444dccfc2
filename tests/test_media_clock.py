"""The media clock: one pass for every client, catch-up after a late wake-up, batched analysis."""

from __future__ import annotations

import asyncio
import time

import numpy as np
from media_helpers import wait_until
from numpy.typing import NDArray

from ivr.media.clock import MediaClock
from ivr.media.g711 import ALAW, ULAW, G711Codec
from ivr.media.goertzel import KEYS
from ivr.media.tones import dtmf_tone
from ivr.media.vad import frame_levels


class Counter:
    """A clock client that counts its ticks and housekeeping calls."""

    def __init__(self, fail: bool = False) -> None:
        self.ticks = 0
        self.housekeeping = 0
        self.fail = fail

    def clock_tick(self) -> None:
        self.ticks += 1
        if self.fail:
            raise RuntimeError("a broken call")

    def clock_housekeeping(self, now: float) -> None:
        self.housekeeping += 1


class Frames:
    """A frame sink holding encoded frames, keeping what the clock hands back."""

    def __init__(self, codec: G711Codec, pcm: NDArray[np.int16], inband: bool) -> None:
        self.rx_codec = codec
        self.rx_inband = inband
        self.rx_frames = [codec.encode(row).tobytes() for row in pcm.reshape(-1, 160)]
        self.got: list[tuple[NDArray[np.int16], list[int] | None, list[float]]] = []

    def clock_analysed(
        self, pcm: NDArray[np.int16], codes: list[int] | None, levels: list[float]
    ) -> None:
        self.got.append((pcm, codes, levels))


def test_every_client_ticks_once_per_pass() -> None:
    async def main() -> None:
        clock = MediaClock(asyncio.get_running_loop())
        first, second = Counter(), Counter()
        clock.add(first)
        await wait_until(lambda: first.ticks >= 5)
        offset = first.ticks
        clock.add(second)
        clock.add(second)  # adding twice changes nothing
        await wait_until(lambda: second.ticks >= 10)
        assert first.ticks - second.ticks == offset  # both ticked in every pass since
        clock.remove(first)
        removed_at = (first.ticks, second.ticks)
        await wait_until(lambda: second.ticks >= 20)
        assert first.ticks == removed_at[0]
        assert len(clock) == 1
        stats = clock.stats()
        assert stats.ticks == removed_at[0] + second.ticks - removed_at[1]
        assert stats.wakeups <= stats.ticks
        assert second.housekeeping >= 2  # every fifth pass
        assert stats.lateness_max >= stats.lateness_p99 >= stats.lateness_p50
        assert stats.pass_max >= stats.pass_p99 >= stats.pass_p50 > 0
        clock.close()

    asyncio.run(main())


def test_a_late_wakeup_runs_every_due_pass() -> None:
    async def main() -> None:
        clock = MediaClock(asyncio.get_running_loop(), max_catchup=100)
        client = Counter()
        clock.add(client)
        await wait_until(lambda: client.ticks >= 3)
        before = clock.stats().caught_up
        time.sleep(0.2)  # the loop is blocked: ten ticks come due
        ticks = client.ticks
        await wait_until(lambda: client.ticks > ticks)
        stats = clock.stats()
        assert stats.caught_up - before >= 8 and stats.skipped == 0
        assert client.ticks - ticks >= 9
        clock.close()

    asyncio.run(main())


def test_a_long_stall_skips_ticks_beyond_max_catchup() -> None:
    async def main() -> None:
        clock = MediaClock(asyncio.get_running_loop(), max_catchup=3)
        client = Counter()
        clock.add(client)
        await wait_until(lambda: client.ticks >= 3)
        ticks = client.ticks
        time.sleep(0.2)
        await wait_until(lambda: clock.stats().skipped > 0)
        stats = clock.stats()
        assert stats.skipped >= 6  # about ten due, three run
        assert client.ticks >= ticks + 3
        clock.close()

    asyncio.run(main())


def test_a_failing_client_does_not_stop_the_others() -> None:
    async def main() -> None:
        clock = MediaClock(asyncio.get_running_loop())
        broken, healthy = Counter(fail=True), Counter()
        clock.add(broken)
        clock.add(healthy)
        await wait_until(lambda: healthy.ticks >= 5)
        assert clock.stats().errors >= 5 and broken.ticks >= 5
        clock.close()

    asyncio.run(main())


def test_the_task_ends_with_its_last_client_and_restarts() -> None:
    async def main() -> None:
        clock = MediaClock(asyncio.get_running_loop())
        client = Counter()
        clock.add(client)
        await wait_until(lambda: client.ticks >= 2)
        clock.remove(client)
        await wait_until(lambda: not clock.running)
        clock.add(client)
        assert clock.running
        ticks = client.ticks
        await wait_until(lambda: client.ticks > ticks)
        clock.close()
        assert not clock.running

    asyncio.run(main())


def test_received_frames_are_analysed_in_one_batch_per_codec() -> None:
    async def main() -> None:
        clock = MediaClock(asyncio.get_running_loop())
        keys = np.concatenate([dtmf_tone(k, 40) for k in "5#"])  # two frames per key
        voice = (np.sin(np.arange(480) * 0.3) * 8000).astype(np.int16)
        sinks = [
            Frames(ULAW, keys, inband=True),
            Frames(ALAW, keys, inband=True),
            Frames(ULAW, voice, inband=False),
            Frames(ALAW, keys, inband=True),
        ]
        for sink in sinks:
            clock.submit(sink)
        clock.submit(sinks[0])  # submitted twice: analysed once
        clock.add(Counter())  # the task runs while there is a client
        await wait_until(lambda: all(sink.got for sink in sinks))
        await asyncio.sleep(0.05)
        for sink in sinks[:2] + sinks[3:]:
            assert len(sink.got) == 1 and sink.rx_frames == []
            pcm, codes, levels = sink.got[0]
            assert pcm.shape == (4, 160)
            assert codes is not None and "".join(KEYS[c] for c in codes) == "55##"
            assert levels == frame_levels(pcm).tolist()
        pcm, codes, _ = sinks[2].got[0]
        assert codes is None and pcm.shape == (3, 160)
        assert np.max(np.abs(pcm.astype(int) - voice.reshape(3, 160))) <= 256
        clock.close()

    asyncio.run(main())
