"""What a caller may say at a ``language`` node: each language's names, in the languages that
can hear them.

A language node runs before the call's language is chosen, so its recognizer is the one for the
current (at first the default) language, and it can only hear words of that language: an
English recognizer hears "chinese" or "mandarin", never "中文" (PocketSphinx even refuses a
grammar holding a word its dictionary lacks). So the names are kept per *listening* language,
and a node listening in English offers each choice's English names only. A choice's ``say:``
replaces these built-in names for the listening languages it gives (docs/FLOWS.md "language").
"""

from __future__ import annotations

from ivr.flow.model import LanguageNode

#: language code -> listening language -> names a caller says for it in that language. English
#: names are words of the PocketSphinx English dictionary (checked by the tests).
LANGUAGE_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {"en": ("english",), "zh": ("英语", "英文"), "ko": ("영어",), "ja": ("英語",)},
    "zh": {"zh": ("中文", "普通话", "汉语", "国语", "华语"), "en": ("chinese", "mandarin"),
           "ko": ("중국어",), "ja": ("中国語",)},
    "yue": {"yue": ("粤语", "广东话", "廣東話"), "zh": ("粤语", "广东话"), "en": ("cantonese",)},
    "ko": {"ko": ("한국어", "한국말"), "en": ("korean",), "zh": ("韩语", "韩国语")},
    "ja": {"ja": ("日本語",), "en": ("japanese",), "zh": ("日语",)},
    "fr": {"fr": ("français",), "en": ("french",), "zh": ("法语",)},
    "es": {"es": ("español",), "en": ("spanish",), "zh": ("西班牙语",)},
    "de": {"de": ("deutsch",), "en": ("german",), "zh": ("德语",)},
    "ru": {"ru": ("русский",), "en": ("russian",), "zh": ("俄语",)},
    "vi": {"vi": ("tiếng việt",), "en": ("vietnamese",), "zh": ("越南语",)},
}


def _base(code: str) -> str:
    return code.split("-")[0].lower()


def phrase_key(phrase: str) -> str:
    """A phrase as compared for clashes: lower case, spaces folded."""
    return " ".join(phrase.lower().split())


def builtin_names(language: str, listening: str) -> tuple[str, ...]:
    """The built-in names of ``language`` said in ``listening`` (regional codes fall back to
    their base language: ``zh-TW`` -> ``zh``); empty when the table has none."""
    names = LANGUAGE_NAMES.get(language) or LANGUAGE_NAMES.get(_base(language)) or {}
    return names.get(listening) or names.get(_base(listening)) or ()


def choice_names(node: LanguageNode, key: str, listening: str) -> tuple[str, ...]:
    """What a caller listened to in ``listening`` says for choice ``key``: its ``say:`` phrases
    for that language when it has them, else the built-in names of its language."""
    override = node.say.get(key)
    if override is not None and listening in override:
        return override[listening]
    return builtin_names(node.choices[key], listening)


def language_phrases(node: LanguageNode, listening: str) -> dict[str, tuple[str, ...]]:
    """Language code -> phrases, for a recognizer of ``listening`` (the listen spec).

    Choices of the same language share one entry; a phrase is kept under the first language
    that has it (a clash is a flow error, but a recognizer must never get one phrase twice).
    """
    out: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    for key, language in node.choices.items():
        fresh = [p for p in choice_names(node, key, listening) if phrase_key(p) not in seen]
        seen.update(phrase_key(p) for p in fresh)
        if fresh:
            out[language] = (*out.get(language, ()), *fresh)
    return out
