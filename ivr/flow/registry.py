"""The flows a running server answers with, and their safe replacement on reload.

A call takes :attr:`FlowRegistry.current` when it starts and keeps that :class:`FlowSet` to its
end (a FlowSet is immutable), so a reload never changes a call in progress. A reload that finds
an error keeps the old version: a bad edit cannot take a working line down.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ivr.flow.errors import Diagnostic, FlowError, Severity
from ivr.flow.loader import load_flowset
from ivr.flow.model import FlowSet
from ivr.flow.settings import FlowSettings


class FlowRegistry:
    """Holds the current FlowSet of a flows folder.

    Args:
        flows_dir: the folder of ``*.yaml`` flows (default: ``config.flows_dir``).
        config: ivr.yaml, passed to the loader.
    """

    def __init__(self, flows_dir: str | Path | None = None,
                 config: FlowSettings | None = None) -> None:
        if flows_dir is None and config is None:
            raise ValueError("FlowRegistry needs flows_dir or a config")
        self.flows_dir = Path(flows_dir) if flows_dir is not None else config.flows_dir  # type: ignore[union-attr]
        self.config = config
        self._current: FlowSet | None = None
        self._lock = threading.Lock()  # one reload at a time; readers never wait

    @property
    def current(self) -> FlowSet:
        """The FlowSet new calls start with.

        Raises:
            LookupError: no version has loaded successfully yet.
        """
        flows = self._current
        if flows is None:
            raise LookupError(f"no valid flows loaded from {self.flows_dir} yet")
        return flows

    @property
    def loaded(self) -> bool:
        """Whether a version is in place."""
        return self._current is not None

    def reload(self) -> list[Diagnostic]:
        """Load the folder again; swap the new version in only if it has no errors.

        Returns:
            Every diagnostic of the attempt: warnings when the new version went live, errors
            (and warnings) when it was refused and the previous version stays.
        """
        with self._lock:
            try:
                flows, warnings = load_flowset(self.flows_dir, self.config)
            except FlowError as exc:
                return list(exc.diagnostics)
            self._current = flows
            return warnings

    @staticmethod
    def has_errors(diagnostics: list[Diagnostic]) -> bool:
        """True when ``diagnostics`` (from :meth:`reload`) refused the new version."""
        return any(d.severity is Severity.ERROR for d in diagnostics)
