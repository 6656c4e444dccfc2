"""Business hours: parsing, and open/closed/holiday at instants around time-zone boundaries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ivr.flow.calendar import (
    format_ranges,
    parse_calendar,
    parse_clock,
    parse_date,
    parse_days,
    parse_ranges,
    parse_weekly,
    status,
    zone,
)
from ivr.flow.model import Calendar

MON, TUE, WED, THU, FRI, SAT, SUN = range(7)
H = 60


def at(text: str) -> float:
    """Epoch seconds of an ISO timestamp with offset."""
    return dt.datetime.fromisoformat(text).timestamp()


def branches() -> Calendar:
    return parse_calendar(
        "branches",
        {
            "timezone": "Asia/Shanghai",
            "weekly": {"mon-fri": "09:00-12:00,13:00-17:00", "sat": "09:00-12:00"},
            "holidays": ["2026-10-01", "2026-10-02", "2026-12-25"],
            "overrides": [
                {"date": "2026-12-24", "hours": "09:00-12:00"},
                {"date": "2026-12-31", "closed": True},
                {"date": "2026-10-02", "hours": "10:00-14:00"},  # a holiday opened for a half day
                {"date": "2026-12-25", "closed": True},  # closed on a holiday: still a holiday
                {"date": "2027-01-03", "hours": "10:00-16:00"},  # a Sunday opened
            ],
        },
    )


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "days"),
    [
        ("mon-fri", [MON, TUE, WED, THU, FRI]),
        ("sat", [SAT]),
        ("sun", [SUN]),
        ("mon,wed", [MON, WED]),
        ("Mon, Wed ,FRI", [MON, WED, FRI]),
        ("monday-tuesday", [MON, TUE]),
        ("tues,thurs", [TUE, THU]),
        ("sun-thu", [SUN, MON, TUE, WED, THU]),  # a week that starts on Sunday wraps
        ("fri-mon", [FRI, SAT, SUN, MON]),
        ("mon-wed,sat", [MON, TUE, WED, SAT]),
        ("wed-wed", [WED]),
    ],
)
def test_parse_days(key: str, days: list[int]) -> None:
    assert parse_days(key) == days


@pytest.mark.parametrize("key", ["mo", "funday", "mon-xyz", "", "mon,,tue", "1"])
def test_parse_days_refuses_unknown_days(key: str) -> None:
    with pytest.raises(ValueError, match=r"unknown day .* \(use mon, tue, wed, thu, fri, sat, sun"):
        parse_days(key)


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("09:00-17:00", ((9 * H, 17 * H),)),
        ("09:00-12:00,13:00-17:00", ((9 * H, 12 * H), (13 * H, 17 * H))),
        ("13:00-17:00, 09:00-12:00", ((9 * H, 12 * H), (13 * H, 17 * H))),  # sorted
        ("9:30-12:00", ((9 * H + 30, 12 * H),)),
        ("00:00-24:00", ((0, 24 * H),)),
        ("12:00-13:00,13:00-14:00", ((12 * H, 13 * H), (13 * H, 14 * H))),  # touching is fine
        (["09:00-12:00", "13:00-17:00"], ((9 * H, 12 * H), (13 * H, 17 * H))),
        ("closed", ()),
        ("", ()),
        ([], ()),
    ],
)
def test_parse_ranges(text: Any, ranges: tuple[tuple[int, int], ...]) -> None:
    assert parse_ranges(text) == ranges


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25:00-26:00", "bad time '25:00' (use HH:MM from 00:00 to 23:59)"),
        ("09:00-25:00", "bad time '25:00' (use HH:MM from 00:00 to 24:00)"),
        ("24:00-24:00", "bad time '24:00' (use HH:MM from 00:00 to 23:59)"),
        ("09:60-10:00", "bad time '09:60'"),
        ("9-17", "bad time '9'"),
        ("0900-1700", "bad time '0900'"),
        ("09:00", "bad range '09:00' (use HH:MM-HH:MM, e.g. 09:00-17:00)"),
        ("17:00-09:00", "range '17:00-09:00' ends before it starts (a range cannot cross midnight"),
        ("09:00-09:00", "range '09:00-09:00' ends before it starts"),
        ("09:00-13:00,12:00-17:00", "ranges 09:00-13:00 and 12:00-17:00 overlap"),
        ("09:00-12:00,closed", "bad range 'closed'"),
    ],
)
def test_parse_ranges_refuses_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_ranges(text)
    assert str(info.value).startswith(message)


def test_parse_weekly_expands_days_and_leaves_unlisted_days_closed() -> None:
    weekly = parse_weekly({"mon-fri": "09:00-12:00,13:00-17:00", "sat": "09:00-12:00",
                           "sun": "closed"})
    assert sorted(weekly) == [MON, TUE, WED, THU, FRI, SAT]
    assert weekly[WED] == ((9 * H, 12 * H), (13 * H, 17 * H))
    assert weekly[SAT] == ((9 * H, 12 * H),)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"mon-fri": "25:00-26:00"}, "mon-fri: bad time '25:00'"),
        ({"mon-fri": "17:00-09:00"}, "mon-fri: range '17:00-09:00' ends before it starts"),
        ({"mon-frx": "09:00-17:00"}, "mon-frx: unknown day 'frx'"),
        ({"mon-fri": "09:00-17:00", "fri": "09:00-12:00"},
         "fri is given twice (in 'mon-fri' and 'fri')"),
    ],
)
def test_parse_weekly_refuses_bad_input(mapping: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_weekly(mapping)
    assert str(info.value).startswith(message)


def test_clock_dates_and_zones() -> None:
    assert parse_clock("17:30") == 17 * H + 30
    assert parse_clock("24:00", end=True) == 24 * H
    assert format_ranges(((9 * H, 12 * H), (13 * H + 30, 24 * H))) == "09:00-12:00,13:30-24:00"
    assert format_ranges(()) == "closed"
    assert parse_date("2026-10-01") == "2026-10-01"
    assert parse_date(dt.date(2026, 10, 1)) == "2026-10-01"
    with pytest.raises(ValueError, match=r"bad date '2026-02-30' \(use YYYY-MM-DD\)"):
        parse_date("2026-02-30")
    assert zone("Asia/Shanghai").key == "Asia/Shanghai"
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        zone("Mars/Olympus")
    with pytest.raises(ValueError, match="unknown timezone"):
        zone("../etc/passwd")


def test_parse_calendar_refuses_an_override_without_hours() -> None:
    with pytest.raises(ValueError, match="override for 2026-12-24 needs 'hours' or 'closed: true'"):
        parse_calendar("x", {"timezone": "UTC", "overrides": [{"date": "2026-12-24"}]})
    with pytest.raises(ValueError, match="unknown timezone"):
        parse_calendar("x", {"timezone": "Nowhere/City", "weekly": {}})


# --- status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Monday 2027-01-04 in Shanghai (UTC+8)
        ("2027-01-04T08:59:59+08:00", "closed"),
        ("2027-01-04T09:00:00+08:00", "open"),
        ("2027-01-04T11:59:59+08:00", "open"),
        ("2027-01-04T12:00:00+08:00", "closed"),  # lunch break of a split day
        ("2027-01-04T12:30:00+08:00", "closed"),
        ("2027-01-04T13:00:00+08:00", "open"),
        ("2027-01-04T16:59:00+08:00", "open"),
        ("2027-01-04T17:00:00+08:00", "closed"),
        # the same instants written in UTC: the calendar's zone decides, not the caller's
        ("2027-01-04T01:00:00+00:00", "open"),  # 09:00 in Shanghai
        ("2027-01-04T00:59:59+00:00", "closed"),
        ("2027-01-04T09:00:00+00:00", "closed"),  # 17:00 in Shanghai
        # Sunday 2027-01-03 23:30 UTC is Monday 07:30 in Shanghai; 01:30 UTC Monday is open
        ("2027-01-03T23:30:00+00:00", "closed"),
        ("2027-01-04T01:30:00+00:00", "open"),
        # Friday 16:30 UTC is Saturday 00:30 in Shanghai: closed; Saturday 09:00 local open
        ("2027-01-08T16:30:00+00:00", "closed"),
        ("2027-01-09T09:30:00+08:00", "open"),
        ("2027-01-09T12:00:00+08:00", "closed"),
        ("2027-01-10T10:00:00+08:00", "closed"),  # an ordinary Sunday
        # holidays
        ("2026-10-01T10:00:00+08:00", "holiday"),
        ("2026-10-01T03:00:00+08:00", "holiday"),  # all day
        ("2026-09-30T16:30:00+00:00", "holiday"),  # 00:30 on Oct 1 in Shanghai
        ("2026-09-30T15:30:00+00:00", "closed"),  # 23:30 on Sep 30 in Shanghai (a Wednesday)
        ("2026-10-02T11:00:00+08:00", "open"),  # a holiday with override hours
        ("2026-10-02T15:00:00+08:00", "closed"),  # ... outside them: closed, not holiday
        ("2026-12-25T10:00:00+08:00", "holiday"),  # closed override on a holiday
        # overrides
        ("2026-12-24T10:00:00+08:00", "open"),  # Thursday, shortened day
        ("2026-12-24T13:30:00+08:00", "closed"),  # the weekly afternoon is replaced
        ("2026-12-31T10:00:00+08:00", "closed"),  # closed override: closed, not holiday
        ("2027-01-03T11:00:00+08:00", "open"),  # a Sunday opened by an override
        ("2027-01-03T16:00:00+08:00", "closed"),
    ],
)
def test_status(when: str, expected: str) -> None:
    assert status(branches(), at(when)) == expected


def test_status_follows_daylight_saving_time() -> None:
    hours = {"mon-sun": "09:00-17:00"}
    london = parse_calendar("uk", {"timezone": "Europe/London", "weekly": hours})
    # winter: GMT (UTC+0); summer: BST (UTC+1)
    assert status(london, at("2026-01-15T08:30:00+00:00")) == "closed"
    assert status(london, at("2026-01-15T09:00:00+00:00")) == "open"
    assert status(london, at("2026-07-15T08:30:00+00:00")) == "open"  # 09:30 BST
    assert status(london, at("2026-07-15T16:30:00+00:00")) == "closed"  # 17:30 BST
    # the spring-forward Sunday 2026-03-29: 01:00 GMT becomes 02:00 BST
    assert status(london, at("2026-03-29T08:00:00+00:00")) == "open"  # 09:00 BST
    assert status(london, at("2026-03-29T07:59:59+00:00")) == "closed"


def test_status_with_an_all_day_calendar_and_midnight_edges() -> None:
    always = parse_calendar("24x7", {"timezone": "UTC", "weekly": {"mon-sun": "00:00-24:00"}})
    assert status(always, at("2026-05-05T00:00:00+00:00")) == "open"
    assert status(always, at("2026-05-05T23:59:59+00:00")) == "open"
    night = Calendar("night", "UTC", {MON: ((22 * H, 24 * H),), TUE: ((0, 2 * H),)})
    assert status(night, at("2026-05-04T23:30:00+00:00")) == "open"  # Monday night
    assert status(night, at("2026-05-05T01:30:00+00:00")) == "open"  # continues on Tuesday
    assert status(night, at("2026-05-05T02:00:00+00:00")) == "closed"
