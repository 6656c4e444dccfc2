"""The web console of ``ivr serve``: wallboard, supervisor controls, /healthz and /metrics
(docs/CONSOLE.md)."""
