"""Diagnostics for flow loading: every stage reports problems with file, line and column."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ivr.flow.model import Pos


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a flow; ``stage`` names the loading stage that found it."""

    pos: Pos
    message: str
    severity: Severity = Severity.ERROR
    stage: str = "semantic"  # yaml | schema | semantic

    def __str__(self) -> str:
        return f"{self.pos}: {self.severity.value}: {self.message}"


class FlowError(Exception):
    """A flow (or set of flows) was refused; carries every error found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


class YamlError(FlowError):
    """The text is not valid YAML (stage 1)."""


class SchemaError(FlowError):
    """The YAML does not match the flow schema (stage 2)."""


class SemanticError(FlowError):
    """The flow is well formed but wrong: unknown targets, dead ends, clashes (stage 3)."""
