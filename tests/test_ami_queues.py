"""An enqueue to an Asterisk queue (ivr/host/asterisk.py, ivr/ami/records.py): a real session
redirects the caller's channel over a real AMI socket (tests/ami_replay.py), and Asterisk's queue
events become the call's record, which ``ivr report`` counts per queue like one of ours."""

from __future__ import annotations

import asyncio
import sqlite3
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from ami_replay import (
    REDIRECT_FAILED,
    SECRET,
    AmiReplay,
    cacofonisk,
    with_action_id,
    written_answered_call,
)

from ivr.acd.asterisk import AsteriskQueue
from ivr.ami.client import AmiClient, AmiSettings
from ivr.ami.records import MAX_SILENCE, QueueRecords
from ivr.core import events as ev
from ivr.core.callinfo import CallInfo
from ivr.core.clock import VirtualClock
from ivr.engine.actions import InlineActionRunner
from ivr.engine.runtime import Runtime
from ivr.engine.session import Session
from ivr.flow.loader import load_text
from ivr.flow.model import FlowSet
from ivr.host.asterisk import AsteriskQueues, CallFacts
from ivr.sim.channel import SimChannel
from ivr.store.db import CallStore
from ivr.store.report import build_report

FLOW = textwrap.dedent("""
    flow: q
    languages: [en]
    start: agent
    nodes:
      agent:
        enqueue: {queue: support, on_no_agents: closed}
      closed:
        hangup: {prompt: "We are closed.", outcome: failed}
""")
# The caller's channel in cacofonisk's recording of a caller abandoning an Asterisk 13 queue.
RECORDED_CHANNEL = "SIP/voipgrid-siproute-docker-00000019"
HEADER = "X-Asterisk-Channel"
TARGET = AsteriskQueue("support-q", "ivr-queues", "support")


class Desk:
    """One call on a virtual clock whose enqueue goes to Asterisk over a real AMI socket."""

    def __init__(self, replay: AmiReplay, port: int, store: CallStore, channel: str,
                 flow: str = FLOW) -> None:  # fmt: skip
        self.replay = replay
        self.clock = VirtualClock()
        self.store = store
        self.records = QueueRecords(store.sink, self.clock)
        self.client = AmiClient(AmiSettings("127.0.0.1", port, "nnnnnnnnn", SECRET, timeout=5),
                                on_event=self.records.on_event)  # fmt: skip
        self.queues = AsteriskQueues(self.client, {"support": TARGET}, None, self._facts,
                                     self.records)  # fmt: skip
        flows = FlowSet({"q": load_text(flow, "q.yaml")}, version="test")
        info = CallInfo("call-1", "+31150010001", "95588", "sip", x_headers=
                        ((HEADER, channel),) if channel else ())  # fmt: skip
        self.channel = SimChannel(self.clock, info)
        runtime = Runtime(actions=InlineActionRunner(None), config_vars={}, transfer_allow=(),
                          actions_path=None, queues=self.queues)  # fmt: skip
        self.events: list[ev.Event] = []
        self.session = Session(flows, "q", self.channel, self.clock, runtime,
                               [store.sink, self.events.append])  # fmt: skip

    def _facts(self, call_id: str) -> CallFacts:
        s = self.session
        return CallFacts(s.channel.info.x_header(HEADER), s.elapsed, s.node_id, s.flow_id)

    async def start(self) -> None:
        self.client.start()
        await self.client.wait_connected(5)
        self.clock.advance(3)  # three seconds in the flow before the queue
        self.session.start()

    async def until(self, done: Callable[[], bool]) -> None:
        for _ in range(250):
            if done():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("it did not happen")

    def row(self) -> sqlite3.Row:
        conn = sqlite3.connect(self.store.path)
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM calls WHERE call_id = 'call-1'").fetchone()

    def queue_report(self) -> dict[str, object]:
        conn = sqlite3.connect(self.store.path)
        return build_report(conn, now=self.clock.wall() + 3600).queues[0].as_dict()


def run(tmp_path: Path, channel: str, scenario: Callable[[Desk], Awaitable[None]],
        setup: Callable[[AmiReplay], None], flow: str = FLOW) -> AmiReplay:  # fmt: skip
    async def main() -> AmiReplay:
        replay = AmiReplay()
        setup(replay)
        port = await replay.start()
        store = CallStore(tmp_path / "calls.db", threaded=False)
        desk = Desk(replay, port, store, channel, flow)
        try:
            await desk.start()
            await scenario(desk)
        finally:
            await desk.queues.stop()
            await replay.close()
            store.close()
        return replay

    return asyncio.run(main())


def redirects(replay: AmiReplay) -> list[dict[str, str]]:
    return [a for a in replay.actions if a["action"] == "Redirect"]


def test_redirect_then_answered_in_the_asterisk_queue(tmp_path: Path) -> None:
    channel = "PJSIP/trunk-0000002a"

    async def scenario(desk: Desk) -> None:
        await desk.until(lambda: desk.session.finished)
        assert desk.session.outcome == "asterisk_queue"
        assert not [e for e in desk.events if e.kind == ev.HANGUP]  # Asterisk hangs us up
        await desk.until(lambda: not desk.records.following("call-1"))
        row = desk.row()
        assert (row["queue"], row["outcome"], row["agent"]) == ("support", "agent", "bo")
        assert (row["queue_wait"], row["talk_time"], row["ring_attempts"]) == (7, 42, 2)
        assert not row["abandoned_in_queue"]
        figures = desk.queue_report()
        assert (figures["queue"], figures["offered"], figures["answered"]) == ("support", 1, 1)
        assert figures["average_speed_of_answer"] == 7 and figures["average_talk_time"] == 42

    replay = run(tmp_path, channel, scenario, lambda r: r.after.update(
        redirect=written_answered_call(channel, "1700000000.42", "support-q")))
    [redirect] = redirects(replay)
    assert (redirect["channel"], redirect["context"], redirect["exten"], redirect["priority"]) \
        == (channel, "ivr-queues", "support", "1")  # fmt: skip


def test_recorded_abandon_in_an_asterisk_queue(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.until(lambda: desk.row() is not None and desk.row()["outcome"] not in
                         (None, "asterisk_queue"))  # fmt: skip
        row = desk.row()
        assert (row["outcome"], row["abandoned_in_queue"], row["queue_wait"]) == \
            ("abandoned_in_queue", 1, 11)  # cacofonisk's recorded HoldTime  # fmt: skip
        figures = desk.queue_report()
        assert (figures["offered"], figures["abandoned"], figures["answered"]) == (1, 1, 0)

    # After the Redirect's reply, Asterisk's recorded events of that call, every one of them.
    run(tmp_path, RECORDED_CHANNEL, scenario,
        lambda r: r.after.update(redirect=cacofonisk("queue_a_cancel")))


def test_a_refused_redirect_takes_the_no_agents_exit(tmp_path: Path) -> None:
    async def scenario(desk: Desk) -> None:
        await desk.until(lambda: desk.session.node_id == "closed")
        assert desk.session.node_id == "closed"
        assert not desk.records.following("call-1")

    def setup(replay: AmiReplay) -> None:
        replay.replies["redirect"] = lambda a: [with_action_id(REDIRECT_FAILED, a["actionid"])]

    assert len(redirects(run(tmp_path, "PJSIP/gone-1", scenario, setup))) == 1


@pytest.mark.parametrize("channel", ["", "PJSIP/x-1\r\nAction: Hangup", "PJSIP/a b",
                                     "PJSIP/" + "x" * 200])  # fmt: skip
def test_no_usable_channel_takes_the_no_agents_exit_and_sends_nothing(
        tmp_path: Path, channel: str) -> None:  # fmt: skip
    async def scenario(desk: Desk) -> None:
        assert desk.session.node_id == "closed"
        assert [e.data["reason"] for e in desk.events if e.kind == ev.QUEUE_EXIT] == ["no_agents"]

    assert redirects(run(tmp_path, channel, scenario, lambda r: None)) == []


def test_asterisk_hangs_us_up_before_its_redirect_reply(tmp_path: Path) -> None:
    channel = "PJSIP/trunk-0000002b"

    async def scenario(desk: Desk) -> None:
        await desk.until(lambda: bool(redirects(desk.replay)))
        desk.channel.caller_hangup()  # the BYE of our leg, before the AMI reply
        assert desk.session.outcome == "asterisk_queue"
        action_id = redirects(desk.replay)[0]["actionid"]
        desk.replay.send([with_action_id("Response: Success\nMessage: Redirect successful",
                                         action_id),
                          *written_answered_call(channel, "1700000000.43")])  # fmt: skip
        await desk.until(lambda: not desk.records.following("call-1"))
        row = desk.row()
        assert (row["outcome"], row["agent"], row["abandoned_in_queue"]) == ("agent", "bo", None)
        assert desk.queue_report()["abandoned"] == 0

    run(tmp_path, channel, scenario, lambda r: r.replies.update(redirect=lambda a: []))


def test_a_call_asterisk_never_speaks_of_again_ends_as_lost(tmp_path: Path) -> None:
    """Its events were lost (AMI down meanwhile): after MAX_SILENCE it is no longer waiting."""

    async def scenario(desk: Desk) -> None:
        await desk.until(lambda: desk.session.finished)
        await desk.until(lambda: desk.row()["outcome"] == "asterisk_queue")
        assert desk.queue_report()["waiting"] == 1
        desk.clock.advance(MAX_SILENCE + 1)
        desk.records.follow("call-2", "PJSIP/other-1", "support", call_time=0)  # prunes
        row = desk.row()
        assert (row["outcome"], row["queue_exit"]) == ("asterisk_lost", "lost")
        assert desk.queue_report()["exits"] == {"lost": 1}

    run(tmp_path, "PJSIP/trunk-0000002c", scenario, lambda r: None)


def test_a_key_while_the_redirect_is_unanswered_is_too_late(tmp_path: Path) -> None:
    channel = "PJSIP/trunk-0000002d"
    flow_with_key = FLOW.replace("{queue: support, on_no_agents: closed}",
                                 '{queue: support, on_no_agents: closed, keys: {"9": closed}}')

    async def scenario(desk: Desk) -> None:
        await desk.until(lambda: bool(redirects(desk.replay)))
        desk.channel.caller_dtmf("9")
        assert desk.session.node_id == "agent" and not desk.session.finished
        action_id = redirects(desk.replay)[0]["actionid"]
        desk.replay.send([with_action_id("Response: Success\nMessage: Redirect successful",
                                         action_id)])  # fmt: skip
        await desk.until(lambda: desk.session.finished)
        assert desk.session.outcome == "asterisk_queue"

    run(tmp_path, channel, scenario, lambda r: r.replies.update(redirect=lambda a: []),
        flow=flow_with_key)
