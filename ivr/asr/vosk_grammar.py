"""What the Vosk backend lets the decoder say for a grammar, and what the words it heard mean.

A :class:`~ivr.asr.base.Grammar` becomes a list of *sentences* (Vosk estimates a small bigram
language model from them, see ``Recognizer::UpdateGrammarFst`` in vosk-api) and, back from the
decoder, a list of words becomes a choice key or a built-in value:

* choices: the words must split into phrases of one single choice (``상담원`` or ``상담원
  상담원``, never ``잔액 상담원``);
* ``yes_no``: the same with the language's yes and no words (value ``"yes"`` / ``"no"``);
* ``digits``: every word is a digit word (value ``"0412"``), within ``min_digits..max_digits``;
* ``amount``: a number said in words, with an optional currency word (value ``"35000.00"``).

Built-in words exist for Korean (``ko``), English (``en``) and Mandarin (``zh``); see
:data:`BUILTIN_WORDS`. Korean digits are the Sino-Korean ones (영/공 일 이 삼 사 오 육 칠 팔
구); native Korean numbers (하나, 둘...) are not digit words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ivr.asr.base import AsrError, Grammar

AmountParser = Callable[[Sequence[str]], int | None]


def normalise(phrase: str) -> str:
    """Lower case, spaces folded: the form phrases are compared in."""
    return " ".join(phrase.lower().split())


# --- numbers said in words ------------------------------------------------------------------


def _parse_grouped(words: Sequence[str], units: dict[str, int], small: dict[str, int],
                   large: dict[str, int]) -> int | None:  # fmt: skip
    """A number in the East Asian scheme: digits, then 10/100/1000 multipliers inside a group,
    groups closed by 10^4 / 10^8 (Korean 만/억, Chinese 万/亿). ``None`` if not well formed."""
    total, group, digit = 0, 0, None
    last_small, last_large = 10**9, 10**18
    for word in words:
        if word in units:
            if digit is not None:
                return None  # two digits in a row: a digit string, not a number
            digit = units[word]
        elif word in small:
            mult = small[word]
            if mult >= last_small:
                return None  # 백 천: multipliers must fall inside a group
            group += (1 if digit is None else digit) * mult
            digit, last_small = None, mult
        elif word in large:
            mult = large[word]
            if mult >= last_large:
                return None
            group += digit or 0
            total += (group or 1) * mult
            group, digit, last_small, last_large = 0, None, 10**9, mult
        else:
            return None
    if not words:
        return None
    return total + group + (digit or 0)


_KO_UNITS = {"영": 0, "공": 0, "일": 1, "이": 2, "삼": 3, "사": 4, "오": 5, "육": 6, "칠": 7,
             "팔": 8, "구": 9}  # fmt: skip
_KO_SMALL = {"십": 10, "백": 100, "천": 1000}
_KO_LARGE = {"만": 10**4, "억": 10**8}
_KO_CURRENCY = ("원",)


def parse_korean_amount(words: Sequence[str]) -> int | None:
    """``삼 만 오 천 원`` -> 35000 (Sino-Korean number words, an optional trailing 원)."""
    body = list(words)
    if body and body[-1] in _KO_CURRENCY:
        body.pop()
    return _parse_grouped(body, _KO_UNITS, _KO_SMALL, _KO_LARGE)


_ZH_UNITS = {"零": 0, "一": 1, "幺": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
             "七": 7, "八": 8, "九": 9}  # fmt: skip
_ZH_SMALL = {"十": 10, "百": 100, "千": 1000}
_ZH_LARGE = {"万": 10**4, "亿": 10**8}
_ZH_CURRENCY = ("元", "块", "块钱")


def parse_mandarin_amount(words: Sequence[str]) -> int | None:
    """``三 万 五 千 元`` -> 35000 (words may also come unsegmented: ``三万五千``)."""
    chars = [c for w in words for c in ([w] if w in _ZH_CURRENCY else list(w))]
    if chars and chars[-1] in _ZH_CURRENCY:
        chars.pop()
    return _parse_grouped(chars, _ZH_UNITS, _ZH_SMALL, _ZH_LARGE)


_EN_UNITS = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen"))}  # fmt: skip
_EN_TENS = {w: 10 * (i + 2) for i, w in enumerate((
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"))}  # fmt: skip
_EN_CURRENCY = ("dollar", "dollars")


def parse_english_amount(words: Sequence[str]) -> int | None:
    """``two hundred fifty dollars`` -> 250 (whole units; "and" is allowed and ignored)."""
    body = [w for w in words if w != "and"]
    if body and body[-1] in _EN_CURRENCY:
        body.pop()
    total, group, seen = 0, 0, False
    for word in body:
        if word in _EN_UNITS:
            group += _EN_UNITS[word]
        elif word in _EN_TENS:
            group += _EN_TENS[word]
        elif word == "hundred":
            group = (group or 1) * 100
        elif word in ("thousand", "million"):
            total += (group or 1) * (1000 if word == "thousand" else 10**6)
            group = 0
        else:
            return None
        seen = True
    return total + group if seen else None


# --- the built-in words of each language ----------------------------------------------------


@dataclass(frozen=True)
class BuiltinWords:
    """The words of the built-in grammars in one language."""

    yes: tuple[str, ...]
    no: tuple[str, ...]
    digits: dict[str, str]  # digit word -> digit
    amount_words: tuple[str, ...] = ()
    amount: AmountParser | None = None


BUILTIN_WORDS: dict[str, BuiltinWords] = {
    "ko": BuiltinWords(
        yes=("네", "예", "응", "그래", "그래요", "맞아", "그렇습니다"),
        no=("아니요", "아니오", "아니", "아니야", "아냐", "아닙니다"),
        digits={w: str(v) for w, v in _KO_UNITS.items()},
        amount_words=(*_KO_UNITS, *_KO_SMALL, *_KO_LARGE, *_KO_CURRENCY),
        amount=parse_korean_amount,
    ),
    "en": BuiltinWords(
        yes=("yes", "yeah", "yep", "correct", "right"),
        no=("no", "nope", "wrong"),
        digits={**{w: str(v) for w, v in _EN_UNITS.items() if v < 10}, "oh": "0"},
        amount_words=(*_EN_UNITS, *_EN_TENS, "hundred", "thousand", "million", "and",
                      *_EN_CURRENCY),
        amount=parse_english_amount,
    ),
    "zh": BuiltinWords(
        yes=("是", "是的", "对", "对的", "好的"),
        no=("不是", "不对", "不", "没有", "不要"),
        digits={w: str(v) for w, v in _ZH_UNITS.items() if w != "两"},
        amount_words=(*_ZH_UNITS, *_ZH_SMALL, *_ZH_LARGE, *_ZH_CURRENCY),
        amount=parse_mandarin_amount,
    ),
}


def builtin_words(language: str) -> BuiltinWords:
    """The built-in words of ``language`` (``ko-KR`` finds ``ko``)."""
    words = BUILTIN_WORDS.get(language) or BUILTIN_WORDS.get(language.split("-")[0].lower())
    if words is None:
        raise AsrError(f"the vosk backend has no built-in grammars (yes/no, digits, amounts) "
                       f"for language {language!r}; it has {', '.join(sorted(BUILTIN_WORDS))}")
    return words


# --- compiling a grammar and reading a result ------------------------------------------------


@dataclass(frozen=True)
class CompiledGrammar:
    """A grammar as the decoder sees it and as results are read back.

    ``phrases`` are the flow's (or spec's) phrases: a word of theirs missing from the model is
    an error. ``builtin_phrases`` are this module's words for the built-in: missing ones are
    dropped (a model need not know every way of saying yes).
    """

    phrases: tuple[str, ...]
    builtin_phrases: tuple[str, ...]
    choice_of: dict[tuple[str, ...], str]  # phrase words -> choice key (choices and yes/no)
    yes_no_of: dict[tuple[str, ...], str] = field(default_factory=dict)
    digits: dict[str, str] = field(default_factory=dict)
    min_digits: int = 1
    max_digits: int = 20
    amount: AmountParser | None = None


def compile_grammar(grammar: Grammar) -> CompiledGrammar:
    """What may be said for ``grammar`` and how to read it back.

    Raises:
        AsrError: an empty grammar, a phrase under two choices, or a built-in without words in
            the grammar's language.
    """
    choice_of: dict[tuple[str, ...], str] = {}
    for key, phrases in grammar.choices.items():
        for phrase in phrases:
            words = tuple(normalise(phrase).split())
            if not words:
                continue
            other = choice_of.setdefault(words, key)
            if other != key:
                raise AsrError(f"phrase {' '.join(words)!r} is under two choices: "
                               f"{other!r} and {key!r}")
    if not choice_of and grammar.builtin is None:
        raise AsrError("empty grammar: no phrases and no built-in")
    phrases = tuple(" ".join(w) for w in choice_of)
    if grammar.builtin is None:
        return CompiledGrammar(phrases, (), choice_of)
    table = builtin_words(grammar.language)
    if grammar.builtin == "yes_no":
        yes_no: dict[tuple[str, ...], str] = {(w,): "yes" for w in table.yes}
        yes_no.update({(w,): "no" for w in table.no})
        return CompiledGrammar(phrases, tuple(table.yes + table.no), choice_of, yes_no)
    if grammar.builtin == "digits":
        low = grammar.min_digits or 1
        high = grammar.max_digits or max(20, low)
        return CompiledGrammar(phrases, tuple(table.digits), choice_of, digits=table.digits,
                               min_digits=low, max_digits=high)
    if table.amount is None:
        raise AsrError(f"the vosk backend has no amount grammar for {grammar.language!r}")
    return CompiledGrammar(phrases, table.amount_words, choice_of, amount=table.amount)


def _single_key(words: Sequence[str], table: dict[tuple[str, ...], str]) -> str | None:
    """The key when ``words`` split into phrases of ``table`` that all share one key."""
    if not table or not words:
        return None
    longest = max(len(k) for k in table)
    keys: set[str] = set()
    i = 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            key = table.get(tuple(words[i : i + n]))
            if key is not None:
                keys.add(key)
                i += n
                break
        else:
            return None
    return keys.pop() if len(keys) == 1 else None


def interpret(compiled: CompiledGrammar, words: Sequence[str]) -> str | None:
    """The choice key or built-in value that ``words`` mean, or ``None`` (not in grammar)."""
    if not words:
        return None
    key = _single_key(words, compiled.choice_of)
    if key is not None:
        return key
    key = _single_key(words, compiled.yes_no_of)
    if key is not None:
        return key
    if compiled.digits and all(w in compiled.digits for w in words):
        digits = "".join(compiled.digits[w] for w in words)
        return digits if compiled.min_digits <= len(digits) <= compiled.max_digits else None
    if compiled.amount is not None:
        value = compiled.amount(words)
        return None if value is None else f"{value}.00"
    return None

