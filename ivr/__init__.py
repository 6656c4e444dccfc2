"""ivr: an offline, self-hosted IVR self-service voice navigation engine."""

__version__ = "0.1.0"
