"""Nodes that take a value: digit collection and speech recognition (with a DTMF alternative)."""

from __future__ import annotations

from typing import Any

from ivr.core import events as ev
from ivr.core.clock import TimerHandle
from ivr.core.events import MASK
from ivr.engine.channel import SpeechResult
from ivr.engine.speech import is_no, is_yes, match_phrase, spoken_amount, spoken_digits
from ivr.engine.steps.inputs import InputStep
from ivr.engine.validators import validate
from ivr.flow.model import CollectNode, RecognizeNode
from ivr.flow.regex import search as regex_search


class _DigitEntry(InputStep[Any]):
    """Digits until the terminator, ``max`` digits, or the inter-digit timeout."""

    globals_only_first_key = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.digits = ""
        self._inter_digit: TimerHandle | None = None

    max_digits = 32
    min_digits = 1

    @property
    def terminator(self) -> str | None:
        value = getattr(self.node, "terminator", None)
        return self.flow_defaults.terminator if value is None else value or None

    @property
    def inter_digit_timeout(self) -> float:
        return self.opts.inter_digit_timeout or self.flow_defaults.inter_digit_timeout

    def digit_bounds(self) -> tuple[int | None, int | None]:
        return self.min_digits, self.max_digits

    def entry_empty(self) -> bool:
        return not self.digits

    def _waiting_for_first_input(self) -> bool:
        return not self.digits

    def reset_entry(self) -> None:
        self.digits = ""
        if self._inter_digit is not None:
            self._inter_digit.cancel()
            self._inter_digit = None

    def _global_for_key(self, digit: str) -> Any:
        # Inside an entry only keys that cannot be part of it may be global commands.
        if digit.isdigit() or digit == self.terminator:
            return None
        return super()._global_for_key(digit)

    def on_key(self, digit: str) -> None:
        if self._inter_digit is not None:
            self._inter_digit.cancel()
        if digit == self.terminator:
            self._complete()
            return
        if not digit.isdigit():
            self.no_match(self.digits + digit)
            return
        self.digits += digit
        if len(self.digits) >= self.max_digits:
            if self.terminator:  # "123456#" out of habit: that "#" ends this entry, not the next
                self.session.absorb_terminator(self.terminator, self.inter_digit_timeout)
            self._complete()
        else:
            self._inter_digit = self.later(self.inter_digit_timeout, self._inter_digit_expired)

    def _inter_digit_expired(self) -> None:
        if len(self.digits) >= self.min_digits:
            self._complete()
        else:
            self.no_match(self.digits)

    def _complete(self) -> None:
        value, self.digits = self.digits, ""
        self._input_event("dtmf", value)
        self.accept(value)

    def accept(self, value: str) -> None:
        raise NotImplementedError


class CollectStep(_DigitEntry):
    node: CollectNode

    @property
    def max_digits(self) -> int:  # type: ignore[override]
        return self.node.max

    @property
    def min_digits(self) -> int:  # type: ignore[override]
        return self.node.min

    def shown(self, value: str) -> str:
        return MASK if self.node.secret else value

    def accept(self, value: str) -> None:
        node = self.node
        valid = node.min <= len(value) <= node.max
        valid = valid and (node.pattern is None or regex_search(node.pattern, value))
        valid = valid and (node.validate is None or validate(node.validate, value, self.session))
        if not valid:
            self.no_match(value)
            return
        self.session.scope.set(node.into, value, secret=node.secret)
        self.session.emit(ev.VAR_SET, name=node.into, value=self.shown(value))
        self.leave("next", node.next)


class RecognizeStep(_DigitEntry):
    node: RecognizeNode

    def phrases(self) -> dict[str, tuple[str, ...]]:
        grammar = self.node.grammar
        if isinstance(grammar, str):
            return {}
        lang = self.session.language
        phrases = grammar.get(lang) or grammar.get(self.session.flow.default_language) or ()
        return {p: (p,) for p in phrases}

    def builtin_grammar(self) -> str | None:
        grammar = self.node.grammar
        return grammar if isinstance(grammar, str) else None

    def on_dtmf(self, digit: str) -> bool:
        if not self.node.dtmf:
            return True  # swallowed: this node takes speech only
        return super().on_dtmf(digit)

    def accept(self, value: str) -> None:
        if not value:  # the terminator alone is no entry
            self.no_match(value)
            return
        if self.builtin_grammar() == "amount":
            if int(value) <= 0:  # "0#": nothing to pay or send
                self.no_match(value)
                return
            value = f"{int(value):.2f}"
        self._store(value)

    def on_text(self, result: SpeechResult) -> bool:
        value = self._interpret(result)
        if value is None:
            return False
        self._store(value)
        return True

    def _interpret(self, result: SpeechResult) -> str | None:
        builtin = self.builtin_grammar()
        if builtin == "amount":
            amount = spoken_amount(result.text)
            return amount if amount is not None and float(amount) > 0 else None
        if builtin == "digits":
            return spoken_digits(result.text)
        if builtin == "yes_no":
            return "yes" if is_yes(result.text) else "no" if is_no(result.text) else None
        return result.choice if result.choice in self.phrases() else match_phrase(
            result.text, self.phrases()
        )

    def _store(self, value: str) -> None:
        self.session.scope.set(self.node.into, value)
        self.session.emit(ev.VAR_SET, name=self.node.into, value=value)
        self.leave("next", self.node.next)
