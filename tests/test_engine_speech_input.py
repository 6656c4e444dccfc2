"""What input nodes ask a channel to listen for, and how they take a recognizer's verdicts
(ivr.engine.steps.inputs): rejected speech, the yes/no grammar of a confirmation, digit bounds."""

from __future__ import annotations

from engine_harness import Call

from ivr.engine import events as ev
from ivr.engine.channel import SpeechResult

FLOW = """
flow: t
start: main
globals:
  agent: {say: [agent], goto: agent}
nodes:
  main:
    menu:
      prompt: "Say balance."
      choices:
        "1": {say: [balance], goto: pin}
      no_match: {reprompt: "Sorry.", after: 3, goto: agent}
  pin:
    collect: {prompt: "Your PIN.", into: pin, min: 4, max: 6, next: bye}
  bye:
    hangup: {prompt: "Bye."}
  agent:
    hangup: {prompt: "No agents.", outcome: failed}
"""


def speech(call: Call, result: SpeechResult) -> None:
    call.channel.caller_speech_start()
    call.run(0.5)
    call.channel.caller_speech(result)


def test_speech_the_recognizer_rejected_is_a_no_match_whatever_its_confidence() -> None:
    call = Call(FLOW).start().finish_prompt()
    speech(call, SpeechResult("what is the weather", 0.1, None, rejected=True))
    assert call.of(ev.NO_MATCH) and call.prompts[-2:] == ["main.no_match", "main"]
    assert not any(p.endswith(".confirm") for p in call.prompts)
    assert call.of(ev.INPUT)[-1].data["value"] == "what is the weather"


def test_a_confirmation_listens_for_yes_or_no_then_for_the_node_again() -> None:
    call = Call(FLOW).start().finish_prompt()
    menu = call.channel.listening
    assert menu is not None and menu.builtin is None and "1" in menu.phrases
    speech(call, SpeechResult("balance", 0.3, "1"))
    assert call.prompts[-1] == "main.confirm"
    asking = call.channel.listening
    assert asking is not None and asking.builtin == "yes_no" and asking.phrases == {}
    call.finish_prompt()
    speech(call, SpeechResult("no", 0.9, "no"))
    assert call.of(ev.NO_MATCH) and call.nodes[-1] == "main"
    again = call.channel.listening
    assert again is not None and again.builtin is None and again.phrases == menu.phrases


def test_digit_entries_tell_the_recognizer_their_length() -> None:
    call = Call(FLOW).start().finish_prompt().press("1")
    assert call.nodes[-1] == "pin"
    spec = call.channel.listening  # the PIN node listens for the spoken "agent" command
    assert spec is not None and (spec.min_digits, spec.max_digits) == (4, 6)
    menu = Call(FLOW).start().channel.listening
    assert menu is not None and (menu.min_digits, menu.max_digits) == (None, None)
