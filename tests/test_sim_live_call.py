"""The live caller (ivr.sim.live_call): hearing prompts end, pressing keys, the record's say.

The callee is our own user agent with a real RTP stream that plays a recorded prompt (Allison's
"hello world") once the call is up, and reports the keys it detects.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from media_helpers import HELLO
from sip_phone import run

from ivr.core.events import Event
from ivr.media.tones import tone
from ivr.media.wav import load_8k_mono
from ivr.rtp.engine import MediaEngine
from ivr.sim.live_call import AudioMonitor, LiveCaller, LivePhone, PhoneOptions
from ivr.sim.records import CallRecords
from ivr.sip.call import SipCall
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.ua import UserAgent
from ivr.store.db import CallStore

pytestmark = pytest.mark.usefixtures("asterisk_sounds")


class Callee:
    """Answers, plays ``hello-world`` after the ACK, and keeps the keys it hears."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.media = MediaEngine(loop, "127.0.0.1", (33000, 33999))
        self.keys: list[str] = []
        self.prompt = load_8k_mono(HELLO)

    async def local_media(self, call: SipCall) -> LocalMedia:
        stream = await self.media.open_stream(call.call_id)
        call.add_done_callback(lambda _c: stream.close())

        def established() -> None:
            plan = call.media
            assert plan is not None
            stream.start((plan.remote_address, plan.remote_port), plan.payload_type,
                         plan.dtmf_payload_type)  # fmt: skip
            stream.on_dtmf = self.keys.append
            stream.player.play(self.prompt)

        call.on_established = established
        host, port = stream.local_address
        return LocalMedia(host, port)


async def setup(
    dtmf: str = "rfc4733",
    records: CallRecords | None = None,
    options: PhoneOptions | None = None,
) -> tuple[UserAgent, Callee, LivePhone, LiveCaller]:
    callee = Callee(asyncio.get_running_loop())
    ua = UserAgent("127.0.0.1", 0, local_media_factory=callee.local_media)
    await ua.start()
    phone = LivePhone(options or PhoneOptions(rtp_ports=(34000, 34999)))
    await phone.start()
    caller = phone.caller(dtmf=dtmf, records=records)
    host, port = ua.address
    assert await caller.dial(f"sip:5000@{host}:{port}") == 200
    return ua, callee, phone, caller


async def teardown(ua: UserAgent, callee: Callee, phone: LivePhone, caller: LiveCaller) -> None:
    await caller.close()
    await phone.close()
    await ua.close()
    callee.media.close()


@pytest.mark.parametrize("dtmf", ["rfc4733", "inband"])
def test_the_caller_hears_the_prompt_end_then_its_keys_reach_the_callee(dtmf: str) -> None:
    async def scenario() -> None:
        ua, callee, phone, caller = await setup(dtmf)
        try:
            assert caller.busy is False  # nothing heard, no record: nothing to wait for
            assert await caller.wait_prompt_finished(caller.t0, 10)
            segments = caller.monitor.segments
            assert len(segments) >= 1 and all(s.end is not None for s in segments)
            assert caller.monitor.end_detected_at >= max(s.end or 0 for s in segments)
            assert not caller.busy
            caller.press("1")
            assert await caller.wait_until(lambda: callee.keys == ["1"], 5), callee.keys
            assert [s.kind for s in caller.sent] == ["dtmf"]
            caller.hangup()
            assert await caller.wait_ended(5) and caller.call is not None
            assert caller.call.end_reason == "local bye"
        finally:
            await teardown(ua, callee, phone, caller)

    run(scenario(), 30)


def test_a_recorded_prompt_without_audio_yet_keeps_the_caller_busy(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    store = CallStore(db, threaded=False)

    async def scenario() -> None:
        options = PhoneOptions(rtp_ports=(34000, 34999), poll_interval=0.02, no_audio_grace=1.0)
        ua, callee, phone, caller = await setup(records=CallRecords(db), options=options)
        try:
            assert await caller.wait_prompt_finished(caller.t0, 10)
            # The server's record now names a prompt whose audio has not come: busy, until the
            # grace for prompts that never sound has passed.
            t = asyncio.get_running_loop().time() - caller.t0
            store.write_many([Event(caller.call_id, 1, round(t, 4), "prompt", "menu",
                                    {"prompt": "menu", "text": "Press 1."})])  # fmt: skip
            assert await caller.wait_until(lambda: bool(caller.events), 5)
            assert caller.busy
            assert await caller.wait_until(lambda: not caller.busy, 5)
            assert [e.data["prompt"] for e in caller.events] == ["menu"]
        finally:
            await teardown(ua, callee, phone, caller)
            store.close()

    run(scenario(), 30)


def test_audio_monitor_finds_speech_segments_in_frames() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        monitor = AudioMonitor(loop, quiet_seconds=0.4)
        changes: list[int] = []
        monitor.on_change = lambda: changes.append(1)  # scheduled on the loop, never inline
        silence = np.zeros(160, dtype=np.int16)
        speech = tone((440.0, 1200.0), 0.5, -12.0)
        for frame in [silence] * 10 + list(speech.reshape(-1, 160)) + [silence] * 30:
            monitor.frame(frame)
        assert changes == []
        await asyncio.sleep(0)
        assert len(monitor.segments) == 1 and not monitor.speaking
        segment = monitor.segments[0]
        assert segment.end is not None
        assert round(segment.end - segment.start, 2) == pytest.approx(0.5, abs=0.06)
        assert changes == [1, 1]  # speech began, speech ended
        assert monitor.last_end == segment.end

    run(scenario(), 10)
