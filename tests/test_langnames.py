"""The spoken names of languages at a ``language`` node (ivr.flow.langnames)."""

from __future__ import annotations

from pathlib import Path

import pocketsphinx
import pytest

from ivr.flow.langnames import LANGUAGE_NAMES, builtin_names, language_phrases
from ivr.flow.model import LanguageNode, Pos, Prompt


def node(choices: dict[str, str], say: dict[str, dict[str, tuple[str, ...]]] | None = None
         ) -> LanguageNode:  # fmt: skip
    return LanguageNode("pick", Pos(), Prompt("pick", ()), choices, "next", say=say or {})


def test_every_english_name_is_a_word_pocketsphinx_can_hear() -> None:
    # PocketSphinx refuses a grammar with a word its dictionary lacks, so one bad name here
    # would silence every English language node that offers that language.
    dictionary = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    words = {line.split(" ", 1)[0] for line in dictionary.read_text().splitlines()}
    english = [w for names in LANGUAGE_NAMES.values() for phrase in names.get("en", ())
               for w in phrase.split()]
    assert len(english) >= len(LANGUAGE_NAMES)
    assert [w for w in english if w not in words] == []


@pytest.mark.parametrize(("language", "listening", "expected"), [
    ("zh", "en", ("chinese", "mandarin")),
    ("zh-TW", "en-GB", ("chinese", "mandarin")),  # regional codes use their base language
    ("en", "zh", ("英语", "英文")),
    ("ko", "ko", ("한국어", "한국말")),
    ("ko", "ja", ()),  # not in the table: the choice is keys only there
    ("xx", "en", ()),
])
def test_builtin_names(language: str, listening: str, expected: tuple[str, ...]) -> None:
    assert builtin_names(language, listening) == expected


def test_phrases_are_keyed_by_language_and_a_say_wins_only_where_it_speaks() -> None:
    picked = node({"1": "en", "2": "zh", "3": "ko"}, {"3": {"zh": ("韩文",)}})
    assert language_phrases(picked, "en") == {
        "en": ("english",), "zh": ("chinese", "mandarin"), "ko": ("korean",)}
    assert language_phrases(picked, "zh")["ko"] == ("韩文",)


def test_a_recognizer_never_gets_one_phrase_under_two_languages() -> None:
    # Two keys for one language share an entry; a clashing say (a flow error) keeps the first.
    picked = node({"1": "en", "9": "en", "2": "zh"}, {"2": {"en": ("English", "chinese")}})
    assert language_phrases(picked, "en") == {"en": ("english",), "zh": ("chinese",)}
