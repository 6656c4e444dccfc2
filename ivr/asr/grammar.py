"""Grammars for PocketSphinx: a :class:`~ivr.asr.base.Grammar` compiled to a weighted FSG.

A node's grammar (choice phrases, or a built-in: yes/no, digits, amounts) becomes a finite-state
grammar of dictionary words, built directly as transitions (``Decoder.create_fsg``) rather than
JSGF text: that gives exact digit counts (``min_digits``..``max_digits`` unrolled as a chain of
states) and control over every weight, which JSGF's ``+`` and ``/weight/`` do not.

Out-of-grammar speech. Given the model's phone bigram, the FSG has a *garbage* path beside the
grammar's own: a phone recogniser, one state per phone of the acoustic model, each phone a
one-phone dictionary word (``~aa``, ``~b``, ...) weighted by its probability after the previous
phone. It can imitate any speech, in-grammar speech included, but entering it costs
:data:`GARBAGE_ENTRY`, so the decoder takes it only when no grammar path fits the audio nearly
as well: a caller talking about something else ends on the garbage path and the result is a
no-match rather than the nearest choice. Because the garbage path keeps every phone's senones
in the search, the best path's score per frame also measures how well the grammar explains the
audio (the backend's rejection floor, :mod:`ivr.asr.sphinx`).

Words are normalised (lower case, punctuation dropped, numbers written out) and looked up in the
acoustic model's dictionary; words it lacks are reported together in one :class:`AsrError`.
Decoded word strings are mapped back with :meth:`CompiledGrammar.interpret`: a choice key, or
the built-in's value (digits "1234", yes/no "yes"/"no", amounts "250.00").
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ivr.asr.base import AsrError, Grammar

Lookup = Callable[[str], "str | None"]  # word -> its phones ("HH AH L OW") or None
Transition = tuple[int, int, float, "str | None"]  # from, to, probability, word (None: empty)
Bigram = dict[tuple[str, str], float]  # (previous phone or "<s>", phone) -> probability

# The acoustic model's phones (en-us PTM model, SIL excluded): the garbage loop's words.
PHONES = [
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH",
    "UH", "UW", "V", "W", "Y", "Z", "ZH",
]
GARBAGE_MARK = "~"
# Probability of taking the garbage path instead of the grammar: low, so that in-grammar
# speech in noise stays on the grammar (the score floor rejects what gets through); chosen
# with the floors on the tuning set of bench/asr.
GARBAGE_ENTRY = 1e-24
# The bigram's weight against the acoustics, relative to the FSG's language weight (6.5): the
# phone recogniser's best separation was measured at a weight of 3.
GARBAGE_LW = 3.0 / 6.5
GARBAGE_EXIT = 0.1  # weight of leaving the garbage path after any phone

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
MAX_DIGITS = 20
YES = ("yes", "yeah", "yep", "yup", "correct", "right", "sure", "ok", "okay", "that's right",
       "yes please", "that's correct")  # fmt: skip
NO = ("no", "nope", "wrong", "incorrect", "no thanks", "not right", "that's wrong")

# Telephone-band variants of the digits. The model is trained on 16 kHz speech; on 8 kHz audio
# the fricatives lose everything above 4 kHz and it hears /s/ and /f/ as /th/, /dh/ or nothing
# (phone-loop decodes of band-limited digits). These extra pronunciations let those renderings
# still match the right digit; measured: isolated digits 0.78 -> 0.84, digit-string error
# 0.31 -> 0.20 on synthesized voices, recorded digits unchanged.
DIGIT_VARIANTS = {
    "four": ("F AO", "F OW R", "TH AO R", "F OW"),
    "seven": ("F EH V AH N", "TH EH V AH N", "S EH M AH N", "F EH M AH N", "EH V AH N"),
    "six": ("TH IH K S", "S IH K", "TH IH K"),
    "five": ("TH AY V", "F AY"),
}
# Renderings of a digit too close to another digit to be equal pronunciations: each is its own
# FSG word (``six_0``...: a dictionary alternate would get the digit's full weight) at
# WEAK_VARIANT_WEIGHT. The recorded Asterisk "six" arrives as *f-ay-k(s)* inside digit strings
# (phone-loop decodes), which the plain forms hear as "eight"; at full weight the same forms took
# synthesized eights. Strings only: said alone, the recorded six is heard right and a
# synthesized "eight" matched *f-ay-k-s* better than its own forms (isolated digits 0.98 -> 0.96).
WEAK_DIGIT_VARIANTS = {"six": ("F EY K S", "F EY K")}
WEAK_VARIANT_WEIGHT = 0.1

VOWELS = frozenset(("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY",
                    "UH", "UW"))  # fmt: skip
NON_RHOTIC = True  # add British-style pronunciations of the grammar's words (see non_rhotic)


def non_rhotic(phones: str) -> tuple[str, ...]:
    """Non-rhotic pronunciations of a CMUdict (US, rhotic) one: ``F AO R`` -> ``F AO``.

    Most English outside North America drops an /r/ that no vowel follows and says a final or
    pre-consonant /er/ as a schwa: "operator" is *op-uh-ray-tuh*, "hours" *ow-uhz*, "card"
    *cahd*. CMUdict has only the rhotic forms, and the model then scores such callers poorly.
    Two variants: /r/ dropped where no vowel follows; and that plus every /er/ as /ah/ (/ah r/
    before a vowel). Returns the variants that differ from ``phones`` (none for most words).
    """
    seq = phones.split()
    first: list[str] = []
    second: list[str] = []
    for i, ph in enumerate(seq):
        after = seq[i + 1] if i + 1 < len(seq) else None
        vowel_next = after in VOWELS
        if ph == "R" and not vowel_next and i > 0 and seq[i - 1] in VOWELS:
            continue  # coda /r/ after a vowel: silent
        if ph == "ER":
            first.append("ER" if vowel_next else "AH")
            second += ["AH", "R"] if vowel_next else ["AH"]
            continue
        first.append(ph)
        second.append(ph)
    out = []
    for variant in (" ".join(first), " ".join(second)):
        if variant != phones and variant not in out:
            out.append(variant)
    return tuple(out)


_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_VALUES = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_VALUES["oh"] = 0


def number_words(n: int) -> list[str]:
    """``n`` (0..999,999) as English words: 125 -> ["one", "hundred", "twenty", "five"]."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return [_UNITS[n]]
    if n < 100:
        return [_TENS[n // 10 - 2]] + ([_UNITS[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_UNITS[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    return number_words(n // 1000) + ["thousand"] + (number_words(n % 1000) if n % 1000 else [])


def normalise_phrase(phrase: str) -> list[str]:
    """A phrase as dictionary words: lower case, punctuation dropped, numbers spelled out."""
    text = unicodedata.normalize("NFKC", phrase).lower().replace("’", "'")
    text = re.sub(r"[^\w'\s-]", " ", text)
    words: list[str] = []
    for token in text.split():
        token = token.strip("'-")
        if token.isdigit():
            words += number_words(int(token)) if len(token) <= 6 else [
                DIGIT_WORDS[int(c)] for c in token]  # fmt: skip
        elif token:
            words.append(token)
    return words


@dataclass(frozen=True)
class CompiledGrammar:
    """A grammar as FSG transitions, plus what the decoder's dictionary needs for it.

    Attributes:
        grammar: the source grammar.
        transitions: ``(from, to, probability, word or None)``; state 0 starts, 1 is final.
        n_states: number of states.
        extra_words: ``(word, phones)`` to add to the dictionary (garbage phones, variants).
        phrases: normalised phrase -> choice key.
    """

    grammar: Grammar
    transitions: tuple[Transition, ...]
    n_states: int
    extra_words: tuple[tuple[str, str], ...]
    phrases: dict[str, str]

    def interpret(self, words: Sequence[str]) -> tuple[str, str | None]:
        """Decoded words -> (normalised text, choice key or built-in value; None: no match).

        Fillers (``<sil>``, ``[NOISE]``) are dropped; any garbage word makes it a no-match.
        """
        spoken = [_base(w) for w in words if not _is_filler(w)]
        garbage = any(w.startswith(GARBAGE_MARK) for w in spoken)
        text = " ".join(w for w in spoken if not w.startswith(GARBAGE_MARK))
        if garbage or not text:
            return text, None
        if text in self.phrases:
            return text, self.phrases[text]
        return text, _builtin_value(self.grammar, text.split())

    def partial(self, words: Sequence[str]) -> tuple[str, bool]:
        """A hypothesis so far -> (its text, whether it is *complete*).

        Complete: it already maps to a value and no longer phrase of the grammar that starts
        with it maps to another one (for digits: ``max_digits`` said), so nothing the caller
        may add can change the result.
        """
        text, value = self.interpret(words)
        if value is None:
            return text, False
        grammar = self.grammar
        if text not in self.phrases:
            if grammar.builtin == "digits":
                return text, len(text.split()) >= min(grammar.max_digits or MAX_DIGITS, MAX_DIGITS)
            return text, False  # amounts can always go on
        prefix = text + " "
        if grammar.builtin in ("digits", "amount") and text.split()[-1] in _VALUES:
            return text, False  # a number word may be followed by more of them
        return text, all(v == value for p, v in self.phrases.items() if p.startswith(prefix))


def compile_grammar(grammar: Grammar, lookup: Lookup, bigram: Bigram | None = None,
                    garbage_entry: float = GARBAGE_ENTRY) -> CompiledGrammar:
    """Build the FSG for ``grammar``, checking every word against the dictionary (``lookup``);
    with a phone ``bigram`` it also gets the garbage path, entered with ``garbage_entry``.

    Raises:
        AsrError: the language is not English, the grammar is empty, or words are missing from
            the dictionary (all of them named in one message).
    """
    if grammar.language.split("-")[0].lower() != "en":
        raise AsrError(f"PocketSphinx recognises English only, not {grammar.language!r}")
    fsg = _FsgBuilder()
    phrases = _add_choices(fsg, grammar, lookup)
    if grammar.builtin == "yes_no":
        for phrase in YES + NO:
            if phrase not in phrases:
                phrases[phrase] = "yes" if phrase in YES else "no"
                fsg.path(0, 1, phrase.split())
    elif grammar.builtin == "digits":
        _add_digits(fsg, grammar.min_digits or 1, grammar.max_digits or MAX_DIGITS)
    elif grammar.builtin == "amount":
        _add_amount(fsg, 0, 1)
    if not fsg.transitions:
        raise AsrError("the grammar has no phrases and no built-in")
    extra: list[tuple[str, str]] = _variants(fsg, lookup) if NON_RHOTIC else []
    if grammar.builtin in ("digits", "amount"):
        extra += [(f"{w}({i + 10})", p) for w, ps in DIGIT_VARIANTS.items()
                  for i, p in enumerate(ps)]  # fmt: skip
    if grammar.builtin == "digits" and (grammar.max_digits or MAX_DIGITS) > 1:
        extra += [(f"{w}_{i}", p) for w, ps in WEAK_DIGIT_VARIANTS.items()
                  for i, p in enumerate(ps)]  # fmt: skip
    if bigram is not None:
        _add_garbage(fsg, bigram, garbage_entry)
        extra += [(f"{GARBAGE_MARK}{p.lower()}", p) for p in PHONES]
    return CompiledGrammar(grammar, fsg.normalised(), fsg.n_states, tuple(extra), phrases)


def compile_spotting(grammar: Grammar, lookup: Lookup, bigram: Bigram,
                     loop_entry: float) -> CompiledGrammar:
    """An FSG that must say one phrase of ``grammar`` somewhere: ``garbage* phrase garbage*``.

    The phrase may be preceded and followed by the garbage path's phone loop (each entered with
    ``loop_entry``, kept as given: the phrase itself is always on the path), so speech or babble
    around the phrase is explained by phones instead of silence. The rescue pass
    (:mod:`ivr.asr.rescue`) decodes with it when the first pass ended on the garbage path. Only
    choice grammars (no built-in).

    Raises:
        AsrError: as :func:`compile_grammar`.
    """
    if grammar.language.split("-")[0].lower() != "en":
        raise AsrError(f"PocketSphinx recognises English only, not {grammar.language!r}")
    fsg = _FsgBuilder()
    before, after = fsg.state(), fsg.state()
    phrases = _add_choices(fsg, grammar, lookup, before, after)
    if not phrases:
        raise AsrError("the grammar has no phrases")
    extra = _variants(fsg, lookup) if NON_RHOTIC else []
    fsg.empty(0, before, 1.0, raw=True)
    _add_garbage(fsg, bigram, loop_entry, 0, before, raw_entry=True)
    fsg.empty(after, 1, 1.0, raw=True)
    _add_garbage(fsg, bigram, loop_entry, after, 1, raw_entry=True)
    extra += [(f"{GARBAGE_MARK}{p.lower()}", p) for p in PHONES]
    return CompiledGrammar(grammar, fsg.normalised(), fsg.n_states, tuple(extra), phrases)


def _variants(fsg: _FsgBuilder, lookup: Lookup) -> list[tuple[str, str]]:
    """Extra pronunciations (``word(20)``...) for the grammar's words: :func:`non_rhotic`."""
    words = sorted({w for _, _, _, w in fsg.transitions if w is not None and "(" not in w})
    extra: list[tuple[str, str]] = []
    for word in words:
        phones = lookup(word)
        if phones:
            extra += [(f"{word}({20 + i})", v) for i, v in enumerate(non_rhotic(phones))]
    return extra


def _add_choices(fsg: _FsgBuilder, grammar: Grammar, lookup: Lookup, start: int = 0,
                 end: int = 1) -> dict[str, str]:
    """Every phrase of ``grammar`` as a path from ``start`` to ``end``; normalised phrase ->
    choice key."""
    phrases: dict[str, str] = {}
    missing: dict[str, list[str]] = defaultdict(list)
    for key, said in grammar.choices.items():
        for phrase in said:
            words = normalise_phrase(phrase)
            for word in words:
                if lookup(word) is None and key not in missing[word]:
                    missing[word].append(key)
            text = " ".join(words)
            if words and text not in phrases:
                phrases[text] = key
                fsg.path(start, end, words)
    if missing:
        listed = ", ".join(f"{w!r} (choice {', '.join(map(repr, keys))})"
                           for w, keys in missing.items())  # fmt: skip
        raise AsrError(f"not in the PocketSphinx English dictionary: {listed}; "
                       "say them with other words")  # fmt: skip
    return phrases


def _add_digits(fsg: _FsgBuilder, low: int, high: int) -> None:
    """``low``..``high`` digits: a chain of states, one per digit said, exits from ``low`` on."""
    low, high = max(1, low), min(max(low, high), MAX_DIGITS)
    state = 0
    for count in range(1, high + 1):
        nxt = fsg.state()
        for word in (*DIGIT_WORDS, "oh"):
            fsg.word(state, nxt, word, 0.5 if word == "oh" else 1.0)  # "oh" is a rarer zero
        for word, variants in WEAK_DIGIT_VARIANTS.items() if high > 1 else ():
            for i in range(len(variants)):
                fsg.word(state, nxt, f"{word}_{i}", WEAK_VARIANT_WEIGHT)
        if count >= low:
            fsg.empty(nxt, 1)
        state = nxt


def _add_amount(fsg: _FsgBuilder, start: int, end: int) -> None:
    """Money: "<number> [dollars] [[and] <n99> cents]", "<number> point <d> <d>", "<n99> cents"."""
    whole = fsg.state()
    _number(fsg, start, whole)
    after = fsg.state()
    fsg.empty(whole, end)
    fsg.empty(whole, after, 0.5)
    for unit in ("dollars", "dollar"):
        fsg.word(whole, after, unit)
    fsg.empty(after, end)
    cents = fsg.state()
    fsg.empty(after, cents, 0.5)
    fsg.word(after, cents, "and", 0.5)
    counted = fsg.state()
    _n99(fsg, cents, counted)
    fsg.word(counted, end, "cents")
    point = fsg.state()
    fsg.word(whole, point, "point", 0.5)
    first = fsg.state()
    for word in DIGIT_WORDS:
        fsg.word(point, first, word)
        fsg.word(first, end, word)
    only_cents = fsg.state()
    _n99(fsg, start, only_cents)
    fsg.word(only_cents, end, "cents")


def _number(fsg: _FsgBuilder, a: int, b: int) -> None:
    """0..999,999 in words ("one hundred and five thousand two hundred")."""
    fsg.word(a, b, "zero")
    low = fsg.state()
    _n999(fsg, a, low)
    fsg.empty(low, b)
    thousands = fsg.state()
    fsg.word(low, thousands, "thousand")
    fsg.word(a, thousands, "thousand", 0.2)  # "a thousand" heard as "thousand"
    fsg.empty(thousands, b)
    rest = fsg.state()
    fsg.empty(thousands, rest)
    fsg.word(thousands, rest, "and", 0.5)
    _n999(fsg, rest, b)


def _n999(fsg: _FsgBuilder, a: int, b: int) -> None:
    _n99(fsg, a, b)
    hundreds = fsg.state()
    for word in _UNITS[1:10]:
        fsg.word(a, hundreds, word)
    fsg.word(a, hundreds, "a", 0.2)  # "a hundred"
    after = fsg.state()
    fsg.word(hundreds, after, "hundred")
    fsg.empty(after, b)
    rest = fsg.state()
    fsg.empty(after, rest)
    fsg.word(after, rest, "and", 0.5)
    _n99(fsg, rest, b)


def _n99(fsg: _FsgBuilder, a: int, b: int) -> None:
    """1..99 in words."""
    for word in _UNITS[1:]:
        fsg.word(a, b, word)
    tens = fsg.state()
    for word in _TENS:
        fsg.word(a, tens, word)
    fsg.empty(tens, b)
    for word in _UNITS[1:10]:
        fsg.word(tens, b, word)


def _add_garbage(fsg: _FsgBuilder, bigram: Bigram, entry_weight: float, start: int = 0,
                 end: int = 1, raw_entry: bool = False) -> None:
    """A phone recogniser beside the grammar: one state per phone, bigram-weighted phones,
    entered from ``start`` with ``entry_weight`` (relative to the state's other ways out, or
    as given with ``raw_entry``), left for ``end`` after any phone."""
    entry = fsg.state()
    if raw_entry:
        fsg.empty(start, entry, entry_weight, raw=True)
    else:
        fsg.empty(start, entry, entry_weight * fsg.out_weight(start))
    after = {phone: fsg.state() for phone in PHONES}
    for before, source in (("<s>", entry), *after.items()):
        for phone in PHONES:
            weight = bigram.get((before, phone), 1e-6) ** GARBAGE_LW
            fsg.word(source, after[phone], f"{GARBAGE_MARK}{phone.lower()}", weight, raw=True)
        if source != entry:
            fsg.empty(source, end, GARBAGE_EXIT, raw=True)


def _builtin_value(grammar: Grammar, words: list[str]) -> str | None:
    if grammar.builtin == "yes_no":
        text = " ".join(words)
        return "yes" if text in YES else "no" if text in NO else None
    if grammar.builtin == "digits":
        if all(w in _VALUES and _VALUES[w] < 10 for w in words):
            return "".join(str(_VALUES[w]) for w in words)
        return None
    if grammar.builtin == "amount":
        return parse_amount(words)
    return None


def parse_amount(words: Sequence[str]) -> str | None:
    """The amount grammar's word strings as "1234.50"; None when they are not an amount."""
    tokens = list(words)
    cents = 0
    if "point" in tokens:
        i = tokens.index("point")
        decimals = tokens[i + 1 :]
        if len(decimals) != 2 or any(_VALUES.get(w, 10) > 9 for w in decimals):
            return None
        cents = 10 * _VALUES[decimals[0]] + _VALUES[decimals[1]]
        tokens = tokens[:i]
    elif tokens and tokens[-1] == "cents":
        unit = next((i for i, w in enumerate(tokens) if w in ("dollars", "dollar")), -1)
        tail = [w for w in tokens[unit + 1 : -1] if w != "and"]
        value = _spoken_number(tail)
        if value is None or value > 99:
            return None
        cents, tokens = value, tokens[: max(unit, 0)]
    tokens = [w for w in tokens if w not in ("dollars", "dollar")]
    whole = _spoken_number(tokens) if tokens else 0
    return None if whole is None else f"{whole}.{cents:02d}"


def _spoken_number(words: Sequence[str]) -> int | None:
    total = current = 0
    for word in words:
        if word == "and":
            continue
        if word == "a":
            current = max(current, 1)
        elif word in _VALUES:
            current += _VALUES[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total, current = (total + max(current, 1)) * 1000, 0
        else:
            return None
    return total + current if words else None


def _base(word: str) -> str:
    """``six(12)``, ``six_0`` -> ``six``: the names of alternative pronunciations."""
    return word.split("(", 1)[0].split("_", 1)[0]


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "[", "+")) or word in ("(NULL)", "")


class _FsgBuilder:
    """Collects weighted transitions; weights are normalised per source state at the end."""

    def __init__(self) -> None:
        self.n_states = 2  # 0: start, 1: final
        self.transitions: list[Transition] = []
        self._raw: set[int] = set()  # indexes of transitions whose weight is kept as given

    def state(self) -> int:
        self.n_states += 1
        return self.n_states - 1

    def word(self, a: int, b: int, word: str, weight: float = 1.0, raw: bool = False) -> None:
        if raw:
            self._raw.add(len(self.transitions))
        self.transitions.append((a, b, weight, word))

    def empty(self, a: int, b: int, weight: float = 1.0, raw: bool = False) -> None:
        if raw:
            self._raw.add(len(self.transitions))
        self.transitions.append((a, b, weight, None))

    def path(self, a: int, b: int, words: Sequence[str]) -> None:
        for word in words[:-1]:
            nxt = self.state()
            self.word(a, nxt, word)
            a = nxt
        self.word(a, b, words[-1])

    def out_weight(self, state: int) -> float:
        return sum(w for a, _, w, _ in self.transitions if a == state)

    def normalised(self) -> tuple[Transition, ...]:
        totals: dict[int, float] = defaultdict(float)
        for i, (a, _, w, _) in enumerate(self.transitions):
            if i not in self._raw:
                totals[a] += w
        out = [(a, b, w if i in self._raw else w / totals[a], word)
               for i, (a, b, w, word) in enumerate(self.transitions)]  # fmt: skip
        return tuple(out + _empty_closure(out))


def _empty_closure(transitions: list[Transition]) -> list[Transition]:
    """Direct empty transitions for every chain of them (a -> b -> c gives a -> c).

    PocketSphinx follows one empty transition at a time, so a chain would be a dead end.
    """
    empty: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for a, b, w, word in transitions:
        if word is None:
            empty[a].append((b, w))
    added: list[Transition] = []
    for start in list(empty):
        best: dict[int, float] = {}
        stack = [(b, w) for b, w in empty[start]]
        while stack:
            state, weight = stack.pop()
            if weight <= best.get(state, 0.0):
                continue
            best[state] = weight
            stack += [(c, weight * v) for c, v in empty.get(state, [])]
        direct = {b for b, _ in empty[start]}
        added += [(start, b, w, None) for b, w in best.items() if b not in direct and b != start]
    return added


__all__ = [
    "DIGIT_VARIANTS",
    "GARBAGE_ENTRY",
    "GARBAGE_MARK",
    "PHONES",
    "CompiledGrammar",
    "compile_grammar",
    "compile_spotting",
    "normalise_phrase",
    "number_words",
    "parse_amount",
]
