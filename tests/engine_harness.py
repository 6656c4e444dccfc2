"""A small harness for engine tests: one flow text, one simulated call, a virtual clock."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.core import events as ev
from ivr.core.clock import VirtualClock
from ivr.core.events import Event
from ivr.engine.actions import InlineActionRunner
from ivr.engine.channel import CallInfo, SpeechResult
from ivr.engine.counters import Counters
from ivr.engine.queueing import Queues
from ivr.engine.runtime import Runtime
from ivr.engine.session import Session
from ivr.flow.loader import load_text
from ivr.flow.model import FlowSet
from ivr.sim.channel import AgentPlan, SimChannel


class Call:
    """A flow (YAML text) answered by a Session on a SimChannel; the test plays the caller."""

    def __init__(
        self,
        flow_yaml: str,
        *extra_flows: str,
        caller: str = "+8613800000001",
        actions_path: Path | None = None,
        transfer_fails: bool = False,
        wall: float | None = None,
        config_vars: dict[str, Any] | None = None,
        clock: VirtualClock | None = None,
        queues: Queues | None = None,
        agents: Callable[[str], AgentPlan | None] | None = None,
        call_id: str = "call-1",
        counters: Counters | None = None,
    ) -> None:
        flows = [load_text(textwrap.dedent(t), f"flow{i}.yaml") for i, t in
                 enumerate((flow_yaml, *extra_flows))]
        self.flowset = FlowSet({f.id: f for f in flows}, version="test")
        self.clock = clock or VirtualClock()
        if wall is not None:
            self.clock.set_wall(wall)
        self.channel = SimChannel(
            self.clock, CallInfo(call_id, caller, "95588"), transfer_fails=transfer_fails,
            agents=agents,
        )
        self.events: list[Event] = []
        runtime = Runtime(
            actions=InlineActionRunner(actions_path),
            config_vars=config_vars or {},
            transfer_allow=("sip:*@agents.example",),
            actions_path=actions_path,
            queues=queues,
            counters=counters,
        )
        self.session = Session(
            self.flowset, flows[0].id, self.channel, self.clock, runtime, [self.events.append]
        )

    # --- driving the call -------------------------------------------------------------------

    def start(self) -> Call:
        self.session.start()
        return self

    def run(self, seconds: float) -> Call:
        self.clock.advance(seconds)
        return self

    def finish_prompt(self) -> Call:
        """Let the prompts playing or queued now play to their end (not the ones the engine
        plays in response)."""
        ids = set(self.channel.playback_ids)
        while ids & set(self.channel.playback_ids):
            self.clock.step()
        return self

    def press(self, digits: str, gap: float = 0.1) -> Call:
        for digit in digits:
            self.channel.caller_dtmf(digit)
            self.clock.advance(gap)
        return self

    def say(self, text: str, confidence: float = 1.0) -> Call:
        self.channel.caller_speech_start()
        self.clock.advance(0.5)
        self.channel.caller_speech(SpeechResult(text, confidence))
        return self

    def hangup(self) -> Call:
        self.channel.caller_hangup()
        return self

    # --- what happened ----------------------------------------------------------------------

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    @property
    def prompts(self) -> list[str]:
        return [e.data["prompt"] for e in self.of(ev.PROMPT)]

    @property
    def nodes(self) -> list[str]:
        return [e.node for e in self.of(ev.NODE_ENTER) if e.node]

    @property
    def branches(self) -> list[tuple[str | None, str]]:
        return [(e.node, e.data["branch"]) for e in self.of(ev.MATCH)]

    @property
    def outcome(self) -> str | None:
        return self.session.outcome
