"""Grammar compilation against the real CMU dictionary, FSG paths, and reading results back."""

from __future__ import annotations

from pathlib import Path

import pocketsphinx
import pytest

from ivr.asr.base import AsrError, Grammar
from ivr.asr.grammar import (
    GARBAGE_MARK,
    PHONES,
    CompiledGrammar,
    compile_grammar,
    compile_spotting,
    non_rhotic,
    normalise_phrase,
    number_words,
    parse_amount,
)
from ivr.asr.sphinx import phone_bigram

MENU = {"balance": ("balance", "my balance"), "card": ("lost card", "Stolen card!"),
        "agent": ("agent", "speak to someone")}  # fmt: skip


@pytest.fixture(scope="module")
def decoder() -> pocketsphinx.Decoder:
    """A real decoder: its dictionary checks words, its FSG code checks paths."""
    return pocketsphinx.Decoder(pocketsphinx.Config(lm=None, loglevel="FATAL"))


def fsg(decoder: pocketsphinx.Decoder, compiled: CompiledGrammar) -> pocketsphinx.FsgModel:
    for word, phones in compiled.extra_words:
        if decoder.lookup_word(word) is None:
            decoder.add_word(word, phones, True)
    transitions = [t if t[3] is not None else t[:3] for t in compiled.transitions]
    return decoder.create_fsg("test", 0, 1, transitions)


def test_normalise_phrase_and_numbers() -> None:
    assert normalise_phrase("  Stolen   card! ") == ["stolen", "card"]
    assert normalise_phrase("Press 24, it's open") == ["press", "twenty", "four", "it's", "open"]
    digits = ["one", "two", "three", "four", "five", "six", "seven"]
    assert normalise_phrase("card 1234567") == ["card", *digits]
    assert number_words(105_040) == ["one", "hundred", "five", "thousand", "forty"]
    with pytest.raises(ValueError):
        number_words(1_000_000)


def test_the_garbage_path_is_a_phone_recogniser_weighted_by_the_bigram(
        decoder: pocketsphinx.Decoder) -> None:
    model_dir = Path(pocketsphinx.get_model_path()) / "en-us"
    bigram = phone_bigram(model_dir / "en-us-phone.lm.bin")
    after_ah = sum(bigram["AH", phone] for phone in PHONES)
    assert 0.9 < after_ah <= 1.0  # the rest is silence and the end of the utterance
    assert bigram["AH", "N"] > 10 * bigram["AH", "ZH"]  # "-tion" is common, "-ahzh" is not
    plain = compile_grammar(Grammar(choices=MENU), decoder.lookup_word)
    compiled = compile_grammar(Grammar(choices=MENU), decoder.lookup_word, bigram)
    assert not any(w.startswith(GARBAGE_MARK) for w, _ in plain.extra_words)
    garbage = {w: p for w, p in compiled.extra_words if w.startswith(GARBAGE_MARK)}
    assert len(garbage) == len(PHONES) and garbage[f"{GARBAGE_MARK}zh"] == "ZH"
    model = fsg(decoder, compiled)
    assert model.accept("my balance") and model.accept(f"{GARBAGE_MARK}w {GARBAGE_MARK}eh")
    assert not model.accept(f"my {GARBAGE_MARK}eh")  # all grammar or all garbage
    # A phone's weight out of the state after AH follows P(phone | AH).
    after_ah_state = next(b for _, b, _, w in compiled.transitions if w == f"{GARBAGE_MARK}ah")
    weight = {w: p for a, _, p, w in compiled.transitions if a == after_ah_state}
    assert weight[f"{GARBAGE_MARK}n"] > 2 * weight[f"{GARBAGE_MARK}zh"]


def test_choices_compile_and_map_back(decoder: pocketsphinx.Decoder) -> None:
    compiled = compile_grammar(Grammar(choices=MENU), decoder.lookup_word)
    model = fsg(decoder, compiled)
    assert model.accept("stolen card") and model.accept("speak to someone")
    assert not model.accept("stolen balance")
    heard = ["<sil>", "stolen", "card", "[NOISE]", "</s>"]
    assert compiled.interpret(heard) == ("stolen card", "card")
    assert compiled.interpret(["my", "balance(2)"]) == ("my balance", "balance")
    assert compiled.interpret([f"{GARBAGE_MARK}ah", f"{GARBAGE_MARK}t"]) == ("", None)
    assert compiled.interpret([]) == ("", None)


def test_missing_words_are_named_with_their_choices(decoder: pocketsphinx.Decoder) -> None:
    grammar = Grammar(choices={"a": ("zorbleflax account",), "b": ("zorbleflax", "qwxzt")})
    with pytest.raises(AsrError) as err:
        compile_grammar(grammar, decoder.lookup_word)
    message = str(err.value)
    assert "'zorbleflax' (choice 'a', 'b')" in message and "'qwxzt' (choice 'b')" in message


def test_unsupported_or_empty_grammars(decoder: pocketsphinx.Decoder) -> None:
    with pytest.raises(AsrError, match="English only"):
        compile_grammar(Grammar(language="zh", choices={"a": ("余额",)}), decoder.lookup_word)
    with pytest.raises(AsrError, match="no phrases"):
        compile_grammar(Grammar(choices={"a": ("!!",)}), decoder.lookup_word)


def test_digit_counts_are_exact(decoder: pocketsphinx.Decoder) -> None:
    grammar = Grammar(builtin="digits", min_digits=4, max_digits=4)
    compiled = compile_grammar(grammar, decoder.lookup_word)
    model = fsg(decoder, compiled)
    assert model.accept("four oh seven one")
    assert not model.accept("four seven one") and not model.accept("one two three four five")
    assert compiled.interpret(["four", "oh", "seven(11)", "one"]) == ("four oh seven one", "4071")
    assert compiled.partial(["four", "oh", "seven", "one"]) == ("four oh seven one", True)
    assert compiled.partial(["four", "oh", "seven"])[1] is False
    open_length = compile_grammar(Grammar(builtin="digits"), decoder.lookup_word)
    assert open_length.partial(["one", "two", "three", "four"])[1] is False


def test_yes_no_and_completeness(decoder: pocketsphinx.Decoder) -> None:
    compiled = compile_grammar(Grammar(builtin="yes_no"), decoder.lookup_word)
    assert compiled.interpret(["yeah"]) == ("yeah", "yes")
    assert compiled.interpret(["no", "thanks"]) == ("no thanks", "no")
    assert compiled.partial(["yes"]) == ("yes", True)  # "yes please" would still be "yes"
    menu = compile_grammar(Grammar(choices=MENU), decoder.lookup_word)
    assert menu.partial(["balance"]) == ("balance", True)
    assert menu.partial(["lost"]) == ("lost", False)
    clash = compile_grammar(Grammar(choices={"a": ("card",), "b": ("card status",)}),
                            decoder.lookup_word)  # fmt: skip
    assert clash.partial(["card"]) == ("card", False)  # "card status" means something else


def test_amounts(decoder: pocketsphinx.Decoder) -> None:
    compiled = compile_grammar(Grammar(builtin="amount"), decoder.lookup_word)
    model = fsg(decoder, compiled)
    said = {
        "two hundred fifty dollars and fifty cents": "250.50",
        "one thousand and five": "1005.00",
        "twelve point five zero": "12.50",
        "fifty cents": "0.50",
        "a hundred dollars": "100.00",
        "three thousand two hundred and one dollars": "3201.00",
    }
    for text, value in said.items():
        assert model.accept(text), text
        assert compiled.interpret(text.split()) == (text, value)
    assert not model.accept("two two hundred")
    assert parse_amount(["twelve", "point", "five"]) is None


def test_the_dictionary_path_is_the_wheels() -> None:
    # The backend and these tests read the same dictionary (the one in the wheel).
    assert (Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict").is_file()


def test_non_rhotic_variants() -> None:
    assert non_rhotic("F AO R") == ("F AO",)  # four: final /r/ silent
    assert non_rhotic("K AA R D") == ("K AA D",)  # card: /r/ before a consonant
    assert non_rhotic("AW ER Z") == ("AW AH Z",)  # hours
    # operator: a final /er/ becomes schwa; one before a vowel keeps its /r/ (linking r)
    assert non_rhotic("AA P ER EY T ER") == ("AA P ER EY T AH", "AA P AH R EY T AH")
    assert non_rhotic("V EH R IY") == ()  # very: /r/ before a vowel stays
    assert non_rhotic("B AE L AH N S") == ()  # nothing to change


def test_grammar_words_get_their_variants(decoder: pocketsphinx.Decoder) -> None:
    menu = Grammar(choices={"agent": ("operator",), "hours": ("branch hours",)})
    compiled = compile_grammar(menu, decoder.lookup_word)
    extra = dict(compiled.extra_words)
    assert extra["operator(20)"] == "AA P ER EY T AH"
    assert extra["hours(20)"] == "AW AH Z"
    assert not any(w.startswith("branch(") for w in extra)  # no /r/ to drop after a vowel
    fsg(decoder, compiled)  # the decoder takes them
    assert compiled.interpret(["<sil>", "operator(21)", "<sil>"]) == ("operator", "agent")
    digits = dict(compile_grammar(Grammar(builtin="digits", min_digits=4, max_digits=4),
                                  decoder.lookup_word).extra_words)  # fmt: skip
    assert "S IH K" in digits.values() and "TH AY V" in digits.values()  # band-limited six, five

def test_weak_digit_variants_are_light_words_of_strings_only(decoder: pocketsphinx.Decoder) -> None:
    four = compile_grammar(Grammar(builtin="digits", min_digits=4, max_digits=4),
                           decoder.lookup_word)  # fmt: skip
    assert dict(four.extra_words)["six_0"] == "F EY K S"
    weight = {w: p for a, _, p, w in four.transitions if a == 0 and w is not None}
    assert weight["six_0"] < weight["six"] / 5
    assert four.interpret(["five", "two", "two", "six_1"]) == ("five two two six", "5226")
    fsg(decoder, four)  # the decoder takes the words
    one = compile_grammar(Grammar(builtin="digits", min_digits=1, max_digits=1),
                          decoder.lookup_word)  # fmt: skip
    assert not any(w.startswith("six_") for w in dict(one.extra_words))
    assert not any(w == "six_0" for _, _, _, w in one.transitions)


def test_the_spotting_grammar_says_one_phrase_among_phones(decoder: pocketsphinx.Decoder) -> None:
    # The rescue pass's grammar: garbage* phrase garbage*. Phones may come before and after the
    # phrase, but a path always holds exactly one phrase.
    model_dir = Path(pocketsphinx.get_model_path()) / "en-us"
    bigram = phone_bigram(model_dir / "en-us-phone.lm.bin")
    compiled = compile_spotting(Grammar(choices=MENU), decoder.lookup_word, bigram, 1e-2)
    model = fsg(decoder, compiled)
    g = GARBAGE_MARK
    assert model.accept("my balance") and model.accept(f"{g}w {g}eh stolen card {g}t")
    assert model.accept(f"agent {g}ah") and model.accept(f"{g}ah {g}n agent")
    assert not model.accept(f"{g}w {g}eh")  # no phrase at all
    assert not model.accept("agent my balance")  # two phrases
    assert not model.accept(f"agent {g}ah agent")
    assert compiled.phrases["lost card"] == "card"
    # The loops are entered with the weight given, not normalised against the phrases.
    entries = sorted(p for a, _, p, w in compiled.transitions if a == 0 and w is None)
    assert entries[0] == pytest.approx(1e-2) and entries[-1] == pytest.approx(1.0)
    with pytest.raises(AsrError, match="English only"):
        compile_spotting(Grammar(language="zh", choices={"a": ("余额",)}), decoder.lookup_word,
                         bigram, 1e-2)  # fmt: skip
