"""Prompt playback: encoded frames, queueing, on_done, barge-in on the wire, the prompt cache."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from media_helpers import HELLO, LONG_PROMPT, RawPeer, wait_until

from ivr.media.g711 import ALAW_SILENCE, PCMA, PCMU, ULAW_SILENCE, alaw_decode, ulaw_decode
from ivr.media.player import EncodedAudio, Player, PromptCache
from ivr.media.wav import load_8k_mono, write_wav
from ivr.rtp.engine import MediaEngine


def ramp(samples: int) -> np.ndarray:
    return (np.arange(samples) * 37 % 20000 - 10000).astype(np.int16)


def test_encoded_audio_is_cut_into_padded_frames_of_both_laws() -> None:
    pcm = ramp(400)  # 2.5 frames
    audio = EncodedAudio.from_pcm(pcm)
    assert audio.frames == 3 and audio.samples == 400 and audio.duration == 0.05
    assert all(len(f) == 160 for f in audio.ulaw + audio.alaw)
    assert audio.ulaw[2][80:] == bytes([ULAW_SILENCE]) * 80
    assert audio.alaw[2][80:] == bytes([ALAW_SILENCE]) * 80
    back = ulaw_decode(b"".join(audio.ulaw))[:400].astype(int)
    assert np.max(np.abs(back - pcm)) <= 512  # half a step of the largest μ-law segment
    back = alaw_decode(b"".join(audio.alaw))[:400].astype(int)
    assert np.max(np.abs(back - pcm)) <= 512
    assert audio.for_payload_type(PCMA) is audio.alaw
    with pytest.raises(ValueError):
        audio.for_payload_type(18)


def test_queued_playbacks_follow_each_other_and_report_done_after_their_last_frame() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        player = Player(loop)
        done: list[int] = []
        first = player.play(ramp(320), done.append)  # 2 frames
        second = player.play(EncodedAudio.from_pcm(ramp(160)), done.append)  # 1 frame
        assert (player.playing, player.pending) == (first, 2)
        sent = [player.next_payload(PCMU), player.next_payload(PCMU)]
        assert sent == list(EncodedAudio.from_pcm(ramp(320)).ulaw)
        assert player.playing == second
        await asyncio.sleep(0)
        assert done == [first]  # after the pass that sent its last frame
        assert player.next_payload(PCMU) is not None
        assert player.next_payload(PCMU) is None  # idle: the stream sends silence
        await asyncio.sleep(0)
        assert done == [first, second]

    asyncio.run(main())


def test_stop_drops_playing_and_queued_audio_without_on_done() -> None:
    async def main() -> None:
        player = Player(asyncio.get_running_loop())
        done: list[int] = []
        ids = [player.play(ramp(1600), done.append) for _ in range(3)]
        player.next_payload(PCMA)
        assert player.stop() == ids
        assert player.next_payload(PCMA) is None and player.pending == 0
        await asyncio.sleep(0.01)
        assert done == []

    asyncio.run(main())


def test_empty_audio_is_done_at_once_in_order() -> None:
    async def main() -> None:
        player = Player(asyncio.get_running_loop())
        done: list[int] = []
        first = player.play(np.zeros(0, dtype=np.int16), done.append)
        second = player.play(ramp(160), done.append)
        assert player.playing == second
        player.next_payload(PCMU)
        await asyncio.sleep(0)
        assert done == [first, second]

    asyncio.run(main())


@pytest.mark.usefixtures("asterisk_sounds")
def test_barge_in_silences_the_very_next_packet() -> None:
    async def main() -> None:
        engine = MediaEngine(asyncio.get_running_loop(), seed=3)
        sink = RawPeer(engine.loop)
        stream = await engine.open_stream()
        stream.start(sink.address, PCMU, 101)
        prompt = await engine.prompts.load(LONG_PROMPT)
        done: list[int] = []
        stream.player.play(prompt, done.append)
        stream.player.play(prompt, done.append)
        await wait_until(lambda: stream.stats.sent >= 40)
        stream.player.stop()
        sent_before_stop = stream.stats.sent
        await wait_until(lambda: len(sink.datagrams) >= sent_before_stop + 10)
        payloads = [p.payload for p in sink.packets]
        silence = bytes([ULAW_SILENCE]) * 160
        assert payloads[sent_before_stop - 1] != silence  # the prompt was playing ...
        assert all(p == silence for p in payloads[sent_before_stop:])  # ... and stopped at once
        await asyncio.sleep(0.05)
        assert done == []
        sink.close()
        engine.close()

    asyncio.run(main())


@pytest.mark.usefixtures("asterisk_sounds")
def test_on_done_comes_after_the_last_prompt_frame_was_sent() -> None:
    async def main() -> None:
        engine = MediaEngine(asyncio.get_running_loop(), seed=4)
        sink = RawPeer(engine.loop)
        stream = await engine.open_stream()
        stream.start(sink.address, PCMA, 101)
        prompt = await engine.prompts.load(HELLO)
        sent_at_done: list[int] = []
        start = stream.stats.sent
        stream.player.play(prompt, lambda _id: sent_at_done.append(stream.stats.sent))
        await wait_until(lambda: bool(sent_at_done))
        assert sent_at_done[0] >= start + prompt.frames
        await wait_until(lambda: len(sink.datagrams) >= sent_at_done[0])
        payloads = [p.payload for p in sink.packets][start : sent_at_done[0]]
        assert payloads == list(prompt.alaw)
        sink.close()
        engine.close()

    asyncio.run(main())


@pytest.mark.usefixtures("asterisk_sounds")
def test_prompt_cache_shares_one_load_between_calls(tmp_path: Path) -> None:
    path = tmp_path / "hello.wav"
    shutil.copy(HELLO, path)

    async def main() -> None:
        cache = PromptCache(max_entries=2)
        loaded = await asyncio.gather(*(cache.load(path) for _ in range(300)))
        assert all(audio is loaded[0] for audio in loaded)
        assert cache.stats.loads == 1
        assert await cache.load(path) is loaded[0] and cache.stats.hits >= 1
        assert loaded[0].samples == load_8k_mono(HELLO).size
        # An edited file is read again.
        write_wav(path, ramp(800))
        os.utime(path, ns=(1, 1))
        changed = await cache.load(path)
        assert changed is not loaded[0] and changed.samples == 800
        # Least recently used out beyond max_entries.
        other = tmp_path / "other.wav"
        third = tmp_path / "third.wav"
        write_wav(other, ramp(160))
        write_wav(third, ramp(160))
        await cache.load(other)
        await cache.load(third)
        assert len(cache) == 2 and cache.stats.evictions >= 1
        with pytest.raises(FileNotFoundError):
            await cache.load(tmp_path / "missing.wav")

    asyncio.run(main())


@pytest.mark.usefixtures("asterisk_sounds")
def test_prompt_cache_loads_without_a_loop(tmp_path: Path) -> None:
    cache = PromptCache()
    first = cache.load_now(HELLO)
    assert cache.load_now(HELLO) is first
    assert cache.stats.loads == 1 and cache.stats.hits == 1
