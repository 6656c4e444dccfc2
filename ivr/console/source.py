"""What the console shows, gathered from the running server whatever its shape.

The console never reaches into an engine process: it reads

* the metrics (:class:`~ivr.host.metrics.EngineMetrics`): the one host's registry in a single
  ``ivr serve``, or every worker's files through prometheus-client's multiprocess collector in
  ``ivr serve --workers N`` (ivr/host/metrics.py says why);
* the agents and queues from the machine's queue authority over its control socket, the same
  JSON lines ``ivr agents`` speaks (one authority per machine, whichever process holds it), and
  sends supervisors' agent actions the same way;
* today's offered, answered and abandoned calls and service level from the call store, with
  the same code as ``ivr report`` (so the figures agree);
* the server's life (starting, ready, draining) from :class:`ServerState`, which the command
  that runs the server keeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from ivr.acd import wire
from ivr.config import Config
from ivr.console.records import live_calls
from ivr.host.remote_queues import authority_socket
from ivr.store.db import connect
from ivr.store.queuereport import service_levels_of
from ivr.store.report import build_report

ACD_TIMEOUT = 3.0  # seconds for the queue authority to answer
TODAY_EVERY = 5.0  # seconds between readings of today's figures (a report query each)


@dataclass
class ServerState:
    """Where the server is in its life, kept by the command running it (read by /healthz)."""

    flows: bool = False  # flows loaded and checked
    store: bool = False  # the call store opened
    sip: bool = False  # the SIP port listening (every worker's, with --workers)
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.flows and self.store and self.sip and not self.draining

    def up(self) -> None:
        """Everything started."""
        self.flows = self.store = self.sip = True

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "flows": self.flows, "store": self.store, "sip": self.sip,
                "draining": self.draining}  # fmt: skip


class AcdUnavailable(RuntimeError):
    """The queue authority cannot be reached (none configured, or not listening)."""


def multiprocess_registry(folder: str | Path) -> CollectorRegistry:
    """A registry summing the metrics every worker writes under ``folder``."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    return registry


class ConsoleSource:
    """The console's view of one running server (see the module docstring).

    Args:
        config: ivr.yaml.
        state: The server's life.
        registry: Where the engine metrics are read.
    """

    def __init__(self, config: Config, state: ServerState, registry: CollectorRegistry) -> None:
        self.config = config
        self.state = state
        self.registry = registry
        self._today: dict[str, Any] = {}
        self._today_at = -TODAY_EVERY

    # --- the queue authority ------------------------------------------------------------------

    async def acd(self, msg: wire.Message) -> wire.Message:
        """Ask the queue authority (its answer; an ``error`` answer too).

        Raises:
            AcdUnavailable: no agent queue, or no authority answering.
        """
        if self.config.acd is None:
            raise AcdUnavailable("no agent queue is configured (ivr.yaml acd:)")
        path = authority_socket(self.config)
        try:
            return await asyncio.to_thread(wire.request, path, msg, ACD_TIMEOUT)
        except (OSError, wire.WireError) as exc:
            raise AcdUnavailable(f"the queue authority does not answer: {exc}") from None

    async def status(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(agents, queues) as ``ivr agents list --json`` shows them; empty without a queue."""
        try:
            answer = await self.acd(wire.message("status"))
        except AcdUnavailable:
            return [], []
        return list(answer.get("agents", [])), list(answer.get("queues", []))

    # --- metrics ------------------------------------------------------------------------------

    def calls(self) -> tuple[int, list[dict[str, Any]]]:
        """(calls active, [{flow, node, calls}]) from the engine metrics."""
        active, where = 0, []
        for family in self.registry.collect():
            if family.name == "ivr_calls_active":
                active = int(sum(s.value for s in family.samples))
            elif family.name == "ivr_calls_in_node":
                for s in family.samples:
                    if s.value > 0:
                        where.append({"flow": s.labels.get("flow", "?"),
                                      "node": s.labels.get("node", "?"), "calls": int(s.value)})
        where.sort(key=lambda w: (w["flow"], w["node"]))
        return active, where

    def store_failing(self) -> bool:
        """Whether an engine process's call store refuses writes now (it refuses calls then)."""
        return any(s.value > 0 for family in self.registry.collect()
                   if family.name == "ivr_store_failing" for s in family.samples)  # fmt: skip

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(ready, what /healthz says): the server's life, and its store taking records."""
        writable = not self.store_failing()
        return self.state.ready and writable, {**self.state.as_dict(),
                                               "store_writable": writable}

    # --- the call store -----------------------------------------------------------------------

    async def today(self) -> dict[str, Any]:
        """Today's offered, answered, abandoned and service level over every queue (cached for
        :data:`TODAY_EVERY` seconds)."""
        now = time.monotonic()
        if now - self._today_at >= TODAY_EVERY:
            self._today_at = now
            self._today = await asyncio.to_thread(self._read_today)
        return self._today

    def _read_today(self) -> dict[str, Any]:
        conn = connect(self.config.store_path)
        try:
            report = build_report(conn, since=dt.date.today().isoformat(),
                                  service_levels=service_levels_of(self.config))  # fmt: skip
        finally:
            conn.close()
        offered = sum(q.offered for q in report.queues)
        in_time = sum(q.answered_in_time for q in report.queues)
        return {
            "calls": report.calls,
            "offered": offered,
            "answered": sum(q.answered for q in report.queues),
            "abandoned": sum(q.abandoned - q.short_abandoned for q in report.queues),
            "service_level": round(in_time / offered, 4) if offered else None,
        }

    async def snapshot(self) -> dict[str, Any]:
        """Everything the wallboard shows, as one JSON-able mapping."""
        agents, queues = await self.status()
        active, where = self.calls()
        live = await asyncio.to_thread(live_calls, self.config.store_path, active)
        ready, health = self.health()
        return {"health": {**health, "ready": ready}, "active": active, "calls": where,
                "live": live, "queues": queues, "agents": agents, "today": await self.today(),
                "at": round(time.time(), 3)}  # fmt: skip
