"""/metrics: the engine metrics of every process, and the queue authority's figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ivr.acd.model import AgentState


class QueueFigures(Collector):
    """Queues and agents as the authority said a moment ago (one status answer)."""

    def __init__(self, agents: list[dict[str, Any]], queues: list[dict[str, Any]]) -> None:
        self.agents = agents
        self.queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        waiting = GaugeMetricFamily("ivr_queue_waiting", "Callers waiting in a queue",
                                    labels=["queue"])  # fmt: skip
        longest = GaugeMetricFamily("ivr_queue_longest_wait_seconds", "The longest wait of the "
                                    "callers in a queue now", labels=["queue"])  # fmt: skip
        for q in self.queues:
            name = str(q.get("name", "?"))
            waiting.add_metric([name], float(q.get("waiting", 0)))
            longest.add_metric([name], float(q.get("longest_wait", 0.0)))
        agents = GaugeMetricFamily("ivr_agents", "Agents by state", labels=["state"])
        counts = {state.value: 0 for state in AgentState}
        for a in self.agents:
            state = str(a.get("state", "?"))
            if state in counts:
                counts[state] += 1
        for state, count in counts.items():
            agents.add_metric([state], float(count))
        yield from (waiting, longest, agents)


def metrics_text(engine: CollectorRegistry, agents: list[dict[str, Any]],
                 queues: list[dict[str, Any]]) -> bytes:  # fmt: skip
    """The Prometheus text exposition of everything."""
    figures = CollectorRegistry()
    figures.register(QueueFigures(agents, queues))
    return generate_latest(engine) + generate_latest(figures)
