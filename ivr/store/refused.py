"""Calls refused before an answer: what the ``refused`` table keeps, made safe and bounded.

A refusal is offered traffic the IVR did not answer (503 when full or draining, 404 for a number
without a flow, 488 for an offer without a usable codec, pyVoIP's 486 ...); the report's answer
rate counts it. Everything in a row but the status comes from the caller's INVITE, so every text
is cut to :data:`MAX_TEXT` characters and stripped of control characters (a report must not print
a caller's escape sequences), and a flood is bounded: beyond :data:`MAX_PER_SECOND` rows in one
wall-clock second the store merges the rest into one row per status (``count`` > 1, no caller
details), so a storm of INVITEs costs a few rows a second, not one row each.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, replace

MAX_TEXT = 64  # characters of caller, called number and reason kept
MAX_CALL_ID = 128
MAX_PER_SECOND = 50  # refusal rows a second; beyond, merged per status
MERGED = "merged: over the rate cap"

INSERT_REFUSED = (
    "INSERT INTO refused (at, call_id, caller, called, status, reason, transport, qa, count) "
    "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
    "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    "json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]'), "
    "json_extract(value, '$[8]') FROM json_each(?)"
)


@dataclass(frozen=True)
class RefusedCall:
    """One INVITE turned down before an answer.

    Attributes:
        at: Wall clock, seconds since the epoch.
        status: The final response sent (300-699).
        qa: A QA call (marked like answered QA calls; see docs/REPORTS.md).
        count: Refusals this row stands for (> 1 only for rows merged by the rate cap).
    """

    at: float
    call_id: str
    caller: str
    called: str
    status: int
    reason: str
    transport: str
    qa: bool = False
    count: int = 1

    def row(self) -> tuple[object, ...]:
        """The row as stored: texts cleaned and cut, the status kept in 300-699."""
        status = self.status if 300 <= self.status <= 699 else 0
        return (float(self.at), clean(self.call_id, MAX_CALL_ID), clean(self.caller),
                clean(self.called), status, clean(self.reason), clean(self.transport),
                int(bool(self.qa)), max(1, int(self.count)))  # fmt: skip


def clean(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` without control or format characters, at most ``limit`` characters."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    kept = [ch for ch in text[: limit * 4] if unicodedata.category(ch)[0] != "C"]
    return "".join(kept)[:limit]


class RateCap:
    """At most :data:`MAX_PER_SECOND` refusal rows per wall-clock second; the rest merged.

    Thread-safe: pyVoIP refuses calls on its own threads, ``ivr serve`` on its event loop.
    """

    def __init__(self, per_second: int = MAX_PER_SECOND) -> None:
        self.per_second = per_second
        self._lock = threading.Lock()
        self._second = -1
        self._used = 0
        self._merged: dict[tuple[int, bool], RefusedCall] = {}  # (status, qa) -> merged row

    def admit(self, call: RefusedCall) -> list[RefusedCall]:
        """The rows to write now for ``call``: itself, or nothing while it is merged, plus the
        merged rows of an earlier second."""
        with self._lock:
            out: list[RefusedCall] = []
            second = int(call.at)
            if second != self._second:
                out += self._take_merged()
                self._second, self._used = second, 0
            if self._used < self.per_second:
                self._used += 1
                out.append(call)
                return out
            key = (call.status, call.qa)
            held = self._merged.get(key)
            if held is None:
                held = RefusedCall(call.at, "", "", "", call.status, MERGED, call.transport,
                                   call.qa, 0)
            self._merged[key] = replace(held, count=held.count + call.count)
            return out

    def expired(self, now: float) -> list[RefusedCall]:
        """The merged rows of a second that is over (the store's writer asks at each wake, so
        a flood's count reaches the file soon after the flood, not at the next refusal)."""
        with self._lock:
            return self._take_merged() if self._merged and int(now) > self._second else []

    def drain(self) -> list[RefusedCall]:
        """The merged rows held so far (at a flush or close)."""
        with self._lock:
            return self._take_merged()

    def _take_merged(self) -> list[RefusedCall]:
        rows, self._merged = list(self._merged.values()), {}
        return rows
