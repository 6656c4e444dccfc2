"""The input model shared by every node that waits for the caller (docs/FLOWS.md, "Input handling").

The no-input timer starts when the prompt finishes (or at once when digits were typed ahead) and
stops at the first digit or the start of speech. Digits pressed during a prompt are kept and stop
the prompt when barge-in is on. No-input and no-match are counted per node visit; the Nth failure
plays the Nth re-prompt (tapered) and the last allowed one escalates. Global commands are checked
here, so every input node handles them the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from ivr.core import events as ev
from ivr.core.clock import TimerHandle
from ivr.engine.channel import ListenSpec, RenderedPrompt, SpeechResult
from ivr.engine.speech import is_no, is_yes, normalise
from ivr.engine.steps.base import Step
from ivr.flow.model import GlobalCommand, Handler, InputOptions, Node, Prompt

if TYPE_CHECKING:
    from ivr.engine.session import Session

N = TypeVar("N", bound=Node)

_CONFIRM_TEXT = {"en": "Did you say {}? Press 1 or say yes, press 2 or say no.",
                 "zh": "您说的是{}吗？是请按1，不是请按2。"}


class InputStep(Step[N]):
    """Prompt, wait, count failures, re-prompt, escalate; subclasses decide what input means."""

    #: keys that may be global commands only as the first key of an entry (collect nodes)
    globals_only_first_key = False

    def __init__(self, session: Session, node: N) -> None:
        super().__init__(session, node)
        self.no_input_count = 0
        self.no_match_count = 0
        self._no_input_timer: TimerHandle | None = None
        self._speech_timer: TimerHandle | None = None
        self._unconfirmed: SpeechResult | None = None

    # --- what subclasses provide ----------------------------------------------------------

    @property
    def opts(self) -> InputOptions:
        return self.node.opts  # type: ignore[attr-defined]

    def prompt(self) -> Prompt:
        return self.node.prompt  # type: ignore[attr-defined]

    def phrases(self) -> dict[str, tuple[str, ...]]:
        """Spoken choices (choice key -> phrases) for the recognizer; empty: DTMF only."""
        return {}

    def builtin_grammar(self) -> str | None:
        return None

    def digit_bounds(self) -> tuple[int | None, int | None]:
        """How many digits a spoken ``digits`` entry takes (None: any)."""
        return None, None

    def on_key(self, digit: str) -> None:
        """A key that is not a global command."""
        self.no_match(digit)

    def on_text(self, result: SpeechResult) -> bool:
        """A confident recognition result; return False when it matched nothing."""
        return False

    # --- settings with defaults -----------------------------------------------------------

    @property
    def barge_in(self) -> bool:
        value = self.opts.barge_in
        return self.flow_defaults.barge_in if value is None else bool(value)

    @property
    def no_input_timeout(self) -> float:
        return self.opts.timeout or self.flow_defaults.no_input_timeout

    @property
    def confidence_threshold(self) -> float:
        value = self.opts.confidence
        return self.flow_defaults.confidence if value is None else float(value)

    def globals(self) -> dict[str, GlobalCommand]:
        if self.opts.globals_off:
            return {}
        if self.opts.globals is None:
            return self.session.flow.globals
        merged = dict(self.session.flow.globals)
        merged.update(self.opts.globals)
        return merged

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._listen()
        if self.session.typeahead and self.barge_in:
            self._drain_typeahead()
            return
        self.play_prompt()

    def play_prompt(self, before: Prompt | None = None) -> None:
        """Play an optional re-prompt, then the node's prompt; the timer starts after both."""
        self._stop_no_input_timer()
        if before is not None:
            self.session.play(before, barge_in=self.barge_in)
            if not before.then_prompt:
                return
        self.session.play(self.prompt(), barge_in=self.barge_in)

    def repeat(self) -> None:
        self.session.stop_prompts()
        self.play_prompt()

    def on_prompts_done(self) -> None:
        if self.session.typeahead:
            self._drain_typeahead()
        else:
            self.restart_no_input_timer()

    def _listen(self) -> None:
        phrases = dict(self.phrases())
        lang = self.session.language
        for cmd in self.globals().values():
            words = cmd.say.get(lang) or ()
            if words and cmd.target:
                phrases[f"global:{cmd.name}"] = words
        builtin = self.builtin_grammar()
        if not phrases and builtin is None:
            return
        self.session.channel.listen(self._listen_spec(phrases, builtin))

    def _listen_spec(self, phrases: dict[str, tuple[str, ...]], builtin: str | None
                     ) -> ListenSpec:  # fmt: skip
        d = self.flow_defaults
        low, high = self.digit_bounds()
        return ListenSpec(self.node.id, self.session.language, phrases, builtin, d.end_silence,
                          d.max_speech, low, high)  # fmt: skip

    def cancel(self) -> None:
        super().cancel()
        self.session.channel.stop_listening()

    # --- timers ---------------------------------------------------------------------------

    def restart_no_input_timer(self) -> None:
        self._stop_no_input_timer()
        self._no_input_timer = self.later(self.no_input_timeout, self.no_input)

    def _stop_no_input_timer(self) -> None:
        for timer in (self._no_input_timer, self._speech_timer):
            if timer is not None:
                timer.cancel()
        self._no_input_timer = self._speech_timer = None

    # --- DTMF -----------------------------------------------------------------------------

    def on_dtmf(self, digit: str) -> bool:
        if self.session.playing:
            if not self.barge_in:
                return False  # kept as type-ahead, handled when the prompt ends
            self.session.stop_prompts()
        self._stop_no_input_timer()
        self._key(digit)
        return True

    def _drain_typeahead(self) -> None:
        buffer = self.session.typeahead
        # A step that left (its jump still queued) takes no more keys: they are the next node's.
        while buffer and not self.cancelled and not self.session.jump_pending:
            self._key(buffer.pop(0))
        if not self.cancelled and not self.session.playing and self._waiting_for_first_input():
            self.restart_no_input_timer()

    def _waiting_for_first_input(self) -> bool:
        """True when no entry is in progress (subclasses with partial entries say otherwise)."""
        return True

    def _key(self, digit: str) -> None:
        if self._unconfirmed is not None:
            self._answer_confirmation(digit == "1", digit == "2", digit)
            return
        command = self._global_for_key(digit)
        if command is not None:
            self.run_global(command)
            return
        self.on_key(digit)

    def _global_for_key(self, digit: str) -> GlobalCommand | None:
        if self.is_choice_key(digit):
            return None
        if self.globals_only_first_key and not self.entry_empty():
            return None
        for cmd in self.globals().values():
            if cmd.key == digit and cmd.target:
                return cmd
        return None

    def is_choice_key(self, digit: str) -> bool:
        return False

    def entry_empty(self) -> bool:
        return True

    def run_global(self, cmd: GlobalCommand) -> None:
        assert cmd.target is not None
        self.session.emit(ev.GLOBAL, command=cmd.name, target=cmd.target)
        if cmd.target == "repeat":
            self.repeat()
        elif cmd.target in self.session.flow.nodes:
            self.session.goto(cmd.target)
        else:
            self.session.run_command(cmd.target)

    # --- speech ---------------------------------------------------------------------------

    def on_speech_start(self) -> None:
        if self.session.playing and self.barge_in:
            self.session.stop_prompts()
        self._stop_no_input_timer()
        # The recognizer ends speech by itself; this is the net under it.
        self._speech_timer = self.later(self.flow_defaults.max_speech + 2.0, self.no_input)

    def on_speech(self, result: SpeechResult) -> None:
        if self.session.playing:
            if not self.barge_in:
                return  # speech over a prompt without barge-in is not input
            self.session.stop_prompts()
        self._stop_no_input_timer()
        if self._unconfirmed is not None:
            text = result.text
            self._answer_confirmation(is_yes(text), is_no(text), text)
            return
        self._input_event("speech", result.text, result.confidence)
        if self._spoken_global(result):
            return
        if result.rejected:  # the recognizer heard words outside the grammar
            self.no_match(result.text)
            return
        if result.confidence < self.confidence_threshold:
            self._ask_confirmation(result)
            return
        if not self.on_text(result):
            self.no_match(result.text)

    def _spoken_global(self, result: SpeechResult) -> bool:
        choice = result.choice or ""
        text = normalise(result.text)
        for cmd in self.globals().values():
            phrases = cmd.say.get(self.session.language) or ()
            if cmd.target and (
                choice == f"global:{cmd.name}" or text in (normalise(p) for p in phrases)
            ):
                self.run_global(cmd)
                return True
        return False

    def _ask_confirmation(self, result: SpeechResult) -> None:
        self._unconfirmed = result
        lang = self.session.language
        template = _CONFIRM_TEXT.get(lang, _CONFIRM_TEXT["en"])
        self.session.play_rendered(
            RenderedPrompt(f"{self.node.id}.confirm", lang, template.format(result.text))
        )
        self.session.channel.listen(self._listen_spec({}, "yes_no"))  # the answer is yes/no

    def _answer_confirmation(self, yes: bool, no: bool, value: str) -> None:
        result, self._unconfirmed = self._unconfirmed, None
        assert result is not None
        self._listen()  # the node's own grammar again
        if yes and self.on_text(SpeechResult(result.text, 1.0, result.choice)):
            return
        self.no_match(value if not yes else result.text)

    def _input_event(self, mode: str, value: str, confidence: float = 1.0) -> None:
        self.session.emit(
            ev.INPUT, mode=mode, value=self.shown(value), confidence=round(confidence, 3)
        )

    def shown(self, value: str) -> str:
        """``value`` as records may show it (subclasses mask secrets)."""
        return value

    # --- failures -------------------------------------------------------------------------

    def no_input(self) -> None:
        self._stop_no_input_timer()
        self.no_input_count += 1
        self.session.emit(ev.NO_INPUT, count=self.no_input_count)
        self._fail(self.opts.no_input, self.no_input_count, self.failure_limit("no_input"),
                   "no_input")

    def no_match(self, value: str) -> None:
        self._stop_no_input_timer()
        self.no_match_count += 1
        self.session.emit(ev.NO_MATCH, count=self.no_match_count, value=self.shown(value))
        self._fail(self.opts.no_match, self.no_match_count, self.failure_limit("no_match"),
                   "no_match")

    def failure_limit(self, label: str) -> int:
        """How many no-inputs or no-matches escalate when the node's handler does not say."""
        d = self.flow_defaults
        return int(d.max_no_input if label == "no_input" else d.max_no_match)

    def _fail(self, handler: Handler, count: int, default_after: int, label: str) -> None:
        self.session.typeahead.clear()  # what was typed after a bad entry is not trusted
        self.reset_entry()
        if count >= (handler.after or default_after):
            self.escalate(handler, label)
            return
        self.session.stop_prompts()
        self.play_prompt(before=self._reprompt(handler, count))

    def _reprompt(self, handler: Handler, count: int) -> Prompt | None:
        if not handler.reprompts:
            return None
        return handler.reprompts[min(count, len(handler.reprompts)) - 1]

    def escalate(self, handler: Handler, label: str) -> None:
        target = handler.goto or self.flow_defaults.escalate
        if target is None and "agent" in self.session.flow.nodes:
            target = "agent"
        if target is None:
            self.session.finish("failed", hangup=True)
            return
        self.leave(label, target)

    def reset_entry(self) -> None:
        """Forget a partial entry (collect nodes)."""
