"""Say-as: values written the way a caller should hear them, in English or Mandarin.

``say_as(value, fmt, language)`` turns a variable into words for the TTS (and for the text the
simulator shows). Formats:

============  ==============================  ======================================
format        English                          Mandarin
============  ==============================  ======================================
``digits``    ``six two two two``              ``六二二二``
``number``    ``one thousand twenty-four``     ``一千零二十四``
``amount``    ``one thousand twenty-four       ``一千零二十四元五角``
              yuan and fifty fen``
``date``      ``January 4, 2027``              ``二〇二七年一月四日``
``time``      ``ten thirty in the morning``    ``十点三十分``
============  ==============================  ======================================

Money is yuan and fen in both languages: the bank's accounts are in RMB, and "dollars" would be
wrong. Numbers are spelled out here (no dependency) up to 10**12 in magnitude. An unknown
language falls back to English; ``zh-CN``-style tags count as their base language.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

FORMATS = frozenset({"digits", "number", "amount", "date", "time"})
MAX_NUMBER = 10**12

_EN_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
_EN_SYMBOLS = {"+": "plus", "*": "star", "#": "pound"}

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = ("", "十", "百", "千")
_ZH_SECTIONS = ("", "万", "亿", "万亿")
_ZH_SYMBOLS = {"+": "加", "*": "星", "#": "井"}
_ZH_YEAR_DIGITS = "〇一二三四五六七八九"
_DIGIT_SEPARATORS = frozenset(" -.()")


def say_as(value: Any, fmt: str, language: str = "en") -> str:
    """``value`` in words for ``language`` ("en", "zh"; others fall back to English).

    Args:
        value: a number, a numeric string, a digit string, an ISO date/``datetime.date``, or an
            ``HH:MM`` time/``datetime.time``, as the format needs.
        fmt: one of :data:`FORMATS`.
        language: a language tag; ``zh``, ``zh-CN`` and ``zh_TW`` read as Mandarin.

    Raises:
        ValueError: an unknown format, or a value the format cannot read (the message says why).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown say-as format {fmt!r} (known: {', '.join(sorted(FORMATS))})")
    zh = _is_zh(language)
    if fmt == "digits":
        return say_digits(value, zh)
    if fmt == "number":
        return say_number(value, zh)
    if fmt == "amount":
        return say_amount(value, zh)
    if fmt == "date":
        return say_date(value, zh)
    return say_time(value, zh)


def _is_zh(language: str) -> bool:
    return language.replace("_", "-").split("-")[0].lower() in ("zh", "cmn")


# --- integers in words -------------------------------------------------------------------------


def en_integer(n: int) -> str:
    """English words for an integer with ``abs(n) <= 10**12`` (US style: no "and")."""
    _check_range(n)
    if n < 0:
        return "minus " + en_integer(-n)
    if n < 1000:
        return _en_below_1000(n)
    words = []
    for scale, name in _EN_SCALES:
        if n >= scale:
            words.append(f"{_en_below_1000(n // scale)} {name}")
            n %= scale
    if n:
        words.append(_en_below_1000(n))
    return " ".join(words)


def _en_below_1000(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    head = f"{_EN_ONES[hundreds]} hundred"
    return f"{head} {_en_below_1000(rest)}" if rest else head


def zh_integer(n: int) -> str:
    """Mandarin reading of an integer with ``abs(n) <= 10**12``, with the 零 rules.

    One 零 stands for any run of zeros between two non-zero digits (一千零一, 一万零一十,
    一亿零一千); trailing zeros are silent (一千一百); a leading 一十 is read 十 (十一, 十万).
    """
    _check_range(n)
    if n < 0:
        return "负" + zh_integer(-n)
    if n == 0:
        return _ZH_DIGITS[0]
    digits = str(n)
    out: list[str] = []
    pending_zero = False
    section_has_digit = False
    for i, ch in enumerate(digits):
        place = len(digits) - 1 - i  # power of ten of this digit
        section, unit = divmod(place, 4)
        if ch == "0":
            pending_zero = bool(out)
        else:
            if pending_zero:
                out.append(_ZH_DIGITS[0])
                pending_zero = False
            out.append(_ZH_DIGITS[int(ch)] + _ZH_UNITS[unit])
            section_has_digit = True
        if unit == 0:  # end of a four-digit section: name it if anything was said in it
            if section_has_digit and section:
                out.append(_ZH_SECTIONS[section])
            section_has_digit = False
    text = "".join(out)
    return text[1:] if text.startswith("一十") else text


def _check_range(n: int) -> None:
    if abs(n) > MAX_NUMBER:
        raise ValueError(f"number too large to say: more than {MAX_NUMBER:,} in magnitude")


# --- formats -----------------------------------------------------------------------------------


def say_digits(value: Any, zh: bool = False) -> str:
    """Each digit on its own; ``+ * #`` are named, spaces, dashes, dots and brackets skipped."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"digits needs a digit string or a whole number, got {value!r}")
    words = []
    for ch in str(value):
        if ch in _DIGIT_SEPARATORS:
            continue
        if "0" <= ch <= "9":
            words.append(_ZH_DIGITS[int(ch)] if zh else _EN_ONES[int(ch)])
        elif ch in _EN_SYMBOLS:
            words.append(_ZH_SYMBOLS[ch] if zh else _EN_SYMBOLS[ch])
        else:
            raise ValueError(f"digits can only say 0-9, +, * and #, got {ch!r}")
    return ("" if zh else " ").join(words)


def to_decimal(value: Any, what: str) -> Decimal:
    """A finite Decimal from a number or numeric text ("1,024.50" is accepted)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} needs a number, got a boolean")
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # repr: 0.1 stays 0.1, not 0.1000000000000000055...
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            raise ValueError(f"{what} needs a number, got {value!r}") from None
    else:
        raise ValueError(f"{what} needs a number, got {type(value).__name__}")
    if not number.is_finite():
        raise ValueError(f"{what} needs a finite number, got {value!r}")
    return number


def say_number(value: Any, zh: bool = False) -> str:
    """A whole number in words, or a decimal with its fraction digit by digit (3.14)."""
    number = to_decimal(value, "number")
    sign, whole, fraction = _split(number)
    integer = zh_integer(whole) if zh else en_integer(whole)
    if fraction:
        digits = say_digits(fraction, zh)
        integer += f"点{digits}" if zh else f" point {digits}"
    if sign and (whole or fraction):
        integer = ("负" if zh else "minus ") + integer
    return integer


def _split(number: Decimal) -> tuple[bool, int, str]:
    """(negative, whole part, fraction digits without trailing zeros)."""
    text = format(abs(number), "f")
    whole, _, fraction = text.partition(".")
    return number < 0, int(whole), fraction.rstrip("0")


def say_amount(value: Any, zh: bool = False) -> str:
    """Money in yuan, rounded half up to the fen (0.01)."""
    number = to_decimal(value, "amount").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    negative = number < 0
    fen_total = int(abs(number) * 100)
    yuan, fen = divmod(fen_total, 100)
    _check_range(yuan)
    text = _zh_amount(yuan, fen) if zh else _en_amount(yuan, fen)
    if negative and fen_total:
        text = ("负" if zh else "minus ") + text
    return text


def _en_amount(yuan: int, fen: int) -> str:
    if not fen:
        return f"{en_integer(yuan)} yuan"
    if not yuan:
        return f"{en_integer(fen)} fen"
    return f"{en_integer(yuan)} yuan and {en_integer(fen)} fen"


def _zh_amount(yuan: int, fen: int) -> str:
    jiao, fen = divmod(fen, 10)
    out = f"{zh_integer(yuan)}元" if yuan or not (jiao or fen) else ""
    if jiao:
        out += f"{_ZH_DIGITS[jiao]}角"
    if fen:
        # 五元零五分: a skipped 角 between yuan and fen is read as 零
        out += ("零" if yuan and not jiao else "") + f"{_ZH_DIGITS[fen]}分"
    return out


def _parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 10 and text[10] in "T ":
            text = text[:10]  # an ISO timestamp: its date
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"date needs YYYY-MM-DD, got {value!r}")


def say_date(value: Any, zh: bool = False) -> str:
    """``January 4, 2027`` / ``二〇二七年一月四日``."""
    day = _parse_date(value)
    if zh:
        year = "".join(_ZH_YEAR_DIGITS[int(d)] for d in str(day.year))
        return f"{year}年{zh_integer(day.month)}月{zh_integer(day.day)}日"
    return f"{_EN_MONTHS[day.month - 1]} {day.day}, {day.year}"


def _parse_time(value: Any) -> tuple[int, int]:
    if isinstance(value, (dt.time, dt.datetime)):
        return value.hour, value.minute
    if isinstance(value, str):
        parts = value.strip().split(":")
        if 2 <= len(parts) <= 3 and all(p.isdigit() and len(p) <= 2 for p in parts):
            hour, minute = int(parts[0]), int(parts[1])
            if hour < 24 and minute < 60 and (len(parts) == 2 or int(parts[2]) < 60):
                return hour, minute
    raise ValueError(f"time needs HH:MM (00:00 to 23:59), got {value!r}")


def say_time(value: Any, zh: bool = False) -> str:
    """English with the part of the day (``two thirty in the afternoon``): no "a.m." for a TTS
    to stumble on or a sentence's full stop to double; Mandarin on the 24-hour clock."""
    hour, minute = _parse_time(value)
    if zh:
        # 两点, not 二点: the clock hour 2 is always 两 (十二点 keeps 二).
        spoken_hour = "两" if hour == 2 else zh_integer(hour)
        if not minute:
            return f"{spoken_hour}点"
        return f"{spoken_hour}点{'零' if minute < 10 else ''}{zh_integer(minute)}分"
    if minute == 0 and hour in (0, 12):
        return "midnight" if hour == 0 else "noon"
    part = "in the morning" if hour < 12 else "in the afternoon" if hour < 18 else "in the evening"
    clock = en_integer(hour % 12 or 12)
    if minute:
        clock += " " + (en_integer(minute) if minute >= 10 else f"oh {en_integer(minute)}")
    return f"{clock} {part}"
