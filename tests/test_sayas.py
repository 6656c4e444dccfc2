"""Say-as: numbers, money, digits, dates and times in English and Mandarin."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from ivr.flow.sayas import FORMATS, en_integer, say_as, zh_integer


@pytest.mark.parametrize(
    ("n", "zh", "en"),
    [
        (0, "零", "zero"),
        (1, "一", "one"),
        (2, "二", "two"),
        (10, "十", "ten"),
        (11, "十一", "eleven"),
        (15, "十五", "fifteen"),
        (19, "十九", "nineteen"),
        (20, "二十", "twenty"),
        (21, "二十一", "twenty-one"),
        (99, "九十九", "ninety-nine"),
        (100, "一百", "one hundred"),
        (101, "一百零一", "one hundred one"),
        (110, "一百一十", "one hundred ten"),
        (115, "一百一十五", "one hundred fifteen"),
        (999, "九百九十九", "nine hundred ninety-nine"),
        (1000, "一千", "one thousand"),
        (1001, "一千零一", "one thousand one"),
        (1010, "一千零一十", "one thousand ten"),
        (1024, "一千零二十四", "one thousand twenty-four"),
        (1100, "一千一百", "one thousand one hundred"),
        (2020, "二千零二十", "two thousand twenty"),
        (10000, "一万", "ten thousand"),
        (10010, "一万零一十", "ten thousand ten"),
        (10086, "一万零八十六", "ten thousand eighty-six"),
        (10100, "一万零一百", "ten thousand one hundred"),
        (11000, "一万一千", "eleven thousand"),
        (100000, "十万", "one hundred thousand"),
        (110000, "十一万", "one hundred ten thousand"),
        (1000001, "一百万零一", "one million one"),
        (10000000, "一千万", "ten million"),
        (100000000, "一亿", "one hundred million"),
        (100010000, "一亿零一万", "one hundred million ten thousand"),
        (100001000, "一亿零一千", "one hundred million one thousand"),
        (120000305, "一亿二千万零三百零五", "one hundred twenty million three hundred five"),
        (1000000000, "十亿", "one billion"),
        (
            1234567890,
            "十二亿三千四百五十六万七千八百九十",
            "one billion two hundred thirty-four million five hundred sixty-seven thousand "
            "eight hundred ninety",
        ),
        (10**12, "一万亿", "one trillion"),
        (-10, "负十", "minus ten"),
        (-1001, "负一千零一", "minus one thousand one"),
    ],
)
def test_integers_in_words(n: int, zh: str, en: str) -> None:
    assert zh_integer(n) == zh
    assert en_integer(n) == en
    assert say_as(n, "number", "zh") == zh
    assert say_as(n, "number", "en") == en


@pytest.mark.parametrize("n", [10**12 + 1, -(10**12) - 1, 10**15])
def test_integers_beyond_a_trillion_are_refused(n: int) -> None:
    for func in (zh_integer, en_integer):
        with pytest.raises(ValueError, match="too large to say"):
            func(n)


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        ("3.14", "三点一四", "three point one four"),
        (2.5, "二点五", "two point five"),
        ("-0.5", "负零点五", "minus zero point five"),
        ("1,024", "一千零二十四", "one thousand twenty-four"),
        (Decimal("7.10"), "七点一", "seven point one"),
        (" 42 ", "四十二", "forty-two"),
        ("1e3", "一千", "one thousand"),
    ],
)
def test_decimal_numbers(value: Any, zh: str, en: str) -> None:
    assert say_as(value, "number", "zh") == zh
    assert say_as(value, "number", "en") == en


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        (1024.5, "一千零二十四元五角", "one thousand twenty-four yuan and fifty fen"),
        ("1024.50", "一千零二十四元五角", "one thousand twenty-four yuan and fifty fen"),
        ("1024.05", "一千零二十四元零五分", "one thousand twenty-four yuan and five fen"),
        ("1024.55", "一千零二十四元五角五分", "one thousand twenty-four yuan and fifty-five fen"),
        ("1024.00", "一千零二十四元", "one thousand twenty-four yuan"),
        (1024, "一千零二十四元", "one thousand twenty-four yuan"),
        (10.05, "十元零五分", "ten yuan and five fen"),
        (100.1, "一百元一角", "one hundred yuan and ten fen"),
        (0.5, "五角", "fifty fen"),
        (0.05, "五分", "five fen"),
        (0.55, "五角五分", "fifty-five fen"),
        (0, "零元", "zero yuan"),
        (1, "一元", "one yuan"),
        ("1,000,000.00", "一百万元", "one million yuan"),
        (100000000, "一亿元", "one hundred million yuan"),
        (10010.01, "一万零一十元零一分", "ten thousand ten yuan and one fen"),
        (-3.2, "负三元二角", "minus three yuan and twenty fen"),
        ("0.004", "零元", "zero yuan"),  # rounds to the fen
        ("0.005", "一分", "one fen"),  # half up
        ("2.675", "二元六角八分", "two yuan and sixty-eight fen"),  # exact decimal, half up
    ],
)
def test_amounts_in_yuan_jiao_fen(value: Any, zh: str, en: str) -> None:
    assert say_as(value, "amount", "zh") == zh
    assert say_as(value, "amount", "en") == en


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        ("6222", "六二二二", "six two two two"),
        ("0100", "零一零零", "zero one zero zero"),
        (95588, "九五五八八", "nine five five eight eight"),
        ("+86 138-0000",
         "加八六一三八零零零零", "plus eight six one three eight zero zero zero zero"),
        ("12#", "一二井", "one two pound"),
        ("*0", "星零", "star zero"),
        ("", "", ""),
    ],
)
def test_digits_one_by_one(value: Any, zh: str, en: str) -> None:
    assert say_as(value, "digits", "zh") == zh
    assert say_as(value, "digits", "en") == en


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        ("2027-01-04", "二〇二七年一月四日", "January 4, 2027"),
        ("2026-10-01", "二〇二六年十月一日", "October 1, 2026"),
        ("2026-12-31", "二〇二六年十二月三十一日", "December 31, 2026"),
        ("2000-02-29", "二〇〇〇年二月二十九日", "February 29, 2000"),
        ("2027-01-04T10:30:00+08:00", "二〇二七年一月四日", "January 4, 2027"),
        (dt.date(2027, 1, 4), "二〇二七年一月四日", "January 4, 2027"),
        (dt.datetime(2027, 1, 4, 23, 0), "二〇二七年一月四日", "January 4, 2027"),
    ],
)
def test_dates(value: Any, zh: str, en: str) -> None:
    assert say_as(value, "date", "zh") == zh
    assert say_as(value, "date", "en") == en


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        ("10:30", "十点三十分", "ten thirty in the morning"),
        ("10:05", "十点零五分", "ten oh five in the morning"),
        ("10:00", "十点", "ten in the morning"),
        ("09:10", "九点十分", "nine ten in the morning"),
        ("14:30", "十四点三十分", "two thirty in the afternoon"),
        ("02:00", "两点", "two in the morning"),
        ("12:00", "十二点", "noon"),
        ("00:00", "零点", "midnight"),
        ("12:15", "十二点十五分", "twelve fifteen in the afternoon"),
        ("00:45", "零点四十五分", "twelve forty-five in the morning"),
        ("23:59:30", "二十三点五十九分", "eleven fifty-nine in the evening"),
        ("9:00", "九点", "nine in the morning"),
        (dt.time(17, 0), "十七点", "five in the afternoon"),
        ("18:30", "十八点三十分", "six thirty in the evening"),
    ],
)
def test_times(value: Any, zh: str, en: str) -> None:
    assert say_as(value, "time", "zh") == zh
    assert say_as(value, "time", "en") == en


@pytest.mark.parametrize(
    ("value", "fmt", "message"),
    [
        ("abc", "number", "number needs a number, got 'abc'"),
        ("nan", "number", "number needs a finite number"),
        (None, "number", "number needs a number, got NoneType"),
        (True, "amount", "amount needs a number, got a boolean"),
        ("12a", "digits", "digits can only say 0-9, +, * and #, got 'a'"),
        (1.5, "digits", "digits needs a digit string or a whole number"),
        (10**13, "amount", "number too large to say: more than 1,000,000,000,000"),
        ("2027-13-01", "date", "date needs YYYY-MM-DD, got '2027-13-01'"),
        ("04/01/2027", "date", "date needs YYYY-MM-DD"),
        (20270104, "date", "date needs YYYY-MM-DD"),
        ("25:00", "time", "time needs HH:MM (00:00 to 23:59), got '25:00'"),
        ("10:60", "time", "time needs HH:MM"),
        ("1030", "time", "time needs HH:MM"),
        ("10:30", "clock", "unknown say-as format 'clock'"),
    ],
)
def test_bad_input_is_a_clear_value_error(value: Any, fmt: str, message: str) -> None:
    for language in ("en", "zh"):
        with pytest.raises(ValueError) as info:
            say_as(value, fmt, language)
        assert str(info.value).startswith(message)


def test_language_tags_and_fallback() -> None:
    assert say_as(12, "number", "zh-CN") == "十二"
    assert say_as(12, "number", "zh_TW") == "十二"
    assert say_as(12, "number", "ZH") == "十二"
    assert say_as(12, "number", "fr") == "twelve"  # unknown language: English
    assert say_as(12, "number", "en-GB") == "twelve"


def test_formats_are_the_documented_five() -> None:
    assert frozenset({"digits", "number", "amount", "date", "time"}) == FORMATS
