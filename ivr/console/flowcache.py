"""The flows as the console draws them: the flows folder loaded and checked like the server
loads it, reloaded when a file changes (looked at most every :data:`CHECK_EVERY` seconds).

An edit with an error keeps the last good version on the map (as the server keeps serving it)
and the page says so; the console never shows a flow the server would refuse.
"""

from __future__ import annotations

import threading
import time

from ivr.config import Config
from ivr.flow.loader import flow_files
from ivr.flow.model import FlowSet
from ivr.flow.registry import FlowRegistry

CHECK_EVERY = 2.0  # seconds between looks at the folder


class FlowCache:
    """The current flows of ``config.flows_dir``."""

    def __init__(self, config: Config) -> None:
        self.registry = FlowRegistry(config.flows_dir, config)
        self.errors = 0  # errors of the last load attempt (0: it went live)
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._looked = -CHECK_EVERY
        self._lock = threading.Lock()

    def current(self) -> FlowSet | None:
        """The flows (None: no version has ever loaded). Blocking: call it off the loop."""
        with self._lock:
            now = time.monotonic()
            if now - self._looked >= CHECK_EVERY:
                self._looked = now
                seen = self._signature()
                if seen != self._seen:
                    self._seen = seen
                    diagnostics = self.registry.reload()
                    self.errors = sum(1 for d in diagnostics if FlowRegistry.has_errors([d]))
        return self.registry.current if self.registry.loaded else None

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        out = []
        try:
            for path in flow_files(self.registry.flows_dir):
                stat = path.stat()
                out.append((path.name, stat.st_mtime_ns, stat.st_size))
        except OSError:
            return ()
        return tuple(out)
