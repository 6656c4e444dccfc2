"""The simulated caller of one call script: event-driven, one step at a time.

The driver is a sink of its session's events and a watcher of its :class:`SimChannel`. It never
acts inside the engine's own callbacks: every event only *kicks* it, and it runs its steps from
a zero-delay timer, after the engine has finished reacting. Step semantics (docs/TESTING.md):

- ``expect`` consumes the next PROMPT event not consumed yet (every prompt counts, in order; hold
  music and queue announcements only when the step names them);
- ``press``/``say`` wait until the channel is quiet (no prompt playing or queued), unless
  ``barge_in``; digits go 0.1 s apart; speech starts at once and its result comes after the time
  it takes to say it plus the recognizer's end-of-speech silence;
- ``silence``/``wait`` let N virtual seconds pass;
- ``expect_node`` passes if the session is in the node now, or entered it since the previous
  step acted (its prompt, its input) without a prompt in between, or enters it before the next
  prompt;
- ``expect_transfer`` passes at the next transfer the flow makes to the target (a failed one only
  when the script's ``transfer_fails`` says it should fail); ``expect_queue`` at the queue request;
  ``expect_agent`` when the caller is connected to that (simulated) agent;
  ``expect_hangup`` when the call ends by the flow hanging up;
- after the last step the driver waits for the end of the call and checks ``outcome``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, ClassVar, Protocol

from ivr.core import events as ev
from ivr.core.clock import Clock, TimerHandle
from ivr.core.events import Event
from ivr.engine.channel import SpeechResult
from ivr.sim import script as sc
from ivr.sim.channel import SimChannel, speech_seconds
from ivr.sim.verdict import Divergence, text_ratio, vars_problem

DIGIT_GAP = 0.1
WAITING_PROMPTS = frozenset({"hold_music", "queue_announcement"})  # see _expect


class SessionLike(Protocol):
    """What the driver reads of a session (ivr.engine.session.Session)."""

    finished: bool
    outcome: str | None

    @property
    def node_id(self) -> str | None: ...

    @property
    def vars(self) -> dict[str, Any]: ...

    def is_secret(self, name: str) -> bool: ...

    def start(self) -> None: ...


@dataclass(frozen=True)
class _At:
    """The event a divergence is about: its time and node, and what came instead."""

    event: Event
    actual: str | None = None
    text: str | None = None


@dataclass
class _Seen:
    """A PROMPT event, with the variables as they were when it started (if the script asks)."""

    event: Event
    index: int  # position in the driver's event list
    vars: dict[str, Any] | None


class CallerDriver:
    """Plays one script's caller against one session through its channel.

    Args:
        script: the parsed script.
        session: the running session (read for its node, variables and outcome).
        channel: the call's SimChannel (the driver presses and speaks into it).
        clock: the call's clock (timers of the driver run on it).
        display_path: the script file as failure messages show it.
        on_done: called once when the script has passed or failed.
    """

    def __init__(
        self,
        script: sc.Script,
        session: SessionLike,
        channel: SimChannel,
        clock: Clock,
        display_path: str | None = None,
        on_done: Callable[[CallerDriver], None] | None = None,
    ) -> None:
        self.script = script
        self.session = session
        self.channel = channel
        self.clock = clock
        self.path = display_path or script.path
        self.on_done = on_done
        self.events: list[Event] = []
        self.prompts: list[_Seen] = []
        self.consumed = 0  # prompts consumed by expect steps
        self.index = 0  # the current step (0-based)
        self.done = False
        self.ended = False  # CALL_END seen
        self.divergence: Divergence | None = None
        self.started_at = clock.now()
        self.finished_at: float | None = None
        # The n-th expect step consumes the n-th prompt: copy the variables only at the
        # prompts whose expect step checks them.
        expects = [s for s in script.steps if isinstance(s, sc.Expect)]
        self._snapshot_at = {n for n, step in enumerate(expects) if step.vars}
        self._state: str | None = None  # the current step's progress
        self._mark = 0  # events after this index happened since the previous step acted
        self._transfers_seen = 0
        self._kick_pending = False
        self._timeout: TimerHandle | None = None
        channel.watch(self.kick)

    # --- wiring ---------------------------------------------------------------------------

    def begin(self) -> None:
        """Arm the script's timeout and take the first steps (call after session.start())."""
        self._timeout = self.clock.call_later(self.script.timeout, self._on_timeout)
        self.kick()

    def on_event(self, event: Event) -> None:
        """The session's event sink."""
        self.events.append(event)
        if event.kind == ev.PROMPT:
            snapshot = None
            if len(self.prompts) in self._snapshot_at:
                try:
                    snapshot = copy.deepcopy(self.session.vars)
                except Exception:  # an uncopyable value: fall back to a shallow copy
                    snapshot = dict(self.session.vars)
            self.prompts.append(_Seen(event, len(self.events) - 1, snapshot))
        elif event.kind == ev.CALL_END:
            self.ended = True
        self.kick()

    def kick(self) -> None:
        """Something changed: look at the steps again once the engine is done reacting."""
        if not self.done and not self._kick_pending:
            self._kick_pending = True
            self.clock.call_later(0, self._pump)

    @property
    def now(self) -> float:
        return round(self.clock.now() - self.started_at, 4)

    # --- the step loop --------------------------------------------------------------------

    def _pump(self) -> None:
        self._kick_pending = False
        steps = self.script.steps
        while not self.done:
            if self.index >= len(steps):
                self._after_last_step()
                return
            if not self._attempt(steps[self.index]):
                return
            self.index += 1
            self._state = None

    def _attempt(self, step: sc.Step) -> bool:
        """Try the current step: True when it passed, False while it waits (or failed)."""
        handler = self._HANDLERS[type(step)]
        return bool(handler(self, step))

    def _after_last_step(self) -> None:
        if not self.ended:
            return  # the caller stays silent until the call ends
        expected = self.script.outcome
        outcome = self.outcome
        if expected is not None and outcome != expected:
            self._fail(
                None,
                f"expected outcome {expected!r}, got {outcome!r}",
                expected=expected,
                actual=outcome,
            )
            return
        self._complete()

    @property
    def outcome(self) -> str | None:
        for event in reversed(self.events):
            if event.kind == ev.CALL_END:
                return event.data.get("outcome")
        return self.session.outcome

    # --- steps ----------------------------------------------------------------------------

    def _expect(self, step: sc.Expect) -> bool:
        # What a waiting caller hears over and over (hold music, position and wait) is passed
        # over by an expect that names another prompt, and met by one that names it.
        while (self.consumed < len(self.prompts) and step.prompt not in WAITING_PROMPTS
               and self.prompts[self.consumed].event.data.get("prompt") in WAITING_PROMPTS):
            self.consumed += 1
        if self.consumed >= len(self.prompts):
            if self.ended:
                self._fail(
                    step,
                    f"expected {_wanted(step)}, got the end of the call (outcome {self.outcome!r})",
                    expected=_wanted(step),
                )
            return False
        seen = self.prompts[self.consumed]
        self.consumed += 1
        self._mark = seen.index + 1
        event = seen.event
        got, text = str(event.data.get("prompt")), str(event.data.get("text", ""))
        at = _At(event, got, text)
        if step.prompt is not None and got != step.prompt:
            self._fail(
                step, f"expected prompt {step.prompt!r}, got {got!r}", expected=step.prompt, at=at
            )
            return False
        if step.text is not None:
            ratio = text_ratio(step.text, text)
            if ratio < step.similarity:
                self._fail(
                    step,
                    f"expected text {step.text!r} (similarity {step.similarity:g}),"
                    f" got {got!r} (similarity {ratio:.2f})",
                    expected=step.text,
                    at=at,
                )
                return False
        values = seen.vars if seen.vars is not None else self.session.vars
        problem = vars_problem(step.vars, values, self.session.is_secret)
        if problem:
            self._fail(step, f"prompt {got!r}: {problem}", at=at)
            return False
        return True

    def _input_allowed(self, step: sc.Step, barge_in: bool) -> bool:
        """Fail if the call is over; True when input may go now (the channel is quiet)."""
        if self.ended or self.channel.ended:
            self._fail(step, f"the call had ended (outcome {self.outcome!r})")
            return False
        if barge_in:
            return True
        if self.channel.busy:
            self._state = None
            return False
        if self._state != "quiet":
            # Quiet now; look once more after everything due at this instant has run, in case
            # the engine is about to play the next prompt.
            self._state = "quiet"
            self.kick()
            return False
        return True

    def _send_input(self, step: sc.Press | sc.Say, send: Callable[[], None]) -> bool:
        """The progress every input step shares: wait until input may go, ``send`` it once
        (``send`` sets the state to "sent" and kicks when it has gone), then pass."""
        if self._state == "sent":
            return True
        if self._state == "sending" or not self._input_allowed(step, step.barge_in):
            return False
        self._state = "sending"
        self._mark = len(self.events)
        send()
        return False

    def _press(self, step: sc.Press) -> bool:
        return self._send_input(step, lambda: self._send_digit(step.digits, 0))

    def _send_digit(self, digits: str, i: int) -> None:
        self.channel.caller_dtmf(digits[i])
        if i + 1 < len(digits):
            self.clock.call_later(DIGIT_GAP, lambda: self._send_digit(digits, i + 1))
        else:
            self._state = "sent"
            self.kick()

    def _say(self, step: sc.Say) -> bool:
        return self._send_input(step, lambda: self._start_speech(step))

    def _start_speech(self, step: sc.Say) -> None:
        self.channel.caller_speech_start()
        delay = speech_seconds(step.text) + self.channel.end_silence
        self.clock.call_later(delay, lambda: self._speech_result(step))

    def _speech_result(self, step: sc.Say) -> None:
        self.channel.caller_speech(SpeechResult(step.text, step.confidence))
        self._state = "sent"
        self.kick()

    def _silence(self, step: sc.Silence) -> bool:
        if self._state == "over" or self.ended:
            return True
        if self._state is None:
            self._state = "waiting"
            self.clock.call_later(step.seconds, self._silence_over)
        return False

    def _silence_over(self) -> None:
        self._state = "over"
        self.kick()

    def _expect_node(self, step: sc.ExpectNode) -> bool:
        if self.session.node_id == step.node:
            return True
        for i in range(self._mark, len(self.events)):
            event = self.events[i]
            if event.kind == ev.NODE_ENTER and event.node == step.node:
                self._mark = i + 1
                return True
            if event.kind == ev.PROMPT:
                got = str(event.data.get("prompt"))
                self._fail(
                    step,
                    f"expected node {step.node!r}, got prompt {got!r} first",
                    expected=step.node,
                    at=_At(event, got, str(event.data.get("text", ""))),
                )
                return False
        if self.ended:
            self._fail(
                step,
                f"expected node {step.node!r}, the call ended (outcome {self.outcome!r})",
                expected=step.node,
            )
        return False

    def _assert(self, step: sc.Assert) -> bool:
        problem = vars_problem(step.vars, self.session.vars, self.session.is_secret)
        if problem:
            self._fail(step, problem)
            return False
        return True

    def _hangup(self, step: sc.Hangup) -> bool:
        if self.ended or self.channel.ended:
            self._fail(step, f"the call had ended (outcome {self.outcome!r})")
            return False
        self._mark = len(self.events)
        self.channel.caller_hangup()
        return True

    def _expect_transfer(self, step: sc.ExpectTransfer) -> bool:
        transfers = [e for e in self.events if e.kind == ev.TRANSFER]
        if self._transfers_seen >= len(transfers):
            if self.ended:
                self._fail(
                    step,
                    f"expected a transfer{_to(step.target)}, got the end of the "
                    f"call (outcome {self.outcome!r})",
                    expected=step.target,
                )
            return False
        event = transfers[self._transfers_seen]
        self._transfers_seen += 1
        target = str(event.data.get("target"))
        where = _At(event, target)
        if step.target is not None and target != step.target:
            self._fail(
                step,
                f"expected a transfer to {step.target!r}, got one to {target!r}",
                expected=step.target,
                at=where,
            )
            return False
        expected_failure = any(fnmatchcase(target, p) for p in self.script.transfer_fails)
        if not event.data.get("ok") and not expected_failure:
            self._fail(
                step,
                f"the transfer to {target!r} failed: {event.data.get('reason')}",
                expected=step.target,
                at=where,
            )
            return False
        return True

    def _expect_queue(self, step: sc.ExpectQueue) -> bool:
        event = next((e for e in self.events if e.kind == ev.QUEUE), None)
        if event is None:
            if self.ended:
                self._fail(
                    step,
                    f"expected the call to be queued, got the end of the call "
                    f"(outcome {self.outcome!r})",
                    expected=step.queue,
                )
            return False
        got = event.data
        wrong = []
        if step.queue is not None and got.get("queue") != step.queue:
            wrong.append(f"queue {step.queue!r}, got {got.get('queue')!r}")
        if step.priority is not None and got.get("priority") != step.priority:
            wrong.append(f"priority {step.priority}, got {got.get('priority')}")
        if step.skills is not None and sorted(got.get("skills") or ()) != sorted(step.skills):
            wrong.append(f"skills {list(step.skills)}, got {list(got.get('skills') or ())}")
        if wrong:
            self._fail(step, "expected " + "; ".join(wrong), at=_At(event))
            return False
        return True

    def _expect_agent(self, step: sc.ExpectAgent) -> bool:
        event = next((e for e in self.events if e.kind == ev.AGENT_CONNECTED), None)
        if event is None:
            if self.ended:
                self._fail(step, f"expected agent {step.agent!r}, got the end of the call "
                           f"(outcome {self.outcome!r})", expected=step.agent)  # fmt: skip
            return False
        got = event.data.get("agent")
        if got != step.agent:
            self._fail(step, f"expected agent {step.agent!r}, got agent {got!r}",
                       expected=step.agent, actual=got, at=_At(event))  # fmt: skip
            return False
        return True

    def _expect_hangup(self, step: sc.ExpectHangup) -> bool:
        if not self.ended:
            return False
        if any(e.kind == ev.HANGUP and e.data.get("by") == "flow" for e in self.events):
            return True
        self._fail(
            step,
            f"expected the flow to hang up, got outcome {self.outcome!r}"
            + (" (the caller hung up)" if self.channel.end == "caller_hangup" else ""),
            expected="hangup",
            actual=self.outcome,
        )
        return False

    _HANDLERS: ClassVar[dict[type, Callable[[CallerDriver, Any], bool]]] = {
        sc.Expect: _expect,
        sc.Press: _press,
        sc.Say: _say,
        sc.Silence: _silence,
        sc.ExpectNode: _expect_node,
        sc.Assert: _assert,
        sc.Hangup: _hangup,
        sc.ExpectTransfer: _expect_transfer,
        sc.ExpectQueue: _expect_queue,
        sc.ExpectAgent: _expect_agent,
        sc.ExpectHangup: _expect_hangup,
    }

    # --- the end --------------------------------------------------------------------------

    def _on_timeout(self) -> None:
        if self.done:
            return
        limit = f"{self.script.timeout:g} s"
        if self.index < len(self.script.steps):
            step = self.script.steps[self.index]
            self._fail(step, f"timeout: still waiting for this step after {limit} (virtual)")
        else:
            self._fail(
                None,
                f"timeout: the call did not end within {limit} (virtual)",
                what="timeout",
                line=self.script.timeout_line or self.script.line,
            )

    def fail_error(self, message: str) -> None:
        """The engine (or a callback of this call) raised: the script fails where it stands."""
        if self.done:
            return
        step = self.script.steps[self.index] if self.index < len(self.script.steps) else None
        self._fail(step, message, what="engine error")

    def _fail(
        self,
        step: sc.Step | None,
        message: str,
        *,
        what: str | None = None,
        line: int | None = None,
        at: _At | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        if self.done:
            return
        number: int | None = None
        if step is not None:
            number, what, line = step.index, step.describe(), line or step.line
        elif self.script.outcome is not None and what is None:
            what, line = f"outcome {self.script.outcome}", self.script.outcome_line
        self.divergence = Divergence(
            file=self.path,
            line=line or self.script.line,
            step=number,
            what=what or "script",
            message=message,
            t=at.event.t if at else self.now,
            node=at.event.node if at else self.session.node_id,
            expected=expected,
            actual=at.actual if at and at.actual is not None else actual,
            actual_text=at.text if at else None,
        )
        if not self.channel.ended:
            self.channel.caller_hangup()  # stop the session: nothing more is checked
        self._complete()

    def _complete(self) -> None:
        if self.done:
            return
        self.done = True
        self.finished_at = self.clock.now()
        if self._timeout is not None:
            self._timeout.cancel()
        if self.on_done is not None:
            self.on_done(self)

    @property
    def duration(self) -> float:
        """Virtual seconds from the call's start to the script's end."""
        end = self.finished_at if self.finished_at is not None else self.clock.now()
        return round(end - self.started_at, 3)


def _wanted(step: sc.Expect) -> str:
    if step.prompt is not None:
        return f"prompt {step.prompt!r}"
    if step.text is not None:
        return f"text {step.text!r}"
    return "a prompt"


def _to(target: str | None) -> str:
    return f" to {target!r}" if target else ""
