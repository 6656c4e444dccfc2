"""The enqueue node on a virtual clock (ivr/engine/steps/queue.py) against the real queue
authority (ivr/acd) through the host's adapter, with simulated agents on the SimChannel."""

from __future__ import annotations

from engine_harness import Call

from ivr.acd.authority import QueueAuthority
from ivr.acd.model import AgentSpec, AgentState, QueueSpec
from ivr.core import events as ev
from ivr.core.clock import VirtualClock
from ivr.host.queues import AuthorityQueues
from ivr.sim.channel import AgentPlan

FLOW = """
flow: q
languages: [{lang}]
start: agent
nodes:
  agent:
    enqueue:
      queue: general
      priority: "= 9 if call.caller == '+861000' else 5"
      skills: [accounts]
      tier: accounts
      prompt: "Please hold."
      announce: {{every: {every}, min_interval: {gap}}}
      whisper: "Account caller {{call.caller}}"
      keys: {{"9": voicemail, "1": callback}}
      on_max_wait: voicemail
      on_no_agents: closed
      after: thanks
  voicemail:
    hangup: {{prompt: "Leave a message another time.", outcome: voicemail}}
  closed:
    hangup: {{prompt: "We are closed.", outcome: failed}}
  thanks:
    hangup: {{prompt: "Thank you for calling."}}
"""
ANN = AgentSpec("ann", "Ann", {"accounts": 7}, "accounts", wrap_up=5)
GINA = AgentSpec("gina", "Gina", {"accounts": 2}, "general", wrap_up=0)


class Centre:
    """One queue authority on one virtual clock, and the calls that meet it."""

    def __init__(self, *agents: AgentSpec, plans: dict[str, AgentPlan] | None = None,
                 max_wait: float | None = 600) -> None:  # fmt: skip
        self.clock = VirtualClock()
        self.authority = QueueAuthority(
            agents, [QueueSpec("general", ring_timeout=15, retry_delay=5, max_wait=max_wait)],
            self.clock)  # fmt: skip
        self.queues = AuthorityQueues(self.authority)
        self.plans = plans or {}
        self.calls = 0

    def ready(self, agent: str) -> None:
        self.authority.registered(agent, f"sim:{agent}", 3600)
        self.authority.login(agent)

    def call(self, caller: str = "+8613800000001", lang: str = "en", every: float = 60,
             gap: float = 15) -> Call:  # fmt: skip
        self.calls += 1
        return Call(FLOW.format(lang=lang, every=every, gap=gap), clock=self.clock,
                    queues=self.queues, agents=self.plans.get, caller=caller,
                    call_id=f"call-{self.calls}").start()  # fmt: skip

    def state(self, agent: str) -> AgentState:
        return self.authority.agents[agent].state


def test_the_caller_waits_with_music_is_connected_and_the_flow_goes_on_after_the_agent() -> None:
    centre = Centre(ANN, plans={"ann": AgentPlan(answer_after=4, handle=120)})
    centre.authority.login("ann")  # logged in, phone not registered yet: the caller waits
    call = centre.call()
    assert call.of(ev.QUEUE)[0].data == {"queue": "general", "priority": 5,
                                         "skills": ["accounts"], "tier": "accounts",
                                         "flow": "q"}  # fmt: skip
    call.finish_prompt()
    call.finish_prompt()  # "You are next in line." (no wait: no agent can take it yet)
    assert call.prompts[:3] == ["agent", "queue_announcement", "hold_music"]
    assert call.channel.playing is not None
    assert call.channel.playing.loop
    centre.ready("ann")  # the agent comes in while the caller waits: rung at once
    call.run(4)
    [connected] = call.of(ev.AGENT_CONNECTED)
    assert connected.data["agent"] == "ann" and connected.data["queue_wait"] > 0
    assert call.channel.playing is None  # the music stopped: the caller hears the agent
    assert centre.state("ann") == AgentState.ON_CALL
    call.run(120)  # the agent hangs up after two minutes: the flow goes on
    assert call.of(ev.AGENT_DONE)[0].data["talk"] == 120.0
    assert call.nodes[-1] == "thanks"
    call.finish_prompt()
    assert call.outcome == "self_service"
    assert centre.state("ann") == AgentState.WRAP_UP
    whisper = [a.detail for a in call.channel.log if a.what == "ring_agent"]
    assert whisper == ["ann"]


def test_position_and_wait_are_announced_with_the_estimator_numbers_never_too_often() -> None:
    centre = Centre(ANN, plans={"ann": AgentPlan(answer_after=1, handle=3000)})
    centre.ready("ann")
    first = centre.call()  # takes ann for a long call
    first.run(2)
    assert first.of(ev.AGENT_CONNECTED)
    second = centre.call(every=5, gap=20)
    second.finish_prompt()
    # next in line, one agent able, no handle time measured yet: 180 s, said as 3 minutes
    [said] = second.of(ev.QUEUE_ANNOUNCE)
    assert said.data == {"position": 1, "minutes": 3, "over": False, "flow": "q"}
    assert second.channel.playing is not None
    assert second.channel.playing.text == \
        "You are next in line. Your expected wait is about three minutes."
    centre.clock.advance(6)
    centre.call(caller="+861000")  # a corporate caller overtakes: second is now number two
    centre.clock.advance(60)
    announced = second.of(ev.QUEUE_ANNOUNCE)
    assert [e.data["position"] for e in announced] == [1, 2]
    assert announced[1].t - announced[0].t >= 20  # the minimum interval held
    assert announced[1].data["minutes"] == 6  # ceil(2 / 1) rounds of 180 s
    texts = [p.text for p in second.channel.played if p.id == "queue_announcement"]
    assert texts[1] == "You are number two in line. Your expected wait is about six minutes."
    # between announcements the music plays again
    assert second.channel.played[-1].id == "hold_music"


def test_announcements_in_mandarin() -> None:
    centre = Centre(ANN, plans={"ann": AgentPlan(answer_after=1, handle=3000)})
    centre.ready("ann")
    centre.call().run(2)
    caller = centre.call(lang="zh")
    caller.finish_prompt()
    texts = [p.text for p in caller.channel.played if p.id == "queue_announcement"]
    assert texts == ["您是下一位。 预计等待约三分钟。"]


def test_a_caller_needing_accounts_never_rings_a_general_agent_and_waits_for_max_wait() -> None:
    centre = Centre(GINA, ANN, plans={"gina": AgentPlan(), "ann": AgentPlan()}, max_wait=90)
    centre.ready("gina")
    centre.authority.login("ann")  # logged in (the caller may wait), phone not registered
    call = centre.call()
    call.run(91)
    assert not call.of(ev.AGENT_RING)
    assert call.of(ev.QUEUE_EXIT)[0].data["reason"] == "max_wait"
    assert call.nodes[-1] == "voicemail"


def test_no_agent_logged_in_takes_the_no_agents_exit_at_once() -> None:
    call = Centre(ANN).call()
    assert call.of(ev.QUEUE_EXIT)[0].data["reason"] == "no_agents"
    assert call.nodes == ["agent", "closed"]


def test_a_missed_agent_is_skipped_and_the_caller_keeps_their_place() -> None:
    centre = Centre(ANN, AgentSpec("bob", skills={"accounts": 5}, tier="full"),
                    plans={"ann": AgentPlan(answer_after=30), "bob": AgentPlan(answer_after=2)})
    centre.ready("ann")
    call = centre.call()
    call.run(15)  # ann lets it ring out
    assert [e.data for e in call.of(ev.AGENT_RESULT)] == [
        {"agent": "ann", "outcome": "no_answer", "flow": "q"}]
    centre.ready("bob")
    call.run(10)
    assert call.of(ev.AGENT_CONNECTED)[0].data["agent"] == "bob"


def test_a_key_leaves_the_queue_for_its_node_and_frees_the_ringing_agent() -> None:
    centre = Centre(ANN, plans={"ann": AgentPlan(answer_after=10)})
    centre.ready("ann")
    call = centre.call()
    call.run(2)
    assert centre.state("ann") == AgentState.RINGING
    call.press("9")
    assert call.of(ev.QUEUE_EXIT)[0].data["reason"] == "key"
    assert call.nodes[-1] == "voicemail"
    assert centre.state("ann") == AgentState.AVAILABLE
    assert [a.what for a in call.channel.log].count("stop_agent") == 1
    call.press("5")  # other keys while waiting are not exits (nothing happens)


def test_hanging_up_while_the_agent_rings_is_abandoned_in_queue_with_the_wait() -> None:
    centre = Centre(ANN, plans={"ann": AgentPlan(answer_after=10)})
    centre.ready("ann")
    call = centre.call()
    call.run(7).hangup()
    assert call.outcome == "abandoned_in_queue"
    hangup = call.of(ev.HANGUP)[0].data
    assert hangup["by"] == "caller" and hangup["queue_wait"] == 7.0
    assert centre.state("ann") == AgentState.AVAILABLE and not centre.authority.waiting
    call.run(30)  # the simulated agent's answer never comes: its leg was stopped
    assert not call.of(ev.AGENT_CONNECTED)


def test_hanging_up_on_the_agent_ends_the_agent_leg_and_counts_as_answered() -> None:
    centre = Centre(ANN, plans={"ann": AgentPlan(answer_after=1, handle=600)})
    centre.ready("ann")
    call = centre.call()
    call.run(30).hangup()
    assert call.outcome == "agent"
    assert call.of(ev.AGENT_DONE)[0].data["talk"] == 29.0
    assert centre.state("ann") == AgentState.WRAP_UP
    centre.clock.advance(5)
    assert centre.state("ann") == AgentState.AVAILABLE


def test_a_caller_who_hangs_up_during_the_callback_words_keeps_the_callback() -> None:
    centre = Centre(ANN, plans={"ann": AgentPlan(answer_after=30)})
    centre.authority.login("ann")  # logged in, not registered: nobody rings
    centre.queues.callbacks = lambda offer, ticket: None  # callbacks are offered here
    call = Centre.call(centre)
    call.finish_prompt()
    call.channel.caller_dtmf("2")  # not an exit: nothing happens
    assert call.session.finished is False
    call.press("1")
    assert call.of(ev.CALLBACK)
    call.hangup()  # before the "we will call you back" words end
    assert call.outcome == "callback_requested"
    assert centre.authority.waiting[call.session.call_id].ticket.callback == "+8613800000001"
