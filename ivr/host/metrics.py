"""The engine's Prometheus metrics, kept from the step events every call emits (docs/CONSOLE.md).

One :class:`EngineMetrics` per engine host. It is a step-event sink beside the store's: calls
active and per flow node, calls by outcome, the time from a caller's key to the next prompt,
webhook latency and errors; the host also gives it the speech decisions (from
:class:`~ivr.host.speech.CallSpeech`) and the transport the gaps between a stream's RTP
packets.

Several engine processes (``ivr serve --workers N``) report through prometheus-client's
multiprocess mode: the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` to a private folder before it
starts the workers, every metric of a worker then lives in a memory-mapped file there, and the
console (in the supervisor) sums them on each scrape. Why that and not snapshots pushed over a
socket: histograms and counters merge exactly (the library sums buckets), a worker that dies
keeps its counts (its live gauges are dropped with ``mark_process_dead``), and a worker does no
I/O per call beyond writing a few mapped bytes. The gauges are ``livesum``: only living workers
count. In one process (a single ``ivr serve``) the same metrics sit in :attr:`registry`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ivr.core import events as ev
from ivr.core.events import Event

# Seconds. A gap is observed only past the normal 20 ms cadence (ivr/rtp/receiver.py).
RTP_GAP_BUCKETS = (0.03, 0.04, 0.06, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
KEY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0)
ASR_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
WEBHOOK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_LABEL = 64  # characters of a flow or node id in a label (ids are checked; this is the net)


class EngineMetrics:
    """The metrics of one engine process (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.calls_active = Gauge("ivr_calls_active", "Calls in a flow now",
                                  registry=reg, multiprocess_mode="livesum")  # fmt: skip
        self.calls_in_node = Gauge("ivr_calls_in_node", "Calls in a flow now, by the node they "
                                   "are at", ["flow", "node"], registry=reg,
                                   multiprocess_mode="livesum")  # fmt: skip
        self.calls = Counter("ivr_calls", "Calls ended, by outcome", ["outcome"], registry=reg)
        self.rtp_gap = Histogram("ivr_rtp_gap_seconds", "Gaps between RTP packets received on a "
                                 "call longer than the 20 ms cadence", registry=reg,
                                 buckets=RTP_GAP_BUCKETS)  # fmt: skip
        self.key_to_prompt = Histogram("ivr_key_to_prompt_seconds", "From a caller's key to the "
                                       "next prompt", registry=reg,
                                       buckets=KEY_BUCKETS)  # fmt: skip
        self.asr_decisions = Counter("ivr_asr_decisions", "Speech recognition results, by "
                                     "decision (match, no_match, no_speech)", ["decision"],
                                     registry=reg)  # fmt: skip
        self.asr_latency = Histogram("ivr_asr_latency_seconds", "Audio after the end of speech "
                                     "until the recognizer decided", registry=reg,
                                     buckets=ASR_BUCKETS)  # fmt: skip
        self.webhook_latency = Histogram("ivr_webhook_seconds", "Action (webhook) durations",
                                         registry=reg, buckets=WEBHOOK_BUCKETS)  # fmt: skip
        self.webhook_errors = Counter("ivr_webhook_errors", "Actions (webhooks) that failed",
                                      registry=reg)  # fmt: skip
        # livemax: a worker that died no longer says its store fails (mark_process_dead)
        self.store_failing = Gauge("ivr_store_failing", "1 while the call store refuses "
                                   "writes (new calls are refused meanwhile)", registry=reg,
                                   multiprocess_mode="livemax")  # fmt: skip
        self.store_write_failures = Counter("ivr_store_write_failures", "Records the call store "
                                            "could not write", registry=reg)  # fmt: skip
        self._where: dict[str, tuple[str, str | None]] = {}  # call -> (flow, node)
        self._key_at: dict[str, float] = {}  # call -> event time of its last key

    # --- step events --------------------------------------------------------------------------

    def sink(self, event: Event) -> None:
        """Take one step event (a sink of every session)."""
        kind = event.kind
        if kind == ev.CALL_START:
            self._where[event.call_id] = (str(event.data.get("flow", "?"))[:MAX_LABEL], None)
            self.calls_active.inc()
        elif kind == ev.NODE_ENTER:
            self._moved(event.call_id, event.node)
        elif kind == ev.INPUT and event.data.get("mode") == "dtmf":
            self._key_at[event.call_id] = event.t
        elif kind == ev.PROMPT:
            pressed = self._key_at.pop(event.call_id, None)
            if pressed is not None:
                self.key_to_prompt.observe(max(0.0, event.t - pressed))
        elif kind == ev.ACTION:
            self.webhook_latency.observe(float(event.data.get("duration") or 0.0))
            if not event.data.get("ok"):
                self.webhook_errors.inc()
        elif kind == ev.CALL_END:
            self._ended(event)

    def _moved(self, call_id: str, node: str | None) -> None:
        where = self._where.get(call_id)
        if where is None:
            return
        flow, before = where
        if before is not None:
            self.calls_in_node.labels(flow, before).dec()
        now = (node or "?")[:MAX_LABEL]
        self.calls_in_node.labels(flow, now).inc()
        self._where[call_id] = (flow, now)

    def _ended(self, event: Event) -> None:
        self._key_at.pop(event.call_id, None)
        where = self._where.pop(event.call_id, None)
        if where is None:
            return
        flow, node = where
        if node is not None:
            self.calls_in_node.labels(flow, node).dec()
        self.calls_active.dec()
        self.calls.labels(str(event.data.get("outcome") or "unknown")[:MAX_LABEL]).inc()

    # --- from speech and media ----------------------------------------------------------------

    def asr(self, decision: str, latency: float | None) -> None:
        """One recognition result: ``match``, ``no_match`` or ``no_speech``; ``latency`` the
        audio seconds after speech ended until the decision (None: no speech)."""
        self.asr_decisions.labels(decision).inc()
        if latency is not None:
            self.asr_latency.observe(max(0.0, latency))

    def store_health(self, failing: bool) -> None:
        """The call store refused a write (True) or writes again (False); from its thread."""
        self.store_failing.set(1 if failing else 0)
        if failing:
            self.store_write_failures.inc()

    def rtp_gap_seen(self, seconds: float) -> None:
        """A gap between two packets of a call's stream, past the usual cadence."""
        self.rtp_gap.observe(seconds)
