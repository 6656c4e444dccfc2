"""``ivr simulate FLOW``: walk a flow at the terminal as a caller, on a virtual clock.

Prompts are printed as ``[prompt id] text``. The clock runs until the engine waits for the
caller (every prompt played to its end); then a line is read: digits (``1``, ``62220212#``),
``say TEXT``, ``wait N`` (N virtual seconds of silence: no-input timers fire), ``hangup``,
``vars``, ``quit``. End of input hangs up, so a pipe can drive it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr.cli.status import ExitStatus
from ivr.config import Config
from ivr.core import events as ev
from ivr.core.clock import VirtualClock
from ivr.core.events import Event
from ivr.engine.channel import CallInfo, SpeechResult
from ivr.flow.errors import FlowError
from ivr.flow.model import EnqueueNode, FlowSet
from ivr.sim.channel import SimChannel, speech_seconds
from ivr.sim.driver import DIGIT_GAP
from ivr.sim.runner import agent_plans, make_runtime, simulated_queues
from ivr.sim.steps import SimAgent

NAME = "simulate"
HELP = "walk a flow at the terminal as a caller (virtual clock)"

OK, FAILED, USAGE = ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE
_DIGITS = re.compile(r"[0-9*#A-D]+")
COMMANDS = "digits (e.g. 1 or 62220212#), say TEXT, wait N, hangup, vars, quit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", metavar="FLOW", help="flow id")
    parser.add_argument("--lang", help="the call's language (default: the flow's first)")
    parser.add_argument(
        "--caller", default="+8613800000000", metavar="NUMBER", help="calling number"
    )
    parser.add_argument("--called", default="", metavar="NUMBER", help="called number")
    parser.add_argument("--flows", metavar="DIR", help="flows folder (default: flows_dir)")
    parser.add_argument("--at", metavar="ISO", help="wall-clock time of the call, with offset "
                        "(default: now)")
    parser.add_argument("--transfer-fails", action="store_true", help="make transfers fail")
    parser.add_argument("--agents", type=int, default=0, metavar="N",
                        help="N simulated agents (any skill, full tier) answer the queues")
    parser.add_argument("--answer-after", type=float, default=20.0, metavar="S",
                        help="seconds a simulated agent rings before answering (default 20)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every event")


class _Printer:
    """The session's event sink: what a caller (and a curious tester) should see."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def __call__(self, event: Event) -> None:
        data = event.data
        if self.verbose and event.kind != ev.PROMPT:
            shown = {k: v for k, v in data.items() if k != "flow"}
            print(f"  {event.t:7.2f} {event.kind} {event.node or ''} {shown}")
        if event.kind == ev.PROMPT:
            print(f"[{data.get('prompt')}] {data.get('text', '')}")
        elif self.verbose:
            return
        elif event.kind == ev.TRANSFER:
            state = "ok" if data.get("ok") else f"failed: {data.get('reason')}"
            print(f"(transfer to {data.get('target')}: {state})")
        elif event.kind == ev.QUEUE:
            print(f"(queued in {data.get('queue')}, priority {data.get('priority')})")
        elif event.kind == ev.AGENT_CONNECTED:
            print(f"(agent {data.get('agent')} answered after {data.get('queue_wait')} s "
                  "in the queue)")  # fmt: skip
        elif event.kind == ev.QUEUE_EXIT:
            print(f"(left the queue: {data.get('reason')} after {data.get('queue_wait')} s)")
        elif event.kind == ev.ERROR:
            print(f"(error: {data.get('message')})")
        elif event.kind == ev.CALL_END:
            print(f"(call ended: {data.get('outcome')} after {data.get('duration')} s)")


class _Caller:
    """The person at the terminal, acting on the call through the channel."""

    def __init__(self, clock: VirtualClock, channel: SimChannel, session: Any) -> None:
        self.clock = clock
        self.channel = channel
        self.session = session
        self.pending = 0  # digits or speech not delivered yet

    def settle(self) -> None:
        """Run the clock until the engine waits for the caller (or the call is over)."""
        while not self.session.finished:
            due = self.clock.next_due()
            if due is None:
                return
            waiting = self.channel.busy or self.channel.recording or self.pending
            if due > self.clock.now() and not waiting:
                return
            self.clock.step()

    def press(self, digits: str) -> None:
        for i, digit in enumerate(digits):
            self.pending += 1
            self.clock.call_later(i * DIGIT_GAP, self._digit_sender(digit))

    def _digit_sender(self, digit: str) -> Callable[[], None]:
        return lambda: self._deliver_digit(digit)

    def _deliver_digit(self, digit: str) -> None:
        self.pending -= 1
        self.channel.caller_dtmf(digit)

    def say(self, text: str) -> None:
        self.pending += 1
        self.channel.caller_speech_start()
        delay = speech_seconds(text) + self.channel.end_silence
        self.clock.call_later(delay, lambda: self._deliver_speech(text))

    def _deliver_speech(self, text: str) -> None:
        self.pending -= 1
        self.channel.caller_speech(SpeechResult(text, 1.0))

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the person is done."""
        word, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if not word:
            return True
        if _DIGITS.fullmatch(word) and not rest:
            self.press(word)
        elif word == "say" and rest:
            self.say(rest)
        elif word == "wait":
            return self._wait(rest)
        elif word == "hangup":
            self.channel.caller_hangup()
        elif word == "vars":
            # Secrets (PIN, account) masked: the terminal may be shared, recorded or scrolled back.
            print(json.dumps(self.session.scope.masked(), indent=2, sort_keys=True, default=str))
        elif word in ("quit", "exit"):
            self.channel.caller_hangup()
            return False
        elif word in ("help", "?"):
            print(f"commands: {COMMANDS}")
        else:
            print(f"unknown command {line.strip()!r}; commands: {COMMANDS}")
        return True

    def _wait(self, rest: str) -> bool:
        try:
            seconds = float(rest or "1")
        except ValueError:
            print(f"wait: {rest!r} is not a number of seconds")
            return True
        self.clock.advance(max(0.0, seconds))
        return True


def _agents(args: argparse.Namespace, flows: FlowSet) -> list[SimAgent]:
    """``--agents N``: agents who may take any call the flows queue."""
    skills = {skill: 5 for flow in flows.flows.values() for node in flow.nodes.values()
              if isinstance(node, EnqueueNode) for skill in node.skills}  # fmt: skip
    return [SimAgent(f"agent{n}", skills, "full", answer_after=args.answer_after, handle=120)
            for n in range(1, max(0, args.agents) + 1)]  # fmt: skip


def _start_time(at: str | None) -> datetime | None:
    """The call's wall-clock start: ``--at`` (None when it has no UTC offset or is no date),
    else now, in this machine's time zone (a fixed default date could be a public holiday)."""
    if not at:
        return datetime.now().astimezone()
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def run(args: argparse.Namespace, config: Config) -> int:
    from ivr.engine.session import Session
    from ivr.flow.loader import load_flowset

    flows_dir = Path(args.flows) if args.flows else config.flows_dir
    try:
        flows, _warnings = load_flowset(flows_dir, config)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return FAILED
    if args.flow not in flows.flows:
        known = ", ".join(sorted(flows.flows)) or "none"
        print(f"ivr simulate: no flow {args.flow!r} (flows: {known})", file=sys.stderr)
        return USAGE
    when = _start_time(args.at)
    if when is None:
        print(
            f"ivr simulate: --at {args.at!r}: give an ISO date and time with its UTC "
            "offset, e.g. 2027-01-04T10:00:00+08:00",
            file=sys.stderr,
        )
        return USAGE
    clock = VirtualClock()
    clock.set_wall(when.timestamp())  # the calendar (hours, holidays) sees this time
    info = CallInfo("sim-interactive", args.caller, args.called, "sim")
    agents = _agents(args, flows)
    channel = SimChannel(clock, info, transfer_fails=bool(args.transfer_fails),
                         agents=agent_plans(agents))  # fmt: skip
    runtime = replace(make_runtime(config), queues=simulated_queues(agents, flows, clock))
    session = Session(
        flows,
        args.flow,
        channel,
        clock,
        runtime,
        sinks=[_Printer(args.verbose)],
        initial_vars={"lang": args.lang} if args.lang else None,
    )
    caller = _Caller(clock, channel, session)
    print(f"calling {args.flow} at {when.isoformat(timespec='minutes')} ({COMMANDS})")
    session.start()
    caller.settle()
    interactive = sys.stdin.isatty()
    while not session.finished:
        if interactive:
            print("> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:  # end of input: the caller hangs up
            channel.caller_hangup()
            break
        if not caller.handle(line):
            break
        caller.settle()
    return OK
