"""Identifiers a SIP user agent makes up: Call-IDs, tags, branches, cnonces, SDP session ids.

One :class:`IdGenerator` per user agent. Seeded, it yields the same sequence every run, so a test
can predict (or at least reproduce) every id on the wire (STYLE rule 8). Unseeded, it draws from
the operating system's random source, because tags and Call-IDs must be hard to guess
(RFC 3261 §19.3: at least 32 bits of randomness).
"""

from __future__ import annotations

import random

from ivr.sip.fields import MAGIC_COOKIE

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


class IdGenerator:
    """Makes the random parts of SIP messages.

    Args:
        seed: Any hashable seed for a reproducible sequence, or None for OS randomness.
    """

    def __init__(self, seed: int | str | None = None) -> None:
        self._rng: random.Random = random.SystemRandom() if seed is None else random.Random(seed)

    def token(self, length: int = 16) -> str:
        """``length`` random characters from [0-9a-z] (about 5.2 bits each)."""
        # One draw per token (one urandom call unseeded), not one per character.
        value = self._rng.getrandbits(6 * length)
        out = []
        for _ in range(length):
            value, digit = divmod(value, 36)
            out.append(_ALPHABET[digit])
        return "".join(out)

    def call_id(self, host: str | None = None) -> str:
        """A new Call-ID, ``token@host`` when a host is given."""
        token = self.token(24)
        return f"{token}@{host}" if host else token

    def tag(self) -> str:
        """A new From/To tag (62 bits)."""
        return self.token(12)

    def branch(self) -> str:
        """A new Via branch with the RFC 3261 magic cookie."""
        return MAGIC_COOKIE + self.token(16)

    def cnonce(self) -> str:
        """A client nonce for digest authentication."""
        return self.token(16)

    def session_id(self) -> int:
        """An SDP o= session id (kept below 2**62 so every peer can read it as a signed int)."""
        return self._rng.randrange(1, 2**62)

    def uniform(self, low: float, high: float) -> float:
        """A float in [low, high] (Retry-After jitter and the like)."""
        return self._rng.uniform(low, high)
