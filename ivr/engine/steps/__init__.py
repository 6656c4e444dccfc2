"""One step class per node type; :func:`make_step` picks it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ivr.engine.steps.action import ActionStep
from ivr.engine.steps.base import Step
from ivr.engine.steps.control import (
    BranchStep,
    CounterStep,
    GotoStep,
    HoursStep,
    ReturnStep,
    SayStep,
    SetStep,
    SubflowStep,
)
from ivr.engine.steps.endings import HangupStep, RecordStep, TransferStep
from ivr.engine.steps.entry import CollectStep, RecognizeStep
from ivr.engine.steps.menus import ConfirmStep, LanguageStep, MenuStep
from ivr.engine.steps.queue import QueueStep
from ivr.engine.steps.survey import SurveyStep
from ivr.flow.model import Node

if TYPE_CHECKING:
    from ivr.engine.session import Session

STEP_TYPES: dict[str, type[Step[Any]]] = {
    "say": SayStep,
    "menu": MenuStep,
    "collect": CollectStep,
    "recognize": RecognizeStep,
    "confirm": ConfirmStep,
    "language": LanguageStep,
    "set": SetStep,
    "counter": CounterStep,
    "branch": BranchStep,
    "action": ActionStep,
    "subflow": SubflowStep,
    "return": ReturnStep,
    "goto": GotoStep,
    "hours": HoursStep,
    "transfer": TransferStep,
    "enqueue": QueueStep,
    "record": RecordStep,
    "survey": SurveyStep,
    "hangup": HangupStep,
}

__all__ = ["STEP_TYPES", "Step", "make_step"]


def make_step(session: Session, node: Node) -> Step[Any]:
    """The running form of ``node``."""
    return STEP_TYPES[node.kind](session, node)
