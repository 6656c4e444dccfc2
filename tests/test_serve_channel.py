"""SipChannel (ivr.serve.channel) over a real call and RTP stream: what the engine is told."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sip_phone import App, Leg, Phone, run, start_ua

from ivr.acd.authority import QueueAuthority
from ivr.acd.model import AgentSpec, QueueSpec
from ivr.core.clock import LoopClock
from ivr.engine.actions import InlineActionRunner
from ivr.engine.channel import RecordResult, RecordSpec, SpeechResult
from ivr.engine.runtime import Runtime
from ivr.engine.session import Session
from ivr.flow.loader import load_text
from ivr.flow.model import FlowSet
from ivr.host.queues import AuthorityQueues
from ivr.rtp.engine import MediaEngine
from ivr.rtp.stream import RtpStream, StreamConfig
from ivr.serve.channel import SipChannel
from ivr.sip.call import SipCall
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.ua import UserAgent
from ivr.store.db import CallStore


class Listener:
    """A ChannelListener that keeps what it is told."""

    def __init__(self) -> None:
        self.told: list[str] = []

    def on_playback_done(self, playback_id: int) -> None:
        self.told.append("playback_done")

    def on_dtmf(self, digit: str) -> None:
        self.told.append(f"dtmf {digit}")

    def on_speech_start(self) -> None:
        self.told.append("speech_start")

    def on_speech(self, result: SpeechResult) -> None:
        self.told.append("speech")

    def on_recording_done(self, result: RecordResult) -> None:
        self.told.append("recording_done")

    def on_transfer_result(self, ok: bool, reason: str) -> None:
        self.told.append("transfer_result")

    def on_hangup(self) -> None:
        self.told.append("hangup")


@dataclass
class AnsweredCall:
    """A real SIP call on loopback, answered by the user agent, its RTP stream started."""

    media: MediaEngine
    ua: UserAgent
    phone: Phone
    leg: Leg
    call: SipCall
    stream: RtpStream

    async def close(self) -> None:
        self.phone.close()
        await self.ua.close()
        self.media.close()


async def answered_call(ports: tuple[int, int], config: StreamConfig | None = None,
                        call_id: str | None = None) -> AnsweredCall:  # fmt: skip
    """Dial the user agent from a scripted phone and start the answered call's stream (the
    phone itself never sends RTP)."""
    media = MediaEngine(asyncio.get_running_loop(), "127.0.0.1", ports, config=config)
    streams: dict[str, RtpStream] = {}

    async def local_media(call: SipCall) -> LocalMedia:
        stream = await media.open_stream(call.call_id)
        streams[call.call_id] = stream
        host, port = stream.local_address
        return LocalMedia(host, port)

    app = App()
    ua = await start_ua(on_incoming=app, local_media_factory=local_media)
    phone = await Phone.open()
    leg = phone.leg(ua.address)
    if call_id is not None:
        leg.call_id = call_id
    await leg.establish()
    call = app.calls[0]
    await asyncio.wait_for(call.wait_established(), 2)
    stream = streams[call.call_id]
    assert call.media is not None
    stream.start((call.media.remote_address, call.media.remote_port), 0, 101)
    return AnsweredCall(media, ua, phone, leg, call, stream)


def test_a_caller_that_sends_no_rtp_is_hung_up_and_the_engine_is_told(tmp_path: Path) -> None:
    async def scenario() -> None:
        answered = await answered_call((35000, 35999), StreamConfig(inactivity_timeout=0.3))
        call, phone = answered.call, answered.phone
        listener = Listener()
        loop = asyncio.get_running_loop()
        channel = SipChannel(call, answered.stream, lambda p: loop.create_future(), tmp_path)
        channel.attach(listener)
        bye = await phone.request("BYE", timeout=5)  # the channel hangs up the silent caller
        phone.reply(bye, 200)
        for _ in range(100):
            if listener.told:
                break
            await asyncio.sleep(0.01)
        assert listener.told == ["hangup"]  # ... and tells the engine, once
        assert channel.ended
        await asyncio.wait_for(call.wait_ended(), 5)
        await answered.close()

    run(scenario(), 20)


def test_a_call_id_with_dot_dot_slash_records_inside_the_recordings_folder(
    tmp_path: Path,
) -> None:
    recordings = tmp_path / "a" / "recordings"
    recordings.mkdir(parents=True)

    async def scenario() -> None:
        answered = await answered_call((36000, 36999), call_id="../../escape@127.0.0.1")
        listener = Listener()
        loop = asyncio.get_running_loop()
        channel = SipChannel(answered.call, answered.stream, lambda p: loop.create_future(),
                             recordings)  # fmt: skip
        channel.attach(listener)
        channel.record(RecordSpec(max_seconds=5, finish_key="#", beep=False))
        await asyncio.sleep(0.1)
        channel.hangup()
        for _ in range(200):
            if "recording_done" in listener.told:
                break
            await asyncio.sleep(0.01)
        refs.append(answered.call.ref)
        await answered.close()

    refs: list[str] = []
    run(scenario(), 20)
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.wav"))
    # named by the server's own id for the call, never by the caller's Call-ID
    assert written == [Path(f"a/recordings/{refs[0]}-1.wav")]
    assert "escape" not in str(written[0])


QUEUE_FLOW = """\
flow: queue-only
languages: [en]
start: to_queue
nodes:
  to_queue:
    enqueue: {queue: general, priority: 5, skills: [accounts]}
"""


def test_a_caller_who_hangs_up_while_waiting_in_the_queue_is_in_the_record(
    tmp_path: Path,
) -> None:
    """The caller waits on the line (an agent is logged in but paused): their BYE must reach the
    record as abandoned in queue, with the time they waited."""

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        answered = await answered_call((36000, 36999))
        call, stream, phone, leg = answered.call, answered.stream, answered.phone, answered.leg
        channel = SipChannel(call, stream, lambda p: loop.create_future(), tmp_path)
        flow = load_text(QUEUE_FLOW, "queue-only.yaml")
        store = CallStore(tmp_path / "calls.db", threaded=False)
        clock = LoopClock(loop)
        authority = QueueAuthority([AgentSpec("ann", skills={"accounts": 5})],
                                   [QueueSpec("general")], clock)  # fmt: skip
        authority.login("ann")
        authority.pause("ann", "lunch")  # logged in: the caller may wait; nobody answers
        runtime = Runtime(actions=InlineActionRunner(None), queues=AuthorityQueues(authority))
        session = Session(FlowSet({flow.id: flow}), flow.id, channel, clock, runtime,
                          [store.sink])  # fmt: skip
        session.start()
        assert not session.finished and not channel.ended  # waiting in the queue
        assert authority.position(call.ref) == 1
        await asyncio.sleep(0.3)
        phone.send(leg.request("BYE"), answered.ua.address)  # the caller gives up
        await phone.response(200, "BYE")
        await asyncio.wait_for(call.wait_ended(), 5)
        assert session.outcome == "abandoned_in_queue" and not authority.waiting
        await answered.close()
        store.close()

    run(scenario(), 20)
    with sqlite3.connect(tmp_path / "calls.db") as conn:
        kinds = conn.execute("SELECT kind, json_extract(data, '$.by'), t FROM events "
                             "ORDER BY seq").fetchall()  # fmt: skip
        row = conn.execute("SELECT outcome, queue, queue_wait, abandoned_in_queue "
                           "FROM calls").fetchone()  # fmt: skip
    names = [k for k, _, _ in kinds]
    assert names[:3] == ["call_start", "node_enter", "queue"] and names[-2:] == ["hangup",
                                                                                "call_end"]
    queued_t = kinds[2][2]
    _, hangup_by, hangup_t = kinds[-2]
    assert hangup_by == "caller"
    outcome, queue, queue_wait, abandoned = row
    assert (outcome, queue, abandoned) == ("abandoned_in_queue", "general", 1)
    assert queue_wait >= 0.3  # at least the time the caller was kept waiting
    assert abs(queue_wait - (hangup_t - queued_t)) < 0.002  # the same span as the events'
