"""The engine's metrics from step events (ivr/host/metrics.py)."""

from __future__ import annotations

from prometheus_client import generate_latest

from ivr.core import events as ev
from ivr.core.events import Event
from ivr.host.metrics import EngineMetrics


def value(metrics: EngineMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels or None)


def feed(metrics: EngineMetrics, call: str, steps: list[tuple[float, str, str | None, dict]]
         ) -> None:  # fmt: skip
    for seq, (t, kind, node, data) in enumerate(steps):
        metrics.sink(Event(call, seq, t, kind, node, data))


def test_calls_are_followed_from_node_to_node_and_counted_by_outcome() -> None:
    metrics = EngineMetrics()
    feed(metrics, "c1", [(0.0, ev.CALL_START, None, {"flow": "bank"}),
                         (0.0, ev.NODE_ENTER, "menu", {"kind": "menu"})])  # fmt: skip
    feed(metrics, "c2", [(0.0, ev.CALL_START, None, {"flow": "bank"}),
                         (0.0, ev.NODE_ENTER, "menu", {"kind": "menu"}),
                         (1.0, ev.NODE_ENTER, "balance", {"kind": "action"})])  # fmt: skip
    assert value(metrics, "ivr_calls_active") == 2
    assert value(metrics, "ivr_calls_in_node", flow="bank", node="menu") == 1
    assert value(metrics, "ivr_calls_in_node", flow="bank", node="balance") == 1
    feed(metrics, "c2", [(2.0, ev.CALL_END, None, {"outcome": "self_service"})])
    assert value(metrics, "ivr_calls_active") == 1
    assert value(metrics, "ivr_calls_in_node", flow="bank", node="balance") == 0
    assert value(metrics, "ivr_calls_total", outcome="self_service") == 1
    feed(metrics, "c3", [(0.0, ev.CALL_END, None, {"outcome": "failed"})])  # never started
    assert value(metrics, "ivr_calls_total", outcome="failed") is None
    assert value(metrics, "ivr_calls_active") == 1


def test_key_to_prompt_webhooks_speech_and_rtp_gaps() -> None:
    metrics = EngineMetrics()
    feed(metrics, "c1", [
        (0.0, ev.CALL_START, None, {"flow": "bank"}),
        (0.0, ev.PROMPT, "menu", {"prompt": "welcome"}),  # no key before: not observed
        (3.0, ev.INPUT, "menu", {"mode": "dtmf", "value": "1"}),
        (3.25, ev.PROMPT, "next", {"prompt": "next"}),
        (4.0, ev.ACTION, "lookup", {"ok": True, "duration": 0.2}),
        (5.0, ev.ACTION, "lookup", {"ok": False, "duration": 3.0, "error": "timeout"}),
    ])  # fmt: skip
    assert value(metrics, "ivr_key_to_prompt_seconds_count") == 1
    assert value(metrics, "ivr_key_to_prompt_seconds_sum") == 0.25
    assert value(metrics, "ivr_webhook_seconds_count") == 2
    assert value(metrics, "ivr_webhook_errors_total") == 1
    metrics.asr("match", 0.6)
    metrics.asr("no_speech", None)
    assert value(metrics, "ivr_asr_decisions_total", decision="match") == 1
    assert value(metrics, "ivr_asr_decisions_total", decision="no_speech") == 1
    assert value(metrics, "ivr_asr_latency_seconds_count") == 1
    metrics.rtp_gap_seen(0.12)
    assert value(metrics, "ivr_rtp_gap_seconds_bucket", le="0.2") == 1
    assert b"ivr_rtp_gap_seconds_bucket" in generate_latest(metrics.registry)
