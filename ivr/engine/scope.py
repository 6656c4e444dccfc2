"""A call's variables, with the names that hold secrets (PINs, card numbers) remembered.

Secret values are usable by actions (a PIN goes to the verify webhook) but never spoken, logged
or recorded: every event, prompt and log line reads :meth:`Scope.masked`.
"""

from __future__ import annotations

from typing import Any

from ivr.core.events import MASK
from ivr.flow.expr import lookup


class Scope:
    """Variables of one call: a plain dict plus the set of secret names."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.secret_names: set[str] = set()

    def get(self, dotted: str) -> Any:
        """The value at a dotted name (``balance.available``), or None."""
        return lookup(self.values, dotted)

    def set(self, name: str, value: Any, *, secret: bool = False) -> None:
        self.values[name] = value
        if secret:
            self.secret_names.add(name)
        else:
            self.secret_names.discard(name)

    def is_secret(self, name: str) -> bool:
        return name.split(".", 1)[0] in self.secret_names

    def shown(self, name: str, value: Any) -> Any:
        """``value`` as it may appear in records and logs."""
        return MASK if self.is_secret(name) else value

    def masked(self) -> dict[str, Any]:
        """The variables with every secret replaced by a mask (for prompts and records)."""
        if not self.secret_names:
            return self.values
        return {k: (MASK if k in self.secret_names else v) for k, v in self.values.items()}

    def secret_values(self) -> list[str]:
        """The current secret values (so that a record can be checked against them)."""
        return [str(self.values[n]) for n in self.secret_names if self.values.get(n)]
