"""The live engine: SIP calls, media and flows wired together (``ivr serve``)."""
