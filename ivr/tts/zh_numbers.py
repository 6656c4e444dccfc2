"""Arabic digits inside Chinese text, written out as a Mandarin speaker reads them.

:func:`spell_numbers` rewrites every number of a Chinese text in Chinese numerals, choosing the
reading from the number's shape and the words around it:

======================  ==========================  =============================================
what                    example                     read as
======================  ==========================  =============================================
date                    ``2027-02-05``              二〇二七年二月五日 (say-as ``date``)
phone number            ``400-820-8888``            四零零，八二零，八八八八 (groups, 1 is 幺)
time                    ``10:30``                   十点三十分 (say-as ``time``)
money                   ``1,250.50元``, ``¥5``       一千二百五十元五角 (say-as ``amount``)
percentage              ``3.5%``                    百分之三点五
year                    ``2027年``                  二零二七年 (digit by digit)
clock hour              ``8点``, ``2点``             八点, 两点
ordinal                 ``第1``                     第一
digit string            ``95588``, ``尾号1234``      九五五八八, 幺二三四
quantity                ``16位``, ``1,024``, ``3.5``  十六位, 一千零二十四, 三点五
======================  ==========================  =============================================

A digit string is a number read one digit at a time: five digits or more (a phone number, a
card or reference number) unless a unit follows (``10000次``), a number with a leading zero,
or any number right after words that introduce one (电话, 尾号, 编号, 拨打 ...). In a digit
string 1 is 幺, as Chinese phone lines say it (一 and 七 sound alike on a narrow line).

Money uses :mod:`ivr.flow.sayas` (元, 角, 分: what a bank says), as do dates, times and numbers,
so a number typed into a prompt sounds the same as a ``{value|amount}``. ``cn2an.transform``
was measured and not used: it reads ``1,250.50元`` as 一,二百五十点五零元, ``2点`` as 二点 and a
phone number as a cardinal (一百三十八亿...).
"""

from __future__ import annotations

import re

from ivr.flow.sayas import MAX_NUMBER, say_amount, say_date, say_number, say_time, zh_integer

_DIGITS = "零幺二三四五六七八九"  # digit strings: 1 is 幺
_YEAR_DIGITS = "零一二三四五六七八九"  # years are never read with 幺
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
# Words after which a number is an identifier read digit by digit (``尾号为1234``).
_ID_WORDS = ("电话", "号码", "热线", "拨打", "致电", "尾号", "编号", "账号", "卡号", "工号",
             "分机", "密码", "验证码", "代码", "号")
# Units after which a long number is a quantity (``10000次``), not a digit string.
_UNITS = frozenset("个位次元块角天年月日号种张条项件家名笔份人岁倍户万亿千百秒分周小度米")
_DIGIT_STRING_MIN = 5
_PHONE_MIN_DIGITS = 7

_PATTERN = re.compile(
    rf"""
    (?P<date>(?<!\d)\d{{4}}-\d{{1,2}}-\d{{1,2}}(?!\d))
  | (?P<phone>(?<!\d)(?:\+\d{{1,3}}[-\ ]?)?\d{{2,4}}(?:[-\ ]\d{{2,8}}){{1,3}}(?![\d.]))
  | (?P<time>(?<!\d)\d{{1,2}}:\d{{2}}(?::\d{{2}})?(?!\d))
  | [¥￥]\s*(?P<money1>{_NUM})
  | (?P<money2>{_NUM})\s*元
  | (?P<percent>{_NUM})%
  | (?P<year>(?<!\d)\d{{4}})(?=\s*年)
  | (?P<ordinal>(?<=第)\d+)
  | (?P<grouped>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+\.\d+)
  | (?P<integer>\d+)
  | (?P<symbol>[#*+])
    """,
    re.VERBOSE,
)
_SYMBOLS = {"#": "井", "*": "星", "+": "加"}


def spell_numbers(text: str) -> str:
    """``text`` (Chinese, possibly with Arabic digits) with every number in Chinese numerals.

    Text without digits comes back unchanged; ``#``, ``*`` and ``+`` become 井, 星 and 加.
    """
    return _PATTERN.sub(_spell, text)


def read_digits(digits: str, separator: str = "") -> str:
    """Digits one by one, 1 as 幺 (``10086`` -> 幺零零八六); other characters are dropped."""
    return separator.join(_DIGITS[int(ch)] for ch in digits if ch.isdigit())


def _spell(match: re.Match[str]) -> str:
    kind = match.lastgroup
    value = match.group(kind or 0)
    try:
        if kind == "date":
            return say_date(value, zh=True)
        if kind == "phone":
            return _phone(value)
        if kind == "time":
            return say_time(value, zh=True)
        if kind in ("money1", "money2"):
            return say_amount(value, zh=True)
        if kind == "percent":
            return "百分之" + say_number(value, zh=True)
        if kind == "year":
            return "".join(_YEAR_DIGITS[int(ch)] for ch in value)
        if kind == "ordinal":
            return _integer(value)
        if kind == "grouped":
            return say_number(value, zh=True)
        if kind == "integer":
            return _bare_integer(match)
        if kind == "symbol":
            return _SYMBOLS[value]
    except ValueError:  # an impossible date or time, a number beyond say-as: its parts then
        return _pieces(value)
    return value


def _phone(value: str) -> str:
    """A phone number in its groups (a pause between them), or each part on its own."""
    if sum(ch.isdigit() for ch in value) < _PHONE_MIN_DIGITS:
        return _pieces(value)
    prefix = "加" if value.startswith("+") else ""
    groups = [g for g in re.split(r"[-+ ]", value) if g]
    return prefix + "，".join(read_digits(g) for g in groups)


def _pieces(value: str) -> str:
    """Each run of digits of ``value`` as a bare number, separators as pauses."""
    parts = re.split(r"(\d+)", value)
    return "".join(_integer(p) if p.isdigit() else "，" if p.strip() else "" for p in parts)


def _integer(digits: str) -> str:
    number = int(digits)
    return zh_integer(number) if number <= MAX_NUMBER else read_digits(digits)


def _bare_integer(match: re.Match[str]) -> str:
    """A number with no other clue: a digit string, a clock hour or a quantity."""
    digits = match.group()
    before = match.string[: match.start()]
    after = match.string[match.end():].lstrip()
    unit_follows = bool(after) and after[0] in _UNITS
    if _after_id_word(before) or (len(digits) > 1 and digits[0] == "0"):
        return read_digits(digits)
    if len(digits) >= _DIGIT_STRING_MIN and not unit_follows:
        return read_digits(digits)
    if after.startswith("点") and int(digits) <= 24:
        return "两" if int(digits) == 2 else zh_integer(int(digits))  # 两点, not 二点
    return _integer(digits)


def _after_id_word(before: str) -> bool:
    """True when ``before`` ends with a word that introduces an identifier (``尾号为``)."""
    stem = before.rstrip(" :：,，")
    stem = stem[:-1] if stem.endswith(("为", "是")) else stem
    return stem.rstrip(" :：,，").endswith(_ID_WORDS)


__all__ = ["read_digits", "spell_numbers"]
