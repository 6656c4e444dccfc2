"""Speech on real calls, end to end: TTS -> G.711 RTP -> ``ivr serve`` -> PocketSphinx -> flow.

One server (an :class:`IvrServer` on its own thread, as in test_serve_e2e.py) runs the bank flows
plus two small speech flows with the default recognizer (PocketSphinx's bundled English model,
one worker process). The caller is the live QA caller: its speech is synthesized by espeak-ng and
sent as μ-law RTP. Verdicts come from the call records and from what the caller heard, never
from how long something took.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from serve_helpers import (
    MONDAY_10AM,
    ServerThread,
    bank_flows,
    calls,
    events,
    free_port,
    write_config,
)
from sip_phone import run

from ivr.cli.main import main
from ivr.config import load_config
from ivr.core.events import Event
from ivr.serve.server import ServeOptions
from ivr.sim.live_call import LiveCaller, LivePhone, synthesize_speech
from ivr.sim.records import CallRecords
from ivr.tts.cache import PromptCache

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.usefixtures("espeak_program"),
]
AT = [("X-Ivr-At", MONDAY_10AM)]

SPEECH_FLOW = """\
flow: e2e-speech
languages: [en]
start: menu
nodes:
  menu:
    menu:
      prompt: >-
        Welcome to the speech test line. For your balance, say balance or press 1. For a lost
        card, say lost card or press 2. For our opening hours, say opening hours or press 3.
      choices:
        "1": {say: [balance, my balance], goto: balance}
        "2": {say: [lost card, stolen card], goto: card}
        "3": {say: [opening hours, branch hours], goto: hours}
      timeout: 8
      no_input: {after: 1, goto: silent}
      no_match: {reprompt: "Sorry, I didn't get that.", after: 3, goto: tries}
  balance:
    hangup: {prompt: "Your balance is one hundred pounds. Goodbye."}
  card:
    hangup: {prompt: "Your card is now blocked. Goodbye."}
  hours:
    hangup: {prompt: "We are open from nine to five. Goodbye."}
  silent:
    hangup: {prompt: "Nothing was heard. Goodbye.", outcome: failed}
  tries:
    hangup: {prompt: "Too many tries. Goodbye.", outcome: failed}
"""

MANDARIN_FLOW = """\
flow: e2e-speech-zh
languages: [zh]
start: menu
nodes:
  menu:
    menu:
      prompt: "查询余额请说余额或按1。"
      choices:
        "1": {say: [余额], goto: balance}
      timeout: 4
      no_input: {after: 1, goto: silent}
      no_match: {goto: silent}
  balance:
    hangup: {prompt: "您的余额充足。再见。"}
  silent:
    hangup: {prompt: "没有听到您的回答。再见。", outcome: failed}
"""


@pytest.fixture(scope="module")
def server(bank_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("speech")
    port = free_port()
    flows = bank_flows(root / "flows", port)
    (flows / "e2e-speech.yaml").write_text(SPEECH_FLOW, encoding="utf-8")
    (flows / "e2e-speech-zh.yaml").write_text(MANDARIN_FLOW, encoding="utf-8")
    numbers = {"95588": "bank-main", "7101": "e2e-speech", "7102": "e2e-speech-zh",
               "default": "bank-main"}  # fmt: skip
    config = write_config(root, flows, root / "prompts", port=port, numbers=numbers)
    data = yaml.safe_load(config.root.joinpath("ivr.yaml").read_text())
    data["asr"] = {"backend": "auto", "workers": 1}  # PocketSphinx: no model in asr_models/
    config.root.joinpath("ivr.yaml").write_text(yaml.safe_dump(data))
    config = load_config(config.root / "ivr.yaml")
    options = ServeOptions(test_headers=True, port=port, rtp_ports=(31000, 31999), drain_timeout=2)
    thread = ServerThread(config, options).start(timeout=120)
    try:
        yield thread
    finally:
        thread.stop()


class Call:
    """One live call to the server, with what its caller says synthesized as it goes."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.phone = LivePhone()
        self.caller: LiveCaller

    async def dial(self, number: str) -> Call:
        await self.phone.start()
        self.caller = self.phone.caller(records=CallRecords(self.server.db))
        host, port = self.server.address
        status = await self.caller.dial(f"sip:{number}@{host}:{port}", caller="+8613800000042",
                                        headers=AT)  # fmt: skip
        assert status == 200, status
        return self

    async def close(self) -> None:
        await self.caller.close()
        await self.phone.close()

    async def say(self, text: str, language: str = "en") -> None:
        prompts = self.server.config.prompts_dir
        audio = await asyncio.to_thread(synthesize_speech, prompts, text, language)
        await self.caller.say(audio, text)

    async def until(self, check: Callable[[], object], what: str, timeout: float = 30) -> None:
        if not await self.caller.wait_until(lambda: bool(check()), timeout):
            raise AssertionError(f"not within {timeout} s: {what}; the record: "
                                 f"{[(e.kind, e.node, e.data) for e in self.caller.events]}")

    def first(self, kind: str, **data: object) -> Event | None:
        return next((e for e in self.caller.events if e.kind == kind
                     and all(e.data.get(k) == v for k, v in data.items())), None)  # fmt: skip

    def prompts(self) -> list[str]:
        return [str(e.data["prompt"]) for e in self.caller.events if e.kind == "prompt"]

    async def after_prompt(self, prompt: str) -> None:
        """Wait for ``prompt`` to start, then for its audio to end."""
        await self.until(lambda: self.first("prompt", prompt=prompt), f"prompt {prompt}")
        since = self.caller.loop.time()
        assert await self.caller.wait_prompt_finished(since - 1.0, 60), f"{prompt} never ended"


def session(server: ServerThread, number: str,
            body: Callable[[Call], object]) -> Call:  # fmt: skip
    """Dial ``number``, run ``body(call)`` (a coroutine function), hang up, return the call."""

    async def scenario() -> Call:
        call = await Call(server).dial(number)
        try:
            await body(call)  # type: ignore[misc]
        finally:
            await call.close()
        return call

    return run(scenario(), 150)


def test_the_bank_main_menu_answered_by_voice_barging_in_on_its_prompt(
    server: ServerThread,
) -> None:
    async def body(call: Call) -> None:
        await call.until(lambda: call.first("prompt", prompt="choose_language"), "the welcome")
        call.caller.press("1")  # DTMF at the first menu, during its prompt
        await call.until(lambda: call.first("prompt", prompt="main_menu"), "the main menu")
        await asyncio.sleep(2.5)  # well into the 15 s menu prompt
        await call.say("balance")
        await call.until(lambda: call.first("prompt", prompt="ask_account"), "the account prompt")
        ask = call.first("prompt", prompt="ask_account")
        assert ask is not None
        monitor, asked_at = call.caller.monitor, call.caller.t0 + ask.t
        await call.until(lambda: not monitor.speaking and monitor.last_end > asked_at,
                         "the account prompt heard to its end")  # fmt: skip

    call = session(server, "95588", body)
    speech = call.first("input", mode="speech")
    assert speech is not None and speech.node == "main_menu", call.caller.events
    assert speech.data["value"] == "balance"
    assert call.first("match", branch="choice 1") is not None
    # Barge-in: the menu prompt was cut where the caller spoke, long before its audio's end.
    menu = call.first("prompt", prompt="main_menu")
    assert menu is not None
    full = _seconds(call.server.config.prompts_dir, str(menu.data["text"]), "en")
    natural_end = call.caller.t0 + menu.t + full  # when the menu's audio would have ended
    assert speech.t < menu.t + full - 3.0
    # The next prompt plays after the current one ends: the caller heard the account prompt to
    # its end before the menu's own audio would have ended, so the menu was cut short.
    spoken = next(s for s in call.caller.sent if s.kind == "speech")
    heard_until = call.caller.monitor.last_end
    assert heard_until < natural_end, (
        f"audio heard until {heard_until - spoken.at:+.2f} s after the caller spoke; the menu "
        f"alone would have played until {natural_end - spoken.at:+.2f} s")  # fmt: skip
    assert call.prompts()[:3] == ["choose_language", "main_menu", "ask_account"]


def test_a_spoken_choice_after_the_prompt_and_a_key_at_the_same_menu(server: ServerThread) -> None:
    async def by_voice(call: Call) -> None:
        await call.after_prompt("menu")
        await call.say("opening hours")
        await call.until(lambda: call.first("call_end"), "the end of the call")

    voice = session(server, "7101", by_voice)
    assert voice.prompts() == ["menu", "hours"]
    assert voice.first("input", mode="speech", value="opening hours") is not None
    assert voice.first("call_end", outcome="self_service") is not None

    async def by_key(call: Call) -> None:
        await call.after_prompt("menu")
        call.caller.press("2")
        await call.until(lambda: call.first("call_end"), "the end of the call")

    key = session(server, "7101", by_key)
    assert key.prompts() == ["menu", "card"]
    assert key.first("input", mode="dtmf", value="2") is not None
    assert key.first("input", mode="speech") is None


def test_off_grammar_speech_takes_the_no_match_path_and_keys_still_work(
    server: ServerThread,
) -> None:
    async def body(call: Call) -> None:
        await call.after_prompt("menu")
        await call.say("what is the weather like today")
        await call.until(lambda: call.first("no_match"), "a no-match")
        call.caller.press("1")  # the same node still takes keys
        await call.until(lambda: call.first("call_end"), "the end of the call")

    call = session(server, "7101", body)
    no_match = call.first("no_match")
    assert no_match is not None and no_match.node == "menu" and no_match.data["count"] == 1
    assert call.first("match", branch="choice 1") is not None
    assert call.prompts()[-1] == "balance" and "hours" not in call.prompts()
    # The reprompt was played before the menu again.
    texts = [str(e.data["text"]) for e in call.caller.events if e.kind == "prompt"]
    assert any("Sorry, I didn't get that." in t for t in texts)


def test_mandarin_without_a_model_takes_keys_only(server: ServerThread) -> None:
    async def body(call: Call) -> None:
        await call.after_prompt("menu")
        await call.say("余额", "zh")
        await call.until(lambda: call.first("no_input"), "the no-input timeout", 20)

    call = session(server, "7102", body)
    assert call.first("input") is None and call.first("no_match") is None
    assert call.first("no_input") is not None and call.prompts()[-1] == "silent"

    async def by_key(call: Call) -> None:
        await call.after_prompt("menu")
        call.caller.press("1")
        await call.until(lambda: call.first("call_end"), "the end of the call")

    assert session(server, "7102", by_key).prompts() == ["menu", "balance"]


def test_live_scripts_that_speak_run_and_mandarin_ones_are_skipped(
    server: ServerThread, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    script = tmp_path / "speech.yaml"
    script.write_text("name: lost card by voice\ncall: e2e-speech\n"
                      "caller: {number: '+8613800000055', called: '7101'}\n"
                      "steps:\n  - expect: menu\n  - say: lost card\n  - expect: card\n"
                      "  - expect_hangup\noutcome: self_service\n")  # fmt: skip
    scripts = Path(__file__).parent / "scripts"
    bank = tmp_path / "spoken_agent.yaml"  # "agent" at the account number prompt
    bank.write_text("name: spoken agent\ncall: bank-main\n"
                    "caller: {number: '+8613800000056', called: '95588'}\n"
                    "at: '2027-01-08T10:00:00+08:00'\nsteps:\n  - expect: choose_language\n"
                    "  - press: '1'\n  - expect: main_menu\n  - press: '1'\n"
                    "  - expect: ask_account\n  - say: agent\n"
                    "  - expect: agents_closed\n"  # no agent queue here: the no-agents exit
                    "  - hangup\noutcome: abandoned\n")  # fmt: skip
    mandarin = scripts / "balance_zh_speech.yaml"
    host, port = server.address
    config = str(server.config.root / "ivr.yaml")
    code = main(["-c", config, "test", "--live", f"sip:{host}:{port}", "--barge-in",
                 str(script), str(bank), str(mandarin)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS lost card by voice" in out and "2 passed, 0 failed, 1 skipped" in out
    assert "speech input is not supported live in zh" in out
    call = next(c for c in calls(server.db) if c["caller"] == "+8613800000055")
    inputs = [d for k, _, d in events(server.db, call["call_id"]) if k == "input"]
    assert inputs and inputs[0]["mode"] == "speech" and inputs[0]["value"] == "lost card"


def _seconds(prompts_dir: Path, text: str, language: str) -> float:
    path = PromptCache(prompts_dir).cached(text, language)
    assert path is not None, f"no cached audio for {text!r}"
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def test_ivr_call_say_speaks_the_same_way_and_is_recognised(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    host, port = server.address
    config = str(server.config.root / "ivr.yaml")
    code = main(["-c", config, "call", f"sip:7101@{host}:{port}", "--say", "opening hours",
                 "--hangup-after", "40"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "sent speech opening hours" in out and "prompt hours" in out
    assert "outcome self_service" in out
