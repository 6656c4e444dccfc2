"""The engine's call behaviour: timers, type-ahead, barge-in, retries, globals, every node type."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from engine_harness import Call

from ivr.core import events as ev
from ivr.core.events import MASK
from ivr.engine.session import MAX_TYPEAHEAD

MENU = """
flow: t
start: welcome
globals: {"0": agent, "*": repeat, "#": back}
nodes:
  welcome:
    say: {prompt: "Welcome to the bank.", next: main}
  main:
    menu:
      prompt: "For balance press 1. For cards press 2."
      choices:
        "1": {say: [balance, my balance], goto: balance}
        "2": {say: [card, lost card], goto: cards}
      no_input: {reprompt: ["Please choose.", "Press 1 or 2."], after: 3, goto: agent}
      no_match: {reprompt: "Sorry, that is not a choice.", after: 2, goto: agent}
  cards:
    menu:
      prompt: "For a lost card press 1."
      choices: {"1": lost}
      no_input: {goto: agent}
      no_match: {goto: agent}
  balance:
    hangup: {prompt: "Your balance is fine."}
  lost:
    hangup: {prompt: "Card blocked.", outcome: self_service}
  agent:
    enqueue: {queue: general, priority: 5, skills: [accounts], prompt: "Please hold."}
"""


def test_menu_choice_by_key_after_the_prompt() -> None:
    call = Call(MENU).start().finish_prompt()
    assert call.nodes == ["welcome", "main"]
    call.finish_prompt().press("1").finish_prompt()
    assert call.nodes[-1] == "balance"
    assert ("main", "choice 1") in call.branches
    assert call.outcome == "self_service"
    assert call.channel.end == "hangup"
    assert call.of(ev.CALL_END)[0].data["outcome"] == "self_service"


def test_no_input_reprompts_tapered_then_escalates() -> None:
    call = Call(MENU).start().finish_prompt().finish_prompt()
    call.run(5.01)
    assert call.prompts[-2:] == ["main.no_input", "main"]
    call.finish_prompt().run(5.01)
    assert call.prompts[-2:] == ["main.no_input.2", "main"]
    call.finish_prompt().run(5.01)
    assert [e.data["count"] for e in call.of(ev.NO_INPUT)] == [1, 2, 3]
    assert call.nodes[-1] == "agent"
    call.finish_prompt()
    # no agent queue in this process: the enqueue takes its no-agents exit (none here: the end)
    assert call.outcome == "unanswered"
    [queued] = call.of(ev.QUEUE)
    assert queued.data["queue"] == "general" and queued.data["skills"] == ["accounts"]
    assert call.of(ev.QUEUE_EXIT)[0].data["reason"] == "no_queue"


def test_no_input_timer_waits_for_the_prompt_to_finish() -> None:
    call = Call(MENU).start().finish_prompt()  # welcome done, main prompt playing
    assert call.channel.busy
    call.run(4.9)  # less than prompt + 5 s
    assert not call.of(ev.NO_INPUT)


def test_no_match_counts_and_escalates_after_its_own_limit() -> None:
    call = Call(MENU).start().finish_prompt().finish_prompt()
    call.press("7")
    assert call.prompts[-2:] == ["main.no_match", "main"]
    call.finish_prompt().press("8")
    assert call.nodes[-1] == "agent"
    assert [e.data["value"] for e in call.of(ev.NO_MATCH)] == ["7", "8"]


def test_type_ahead_during_a_prompt_without_barge_in_is_kept() -> None:
    # The welcome `say` has no barge-in: the key waits, then the menu takes it at once.
    call = Call(MENU).start().press("2")
    assert call.nodes == ["welcome"]
    call.finish_prompt()
    assert call.nodes[-2:] == ["main", "cards"]
    assert "main" not in call.prompts  # the menu prompt was skipped: the answer was typed ahead


def test_barge_in_stops_the_prompt_within_the_same_instant() -> None:
    call = Call(MENU).start().finish_prompt()
    assert call.channel.playing is not None and call.channel.playing.id == "main"
    call.channel.caller_dtmf("2")
    assert call.channel.log[-1].what in ("stop", "play")
    assert any(a.what == "stop" for a in call.channel.log)
    assert call.nodes[-1] == "cards"


def test_barge_in_off_keeps_the_prompt_and_handles_the_key_after() -> None:
    flow = MENU.replace("      choices:\n        \"1\": {say", "      barge_in: false\n"
                        "      choices:\n        \"1\": {say", 1)
    call = Call(flow).start().finish_prompt()
    call.press("1")
    assert call.nodes[-1] == "main"  # still playing
    call.finish_prompt()
    assert call.nodes[-1] == "balance"


def test_global_repeat_keeps_counters_and_replays() -> None:
    call = Call(MENU).start().finish_prompt().finish_prompt()
    call.press("9")  # one no-match
    call.finish_prompt().finish_prompt().press("*")
    assert call.prompts[-1] == "main"
    assert call.of(ev.GLOBAL)[-1].data == {"command": "*", "target": "repeat", "flow": "t"}
    call.finish_prompt().press("9")  # second no-match: escalates (after: 2) since counts stayed
    assert call.nodes[-1] == "agent"


def test_global_agent_and_back() -> None:
    call = Call(MENU).start().finish_prompt().finish_prompt().press("2").finish_prompt()
    assert call.nodes[-1] == "cards"
    call.press("#")
    assert call.nodes[-1] == "main"
    call.finish_prompt().press("0")
    assert call.nodes[-1] == "agent"


def test_speech_choice_and_low_confidence_confirmation() -> None:
    call = Call(MENU).start().finish_prompt().finish_prompt()
    call.say("I want my balance")
    assert call.nodes[-1] == "balance"

    call = Call(MENU).start().finish_prompt().finish_prompt()
    call.say("balance", confidence=0.3)
    assert call.prompts[-1] == "main.confirm"
    call.finish_prompt().say("yes")
    assert call.nodes[-1] == "balance"


def test_off_grammar_speech_is_no_match() -> None:
    call = Call(MENU).start().finish_prompt().finish_prompt()
    call.say("what is the weather")
    assert call.of(ev.NO_MATCH) and call.nodes[-1] == "main"


def test_caller_hangup_cancels_and_records_abandoned() -> None:
    call = Call(MENU).start().finish_prompt()
    call.hangup().run(60)
    assert call.outcome == "abandoned"
    assert call.of(ev.CALL_END)[-1].kind == ev.CALL_END
    assert call.events[-1].kind == ev.CALL_END  # nothing after the end, not even timers
    assert not call.of(ev.NO_INPUT)


COLLECT = """
flow: c
start: ask_account
nodes:
  ask_account:
    collect:
      prompt: "Enter your card number."
      into: card
      min: 12
      max: 19
      validate: luhn
      next: ask_pin
      no_input: {goto: bye}
      no_match: {reprompt: "That number is not valid.", after: 2, goto: bye}
  ask_pin:
    collect:
      prompt: "Enter your PIN."
      into: pin
      min: 4
      max: 6
      secret: true
      next: done
      no_input: {goto: bye}
      no_match: {goto: bye}
  done:
    hangup: {prompt: "Thank you, card ending {card}."}
  bye:
    hangup: {prompt: "Goodbye.", outcome: failed}
"""


def test_collect_with_terminator_luhn_and_secret_pin() -> None:
    call = Call(COLLECT).start().finish_prompt()
    call.press("4111111111111111#").finish_prompt()
    assert call.session.vars["card"] == "4111111111111111"
    call.press("907153#").finish_prompt()
    assert call.session.vars["pin"] == "907153"
    inputs = [e.data["value"] for e in call.of(ev.INPUT)]
    assert inputs == ["4111111111111111", MASK]
    assert "907153" not in repr(call.events)
    assert call.outcome == "self_service"


def test_collect_invalid_luhn_is_no_match_and_inter_digit_timeout_ends_entry() -> None:
    call = Call(COLLECT).start().finish_prompt()
    call.press("4111111111111112#")
    assert call.prompts[-2:] == ["ask_account.no_match", "ask_account"]
    call.finish_prompt().press("4111111111111111").run(3.01)  # no terminator: timeout ends it
    assert call.nodes[-1] == "ask_pin"


def test_collect_too_short_after_inter_digit_timeout_is_no_match() -> None:
    call = Call(COLLECT).start().finish_prompt().press("41").run(3.01)
    assert call.of(ev.NO_MATCH)[0].data["value"] == "41"


def test_collect_max_length_completes_without_terminator() -> None:
    flow = COLLECT.replace("max: 6", "max: 4")
    call = Call(flow).start().finish_prompt().press("4111111111111111#").finish_prompt()
    call.press("1234")
    assert call.nodes[-1] == "done"


FLOWCTL = """
flow: f
start: init
vars: {count: 0}
calendars:
  office:
    timezone: Asia/Shanghai
    weekly: {mon-fri: "09:00-17:00"}
    holidays: ["2027-01-01"]
nodes:
  init:
    set: {vars: {count: "= count + 1", greeting: "Hello {call.caller}"}, next: route}
  route:
    branch:
      when:
        - {if: "call.caller.startswith('+86955')", goto: vip}
        - {if: "count > 5", goto: bye}
      else: hours
  hours:
    hours: {calendar: office, open: open_msg, closed: closed_msg, holiday: holiday_msg}
  open_msg: {hangup: {prompt: "We are open.", outcome: self_service}}
  closed_msg: {hangup: {prompt: "We are closed.", outcome: closed}}
  holiday_msg: {hangup: {prompt: "Happy holiday.", outcome: closed}}
  vip: {hangup: {prompt: "Hello VIP."}}
  bye: {hangup: {prompt: "Bye."}}
"""


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def test_set_and_branch_with_expressions() -> None:
    call = Call(FLOWCTL, caller="+8695501", wall=_epoch("2027-01-04T10:00")).start()
    assert call.session.vars["count"] == 1
    assert call.session.vars["greeting"] == "Hello +8695501"
    assert call.nodes[-1] == "vip"
    assert ("route", "if call.caller.startswith('+86955')") in call.branches


def test_business_hours_open_closed_and_holiday() -> None:
    assert Call(FLOWCTL, wall=_epoch("2027-01-04T10:00")).start().nodes[-1] == "open_msg"
    assert Call(FLOWCTL, wall=_epoch("2027-01-04T18:30")).start().nodes[-1] == "closed_msg"
    assert Call(FLOWCTL, wall=_epoch("2027-01-01T10:00")).start().nodes[-1] == "holiday_msg"
    closed = Call(FLOWCTL, wall=_epoch("2027-01-02T10:00")).start().finish_prompt()
    assert closed.outcome == "closed"


LOOP = """
flow: loop
start: a
vars: {n: 0}
nodes:
  a: {set: {vars: {n: "= n + 1"}, next: b}}
  b:
    branch:
      when: [{if: "n >= 0", goto: a}]
      else: end
  end: {hangup: {}}
"""


def test_a_loop_that_never_waits_for_the_caller_ends_the_call() -> None:
    call = Call(LOOP).start()
    assert call.outcome == "failed"
    assert call.of(ev.ERROR)


MAINFLOW = """
flow: main
start: verify
nodes:
  verify: {subflow: {flow: sub, next: after}}
  after: {hangup: {prompt: "Verified {who}."}}
"""
SUBFLOW = """
flow: sub
start: s1
nodes:
  s1: {set: {vars: {who: alice}, next: done}}
  done: {return: {}}
"""


def test_subflow_runs_with_shared_variables_and_returns() -> None:
    call = Call(MAINFLOW, SUBFLOW).start().finish_prompt()
    assert call.nodes == ["verify", "s1", "done", "after"]
    assert ("verify", "next") in call.branches
    assert call.of(ev.PROMPT)[-1].data["text"] == "Verified alice."


ACTIONS = """
flow: a
start: lookup
nodes:
  lookup:
    action:
      python: "engine_test_actions:lookup"
      args: {account: "{account}"}
      into: info
      next: ok
      on_error: sorry
  ok: {hangup: {prompt: "Hello {info.name}."}}
  sorry: {hangup: {prompt: "Sorry.", outcome: failed}}
"""


def _actions(tmp_path: Path) -> Path:
    (tmp_path / "engine_test_actions.py").write_text(
        "def lookup(args):\n"
        "    if args['account'] == 'bad':\n"
        "        raise RuntimeError('backend down')\n"
        "    return {'name': 'Alice'}\n"
    )
    return tmp_path


def test_python_action_result_and_error_fallback(tmp_path: Path) -> None:
    path = _actions(tmp_path)
    good = Call(ACTIONS.replace("nodes:", "vars: {account: '42'}\nnodes:"), actions_path=path)
    good.start().finish_prompt()
    assert good.nodes[-1] == "ok" and good.of(ev.PROMPT)[-1].data["text"] == "Hello Alice."
    bad = Call(ACTIONS.replace("nodes:", "vars: {account: bad}\nnodes:"), actions_path=path)
    bad.start()
    assert bad.nodes[-1] == "sorry"
    assert bad.of(ev.ACTION)[0].data["ok"] is False
    assert bad.of(ev.ACTION)[0].data["via"] == "python"  # the reports split webhooks out


ENDINGS = """
flow: e
start: choose
nodes:
  choose:
    menu:
      prompt: "1 transfer, 2 forbidden, 3 voicemail, 4 survey."
      choices: {"1": fraud, "2": forbidden, "3": voicemail, "4": survey}
      no_input: {goto: bye}
      no_match: {goto: bye}
  fraud:
    transfer: {to: "sip:fraud@agents.example", prompt: "Connecting.", on_fail: fail_msg}
  forbidden:
    transfer: {to: "sip:x@{call.called}", on_fail: fail_msg}
  fail_msg: {hangup: {prompt: "Transfer failed.", outcome: failed}}
  voicemail:
    record: {prompt: "Leave a message.", into: message, max_seconds: 30, next: bye}
  survey:
    survey:
      questions:
        - {id: satisfaction, prompt: "Rate us 1 to 5.", scale: 5}
        - {id: resolved, prompt: "Solved? 1 yes 2 no.", scale: 2}
      next: bye
  bye: {hangup: {prompt: "Bye."}}
"""


def test_transfer_ok_failed_and_outside_the_allow_list() -> None:
    ok = Call(ENDINGS).start().finish_prompt().press("1").finish_prompt().run(0.1)
    assert ok.outcome == "transferred" and ok.channel.transfers == ["sip:fraud@agents.example"]
    failed = Call(ENDINGS, transfer_fails=True).start().finish_prompt().press("1")
    failed.finish_prompt().run(0.1)
    assert failed.nodes[-1] == "fail_msg"
    forbidden = Call(ENDINGS).start().finish_prompt().press("2")
    assert forbidden.nodes[-1] == "fail_msg" and forbidden.channel.transfers == []
    assert forbidden.of(ev.TRANSFER)[0].data["ok"] is False


def test_record_then_next() -> None:
    call = Call(ENDINGS).start().finish_prompt().press("3").finish_prompt()
    call.finish_prompt().run(10)  # beep, then the simulated caller speaks 5 s
    assert call.of(ev.RECORDING) and call.nodes[-1] == "bye"


def test_survey_answered_and_skipped() -> None:
    call = Call(ENDINGS).start().finish_prompt().press("4").finish_prompt().press("5")
    call.finish_prompt().run(5.01)  # second question: silence skips it
    answers = [(e.data["question"], e.data["answer"]) for e in call.of(ev.SURVEY)]
    assert answers == [("satisfaction", 5), ("resolved", None)]
    assert call.nodes[-1] == "bye"


LANG = """
flow: l
languages: [en, zh]
start: lang
nodes:
  lang:
    language:
      prompt: {en: "For English press 1.", zh: "普通话请按2。"}
      choices: {"1": en, "2": zh}
      next: hello
      no_match: {goto: hello}
  hello:
    hangup:
      prompt: {en: "Your balance is {amount|amount}.", zh: "您的余额是{amount|amount}。"}
"""


def test_language_choice_changes_prompt_language_and_silence_keeps_default() -> None:
    zh = Call(LANG.replace("nodes:", "vars: {amount: 1024.5}\nnodes:")).start().finish_prompt()
    zh.press("2")
    last = zh.of(ev.PROMPT)[-1].data
    assert last["language"] == "zh" and "一千零二十四" in last["text"]
    en = Call(LANG.replace("nodes:", "vars: {amount: 1}\nnodes:")).start().finish_prompt()
    en.run(5.01 * 3)
    assert en.nodes[-1] == "hello" and en.of(ev.PROMPT)[-1].data["language"] == "en"


def test_a_call_keeps_the_flow_version_it_started_with_across_a_reload(tmp_path: Path) -> None:
    from ivr.core.clock import VirtualClock
    from ivr.engine.actions import InlineActionRunner
    from ivr.engine.channel import CallInfo
    from ivr.engine.runtime import Runtime
    from ivr.engine.session import Session
    from ivr.flow.registry import FlowRegistry
    from ivr.sim.channel import SimChannel

    flow_file = tmp_path / "t.yaml"
    flow_file.write_text(MENU)
    registry = FlowRegistry(tmp_path)
    assert not FlowRegistry.has_errors(registry.reload())
    clock = VirtualClock()
    channel = SimChannel(clock, CallInfo("c1"))
    events: list[ev.Event] = []
    session = Session(registry.current, "t", channel, clock, Runtime(InlineActionRunner()),
                      [events.append])
    session.start()
    clock.advance(3)
    flow_file.write_text(MENU.replace("Your balance is fine.", "Version two balance."))
    assert not FlowRegistry.has_errors(registry.reload())
    assert registry.current.flows["t"].digest != session.flow.digest
    clock.advance(10)
    channel.caller_dtmf("1")
    clock.run()
    texts = [e.data["text"] for e in events if e.kind == ev.PROMPT]
    assert texts[-1] == "Your balance is fine."  # the old version, to the end of the call
    flow_file.write_text("flow: t\nstart: nowhere\nnodes: {}\n")  # broken: refused
    assert FlowRegistry.has_errors(registry.reload())
    assert "Version two" in str(registry.current.flows["t"].nodes["balance"])


FULL_PIN = """
flow: p
start: hello
globals: {"#": back, "0": agent}
nodes:
  hello: {say: {prompt: "Hello.", next: pin}}
  pin:
    collect: {prompt: "PIN please.", into: pin, min: 6, max: 6, secret: true, next: menu}
  menu:
    menu:
      prompt: "1 for balance."
      choices: {"1": bye}
      no_input: {goto: bye}
      no_match: {goto: bye}
  agent: {hangup: {prompt: "Agent.", outcome: agent}}
  bye: {hangup: {prompt: "Bye."}}
"""


def test_a_terminator_after_a_full_length_entry_is_not_the_next_menus_back() -> None:
    call = Call(FULL_PIN).start().finish_prompt().finish_prompt().press("123456#")
    assert call.nodes == ["hello", "pin", "menu"] and call.of(ev.GLOBAL) == []
    call.press("#")  # pressed on purpose later, at the menu: "back" works as before
    assert call.nodes[-1] == "pin"


def test_a_typed_ahead_terminator_after_a_full_length_entry_is_dropped() -> None:
    call = Call(FULL_PIN).start().press("123456#", gap=0.05)  # during "Hello.": type-ahead
    call.finish_prompt().finish_prompt()
    assert call.nodes == ["hello", "pin", "menu"] and call.of(ev.GLOBAL) == []
    assert call.of(ev.NO_MATCH) == [] and call.session.typeahead == []


def test_keys_typed_past_a_full_entry_go_to_the_next_node() -> None:
    call = Call(FULL_PIN).start().press("1234561", gap=0.05)  # PIN, then "1" for the menu
    call.finish_prompt().finish_prompt().run(0.1)
    assert call.nodes == ["hello", "pin", "menu", "bye"] and call.of(ev.NO_MATCH) == []


BACK_MAIN = """
flow: main
start: menu
globals: {"*": back}
nodes:
  menu:
    menu:
      {prompt: "1 to verify.", choices: {"1": verify}, no_input: {goto: bye}, no_match: {goto: bye}}
  verify: {subflow: {flow: vsub, next: more}}
  more:
    menu: {prompt: "1 to end.", choices: {"1": bye}, no_input: {goto: bye}, no_match: {goto: bye}}
  bye: {hangup: {prompt: "Bye."}}
"""
BACK_SUB = """
flow: vsub
start: ask
globals: {"*": back}
defaults: {escalate: done}
nodes:
  ask:
    collect: {prompt: "Account.", into: account, min: 2, max: 2, next: pin}
  pin:
    collect: {prompt: "Code.", into: code, min: 2, max: 2, next: done}
  done: {return: {}}
"""


def test_back_after_a_finished_subflow_goes_to_the_caller_flows_previous_node() -> None:
    call = Call(BACK_MAIN, BACK_SUB).start().finish_prompt().press("1").finish_prompt()
    call.press("12").finish_prompt().press("34").finish_prompt()
    assert call.nodes[-1] == "more"
    call.press("*").finish_prompt()
    assert call.nodes[-1] == "menu" and call.of(ev.ERROR) == [] and not call.session.finished


def test_back_inside_a_subflow_stays_inside_it() -> None:
    call = Call(BACK_MAIN, BACK_SUB).start().finish_prompt().press("1").finish_prompt()
    call.press("*").finish_prompt()  # at the sub-flow's first node: nothing before it here
    assert call.nodes[-1] == "ask" and call.session.flow.id == "vsub"
    call.press("12").finish_prompt().press("*").finish_prompt()
    assert call.nodes[-1] == "ask"
    call.press("12").finish_prompt().press("34").finish_prompt()
    assert call.nodes[-1] == "more" and call.of(ev.ERROR) == []


AMOUNT = """
flow: a
start: ask
nodes:
  ask:
    recognize:
      prompt: "How much?"
      grammar: amount
      into: amount
      next: ok
      no_match: {reprompt: "Sorry.", after: 5, goto: bye}
      no_input: {goto: bye}
  ok: {hangup: {prompt: "You'd like to repay {amount|amount}."}}
  bye: {hangup: {prompt: "Bye."}}
"""


def test_an_empty_or_zero_amount_is_a_no_match() -> None:
    call = Call(AMOUNT).start().finish_prompt().press("#").finish_prompt()
    call.press("0#").finish_prompt().press("000#").finish_prompt().say("zero").finish_prompt()
    assert len(call.of(ev.NO_MATCH)) == 4 and "amount" not in call.session.vars
    call.press("120#")
    assert call.session.vars["amount"] == "120.00" and call.nodes[-1] == "ok"


def _recording_started(call: Call) -> Call:
    call.start().finish_prompt().press("3").finish_prompt().finish_prompt()  # prompt, beep
    assert call.channel.recording
    return call.run(2)


def test_a_voicemail_ended_by_the_callers_hangup_is_kept_and_linked() -> None:
    call = _recording_started(Call(ENDINGS)).hangup()
    assert call.outcome == "voicemail"
    (recording,) = call.of(ev.RECORDING)
    assert recording.node == "voicemail" and recording.data["duration"] == 2.0
    assert recording.data["ended"] == "with_call"
    assert call.of(ev.CALL_END)[0].data["outcome"] == "voicemail"


def test_a_voicemail_cut_by_a_drain_is_linked_to_the_call() -> None:
    call = _recording_started(Call(ENDINGS))
    call.session.fail("server draining")  # what EngineHost.cut_calls does at the timeout
    assert [e.node for e in call.of(ev.RECORDING)] == ["voicemail"]


def test_the_type_ahead_buffer_is_bounded() -> None:
    call = Call(FULL_PIN).start()
    for _ in range(MAX_TYPEAHEAD * 4):
        call.channel.caller_dtmf("7")  # during "Hello." (no barge-in): all type-ahead
    assert len(call.session.typeahead) == MAX_TYPEAHEAD


def test_a_variable_computed_from_a_secret_is_secret_too() -> None:
    flow = """
    flow: s
    start: pin
    defaults: {escalate: bye}
    nodes:
      pin: {collect: {prompt: "PIN.", into: pin, min: 4, max: 4, secret: true, next: copy}}
      copy: {set: {vars: {again: "= pin", tail: "{pin}-x", plain: "= 1 + 1"}, next: bye}}
      bye: {hangup: {prompt: "Bye {again}."}}
    """
    call = Call(flow).start().finish_prompt().press("9071").run(5)
    shown = {e.data["name"]: e.data["value"] for e in call.of(ev.VAR_SET)}
    assert shown == {"pin": MASK, "again": MASK, "tail": MASK, "plain": 2}
    assert all("9071" not in str(e.data) for e in call.events)
