"""ivr.tts.mandarin and ivr.tts.zh_numbers: Chinese text to pinyin segments, rendered for real."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from tts_helpers import read

from ivr.flow.sayas import say_as
from ivr.tts import mandarin
from ivr.tts.cache import PromptCache
from ivr.tts.engine import PIPELINE_VERSION, PYPINYIN_FIX, Synthesizer, TTSUnavailable
from ivr.tts.mandarin import Segment, segments, split_scripts, to_pinyin
from ivr.tts.wavfile import join_with_pauses
from ivr.tts.zh_numbers import read_digits, spell_numbers

PY = "cmn-latn-pinyin"
EN = "en-us"
CHOOSE_ZH = "欢迎致电江河银行。普通话服务请按2。For English, press 1."
CHOOSE_EN = "Welcome to River Bank. For English, press 1. 普通话服务请按2。"


@pytest.mark.parametrize(
    ("text", "pinyin"),
    [
        # phrase-aware heteronyms, and the bank words pypinyin gets wrong on its own
        ("银行", "yin2 hang2"),
        ("欢迎致电江河银行。", "huan1 ying2 zhi4 dian4 jiang1 he2 yin2 hang2."),
        ("贷款还款", "dai4 kuan3 huan2 kuan3"),
        ("我行网点", "wo3 hang2 wang3 dian3"),
        ("还有其他需要吗？", "hai2 you3 qi2 ta1 xu1 yao4 ma5?"),
        # neutral tone as 5; espeak-ng does third-tone sandhi itself, so 你好 stays 3 3
        ("我们没有了", "wo3 men5 mei2 you3 le5"),
        ("你好", "ni3 hao3"),
        # punctuation becomes pauses; quotes go; the strongest of two marks wins
        ("请按1或说“余额”；挂失请按2。",
         "qing3 an4 yi1 huo4 shuo1 yu2 e2, gua4 shi1 qing3 an4 er4."),
        ("好。”？", "hao3?"),
        ("请按２，谢谢", "qing3 an4 er4, xie4 xie4"),  # full-width digits and comma
        # 为: the copula before a value, "for" elsewhere
        ("余额为1元", "yu2 e2 wei2 yi4 yuan2"),
        ("时间为周一至周五", "shi2 jian1 wei2 zhou1 yi1 zhi4 zhou1 wu3"),
        ("正在为您转接", "zheng4 zai4 wei4 nin2 zhuan3 jie1"),
        # 一 and 不 tone sandhi
        ("下一个工作日", "xia4 yi2 ge4 gong1 zuo4 ri4"),
        ("一样一些", "yi2 yang4 yi4 xie1"),
        ("第一次", "di4 yi1 ci4"),
        ("一月一日", "yi1 yue4 yi1 ri4"),
        ("一千一百一十一", "yi4 qian1 yi4 bai3 yi1 shi2 yi1"),
        ("一万", "yi2 wan4"),
        ("十一万", "shi2 yi1 wan4"),
        ("下午一点", "xia4 wu3 yi1 dian3"),
        ("不是不满意", "bu2 shi4 bu4 man3 yi4"),
    ],
)
def test_pinyin_with_tone_numbers(text: str, pinyin: str) -> None:
    assert to_pinyin(text) == pinyin


@pytest.mark.parametrize(
    ("text", "spelled", "pinyin"),
    [
        # phone, card and reference numbers digit by digit, 1 as 幺, groups as pauses
        ("请拨打95588。", "请拨打九五五八八。", "qing3 bo1 da3 jiu3 wu3 wu3 ba1 ba1."),
        ("电话400-820-8118", "电话四零零，八二零，八幺幺八",
         "dian4 hua4 si4 ling2 ling2, ba1 er4 ling2, ba1 yao1 yao1 ba1"),
        ("尾号为1234", "尾号为幺二三四", "wei3 hao4 wei2 yao1 er4 san1 si4"),
        ("编号0012", "编号零零幺二", "bian1 hao4 ling2 ling2 yao1 er4"),
        # times, clock hours (2 is 两), years digit by digit, dates
        ("上午8点至下午5点", "上午八点至下午五点", "shang4 wu3 ba1 dian3 zhi4 xia4 wu3 wu3 dian3"),
        ("2点", "两点", "liang3 dian3"),
        ("12点", "十二点", "shi2 er4 dian3"),
        ("10:30开门", "十点三十分开门", "shi2 dian3 san1 shi2 fen1 kai1 men2"),
        ("2027年2月5日", "二零二七年二月五日", "er4 ling2 er4 qi1 nian2 er4 yue4 wu3 ri4"),
        ("2027-02-05", "二〇二七年二月五日", "er4 ling2 er4 qi1 nian2 er4 yue4 wu3 ri4"),
        # money as a bank says it, quantities, ordinals, percentages, decimals
        ("余额为1,250.50元。", "余额为一千二百五十元五角。",
         "yu2 e2 wei2 yi4 qian1 er4 bai3 wu3 shi2 yuan2 wu3 jiao3."),
        ("¥2000", "二千元", "liang3 qian1 yuan2"),
        ("0.05元", "五分", "wu3 fen1"),
        ("16位账号", "十六位账号", "shi2 liu4 wei4 zhang4 hao4"),
        ("10000次", "一万次", "yi2 wan4 ci4"),
        ("2位", "二位", "liang3 wei4"),
        ("第1", "第一", "di4 yi1"),
        ("3.5%", "百分之三点五", "bai3 fen1 zhi1 san1 dian3 wu3"),
        ("按#键", "按井键", "an4 jing3 jian4"),
    ],
)
def test_numbers_in_chinese_text(text: str, spelled: str, pinyin: str) -> None:
    assert spell_numbers(text) == spelled
    assert to_pinyin(text) == pinyin


def test_read_digits_says_one_as_yao() -> None:
    assert read_digits("10086") == "幺零零八六"
    assert read_digits("138-0013", "，") == "幺，三，八，零，零，幺，三"


@pytest.mark.parametrize(
    ("value", "fmt", "pinyin"),
    [
        ("1250.50", "amount", "yi4 qian1 er4 bai3 wu3 shi2 yuan2 wu3 jiao3"),
        ("2020", "amount", "liang3 qian1 ling2 er4 shi2 yuan2"),
        ("2.00", "amount", "liang3 yuan2"),
        ("0.10", "amount", "yi4 jiao3"),
        ("10010.01", "amount", "yi2 wan4 ling2 yi1 shi2 yuan2 ling2 yi1 fen1"),
        ("2027-02-05", "date", "er4 ling2 er4 qi1 nian2 er4 yue4 wu3 ri4"),
        ("2026-10-01", "date", "er4 ling2 er4 liu4 nian2 shi2 yue4 yi1 ri4"),
        ("14:05", "time", "shi2 si4 dian3 ling2 wu3 fen1"),
        ("02:00", "time", "liang3 dian3"),
        ("4321", "digits", "si4 san1 er4 yao1"),
        ("6222021000000013", "digits",
         "liu4 er4 er4 er4 ling2 er4 yao1 ling2 ling2 ling2 ling2 ling2 ling2 ling2 yao1 san1"),
        ("3.14", "number", "san1 dian3 yi1 si4"),
        (1024, "number", "yi4 qian1 ling2 er4 shi2 si4"),
    ],
)
def test_say_as_output_reads_right(value: str, fmt: str, pinyin: str) -> None:
    """What ``{value|fmt}`` fills into a Mandarin prompt is spoken as a bank says it."""
    assert to_pinyin(say_as(value, fmt, "zh")) == pinyin


def test_mixed_prompts_are_split_by_script() -> None:
    assert segments(CHOOSE_ZH) == [
        Segment(PY, "huan1 ying2 zhi4 dian4 jiang1 he2 yin2 hang2. "
                    "pu3 tong1 hua4 fu2 wu4 qing3 an4 er4."),
        Segment(EN, "For English, press 1."),
    ]
    assert segments(CHOOSE_EN, chinese_default=False) == [
        Segment(EN, "Welcome to River Bank. For English, press 1."),
        Segment(PY, "pu3 tong1 hua4 fu2 wu4 qing3 an4 er4."),
    ]
    assert segments("我行的ATM机24小时服务。") == [
        Segment(PY, "wo3 hang2 de5"),
        Segment(EN, "ATM"),
        Segment(PY, "ji1 er4 shi2 si4 xiao3 shi2 fu2 wu4."),
    ]
    assert segments("谢谢您，Li Wei。") == [Segment(PY, "xie4 xie4 nin2,"), Segment(EN, "Li Wei.")]
    assert segments("Press 1 or say “是”.", latin_voice="en-gb", chinese_default=False) == [
        Segment("en-gb", "Press 1 or say"),
        Segment(PY, "shi4."),
    ]


def test_digits_go_with_the_words_they_belong_to() -> None:
    runs = split_scripts("River Bank 24小时热线 95588, press 0 now")
    assert [(r.chinese, r.text) for r in runs] == [
        (False, "River Bank "),
        (True, "24小时热线 95588, "),
        (False, "press 0 now"),
    ]
    assert [r.chinese for r in split_scripts("95588")] == [True]
    assert [r.chinese for r in split_scripts("95588", chinese_default=False)] == [False]


def test_nothing_to_say_gives_no_segment() -> None:
    assert segments("。，“”") == []
    assert segments("") == []


def test_synthesizer_routes_text_through_the_front_end() -> None:
    synth = Synthesizer()
    assert synth.segments("For balance press one.", "en") == [
        Segment(EN, "For balance press one.")  # untouched: no Chinese in it
    ]
    assert synth.segments("查询余额请按1。", "zh-CN") == [
        Segment(PY, "cha2 xun2 yu2 e2 qing3 an4 yi1.")
    ]
    assert [s.voice for s in synth.segments(CHOOSE_EN, "en")] == [EN, PY]
    assert synth.segments("東京駅", "ja") == [Segment("ja", "東京駅")]  # kanji stay Japanese
    assert synth.voice_label("查询余额。", "zh") == PY
    assert synth.voice_label(CHOOSE_ZH, "zh") == f"{PY}+{EN}"
    assert synth.voice_label("Goodbye.", "en") == EN
    british = Synthesizer(voices={"en": "en-gb", "zh": PY})
    assert [s.voice for s in british.segments(CHOOSE_ZH, "zh")] == [PY, "en-gb"]


def test_missing_pypinyin_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    mandarin._pypinyin.cache_clear()
    monkeypatch.setitem(sys.modules, "pypinyin", None)  # import pypinyin now fails
    try:
        with pytest.raises(TTSUnavailable) as info:
            Synthesizer().segments("查询余额。", "zh")
        assert str(info.value) == PYPINYIN_FIX
        assert Synthesizer().segments("Hello.", "en") == [Segment(EN, "Hello.")]
    finally:
        mandarin._pypinyin.cache_clear()


def test_version_and_cache_key_change_with_the_front_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert PIPELINE_VERSION >= 3  # 2 was the cmn voice reading characters: never reused
    version = Synthesizer().version
    assert version.endswith(f"/v{PIPELINE_VERSION}/zh-frontend-{mandarin.FRONTEND_VERSION}")
    key = PromptCache(tmp_path).key(CHOOSE_ZH, "zh")
    # the English voice of a mixed prompt is part of its key
    british = Synthesizer(voices={"en": "en-gb", "zh": PY})
    assert PromptCache(tmp_path, british).key(CHOOSE_ZH, "zh") != key
    monkeypatch.setattr(mandarin, "FRONTEND_VERSION", mandarin.FRONTEND_VERSION + 1)
    assert PromptCache(tmp_path).key(CHOOSE_ZH, "zh") != key  # a fresh synthesizer's version
    assert Synthesizer().version != version


# --- real renders through espeak-ng -------------------------------------------------------------

RMS_FLOOR = 500.0  # as in test_tts.py: speech is about 2,600, silence 0


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The zh prompt, the mixed prompt and its Chinese part alone, rendered once."""
    cache = PromptCache(tmp_path_factory.mktemp("prompts"))
    texts = {"zh": "查询账户余额请按1或说“余额”。", "mixed": CHOOSE_ZH,
             "zh_part": "欢迎致电江河银行。普通话服务请按2。"}
    return {name: cache.synthesize(text, "zh")[0] for name, text in texts.items()}


def _check_speech(path: Path, low: float, high: float) -> np.ndarray:
    audio = read(path)
    assert (audio.rate, audio.channels, audio.width) == (8000, 1, 2)
    assert low <= audio.seconds <= high, f"{audio.seconds:.2f} s outside {low}..{high} s"
    assert audio.rms > RMS_FLOOR, f"RMS {audio.rms:.0f}: silence?"
    return audio.samples


def test_a_mandarin_prompt_renders_as_8khz_speech(rendered: dict[str, Path]) -> None:
    # 14 syllables: about 4 s here; the cmn voice saying tone numbers took twice that.
    _check_speech(rendered["zh"], 2.0, 8.0)
    meta = json.loads(rendered["zh"].with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["voice"] == PY


def test_a_mixed_prompt_is_one_file_with_both_voices(rendered: dict[str, Path]) -> None:
    samples = _check_speech(rendered["mixed"], 4.0, 15.0)
    chinese = _check_speech(rendered["zh_part"], 2.0, 10.0)
    # "For English, press 1." is in the file too: well over half a second more than the
    # Chinese alone.
    assert samples.size > chinese.size + 4000
    meta = json.loads(rendered["mixed"].with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["voice"] == f"{PY}+{EN}"


def test_segments_are_joined_with_a_pause_by_how_they_end() -> None:
    sound = np.full(2205, 0.5)  # 0.1 s of "sound" between 0.1 s silences, at 22,050 Hz
    quiet = np.zeros(2205)
    piece = np.concatenate([quiet, sound, quiet])
    sentence, word = Segment(PY, "ni3 hao3."), Segment(PY, "wo3 hang2 de5")
    assert sentence.pause_after == mandarin.SENTENCE_PAUSE
    assert word.pause_after == mandarin.WORD_PAUSE
    assert Segment(EN, "Hello,").pause_after == mandarin.CLAUSE_PAUSE
    joined = join_with_pauses([piece, piece], [sentence.pause_after], 22050)
    # The outer silences stay; at the seam each side keeps a 10 ms edge, then the pause.
    assert joined.size == 2 * (2205 + 2205) + 2 * 220 + int(0.35 * 22050)
    assert np.array_equal(joined[:4410], piece[:4410])
    assert np.array_equal(join_with_pauses([piece], [], 22050), piece)
    with pytest.raises(ValueError, match="2 pieces need 1 pauses"):
        join_with_pauses([piece, piece], [], 22050)
