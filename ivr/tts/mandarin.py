"""Mandarin text front-end: Chinese (and mixed) prompt text -> what espeak-ng should say, by voice.

espeak-ng reads Chinese characters badly (its ``cmn`` voice speaks the tone numbers as English
words), but reads pinyin with tone numbers well with the ``cmn-latn-pinyin`` voice, third-tone
sandhi included (``ni3 hao3`` is spoken ni2 hao3). So a prompt becomes a list of
:class:`Segment` ``(voice, text)``:

* the text is split by script: runs of Chinese characters (with the digits, punctuation and
  spaces around them) and runs of Latin words ("ATM", "For English, press 1.");
* a Chinese run has its numbers written out (:mod:`ivr.tts.zh_numbers`), then becomes pinyin
  with tone numbers (pypinyin, phrase-aware: 银行 is yin2 hang2), with the fixes below, and its
  punctuation kept as pauses (``,`` ``.`` ``?``) for the pinyin voice;
* a Latin run goes to the Latin voice (English for a Mandarin prompt) as it is.

Fixes on top of pypinyin, each measured on the bank flow's prompts:

* 一 changes tone by what follows (一个 yi2 ge4, 一千 yi4 qian1, 一万 yi2 wan4) and keeps
  yi1 in digit strings, dates, ordinals and at the end (周一, 第一, 一月, 十一); pypinyin's
  dictionary is inconsistent there (一月 yi2, 一次 yi1) and its ``tone_sandhi`` option works
  per dictionary word only, so the rule is here.
* 不 is bu2 before a fourth tone (不是, 不用); 二 is 两 before 千/万/亿 and before a measure
  word (两千, 两位); a digit string of three digits or more says 1 as 幺.
* 为 before a value is the copula wei2 (余额为…, 时间为周一…); elsewhere pypinyin's wei4
  (为您, 为了) stands.
* Words pypinyin gets wrong in a bank's prompts: 还款 huan2 kuan3, 我行 wo3 hang2, 长按 ...

pypinyin is imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from ivr.tts.zh_numbers import spell_numbers

FRONTEND_VERSION = 1  # bump when the text sent to espeak-ng changes: cached prompts render again
PINYIN_VOICE = "cmn-latn-pinyin"
LATIN_VOICE = "en-us"
SENTENCE_PAUSE, CLAUSE_PAUSE, WORD_PAUSE = 0.35, 0.2, 0.06  # seconds between two segments

_HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_HAN_RE = re.compile(f"[{_HAN}]")
_TOKEN = re.compile(
    rf"(?P<han>[{_HAN}]+)|(?P<latin>[A-Za-z]+(?:['’.&-][A-Za-z]+)*)"
    r"|(?P<num>\d+(?:[.,:/-]\d+)*%?)|(?P<space>\s+)|(?P<other>.)",
    re.DOTALL,
)
# Full-width ASCII (！ to ～) and the ideographic space, folded to ASCII before anything else.
_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_PAUSES = {",": ",", "，": ",", "、": ",", ";": ",", ":": ",", "(": ",", ")": ",", "—": ",",
           "~": ",", "-": ",", "/": ",", ".": ".", "。": ".", "!": ".", "…": ".", "?": "?"}
_PAUSE_RANK = {",": 1, ".": 2, "?": 3}
_LATIN_PUNCT = str.maketrans({"。": ". ", "、": ", ", "…": "... ", "—": ", ", "·": " ",
                              "“": "", "”": "", "‘": "", "’": "'", "《": "", "》": "",
                              "「": "", "」": "", "【": "", "】": ""})

_NUMERALS = frozenset("零〇幺一二两三四五六七八九十百千万亿")
_UNIT_NUMERALS = frozenset("十百千万亿")
# After these, 一 is a numeral of its own: 周一, 星期一, 第一, 唯一, 统一, 之一.
_YI_PLAIN_AFTER = frozenset("第周期拜初唯统之单专")
# 一 before these is a count or a word (一个, 一次, 一样, 一起) and changes tone.
_YI_SANDHI_BEFORE = frozenset(
    "个位次元角分块天年种张条项件家名笔份遍下些起样直定般切致律共旦向边半周秒刻套台部本只所间"
    "层句步趟道批段口声路夜身齐体时会阵字封首杯场票站排生辈心意流贯再连早方面手同并概经度片季小"
)
_CLOCK_BEFORE_YI = ("午", "晨", "上", "晚", "至", "到", "为", "是", "在")
_CLOCK_AFTER = _NUMERALS | {"钟", "半", "整"}
_LIANG_MEASURES = frozenset("个位次天种张条项件家名笔份元块岁倍周小")
_WEI2_BEFORE = frozenset("周星每负") | _NUMERALS
# pypinyin's reading of these is wrong (还款 hai2 kuan3, 我行 wo3 xing2, 长按 zhang3 an4).
_PHRASES = {
    "还款": "huan2 kuan3", "已还": "yi3 huan2", "应还": "ying1 huan2", "待还": "dai4 huan2",
    "还本": "huan2 ben3", "还钱": "huan2 qian2", "我行": "wo3 hang2", "跨行": "kua4 hang2",
    "他行": "ta1 hang2", "支行": "zhi1 hang2", "总行": "zong3 hang2", "长按": "chang2 an4",
}
_PHRASE_RE = re.compile("|".join(sorted(_PHRASES, key=len, reverse=True)))
_SYLLABLE = re.compile(r"[a-z]+[1-5]")


@dataclass(frozen=True)
class Segment:
    """A piece of a prompt for one espeak-ng voice."""

    voice: str
    text: str

    @property
    def pause_after(self) -> float:
        """Seconds of silence before the next segment: a sentence, a clause, or mid-sentence
        (我行的|ATM|机) ends here."""
        end = self.text.rstrip()[-1:]
        if end in (".", "?", "!"):
            return SENTENCE_PAUSE
        return CLAUSE_PAUSE if end in (",", ";", ":") else WORD_PAUSE


@dataclass(frozen=True)
class Run:
    """A stretch of a prompt in one script: Chinese (with its digits and punctuation) or not."""

    chinese: bool
    text: str

    @property
    def speakable(self) -> bool:
        """True when the run has something to say, not only punctuation and spaces."""
        if self.chinese:
            return bool(_HAN_RE.search(self.text) or re.search(r"[0-9#*]", self.text))
        return any(ch.isalnum() for ch in self.text)


def has_han(text: str) -> bool:
    """True when ``text`` contains a Chinese character."""
    return _HAN_RE.search(text) is not None


def segments(
    text: str,
    pinyin_voice: str = PINYIN_VOICE,
    latin_voice: str = LATIN_VOICE,
    chinese_default: bool = True,
) -> list[Segment]:
    """``text`` as espeak-ng should say it: pinyin for ``pinyin_voice``, the rest as it is.

    Args:
        text: the final prompt text.
        pinyin_voice: the espeak-ng voice that reads pinyin with tone numbers.
        latin_voice: the voice for Latin-script runs (English words in a Mandarin prompt).
        chinese_default: whom digits and punctuation with no Chinese or Latin word near them
            belong to (True in a Mandarin prompt).

    Raises:
        ImportError: pypinyin is not installed (only when there is Chinese to convert).
    """
    out: list[Segment] = []
    for run in split_scripts(text, chinese_default):
        spoken = to_pinyin(run.text) if run.chinese else _latin_text(run.text)
        if not spoken:
            continue
        voice = pinyin_voice if run.chinese else latin_voice
        if out and out[-1].voice == voice:
            spoken = f"{out.pop().text} {spoken}"
        out.append(Segment(voice, spoken))
    return out


def split_scripts(text: str, chinese_default: bool = True) -> list[Run]:
    """``text`` cut into :class:`Run` s of one script each, speakable ones only.

    Digits go with the Chinese or Latin word they touch (``请按2``, ``24小时``), else with the
    nearest word before them (``press 1``), else after them; punctuation and spaces go with what
    precedes them.
    """
    tokens = [(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(text.translate(_FOLD))]
    sides = _sides(tokens, chinese_default)
    runs: list[Run] = []
    for (_, piece), chinese in zip(tokens, sides, strict=True):
        if runs and runs[-1].chinese == chinese:
            runs[-1] = Run(chinese, runs[-1].text + piece)
        else:
            runs.append(Run(chinese, piece))
    return [run for run in runs if run.speakable]


def _sides(tokens: list[tuple[str, str]], chinese_default: bool) -> list[bool]:
    """For each token: does it belong to a Chinese run?"""
    words = [i for i, (kind, _) in enumerate(tokens) if kind in ("han", "latin")]
    sides: list[bool | None] = [None] * len(tokens)
    for i, (kind, _) in enumerate(tokens):
        if kind in ("han", "latin"):
            sides[i] = kind == "han"
        elif kind == "num":
            touching = [tokens[j][0] for j in (i - 1, i + 1) if 0 <= j < len(tokens)]
            if "han" in touching or "latin" in touching:
                sides[i] = "han" in touching
            else:
                before = [j for j in words if j < i]
                after = [j for j in words if j > i]
                nearest = before[-1] if before else after[0] if after else None
                sides[i] = chinese_default if nearest is None else tokens[nearest][0] == "han"
    # Punctuation and spaces follow the token before them; at the start, the first one after.
    first = next((s for s in sides if s is not None), chinese_default)
    last = first
    out: list[bool] = []
    for side in sides:
        last = last if side is None else side
        out.append(last)
    return out


def _latin_text(text: str) -> str:
    return " ".join(text.translate(_LATIN_PUNCT).split())


def to_pinyin(text: str) -> str:
    """Chinese text as pinyin with tone numbers for ``cmn-latn-pinyin``; punctuation as pauses.

    >>> to_pinyin("欢迎致电江河银行。请按2。")
    'huan1 ying2 zhi4 dian4 jiang1 he2 yin2 hang2. qing3 an4 er4.'
    """
    words: list[str] = []
    for match in re.finditer(rf"[{_HAN}]+|.", spell_numbers(text.translate(_FOLD)), re.DOTALL):
        piece = match.group()
        pause = _PAUSES.get(piece)
        if pause:
            if words and words[-1][-1] in _PAUSE_RANK:
                if _PAUSE_RANK[pause] > _PAUSE_RANK[words[-1][-1]]:
                    words[-1] = words[-1][:-1] + pause
            elif words:
                words[-1] += pause
        elif _HAN_RE.match(piece):
            words.extend(han_syllables(piece))
    return " ".join(words)


def han_syllables(chars: str) -> list[str]:
    """One pinyin syllable with its tone number per Chinese character of ``chars``."""
    chars = _numeral_words(chars)
    found = _pinyin(chars)
    if len(found) != len(chars):  # a character pypinyin does not know: no context rules
        return [s for s in found if _SYLLABLE.fullmatch(s)]
    for match in _PHRASE_RE.finditer(chars):
        found[match.start():match.end()] = _PHRASES[match.group()].split()
    for i, ch in enumerate(chars):
        if ch == "一":
            found[i] = _yi(chars, found, i)
        elif ch == "不" and i + 1 < len(chars) and found[i + 1].endswith("4"):
            found[i] = "bu2"
        elif ch == "为" and found[i] == "wei4" and chars[i + 1:i + 2] in _WEI2_BEFORE:
            found[i] = "wei2"  # 余额为一千元: the copula
    return [s for s in found if _SYLLABLE.fullmatch(s)]


def _numeral_words(chars: str) -> str:
    """两 and 幺 where Mandarin says them: 两千, 两位, and 1 in a digit string (四三二幺)."""

    def fix(match: re.Match[str]) -> str:
        run = match.group()
        after = chars[match.end():match.end() + 1]
        before = chars[match.start() - 1:match.start()]
        if not (set(run) & _UNIT_NUMERALS):
            if len(run) >= 3 and after != "年" and before != "点":  # not a year, not decimals
                return run.replace("一", "幺")
            if run == "二" and after in _LIANG_MEASURES:
                return "两"
            return run
        if run[0] == "二" and run[1:2] in ("千", "万", "亿"):
            return "两" + run[1:]
        return run

    return re.sub("[零〇一二三四五六七八九十百千万亿]+", fix, chars)


def _yi(chars: str, found: list[str], i: int) -> str:
    """The tone of 一 at ``chars[i]``."""
    before = chars[i - 1] if i else ""
    after = chars[i + 1] if i + 1 < len(chars) else ""
    if before in _NUMERALS or after in _NUMERALS:  # inside a number: 一千 yi4, 十一(万) yi1
        if after in ("百", "千"):
            return "yi4"
        return "yi2" if after in ("万", "亿") and before not in _NUMERALS else "yi1"
    if not after or before in _YI_PLAIN_AFTER or after in ("月", "日", "号"):
        return "yi1"
    if after == "点":  # 一点 is "a bit" (yi4), or one o'clock: 下午一点, 一点三十分
        later = chars[i + 2:i + 3]
        clock = chars[:i].endswith(_CLOCK_BEFORE_YI) or (bool(later) and later in _CLOCK_AFTER)
        return "yi1" if clock else "yi4"
    if after in _YI_SANDHI_BEFORE:
        return "yi2" if found[i + 1].endswith("4") else "yi4"
    return "yi1"  # 按一或说, 周一至周五: a number on its own


@cache
def _pypinyin() -> Any:
    from pypinyin import Style, lazy_pinyin

    return lambda chars: lazy_pinyin(
        chars, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda _: "?"
    )


def _pinyin(chars: str) -> list[str]:
    return list(_pypinyin()(chars))


__all__ = [
    "FRONTEND_VERSION",
    "LATIN_VOICE",
    "PINYIN_VOICE",
    "Run",
    "Segment",
    "han_syllables",
    "has_han",
    "segments",
    "split_scripts",
    "to_pinyin",
]
