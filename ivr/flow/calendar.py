"""Business hours: parsing the ``calendars:`` section of a flow and asking open/closed/holiday.

The loader builds a :class:`~ivr.flow.model.Calendar` with :func:`parse_calendar` (or with
:func:`parse_weekly`, :func:`parse_ranges`, :func:`parse_date` and :func:`zone` one field at a
time, to point at the exact line); ``hours`` nodes ask :func:`status` at the call's time.

Times are minutes from local midnight; a range is ``[start, end)``, so ``09:00-17:00`` is open at
16:59 and closed at 17:00, and ``24:00`` is allowed as an end. A range cannot cross midnight:
write ``22:00-24:00`` on one day and ``00:00-02:00`` on the next.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.flow.model import NOWHERE, Calendar, Pos

Ranges = tuple[tuple[int, int], ...]

OPEN, CLOSED, HOLIDAY = "open", "closed", "holiday"
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_CLOSED_WORDS = frozenset({"", "closed", "none"})


@functools.lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The time zone called ``name`` (``Asia/Shanghai``); ValueError if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (use an IANA name such as Asia/Shanghai)") \
            from None


def parse_clock(text: str, *, end: bool = False) -> int:
    """Minutes from midnight for ``HH:MM``; ``24:00`` only when ``end`` is true."""
    match = _CLOCK.fullmatch(text.strip())
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if minute < 60 and (hour < 24 or (end and hour == 24 and minute == 0)):
            return hour * 60 + minute
    top = "24:00" if end else "23:59"
    raise ValueError(f"bad time {text.strip()!r} (use HH:MM from 00:00 to {top})")


def format_clock(minutes: int) -> str:
    """``HH:MM`` for minutes from midnight."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_ranges(ranges: Ranges) -> str:
    """``09:00-12:00,13:00-17:00``, or ``closed`` for no ranges."""
    if not ranges:
        return "closed"
    return ",".join(f"{format_clock(s)}-{format_clock(e)}" for s, e in ranges)


def parse_ranges(text: str | Sequence[str]) -> Ranges:
    """Ranges from ``"09:00-17:00"``, ``"09:00-12:00,13:00-17:00"`` or a list of such texts.

    ``"closed"`` (or an empty text or list) is no ranges. The result is sorted.

    Raises:
        ValueError: a malformed range, a bad time, an end not after its start, or overlap.
    """
    items = [text] if isinstance(text, str) else list(text)
    pieces = [p.strip() for item in items for p in str(item).split(",")]
    if all(p.lower() in _CLOSED_WORDS for p in pieces):
        return ()
    ranges = []
    for piece in pieces:
        start_text, dash, end_text = piece.partition("-")
        if not dash:
            raise ValueError(f"bad range {piece!r} (use HH:MM-HH:MM, e.g. 09:00-17:00)")
        start, end = parse_clock(start_text), parse_clock(end_text, end=True)
        if end <= start:
            raise ValueError(
                f"range {piece!r} ends before it starts (a range cannot cross midnight; "
                "split it over two days)"
            )
        ranges.append((start, end))
    ranges.sort()
    for (s1, e1), (s2, e2) in itertools.pairwise(ranges):
        if s2 < e1:
            raise ValueError(
                f"ranges {format_ranges(((s1, e1),))} and {format_ranges(((s2, e2),))} overlap"
            )
    return tuple(ranges)


def parse_day(text: str) -> int:
    """Weekday number (0 = Monday) for ``mon``, ``Monday``, ``tues``, ``thu`` ..."""
    word = text.strip().lower()
    if len(word) >= 3:
        for number, name in enumerate(DAY_NAMES):
            if name.startswith(word):
                return number
    raise ValueError(f"unknown day {text.strip()!r} (use mon, tue, wed, thu, fri, sat, sun)")


def parse_days(key: str) -> list[int]:
    """Weekdays for ``"mon-fri"``, ``"sat"``, ``"mon,wed"``, ``"sun-thu"`` (ranges may wrap)."""
    days: list[int] = []
    for item in str(key).split(","):
        first, dash, last = item.partition("-")
        if not dash:
            days.append(parse_day(first))
            continue
        start, stop = parse_day(first), parse_day(last)
        days.extend((start + i) % 7 for i in range((stop - start) % 7 + 1))
    return days


def parse_weekly(mapping: Mapping[str, Any]) -> dict[int, Ranges]:
    """The weekly hours: ``{"mon-fri": "09:00-17:00", "sat": "09:00-12:00"}``.

    Days not named are closed (absent from the result). A value may be a text, a list of texts
    or ``closed``.

    Raises:
        ValueError: an unknown day, a day named twice, or a bad range (the message quotes it).
    """
    weekly: dict[int, Ranges] = {}
    seen_in: dict[int, str] = {}
    for key, value in mapping.items():
        try:
            days = parse_days(key)
            ranges = parse_ranges(value if isinstance(value, (str, list, tuple)) else str(value))
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
        for day in days:
            if day in seen_in:
                raise ValueError(
                    f"{DAY_NAMES[day][:3]} is given twice (in {seen_in[day]!r} and {key!r})"
                )
            seen_in[day] = str(key)
            if ranges:
                weekly[day] = ranges
    return weekly


def parse_date(text: Any) -> str:
    """A checked ISO date (``2026-10-01``); YAML may already have made it a ``date``."""
    if isinstance(text, dt.date) and not isinstance(text, dt.datetime):
        return text.isoformat()
    try:
        return dt.date.fromisoformat(str(text).strip()).isoformat()
    except ValueError:
        raise ValueError(f"bad date {str(text)!r} (use YYYY-MM-DD)") from None


def parse_calendar(name: str, data: Mapping[str, Any], pos: Pos = NOWHERE) -> Calendar:
    """A Calendar from one entry of a flow's ``calendars:`` mapping (see docs/FLOWS.md).

    Raises:
        ValueError: anything :func:`zone`, :func:`parse_weekly`, :func:`parse_date` or
            :func:`parse_ranges` refuses, or an override without ``hours`` or ``closed``.
    """
    tz = str(data.get("timezone") or "")
    zone(tz)
    weekly = parse_weekly(data.get("weekly") or {})
    holidays = frozenset(parse_date(d) for d in data.get("holidays") or ())
    overrides: dict[str, Ranges] = {}
    for entry in data.get("overrides") or ():
        day = parse_date(entry.get("date"))
        if entry.get("closed") is True:
            overrides[day] = ()
        elif "hours" in entry:
            overrides[day] = parse_ranges(entry["hours"])
        else:
            raise ValueError(f"override for {day} needs 'hours' or 'closed: true'")
    return Calendar(name, tz, weekly, holidays, overrides, pos)


def day_ranges(cal: Calendar, day: dt.date) -> Ranges | None:
    """The opening ranges on ``day``; None for a holiday (no override giving hours)."""
    iso = day.isoformat()
    override = cal.overrides.get(iso)
    if iso in cal.holidays and not override:
        return None
    if override is not None:
        return override
    return cal.weekly.get(day.weekday(), ())


def status(cal: Calendar, epoch_seconds: float) -> str:
    """``"open"``, ``"closed"`` or ``"holiday"`` at ``epoch_seconds`` in the calendar's zone.

    A holiday is closed all day (``"holiday"``) unless an override for that date gives hours;
    then, as on any date with an override, those hours replace the weekly ones.
    """
    local = dt.datetime.fromtimestamp(epoch_seconds, zone(cal.timezone))
    ranges = day_ranges(cal, local.date())
    if ranges is None:
        return HOLIDAY
    minute = local.hour * 60 + local.minute
    return OPEN if any(start <= minute < end for start, end in ranges) else CLOSED
