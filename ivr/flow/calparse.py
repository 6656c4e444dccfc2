"""Building the ``calendars:`` section with a position for every problem.

The syntax itself (days, ranges, dates, time zones) belongs to :mod:`ivr.flow.calendar`, which
the ``hours`` node also uses at run time; this module applies it one field at a time so that a
bad range points at its own line rather than at the calendar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ivr.flow import calendar as cal
from ivr.flow.errors import Diagnostic
from ivr.flow.model import Calendar
from ivr.flow.yamlload import Positions, child

_Report = Callable[[str, str, bool], None]


def build_calendar(
    name: str, raw: dict[str, Any], ptr: str, pos: Positions, out: list[Diagnostic]
) -> Calendar:
    """The Calendar for ``raw`` (schema-valid); problems are appended to ``out``."""

    def report(at: str, message: str, key: bool = False) -> None:
        where = pos.key(at) if key else pos.value(at)
        out.append(Diagnostic(where, f"calendar '{name}': {message}", stage="semantic"))

    timezone = str(raw["timezone"])
    try:
        cal.zone(timezone)
    except ValueError as exc:
        report(child(ptr, "timezone"), str(exc), False)
    weekly = _weekly(raw.get("weekly") or {}, child(ptr, "weekly"), report)
    holidays = set()
    for index, text in enumerate(raw.get("holidays") or ()):
        try:
            holidays.add(cal.parse_date(text))
        except ValueError as exc:
            report(child(child(ptr, "holidays"), index), str(exc), False)
    overrides = _overrides(raw.get("overrides") or (), child(ptr, "overrides"), report)
    return Calendar(name, timezone, weekly, frozenset(holidays), overrides, pos.key(ptr))


def _weekly(raw: dict[str, Any], ptr: str, report: _Report) -> dict[int, cal.Ranges]:
    weekly: dict[int, cal.Ranges] = {}
    seen_in: dict[int, str] = {}
    for spec, hours in raw.items():
        at = child(ptr, spec)
        try:
            days = cal.parse_days(spec)
        except ValueError as exc:
            report(at, str(exc), True)
            continue
        try:
            ranges = cal.parse_ranges(hours)
        except ValueError as exc:
            report(at, str(exc), False)
            continue
        for day in days:
            if day in seen_in:
                report(at, f"{cal.DAY_NAMES[day]} is already given in '{seen_in[day]}'", True)
            seen_in[day] = spec
            if ranges:  # a day without ranges is closed, like a day not listed
                weekly[day] = ranges
    return weekly


def _overrides(raw: Any, ptr: str, report: _Report) -> dict[str, cal.Ranges]:
    out: dict[str, cal.Ranges] = {}
    for index, item in enumerate(raw):
        at = child(ptr, index)
        try:
            date = cal.parse_date(item["date"])
        except ValueError as exc:
            report(child(at, "date"), str(exc), False)
            continue
        closed = item.get("closed") is True
        if ("hours" in item) == closed:
            report(at, f"the override for {date} needs either hours: or closed: true", False)
            continue
        if date in out:
            report(child(at, "date"), f"{date} has two overrides", False)
        try:
            out[date] = () if closed else cal.parse_ranges(item["hours"])
        except ValueError as exc:
            report(child(at, "hours"), str(exc), False)
    return out
