"""Recording: a real prompt played by one stream and recorded by another, over loopback UDP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from media_helpers import HELLO, LONG_PROMPT, best_correlation, wait_until

from ivr.media.g711 import PCMA, PCMU
from ivr.media.recorder import Recorder
from ivr.media.wav import load_8k_mono, read_wav
from ivr.rtp.engine import MediaEngine


@pytest.mark.usefixtures("asterisk_sounds")
@pytest.mark.parametrize("payload_type", [PCMU, PCMA])
def test_recorded_prompt_matches_the_source(tmp_path: Path, payload_type: int) -> None:
    out = tmp_path / "message.wav"

    async def main() -> tuple[str, float]:
        engine = MediaEngine(asyncio.get_running_loop(), seed=5)
        a = await engine.open_stream("call-a")
        b = await engine.open_stream("call-b")
        a.start(b.local_address, payload_type, 101)
        b.start(a.local_address, payload_type, 101)
        recorder = Recorder(b)
        recorder.start(out, max_seconds=30)
        done: list[int] = []
        a.player.play(await engine.prompts.load(LONG_PROMPT), done.append)
        await wait_until(lambda: bool(done))
        await asyncio.sleep(0.2)  # the last packets' way to b and one clock pass
        result = await recorder.stop()
        jitter = b.receiver.jitter.stats
        assert jitter.lost == 0 and jitter.reordered == 0 and jitter.duplicates == 0
        assert b.stats.malformed == 0 and b.stats.foreign == 0
        engine.close()
        return result

    path, duration = asyncio.run(main())
    source = load_8k_mono(LONG_PROMPT)
    samples, fmt = read_wav(path)
    assert (fmt.rate, fmt.channels, fmt.bits) == (8000, 1, 16)
    assert duration == samples.shape[0] / 8000 and duration > source.size / 8000
    recorded = np.rint(samples[:, 0] * 32768).astype(np.int16)
    assert best_correlation(source, recorded) > 0.995  # G.711 keeps about 38 dB SNR


@pytest.mark.usefixtures("asterisk_sounds")
def test_recording_stops_taking_audio_at_the_limit(tmp_path: Path) -> None:
    async def main() -> None:
        engine = MediaEngine(asyncio.get_running_loop(), seed=6)
        a = await engine.open_stream()
        b = await engine.open_stream()
        a.start(b.local_address, PCMU, 101)
        b.start(a.local_address, PCMU, 101)
        recorder = Recorder(b)
        limits: list[bool] = []
        recorder.start(
            tmp_path / "short.wav", max_seconds=0.25, on_limit=lambda: limits.append(True)
        )
        a.player.play(load_8k_mono(HELLO))
        await wait_until(lambda: bool(limits))
        await asyncio.sleep(0.1)
        assert limits == [True] and recorder.recording
        path, duration = await recorder.stop()
        assert duration == 0.25 and not recorder.recording
        samples, _ = read_wav(path)
        assert samples.shape[0] == 2000
        engine.close()

    asyncio.run(main())


def test_start_and_stop_out_of_order_are_refused(tmp_path: Path) -> None:
    async def main() -> None:
        engine = MediaEngine(asyncio.get_running_loop(), seed=7)
        stream = await engine.open_stream()
        recorder = Recorder(stream)
        with pytest.raises(RuntimeError):
            await recorder.stop()
        recorder.start(tmp_path / "x.wav")
        with pytest.raises(RuntimeError):
            recorder.start(tmp_path / "y.wav")
        path, duration = await recorder.stop()  # nothing received: an empty file
        assert duration == 0.0 and read_wav(path)[0].shape[0] == 0
        engine.close()

    asyncio.run(main())
