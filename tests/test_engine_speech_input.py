"""What input nodes ask a channel to listen for, and how they take a recognizer's verdicts
(ivr.engine.steps.inputs): rejected speech, the yes/no grammar of a confirmation, digit bounds,
and the spoken language names of a language node (ivr.engine.steps.menus)."""

from __future__ import annotations

from engine_harness import Call

from ivr.core import events as ev
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



LANGUAGE_FLOW = """
flow: lang
languages: [en, zh, ko]
start: pick
globals:
  agent: {say: {en: [agent], zh: [人工]}, goto: agent}
nodes:
  pick:
    language:
      prompt: {audio: pick, en: "For English press 1. 中文请按2。"}  # audio: one text is enough
      choices: CHOICES
      next: menu
      no_match: {after: 2, goto: agent}
  menu:
    menu:
      prompt: {audio: menu, en: "Press 9 to choose again."}
      choices: {"9": pick}
  agent:
    hangup: {prompt: {audio: agent, en: "No agents."}, outcome: failed}
"""


def language_call(choices: str = '{"1": en, "2": zh}') -> Call:
    return Call(LANGUAGE_FLOW.replace("CHOICES", choices)).start().finish_prompt()


def test_the_language_node_listens_for_the_names_the_default_recognizer_can_hear() -> None:
    spec = language_call().channel.listening
    assert spec is not None and spec.node == "pick" and spec.language == "en"
    assert spec.phrases == {"en": ("english",), "zh": ("chinese", "mandarin"),
                            "global:agent": ("agent",)}


def test_saying_a_language_name_chooses_it_and_the_node_then_listens_in_that_language() -> None:
    call = language_call('{"1": en, "2": {language: zh, say: {en: [chinese, mandarin]}}}')
    call.say("Mandarin")
    assert call.session.vars["lang"] == "zh" and call.nodes[-1] == "menu"
    back = call.finish_prompt().press("9").channel.listening  # the node again, in Chinese now
    assert back is not None and back.node == "pick" and back.language == "zh"
    # The say: gave English words only: in Chinese the built-in names still apply.
    assert back.phrases["zh"][:3] == ("中文", "普通话", "汉语")
    assert back.phrases["en"] == ("英语", "英文")
    call.finish_prompt().say("英文")
    assert call.session.vars["lang"] == "en" and call.nodes[-1] == "menu"


def test_the_recognizers_choice_key_is_the_language() -> None:
    call = language_call()
    call.channel.caller_speech_start()
    call.run(0.5)
    call.channel.caller_speech(SpeechResult("chinese please", 0.9, "zh"))
    assert call.session.vars["lang"] == "zh"


def test_a_native_name_the_default_recognizer_cannot_hear_is_a_no_match() -> None:
    call = language_call().say("中文")  # an English recognizer hears "chinese", never this
    assert call.of(ev.NO_MATCH) and call.session.vars["lang"] == "en"
    assert call.nodes[-1] == "pick"


def test_a_choice_say_replaces_the_built_in_names_for_the_languages_it_gives() -> None:
    call = language_call('{"1": en, "2": zh, "3": {language: ko, say: {zh: [韩文]}}}')
    spec = call.channel.listening
    assert spec is not None and spec.phrases["ko"] == ("korean",)  # no English say: built-in
    call.say("korean")
    assert call.session.vars["lang"] == "ko"
    listed = language_call('{"1": en, "3": {language: ko, say: [korean, hangul]}}')
    spec = listed.channel.listening  # a plain list is for every listening language
    assert spec is not None and spec.phrases["ko"] == ("korean", "hangul")
    listed.say("hangul")
    assert listed.session.vars["lang"] == "ko"
