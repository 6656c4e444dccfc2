"""SimChannel (ivr/sim/channel.py): prompt timing, stopping, transfers, recordings, the end."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.core.clock import VirtualClock
from ivr.engine.channel import (
    CallInfo,
    ListenSpec,
    RecordResult,
    RecordSpec,
    RenderedPrompt,
    SpeechResult,
)
from ivr.engine.queueing import AgentOffer
from ivr.sim.channel import AgentPlan, SimChannel, speech_seconds


class Listener:
    """A ChannelListener that writes down every callback with the virtual time."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.calls: list[tuple[float, str, Any]] = []

    def _note(self, name: str, value: Any = None) -> None:
        self.calls.append((round(self.clock.now(), 3), name, value))

    def on_playback_done(self, playback_id: int) -> None:
        self._note("done", playback_id)

    def on_dtmf(self, digit: str) -> None:
        self._note("dtmf", digit)

    def on_speech_start(self) -> None:
        self._note("speech_start")

    def on_speech(self, result: SpeechResult) -> None:
        self._note("speech", result)

    def on_recording_done(self, result: RecordResult) -> None:
        self._note("recording", result)

    def on_transfer_result(self, ok: bool, reason: str) -> None:
        self._note("transfer", ok)

    def on_hangup(self) -> None:
        self._note("hangup")


def prompt(text: str, pid: str = "p", audio: str | None = None) -> RenderedPrompt:
    return RenderedPrompt(id=pid, language="en", text=text, audio=audio)


def make(**kwargs: Any) -> tuple[VirtualClock, SimChannel, Listener]:
    clock = VirtualClock()
    channel = SimChannel(clock, CallInfo("c1", "+861", "95588"), **kwargs)
    listener = Listener(clock)
    channel.attach(listener)
    return clock, channel, listener


def test_speech_seconds_is_words_over_2_5_plus_0_3() -> None:
    assert speech_seconds("") == 0.3
    assert speech_seconds("one two three four five") == pytest.approx(2.3)
    assert speech_seconds("Welcome,   to the bank.") == pytest.approx(1.9)
    assert speech_seconds("欢迎致电") == pytest.approx(0.3 + 2 / 2.5)  # a character is half a word


def test_a_prompt_finishes_after_its_estimated_duration() -> None:
    clock, channel, listener = make()
    pid = channel.play(prompt("one two three four five"))
    assert channel.busy and channel.playing == prompt("one two three four five")
    clock.advance(2.2)
    assert listener.calls == []
    clock.advance(0.2)
    assert listener.calls == [(2.3, "done", pid)]
    assert not channel.busy


def test_recorded_audio_is_timed_from_its_fallback_text() -> None:
    clock, channel, listener = make()
    pid = channel.play(prompt("one two three four five", audio="jingle"))
    clock.run()
    assert listener.calls == [(2.3, "done", pid)]


def test_a_new_play_queues_after_the_current_one() -> None:
    clock, channel, listener = make()
    first = channel.play(prompt("one two", "a"))  # 1.1 s
    second = channel.play(prompt("one two three four five", "b"))  # 2.3 s
    assert second == first + 1
    clock.run()
    assert listener.calls == [(1.1, "done", first), (3.4, "done", second)]
    assert [p.id for p in channel.played] == ["a", "b"]


def test_playback_ids_name_the_playing_and_queued_prompts() -> None:
    clock, channel, _ = make()
    first = channel.play(prompt("one two", "a"))
    second = channel.play(prompt("three", "b"))
    assert channel.playback_ids == (first, second)
    clock.step()
    assert channel.playback_ids == (second,)
    clock.step()
    assert channel.playback_ids == ()


def test_stop_playback_drops_playing_and_queued_without_callbacks() -> None:
    clock, channel, listener = make()
    channel.play(prompt("one two", "a"))
    channel.play(prompt("three four", "b"))
    clock.advance(0.5)
    channel.stop_playback()
    assert not channel.busy
    clock.run()
    assert listener.calls == []
    assert [a.what for a in channel.log] == ["play", "play", "stop"]


def test_the_listener_may_play_again_from_its_done_callback() -> None:
    clock, channel, _ = make()

    class Replayer(Listener):
        def on_playback_done(self, playback_id: int) -> None:
            super().on_playback_done(playback_id)
            if playback_id == 1:
                channel.play(prompt("again", "again"))

    replayer = Replayer(clock)
    channel.attach(replayer)
    channel.play(prompt("hello", "hello"))
    clock.run()
    assert [(t, v) for t, _, v in replayer.calls] == [(0.7, 1), (1.4, 2)]


def test_caller_input_reaches_the_listener() -> None:
    _, channel, listener = make()
    channel.caller_dtmf("5")
    channel.caller_speech_start()
    channel.caller_speech(SpeechResult("balance", 0.9))
    assert [c[1:] for c in listener.calls] == [
        ("dtmf", "5"),
        ("speech_start", None),
        ("speech", SpeechResult("balance", 0.9)),
    ]


def test_listen_and_stop_listening_are_remembered() -> None:
    _, channel, _ = make()
    assert channel.end_silence == 0.8
    spec = ListenSpec(node="menu", language="en", end_silence=1.2)
    channel.listen(spec)
    assert channel.listening == spec and channel.end_silence == 1.2
    channel.stop_listening()
    assert channel.listening is None
    assert [a.what for a in channel.log] == ["listen", "stop_listening"]


def test_transfer_succeeds_later_and_ends_the_call() -> None:
    clock, channel, listener = make()
    channel.transfer("sip:fraud@agents.bank.example")
    assert listener.calls == []  # delivered from the clock, not inside transfer()
    clock.run()
    assert listener.calls == [(0.0, "transfer", True)]
    assert channel.transfers == ["sip:fraud@agents.bank.example"]
    assert channel.ended and channel.end == "transferred"


@pytest.mark.parametrize(
    ("fails", "target", "ok"),
    [
        (True, "sip:any@x", False),
        (("sip:fraud@*",), "sip:fraud@agents.bank.example", False),
        (("sip:fraud@*",), "sip:cards@agents.bank.example", True),
        ((), "+8695588", True),
    ],
)
def test_transfer_fails_for_matching_patterns(fails: Any, target: str, ok: bool) -> None:
    clock, channel, listener = make(transfer_fails=fails)
    channel.transfer(target)
    clock.run()
    assert listener.calls == [(0.0, "transfer", ok)]
    assert channel.ended is ok


def test_record_finishes_after_record_seconds_capped_by_max() -> None:
    clock, channel, listener = make(record_seconds=7)
    channel.record(RecordSpec(max_seconds=60))
    assert channel.recording
    clock.run()
    assert listener.calls == [(7.0, "recording", RecordResult(path=None, duration=7.0))]
    capped_clock, capped, capped_listener = make(record_seconds=7)
    capped.record(RecordSpec(max_seconds=3))
    capped_clock.run()
    assert capped_listener.calls == [(3.0, "recording", RecordResult(None, 3.0))]


def test_the_finish_key_ends_a_recording_and_is_not_forwarded() -> None:
    clock, channel, listener = make()
    channel.record(RecordSpec(max_seconds=60, finish_key="#"))
    clock.advance(2)
    channel.caller_dtmf("1")
    channel.caller_dtmf("#")
    assert listener.calls == [(2.0, "dtmf", "1"), (2.0, "recording", RecordResult(None, 2.0))]
    assert not channel.recording
    assert channel.recordings == [RecordResult(None, 2.0)]


def test_agents_answer_reject_or_let_it_ring_as_planned() -> None:
    clock = VirtualClock()
    plans = {"ann": AgentPlan(answer_after=3, handle=30), "bob": AgentPlan(rejects=True,
             answer_after=1), "cid": AgentPlan(answer_after=99)}  # fmt: skip
    channel = SimChannel(clock, agents=plans.get)
    legs: list[tuple[float, int, str]] = []

    class Listener:
        def on_agent_leg(self, offer_id: int, state: str) -> None:
            legs.append((clock.now(), offer_id, state))

    channel.attach(Listener())  # type: ignore[arg-type]
    channel.ring_agent(AgentOffer(1, "bob", "sip:bob@x", 15))
    channel.ring_agent(AgentOffer(2, "cid", "sip:cid@x", 15))
    channel.ring_agent(AgentOffer(3, "nobody", "sip:nobody@x", 15))
    channel.ring_agent(AgentOffer(4, "ann", "sip:ann@x", 15))
    clock.run()
    assert legs == [(0.0, 3, "failed"), (1.0, 1, "rejected"), (3.0, 4, "answered"),
                    (15.0, 2, "no_answer"), (33.0, 4, "ended")]  # fmt: skip
    channel.ring_agent(AgentOffer(5, "ann", "sip:ann@x", 15))
    channel.stop_agent(5)  # the caller left: nothing more about that leg
    clock.run()
    assert legs[-1][1] == 4

def test_after_hangup_everything_is_a_no_op() -> None:
    clock, channel, listener = make()
    channel.play(prompt("a long prompt that is still playing"))
    channel.hangup()
    assert channel.ended and channel.end == "hangup"
    assert not channel.busy
    channel.play(prompt("more"))
    channel.transfer("sip:x@y")
    channel.record(RecordSpec())
    channel.caller_dtmf("1")
    channel.caller_hangup()
    clock.run()
    assert listener.calls == []
    assert channel.transfers == [] and len(channel.played) == 1
    assert [a.what for a in channel.log] == ["play", "hangup"]


def test_caller_hangup_tells_the_listener_once_and_stops_the_media() -> None:
    clock, channel, listener = make()
    channel.play(prompt("hello there"))
    channel.caller_hangup()
    channel.caller_hangup()
    clock.run()
    assert listener.calls == [(0.0, "hangup", None)]
    assert channel.end == "caller_hangup"


def test_watchers_hear_of_every_change() -> None:
    clock, channel, _ = make()
    seen: list[bool] = []
    channel.watch(lambda: seen.append(channel.busy))
    channel.play(prompt("one", "a"))
    channel.play(prompt("two", "b"))
    clock.run()
    channel.caller_hangup()
    assert seen == [True, False, False]  # a done (b playing), b done, hung up
