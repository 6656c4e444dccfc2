"""Call scripts over real SIP and RTP against a running ``ivr serve`` (``ivr test --live``).

The script format and the step semantics are the simulator's (docs/TESTING.md): the same
:class:`~ivr.sim.driver.CallerDriver` plays the steps, fed with the events of the server's call
record (read by Call-ID from its SQLite store, :mod:`ivr.sim.records`) instead of a simulated
session's, and acting through a :class:`~ivr.sim.live_call.LiveCaller`:

- ``expect`` reads the prompts of the call record, in order, with the script's timeout;
- ``press`` sends RFC 4733 events (or SIP INFO, or in-band tones: ``--dtmf``) once the prompt
  playing has finished: the caller heard its audio end (a second of silence after speech) and
  the record names no prompt started since; ``barge_in`` presses send at once;
- ``say`` synthesizes the phrase (ivr/tts, in the call's language, Mandarin for Chinese text)
  and sends it as the caller's audio at the same moment a press would go: the server's own
  endpointing and recognizer decide what was heard (a ``confidence`` cannot be imposed: noted);
- ``silence``/``wait`` wait real seconds, capped (``max_wait``);
- ``hangup`` sends BYE; ``expect_hangup`` needs the flow's hang-up in the record *and* the
  server's BYE; ``expect_transfer`` needs the transfer in the record *and* a REFER to that
  target at the caller (who accepts it and reports the script's ``transfer_fails`` result in
  its NOTIFY); ``expect_queue`` reads the record's queue event.

What a live run cannot do is reported, never passed silently: a script that speaks a language
the server's recognizer lacks (``LiveOptions.speech``, from ivr.yaml ``asr:``) is skipped with
the reason, as is one with initial ``vars`` (they cannot be sent); variable checks (``assert``,
``expect`` ``vars``) are not made, since the call record holds only some variables, and each is
listed as not checked. ``at:`` travels in an
``X-Ivr-At`` header that a server honours only with ``sip: {test_headers: true}``; when the
record shows the server's own clock was used, that is noted. Every call sends ``X-Ivr-Qa: 1``:
such a server marks its record as a QA call, which reports leave out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, ClassVar

from ivr.core import events as ev
from ivr.core.clock import LoopClock
from ivr.core.events import Event
from ivr.sim import script as sc
from ivr.sim.driver import CallerDriver
from ivr.sim.live_call import (
    LiveCaller,
    LivePhone,
    PhoneOptions,
    speech_language,
    synthesize_speech,
)
from ivr.sim.records import CallRecords
from ivr.sim.runner import ScriptResult, display_path
from ivr.sim.verdict import Divergence
from ivr.sip.errors import SipParseError
from ivr.sip.uri import SipUri

AT_HEADER = "X-Ivr-At"
QA_HEADER = "X-Ivr-Qa"  # "1": a QA call; a server with test_headers marks its record
SAY_UNSUPPORTED = "speech input is not supported live in {language}"
VARS_UNCHECKED = "variables are not in the call record"
RECORD_WAIT = 5.0  # seconds from the answer to the call's first recorded event
_AT_SLACK = 120.0  # seconds between the script's at: and the recorded start that still agree


@dataclass(frozen=True)
class LiveOptions:
    """How ``ivr test --live`` runs scripts.

    Attributes:
        target: The server, ``sip:HOST:PORT`` (a user part is the default number to call).
        db: The server's call store (the same file: the server runs on this machine).
        jobs: Calls at once.
        max_wait: The longest ``silence``/``wait`` step, in seconds.
        timeout: The longest a script may take (its own ``timeout`` when shorter).
        barge_in: Every ``press`` goes at once, during the prompt (faster; needs barge-in).
        dtmf: ``rfc4733``, ``info`` or ``inband``.
        phone: Addresses and timings of the caller.
        prompts_dir: Where the caller's synthesized speech is cached.
        speech: Language -> why the server cannot recognise it (None: it can); None: unknown,
            every script runs.
        on_result: Called with each result as soon as it is known (progress).
    """

    target: str
    db: Path
    jobs: int = 1
    max_wait: float = 30.0
    timeout: float = 180.0
    barge_in: bool = False
    dtmf: str = "rfc4733"
    phone: PhoneOptions = field(default_factory=PhoneOptions)
    prompts_dir: Path = Path("prompts")
    speech: Mapping[str, str | None] | None = None
    on_result: Callable[[ScriptResult], None] | None = None  # each result as it comes


def target_uri(target: str, called: str) -> str:
    """``target`` with ``called`` as its user part (when the script names a number).

    Raises:
        ValueError: ``target`` is not a sip: URI.
    """
    try:
        uri = SipUri.parse(target if target.startswith("sip") else f"sip:{target}")
    except SipParseError as exc:
        raise ValueError(f"not a SIP URI: {target!r}") from exc
    return str(replace(uri, user=called or uri.user or "ivr"))


def why_skipped(script: sc.Script, speech: Mapping[str, str | None] | None = None) -> str | None:
    """Why ``script`` cannot run live, or None.

    Args:
        script: The script.
        speech: What the server can recognise (``LiveOptions.speech``); None: unknown.
    """
    for step in script.steps:
        if not isinstance(step, sc.Say) or speech is None:
            continue
        language = speech_language(step.text)
        why = speech.get(language, f"no {language} recognizer is configured")
        if why is not None:
            unsupported = SAY_UNSUPPORTED.format(language=language)
            return f"step {step.index} ({step.describe()}): {unsupported}: {why}"
    if script.vars:
        return "initial vars cannot be given to a live call"
    if script.agents:
        return "simulated agents (agents:) answer on the virtual clock only"
    if script.stubs:
        return "its stubs: cannot reach the server's actions (they call the real backend)"
    return None


# --- the driver's view of a live call ----------------------------------------------------------


class RecordedSession:
    """What the driver reads of a session, from the call record's events."""

    def __init__(self) -> None:
        self.finished = False
        self.outcome: str | None = None
        self.language: str | None = None  # of the last prompt
        self._node: str | None = None

    def on_event(self, event: Event) -> None:
        if event.kind == ev.NODE_ENTER:
            self._node = event.node
        elif event.kind == ev.PROMPT:
            self.language = event.data.get("language") or self.language
        elif event.kind == ev.CALL_END:
            self.finished = True
            self.outcome = event.data.get("outcome")

    @property
    def node_id(self) -> str | None:
        return self._node

    @property
    def vars(self) -> dict[str, Any]:
        return {}  # not in the record: the live driver does not check variables

    def is_secret(self, name: str) -> bool:
        return True  # nothing is known of the server's variables: show none

    def start(self) -> None:
        """The server started the session already."""


class LiveChannel:
    """What the driver reads of and does to a channel, on a live call."""

    end_silence = 0.8  # used by simulated speech only

    def __init__(self, caller: LiveCaller, barge_in: bool) -> None:
        self.caller = caller
        self.barge_in = barge_in

    def watch(self, callback: Callable[[], None]) -> None:
        self.caller.watch(callback)

    @property
    def busy(self) -> bool:
        return not self.barge_in and self.caller.busy

    @property
    def ended(self) -> bool:
        return self.caller.ended

    @property
    def end(self) -> str | None:
        return "caller_hangup" if self.caller.hung_up else None

    def caller_dtmf(self, digit: str) -> None:
        self.caller.press(digit)

    def caller_hangup(self) -> None:
        self.caller.hangup()


class LiveDriver(CallerDriver):
    """The simulator's driver with the live differences (module docstring)."""

    def __init__(self, script: sc.Script, caller: LiveCaller, options: LiveOptions,
                 on_done: Callable[[CallerDriver], None]) -> None:  # fmt: skip
        self.live_session = RecordedSession()
        self.caller = caller
        self.max_wait = options.max_wait
        self.prompts_dir = options.prompts_dir
        self.unchecked: list[str] = []
        self._speaking: asyncio.Future[None] | None = None
        self.live_channel = LiveChannel(caller, options.barge_in)
        super().__init__(
            script, self.live_session, self.live_channel,  # type: ignore[arg-type]
            LoopClock(asyncio.get_running_loop()), display_path(script.path), on_done,
        )  # fmt: skip

    def on_event(self, event: Event) -> None:
        self.live_session.on_event(event)
        super().on_event(event)

    def _note(self, step: sc.Step, why: str) -> None:
        self.unchecked.append(f"step {step.index} ({step.describe()}): {why}")

    def _expect_live(self, step: sc.Expect) -> bool:
        if step.vars and self._state != "noted":
            self._note(step, f"vars not checked: {VARS_UNCHECKED}")
            self._state = "noted"
        return self._expect(replace(step, vars={}))

    def _assert_live(self, step: sc.Assert) -> bool:
        self._note(step, f"not checked: {VARS_UNCHECKED}")
        return True

    def _say_live(self, step: sc.Say) -> bool:
        return self._send_input(step, lambda: self._start_speaking(step))

    def _start_speaking(self, step: sc.Say) -> None:
        if step.confidence < 1.0:
            self._note(step, f"confidence {step.confidence:g} not applied: the server's "
                             "recognizer decides")  # fmt: skip
        language = speech_language(step.text, self.live_session.language)
        self._speaking = asyncio.ensure_future(self._speak(step, language))

    async def _speak(self, step: sc.Say, language: str) -> None:
        from ivr.tts.engine import TTSError

        try:
            audio = await asyncio.to_thread(synthesize_speech, self.prompts_dir, step.text,
                                            language)  # fmt: skip
        except TTSError as exc:
            self._fail(step, f"cannot synthesize {step.text!r} in {language}: {exc}")
            return
        seconds = len(audio) / 8000
        # The call may end while we speak: then the audio is never played out.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.caller.say(audio, step.text), seconds + 5.0)
        if not self.done:
            self._state = "sent"
            self.kick()

    def _silence_live(self, step: sc.Silence) -> bool:
        if step.seconds > self.max_wait and self._state is None:
            self._note(step, f"capped at {self.max_wait:g} s")
        return self._silence(replace(step, seconds=min(step.seconds, self.max_wait)))

    def _expect_transfer_live(self, step: sc.ExpectTransfer) -> bool:
        if not self._expect_transfer(step):
            return False
        transfers = [e for e in self.events if e.kind == ev.TRANSFER]
        target = str(transfers[self._transfers_seen - 1].data.get("target"))
        if not any(_same_target(target, got) for got in self.caller.refers):
            if not self.caller.ended:
                self._transfers_seen -= 1  # the REFER may still be on its way: look again
                return False
            self._fail(step, f"the record has a transfer to {target!r}, but no REFER for it "
                             f"reached the caller (REFERs: {self.caller.refers})")  # fmt: skip
            return False
        return True

    def _expect_hangup_live(self, step: sc.ExpectHangup) -> bool:
        if not self._expect_hangup(step):
            return False
        if not self.caller.ended:
            return False  # the record has the hang-up; the BYE is on its way
        if self.caller.hung_up:
            self._fail(step, "the record says the flow hung up, but the caller sent the BYE")
            return False
        return True

    _HANDLERS: ClassVar[dict[type, Callable[[CallerDriver, Any], bool]]] = {}


def _live(method: Callable[[LiveDriver, Any], bool]) -> Callable[[CallerDriver, Any], bool]:
    def handler(driver: CallerDriver, step: Any) -> bool:
        assert isinstance(driver, LiveDriver)
        return method(driver, step)

    return handler


LiveDriver._HANDLERS = {
    **CallerDriver._HANDLERS,
    sc.Expect: _live(LiveDriver._expect_live),
    sc.Assert: _live(LiveDriver._assert_live),
    sc.Say: _live(LiveDriver._say_live),
    sc.Silence: _live(LiveDriver._silence_live),
    sc.ExpectTransfer: _live(LiveDriver._expect_transfer_live),
    sc.ExpectHangup: _live(LiveDriver._expect_hangup_live),
}


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _same_target(recorded: str, refer_to: str) -> bool:
    return recorded == refer_to or recorded.strip("<>") == refer_to.strip("<>")


# --- running scripts ---------------------------------------------------------------------------


class _Run:
    """One script's live call."""

    def __init__(self, script: sc.Script, phone: LivePhone, options: LiveOptions,
                 records: CallRecords) -> None:  # fmt: skip
        self.script = script
        self.options = options
        self.caller = phone.caller(dtmf=options.dtmf, records=records)
        self.path = display_path(script.path)
        self.notes: list[str] = []

    async def run(self) -> ScriptResult:
        began, wall = time.perf_counter(), time.time()
        result = ScriptResult(name=self.script.name, path=self.script.path,
                              flow=self.script.call, passed=False, steps=len(self.script.steps),
                              live=True)  # fmt: skip
        try:
            await self._call(result)
        except (OSError, ValueError) as exc:
            result.divergence = self._divergence(f"the call could not be made: {exc}")
        finally:
            await self.caller.close()
            result.wall = time.perf_counter() - began
            result.call_id = self.caller.call_id
            result.events = list(self.caller.events)
            result.notes = self.notes
            if not result.duration:
                result.duration = round(time.time() - wall, 3)
        return result

    async def _call(self, result: ScriptResult) -> None:
        script, caller = self.script, self.caller
        if script.transfer_fails:
            caller.transfer_status = self._transfer_status
        headers = [(QA_HEADER, "1")]
        if script.at:
            headers.append((AT_HEADER, script.at.isoformat()))
        uri = target_uri(self.options.target, script.caller.called)
        status = await caller.dial(uri, caller=script.caller.number or "ivr-test",
                                   headers=headers)  # fmt: skip
        if status != 200:
            result.divergence = self._divergence(f"the call to {uri} was not answered: {status} "
                                                 f"{caller.call.reason if caller.call else ''}")
            return
        if not await caller.wait_until(lambda: bool(caller.events), RECORD_WAIT):
            why = caller.record_error or f"no events for Call-ID {caller.call_id}"
            result.divergence = self._divergence(
                f"the call was answered but its record cannot be read from {self.options.db} "
                f"({why}): is it the server's store (--db)?"
            )
            return
        driver = await self._drive()
        result.passed = driver.divergence is None and not self._flow_mismatch(result)
        result.divergence = result.divergence or driver.divergence
        result.outcome = driver.outcome
        result.duration = driver.duration
        self.notes = [*self._at_note(), *driver.unchecked, *self.notes]

    async def _drive(self) -> LiveDriver:
        script = replace(self.script, timeout=min(self.script.timeout, self.options.timeout))
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        driver = LiveDriver(script, self.caller, self.options, lambda _d: _resolve(finished))
        self.caller.on_event = driver.on_event
        for event in self.caller.events:  # read before the driver existed
            driver.on_event(event)
        driver.begin()
        try:  # the driver's own timeout fires first; this one only guards against a stall
            await asyncio.wait_for(finished, script.timeout + 10)
        except TimeoutError:
            driver.fail_error("the live run stalled")
        if self.caller.record_error and driver.divergence is not None:
            self.notes.append(f"call record: {self.caller.record_error}")
        return driver

    def _transfer_status(self, target: str) -> int:
        failing = any(fnmatchcase(target, p) for p in self.script.transfer_fails)
        return 503 if failing else 200

    def _flow_mismatch(self, result: ScriptResult) -> bool:
        start = next((e for e in self.caller.events if e.kind == ev.CALL_START), None)
        flow = start.data.get("flow") if start is not None else None
        if flow is None or flow == self.script.call:
            return False
        result.divergence = self._divergence(
            f"the server answered with flow {flow!r}, the script is for {self.script.call!r}"
        )
        return True

    def _at_note(self) -> list[str]:
        at = self.script.at
        start = next((e for e in self.caller.events if e.kind == ev.CALL_START), None)
        if at is None or start is None:
            return []
        wall = start.data.get("wall")
        if isinstance(wall, int | float) and abs(wall - at.timestamp()) > _AT_SLACK:
            when = datetime.fromtimestamp(wall, at.tzinfo).isoformat(timespec="seconds")
            return [f"at: not honoured by the server (its clock said {when}; "
                    f"enable sip.test_headers there)"]  # fmt: skip
        return []

    def _divergence(self, message: str) -> Divergence:
        return Divergence(self.path, self.script.line, None, f"call {self.script.call}", message)


async def run_live(scripts: Sequence[sc.Script], options: LiveOptions) -> list[ScriptResult]:
    """Run ``scripts`` as real calls, ``options.jobs`` at a time; results in script order."""
    phone = LivePhone(options.phone)
    await phone.start()
    records = CallRecords(options.db)
    limit = asyncio.Semaphore(max(1, options.jobs))

    async def one(script: sc.Script) -> ScriptResult:
        reason = why_skipped(script, options.speech)
        if reason is not None:
            result = ScriptResult(name=script.name, path=script.path, flow=script.call,
                                  passed=False, steps=len(script.steps), skipped=reason,
                                  live=True)  # fmt: skip
        else:
            async with limit:
                result = await _Run(script, phone, options, records).run()
        if options.on_result is not None:
            options.on_result(result)
        return result

    try:
        return list(await asyncio.gather(*(one(s) for s in scripts)))
    finally:
        await phone.close()
        records.close()


def run_live_scripts(scripts: Sequence[sc.Script], options: LiveOptions) -> list[ScriptResult]:
    """:func:`run_live` on a new event loop (for the command line)."""
    return asyncio.run(run_live(scripts, options))


