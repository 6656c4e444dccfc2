"""Shared ground below the engine and the SIP stack: clocks, call identity, step events."""
