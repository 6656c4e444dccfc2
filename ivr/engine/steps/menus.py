"""Nodes where one key or phrase picks a way out: menu, language choice, yes/no confirmation."""

from __future__ import annotations

from typing import Any

from ivr.core import events as ev
from ivr.engine.channel import SpeechResult
from ivr.engine.speech import is_no, is_yes, match_phrase
from ivr.engine.steps.inputs import InputStep
from ivr.engine.values import compute
from ivr.flow.langnames import language_phrases
from ivr.flow.model import Choice, ConfirmNode, LanguageNode, MenuNode


class MenuStep(InputStep[MenuNode]):
    """A menu: each choice is a key and/or phrases leading to a target."""

    def phrases(self) -> dict[str, tuple[str, ...]]:
        lang = self.session.language
        default = self.session.flow.default_language
        return {
            c.key: c.say.get(lang) or c.say.get(default) or ()
            for c in self.node.choices
            if c.say
        }

    def is_choice_key(self, digit: str) -> bool:
        return any(c.dtmf == digit for c in self.node.choices)

    def on_key(self, digit: str) -> None:
        for choice in self.node.choices:
            if choice.dtmf == digit:
                self.session.emit(ev.INPUT, mode="dtmf", value=digit, confidence=1.0)
                self._take(choice, digit)
                return
        self.session.emit(ev.INPUT, mode="dtmf", value=digit, confidence=1.0)
        self.no_match(digit)

    def on_text(self, result: SpeechResult) -> bool:
        key = result.choice if result.choice in {c.key for c in self.node.choices} else None
        key = key or match_phrase(result.text, self.phrases())
        for choice in self.node.choices:
            if choice.key == key:
                self._take(choice, result.text)
                return True
        return False

    def _take(self, choice: Choice, value: str) -> None:
        for name, raw in choice.set.items():
            self.session.scope.set(name, compute(raw, self.session.scope.values))
            self.session.emit(ev.VAR_SET, name=name, value=self.session.vars[name])
        self.leave(f"choice {choice.key}", choice.goto)


class LanguageStep(InputStep[LanguageNode]):
    """Choose the call's language; silence keeps the default one."""

    def is_choice_key(self, digit: str) -> bool:
        return digit in self.node.choices

    def on_key(self, digit: str) -> None:
        self.session.emit(ev.INPUT, mode="dtmf", value=digit, confidence=1.0)
        language = self.node.choices.get(digit)
        if language is None:
            self.no_match(digit)
            return
        self._choose(language)

    def phrases(self) -> dict[str, tuple[str, ...]]:
        # Keyed by language code. The call's language is not chosen yet, so these are the names
        # that the current language's recognizer can hear (ivr.flow.langnames).
        return language_phrases(self.node, self.session.language)

    def on_text(self, result: SpeechResult) -> bool:
        phrases = self.phrases()
        chosen = result.choice if result.choice in phrases else None
        chosen = chosen or match_phrase(result.text, phrases)
        if chosen is None:
            return False
        self._choose(chosen)
        return True

    def _choose(self, language: str) -> None:
        self.session.scope.set("lang", language)
        self.session.emit(ev.VAR_SET, name="lang", value=language)
        self.leave("next", self.node.next)

    def failure_limit(self, label: str) -> int:
        return 1 if label == "no_input" else super().failure_limit(label)

    def escalate(self, handler: Any, label: str) -> None:
        if label == "no_input" and handler.goto is None:
            self.leave("next", self.node.next)  # silence: keep the default language
            return
        super().escalate(handler, label)



class ConfirmStep(InputStep[ConfirmNode]):
    """Yes (1, "yes") or no (2, "no")."""

    def builtin_grammar(self) -> str | None:
        return "yes_no"

    def is_choice_key(self, digit: str) -> bool:
        return digit in ("1", "2")

    def on_key(self, digit: str) -> None:
        self.session.emit(ev.INPUT, mode="dtmf", value=digit, confidence=1.0)
        if digit == "1":
            self.leave("yes", self.node.yes)
        elif digit == "2":
            self.leave("no", self.node.no)
        else:
            self.no_match(digit)

    def on_text(self, result: SpeechResult) -> bool:
        if result.choice == "yes" or is_yes(result.text):
            self.leave("yes", self.node.yes)
        elif result.choice == "no" or is_no(result.text):
            self.leave("no", self.node.no)
        else:
            return False
        return True
