"""Matching recognised text to what a node accepts: phrases, yes/no, digits and amounts.

The recognizer (ivr/asr, a later part) usually names the matched choice itself; these functions
are the engine's own reading of plain text, used when it does not (the simulator's ``say`` step,
SIP transports without ASR grammars) and for built-in grammars.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_YES = {"yes", "yeah", "yep", "correct", "right", "sure", "ok", "okay",
        "是", "是的", "对", "对的", "好"}
_NO = {"no", "nope", "wrong", "incorrect", "not", "不是", "不对", "不", "错"}

_EN_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}
_EN_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_SCALES = {"十": 10, "百": 100, "千": 1000, "万": 10_000}


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, spaces folded (Chinese kept as is)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    return " ".join(text.split())


def is_yes(text: str) -> bool:
    return normalise(text) in _YES


def is_no(text: str) -> bool:
    return normalise(text) in _NO


def match_phrase(text: str, choices: Mapping[str, Iterable[str]]) -> str | None:
    """The choice whose phrase equals the text, else the one whose phrase the text contains
    as whole words (longest phrase wins); None when nothing matches."""
    said = normalise(text)
    if not said:
        return None
    padded = f" {said} "
    best: tuple[int, str] | None = None
    for key, phrases in choices.items():
        for phrase in phrases:
            norm = normalise(phrase)
            if not norm:
                continue
            if norm == said:
                return key
            contained = f" {norm} " in padded or (_is_cjk(norm) and norm in said)
            if contained and (best is None or len(norm) > best[0]):
                best = (len(norm), key)
    return best[1] if best else None


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def spoken_digits(text: str) -> str | None:
    """"six two two two" / "6222" / "六二二二" -> "6222"; None when it is not only digits."""
    said = normalise(text).replace(" ", "") if _is_cjk(text) else normalise(text)
    out = []
    for token in (list(said) if _is_cjk(said) else said.split()):
        if token.isdigit():
            out.append(token)
        elif token in _EN_UNITS and _EN_UNITS[token] < 10:
            out.append(str(_EN_UNITS[token]))
        elif token in _ZH_DIGITS:
            out.append(str(_ZH_DIGITS[token]))
        else:
            return None
    return "".join(out) or None


def spoken_amount(text: str) -> str | None:
    """"1500", "1,500.50", "one thousand five hundred", "一千五百" -> "1500.00"; else None."""
    plain = "".join(text.replace(",", "").split())
    if re.fullmatch(r"\d+(\.\d{1,2})?", plain):
        return f"{float(plain):.2f}"
    said = normalise(text)
    value = _zh_number(plain) if _is_cjk(plain) else _en_number(said.split())
    return None if value is None else f"{value:.2f}"


def _en_number(tokens: list[str]) -> float | None:
    total = current = 0
    seen = False
    for token in tokens:
        if token in ("and", "dollars", "yuan", "rmb"):
            continue
        if token in _EN_UNITS:
            current += _EN_UNITS[token]
        elif token == "hundred":
            current = max(current, 1) * 100
        elif token in _EN_SCALES:
            total += max(current, 1) * _EN_SCALES[token]
            current = 0
        elif token.isdigit():
            current += int(token)
        else:
            return None
        seen = True
    return float(total + current) if seen else None


def _zh_number(text: str) -> float | None:
    text = text.rstrip("元块")
    total = section = digit = 0
    for char in text:
        if char in _ZH_DIGITS:
            digit = _ZH_DIGITS[char]
        elif char == "万":
            total += (section + digit) * 10_000
            section = digit = 0
        elif char in _ZH_SCALES:
            section += (digit or 1) * _ZH_SCALES[char]
            digit = 0
        else:
            return None
    return float(total + section + digit) if text else None
