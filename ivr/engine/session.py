"""One Session per call: a thin coordinator between the channel, the flow and the running step.

The session owns the call's variables, the sub-flow stack, the type-ahead digit buffer, the prompt
playback bookkeeping and event emission. What each node does lives in :mod:`ivr.engine.steps`;
every step can be cancelled at any point, so hang-up, barge-in and global commands all take the
same path: cancel the running step, then go on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.core import events as ev
from ivr.core.clock import Clock
from ivr.core.events import Event, EventSink
from ivr.engine.channel import Channel, RecordResult, RenderedPrompt, SpeechResult
from ivr.engine.counters import Counters, MemoryCounters
from ivr.engine.runtime import Runtime
from ivr.engine.scope import Scope
from ivr.engine.steps import Step, make_step
from ivr.flow.model import BUILTIN_COMMANDS, Flow, FlowSet, Node, Prompt
from ivr.flow.render import render_prompt

log = logging.getLogger("ivr.engine")

# A flow that jumps this many times without waiting for the caller is looping: end the call.
MAX_JUMPS_WITHOUT_INPUT = 500
# Keys kept while no node takes them (a long prompt, an action): more are dropped, so a caller
# holding keys down through a long message cannot grow the buffer without bound.
MAX_TYPEAHEAD = 64


@dataclass
class _Frame:
    """A sub-flow call: where to go in the caller flow when the sub-flow returns."""

    flow: Flow
    node: Node
    return_to: str
    history_len: int  # input nodes visited before the sub-flow: "back" never crosses this


class Session:
    """Runs one call through a flow version, driven by channel events and clock timers."""

    def __init__(
        self,
        flows: FlowSet,
        flow_id: str,
        channel: Channel,
        clock: Clock,
        runtime: Runtime,
        sinks: Sequence[EventSink] = (),
        initial_vars: Mapping[str, Any] | None = None,
    ) -> None:
        self.flows = flows
        self.flow = flows.get(flow_id)
        self.channel = channel
        self.clock = clock
        self.runtime = runtime
        self.call_id = channel.info.call_id
        self._sinks = list(sinks)
        self._seq = 0
        self._started_at = 0.0
        self._stack: list[_Frame] = []
        self._step: Step | None = None
        self._jumps = 0
        self._pending: str | None = None
        self._dispatching = False
        self._playing: set[int] = set()
        self.typeahead: list[str] = []
        # A terminator the caller may still press after an entry that filled up: (key, until).
        self._absorb: tuple[str, float] | None = None
        self.history: list[tuple[Flow, str]] = []  # input nodes visited, for "back"
        self.node: Node | None = None
        self.finished = False
        self.outcome: str | None = None
        # Clock time the caller joined an agent queue, while they wait (see on_hangup).
        self.queued_at: float | None = None
        # The record node whose recording is under way: one that ends with the call (the caller
        # hangs up, a drain cuts the call) is still written, and linked here when it is.
        self.recording: Node | None = None
        self.scope = Scope(self._initial_vars(initial_vars))
        # Counts across calls: the runtime's store, else this call's own (tools, tests).
        self.counters: Counters = runtime.counters or MemoryCounters()

    # --- public state ---------------------------------------------------------------------

    @property
    def node_id(self) -> str | None:
        return self.node.id if self.node else None

    @property
    def elapsed(self) -> float:
        """Seconds since the call started: the ``t`` of an event emitted now."""
        return self.clock.now() - self._started_at

    @property
    def flow_id(self) -> str:
        return self.flow.id

    @property
    def vars(self) -> dict[str, Any]:
        return self.scope.values

    def is_secret(self, name: str) -> bool:
        """True when variable ``name`` (or the record it is a field of) holds a secret."""
        return self.scope.is_secret(name)

    @property
    def jump_pending(self) -> bool:
        """A jump is queued (the running step has left; the trampoline enters the next node)."""
        return self._pending is not None

    @property
    def language(self) -> str:
        lang = self.scope.values.get("lang")
        return str(lang) if lang else self.flow.default_language

    def _initial_vars(self, extra: Mapping[str, Any] | None) -> dict[str, Any]:
        info = self.channel.info
        values: dict[str, Any] = dict(self.flow.vars)
        values["call"] = {
            "call_id": info.call_id,
            "caller": info.caller,
            "called": info.called,
            "transport": info.transport,
        }
        values["config"] = dict(self.runtime.config_vars)
        values["lang"] = self.flow.default_language
        values.update(extra or {})
        return values

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Attach to the channel, record the start and enter the flow's start node."""
        self._started_at = self.clock.now()
        self.channel.attach(self)
        info = self.channel.info
        # The peer's Call-ID is data, never a key: a live caller finds its record by it.
        peer_id = {"sip_call_id": info.sip_call_id} if info.sip_call_id else {}
        self.emit(
            ev.CALL_START,
            caller=info.caller,
            called=info.called,
            flow=self.flow.id,
            flow_version=self.flow.digest,
            transport=info.transport,
            wall=self.clock.wall(),
            **({"qa": True} if info.qa else {}),
            **peer_id,
        )
        self.goto(self.flow.start)

    def finish(self, outcome: str, *, hangup: bool = False) -> None:
        """End the engine's part of the call with ``outcome``; idempotent."""
        if self.finished:
            return
        self._cancel_step()
        self.finished = True
        self.outcome = outcome
        self.channel.stop_listening()
        if hangup:
            self.emit(ev.HANGUP, by="flow")
            self.channel.hangup()
        self.emit(
            ev.CALL_END,
            outcome=outcome,
            duration=round(self.clock.now() - self._started_at, 3),
            last_node=self.node_id,
            flow=self.flow.id,
            language=self.language,
        )

    # --- moving through the flow ----------------------------------------------------------

    def leave(self, label: str, target: str) -> None:
        """The running node finished through branch ``label``: record it and go to ``target``."""
        self.emit(ev.MATCH, branch=label, target=target)
        self.goto(target)

    def goto(self, target: str) -> None:
        """Enter ``target`` (a node id of the current flow or a built-in command).

        Jumps made while a node starts are queued and run by the outermost call (a trampoline),
        so a long chain of nodes that need no input does not grow the Python stack.
        """
        if self.finished:
            return
        self._pending = target
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending is not None and not self.finished:
                target, self._pending = self._pending, None
                self._goto_now(target)
        finally:
            self._dispatching = False

    def _goto_now(self, target: str) -> None:
        self._cancel_step()
        if target in BUILTIN_COMMANDS and target not in self.flow.nodes:
            self.run_command(target)
            return
        self._jumps += 1
        if self._jumps > MAX_JUMPS_WITHOUT_INPUT:
            self.fail(f"more than {MAX_JUMPS_WITHOUT_INPUT} jumps without caller input")
            return
        node = self.flow.nodes.get(target)
        if node is None:
            self.fail(f"unknown node {target!r} in flow {self.flow.id!r}")
            return
        self._enter(node)

    def _enter(self, node: Node) -> None:
        self.node = node
        self.emit(ev.NODE_ENTER, kind=node.kind)
        if node.TAKES_INPUT:
            self._jumps = 0
            if not self.history or self.history[-1] != (self.flow, node.id):
                self.history.append((self.flow, node.id))
        step = make_step(self, node)
        self._step = step
        step.start()

    def run_command(self, command: str) -> None:
        """Run a built-in command (repeat, back, restart, hangup)."""
        if command == "repeat" and self._step is not None:
            self._step.repeat()
        elif command == "back":
            self._go_back()
        elif command == "restart":
            if self._stack:  # the sub-flows' input nodes are no longer places to go back to
                del self.history[self._stack[0].history_len:]
            self._stack.clear()
            self.flow = self.flows.get(self._root_flow_id())
            self.goto(self.flow.start)
        elif command == "hangup":
            self.finish("self_service", hangup=True)
        elif command == "repeat" and self.node is not None:
            self.goto(self.node.id)

    def _root_flow_id(self) -> str:
        return self._stack[0].flow.id if self._stack else self.flow.id

    def _go_back(self) -> None:
        current = (self.flow, self.node_id)
        floor = self._stack[-1].history_len if self._stack else 0  # this (sub-)flow's first
        while len(self.history) > floor and self.history[-1] == current:
            self.history.pop()
        if len(self.history) <= floor:
            self.goto(self.node_id or self.flow.start)
            return
        flow, node_id = self.history.pop()
        self.flow = flow
        self.goto(node_id)

    def call_subflow(self, flow_id: str, return_to: str) -> None:
        """Run sub-flow ``flow_id`` from its start; its ``return`` node comes back to
        ``return_to`` in the current flow."""
        assert self.node is not None
        self._stack.append(_Frame(self.flow, self.node, return_to, len(self.history)))
        self.flow = self.flows.get(flow_id)
        self.goto(self.flow.start)

    def return_from_subflow(self) -> None:
        if not self._stack:
            self.fail(f"return in flow {self.flow.id!r} with no caller flow")
            return
        frame = self._stack.pop()
        # A finished sub-flow cannot be gone back into: its input nodes leave the history.
        del self.history[frame.history_len:]
        self.flow, self.node = frame.flow, frame.node
        self.leave("next", frame.return_to)

    def fail(self, message: str) -> None:
        """An engine or flow error: log it, record it, end the call."""
        log.error("call %s: %s", self.call_id, message)
        self.emit(ev.ERROR, message=message)
        self.finish("failed", hangup=True)

    def _cancel_step(self) -> None:
        step, self._step = self._step, None
        if step is not None:
            step.cancel()

    # --- prompts --------------------------------------------------------------------------

    def play(self, prompt: Prompt, *, barge_in: bool) -> None:
        """Play ``prompt`` (after whatever is playing) and record it."""
        rendered = render_prompt(prompt, self.scope.masked(), self.language, barge_in)
        self.emit(
            ev.PROMPT,
            prompt=prompt.id,
            text=" ".join(r.text for r in rendered),
            language=self.language,
        )
        for part in rendered:
            self._playing.add(self.channel.play(part))

    def play_rendered(self, part: RenderedPrompt) -> None:
        """Play an engine prompt that is not part of the flow (a beep, a confirmation)."""
        self.emit(ev.PROMPT, prompt=part.id, text=part.text, language=part.language)
        self._playing.add(self.channel.play(part))

    @property
    def playing(self) -> bool:
        return bool(self._playing)

    def stop_prompts(self) -> None:
        if self._playing:
            self._playing.clear()
            self.channel.stop_playback()

    # --- events from the channel (ChannelListener) ----------------------------------------

    def on_playback_done(self, playback_id: int) -> None:
        if playback_id not in self._playing:
            return
        self._playing.discard(playback_id)
        if not self._playing and self._step is not None:
            self._step.on_prompts_done()

    def absorb_terminator(self, key: str, within: float) -> None:
        """An entry just filled up: a ``key`` (its terminator) typed ahead or pressed next,
        within ``within`` seconds, belongs to it and is dropped (else ``#`` after a full PIN
        would be the next menu's "back")."""
        if self.typeahead:
            if self.typeahead[0] == key:
                self.typeahead.pop(0)
            return
        self._absorb = (key, self.clock.now() + within)

    def on_dtmf(self, digit: str) -> None:
        if self.finished:
            return
        absorb, self._absorb = self._absorb, None
        if absorb is not None and digit == absorb[0] and self.clock.now() <= absorb[1]:
            return
        if (self._step is None or not self._step.on_dtmf(digit)) and (
            len(self.typeahead) < MAX_TYPEAHEAD
        ):
            self.typeahead.append(digit)

    def on_speech_start(self) -> None:
        if not self.finished and self._step is not None:
            self._step.on_speech_start()

    def on_speech(self, result: SpeechResult) -> None:
        if not self.finished and self._step is not None:
            self._step.on_speech(result)

    def on_recording_done(self, result: RecordResult) -> None:
        if self.finished:
            self._late_recording(result)
        elif self._step is not None:
            self._step.on_recording_done(result)

    def _late_recording(self, result: RecordResult) -> None:
        """A recording that the end of the call stopped: written after all, so it belongs in
        the call's record (the caller who hangs up after their message is the usual case)."""
        node, self.recording = self.recording, None
        if node is None:
            return
        into = getattr(node, "into", None)
        if into:
            self.scope.set(into, result.path or "")
        self.emit(ev.RECORDING, path=result.path, duration=round(result.duration, 2),
                  ended="with_call")  # fmt: skip

    def on_transfer_result(self, ok: bool, reason: str) -> None:
        if not self.finished and self._step is not None:
            self._step.on_transfer_result(ok, reason)

    def on_agent_leg(self, offer_id: int, state: str) -> None:
        if not self.finished and self._step is not None:
            self._step.on_agent_leg(offer_id, state)

    def on_hangup(self) -> None:
        if self.finished:
            return
        outcome = self._step.hangup_outcome() if self._step is not None else "abandoned"
        queued_at, self.queued_at = self.queued_at, None
        if queued_at is not None:  # the caller gave up waiting for an agent
            self.emit(ev.HANGUP, by="caller", queue_wait=round(self.clock.now() - queued_at, 3))
        else:
            self.emit(ev.HANGUP, by="caller")
        self.finish(outcome)

    # --- events to the sinks --------------------------------------------------------------

    def emit(self, kind: str, /, **data: Any) -> None:
        """Send one step event to every sink; a failing sink is logged, never fatal."""
        self._seq += 1
        node = self.node.id if self.node is not None and kind != ev.CALL_START else None
        if node is not None:
            data.setdefault("flow", self.flow.id)
        event = Event(
            call_id=self.call_id,
            seq=self._seq,
            t=round(self.clock.now() - self._started_at, 4),
            kind=kind,
            node=node,
            data=data,
        )
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:  # a broken record sink must not break the call
                log.exception("call %s: event sink failed", self.call_id)

    def add_sink(self, sink: EventSink) -> None:
        self._sinks.append(sink)
