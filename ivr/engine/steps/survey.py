"""Post-call satisfaction survey: one key per question; silence or bad answers skip it."""

from __future__ import annotations

from typing import Any

from ivr.core import events as ev
from ivr.engine.channel import SpeechResult
from ivr.engine.speech import spoken_digits
from ivr.engine.steps.inputs import InputStep
from ivr.flow.model import Handler, Prompt, SurveyNode


class SurveyStep(InputStep[SurveyNode]):
    """Asks each question in turn; an unanswered question is skipped, never escalated."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.index = 0

    def prompt(self) -> Prompt:
        return self.node.questions[self.index].prompt

    def is_choice_key(self, digit: str) -> bool:
        return digit.isdigit()

    def on_key(self, digit: str) -> None:
        self.session.emit(ev.INPUT, mode="dtmf", value=digit, confidence=1.0)
        self._answer(digit)

    def on_text(self, result: SpeechResult) -> bool:
        digits = spoken_digits(result.text)
        if digits is None or len(digits) != 1:
            return False
        self._answer(digits)
        return True

    def _answer(self, digit: str) -> None:
        question = self.node.questions[self.index]
        if not digit.isdigit() or not 1 <= int(digit) <= question.scale:
            self.no_match(digit)
            return
        self.session.emit(ev.SURVEY, question=question.id, answer=int(digit))
        self._next_question()

    def failure_limit(self, label: str) -> int:
        """Silence skips a question at once (unless the node's no_input says ``after``): a
        survey at the end of a call must not pester the caller."""
        return 1 if label == "no_input" else super().failure_limit(label)

    def escalate(self, handler: Handler, label: str) -> None:
        self.session.emit(ev.SURVEY, question=self.node.questions[self.index].id, answer=None)
        self._next_question()

    def _next_question(self) -> None:
        self.index += 1
        self.no_input_count = self.no_match_count = 0
        if self.index >= len(self.node.questions):
            self.leave("next", self.node.next)
            return
        self.session.stop_prompts()
        self.play_prompt()
