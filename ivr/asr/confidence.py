"""The PocketSphinx backend's decision: accept or reject a choice, and how sure it is.

The first (streaming) pass decodes the utterance with the grammar and a *garbage* path (a phone
loop, :mod:`ivr.asr.grammar`). Its best path alone says little about how sure the answer is: a
"zero" heard as "sierra" fits the audio about as well as the right phrase would have. So after
the first pass the backend decodes the same front-end audio once more (:mod:`ivr.asr.rival`)
with a *rival* grammar, the same grammar *without* the chosen phrase (garbage path included),
and compares the two best paths per frame. The rival's path says which came next: another
phrase (``rival_garbage`` false: two phrases are close) or the garbage path.

- **Rejection**: the first pass's score per frame under a floor. PocketSphinx scores each frame
  against that frame's best senone and the garbage path keeps every phone's senones in the
  search, so that score is a likelihood ratio against any phones at all, normalised by the
  utterance's length. One floor per rival kind, and higher ones on a quiet line (``snr`` at
  least ``quiet_snr``), where a right phrase fits well. Every floor rises with the log of the
  grammar's number of phrases (the more phrases, the likelier speech in none of them fits
  one), and the score is first charged for speech too slow for the phrase (the path spending
  longer in the phrase than its phones take: a sentence matched to "papa", "maybe" to "may").
- **Confidence**: ``logistic((margin + weight * score - confirm) / scale)``, per rival kind:
  below :data:`CONFIRM` (the flow asks "Did you say ...?") when another phrase or the phone
  loop fits nearly as well, or the first pass fits poorly.
  A phrase that another phrase ties (margin 0: the same words under two choices) is always
  below :data:`CONFIRM`, whatever the weights the tuning chose.
- **Rescue**: when the first pass ended on the garbage path (in loud babble most in-grammar
  utterances do), a *rescue* pass spots the best phrase inside the utterance
  (:mod:`ivr.asr.rescue`: ``garbage* phrase garbage*``). Its phrase is accepted, always below
  :data:`CONFIRM` (the flow asks), on a noisy line (``snr`` under ``rescue_snr``) when it holds
  at least ``rescue_share`` of the caller's loud audio (a word of the grammar fills its
  utterance; a sentence out of the grammar does not) and the spotting path's score per frame
  beats the garbage path's by ``rescue`` plus ``rescue_per_doubling`` for every doubling of
  the grammar's phrases beyond two (the grammar's size moves that margin, for right answers
  and out-of-grammar speech alike; the tuning chooses the slope).

The thresholds are chosen by ``bench/asr/tune_decision.py`` on the tuning voices of the
many-voice set and kept in ``decision.json`` beside this module (their one place); docs/ASR.md
says how and by which rule.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

CONFIRM = 0.5  # the flows' default confirmation threshold: the confidence's meaning
# The margin when the rival pass found no path at all: nothing but the chosen phrase (not even
# the garbage path, pruned away) explains the audio, so the winner has no competitor.
NO_RIVAL_MARGIN = 100.0
DECISION_FILE = Path(__file__).with_name("decision.json")


@dataclass(frozen=True)
class Evidence:
    """What the two passes measured for one utterance (scores: 1e-4 log units per frame).

    Attributes:
        score: the first pass's best path per frame.
        rival: the rival pass's best path per frame (None: no rival pass was run or it found no
            path).
        rival_garbage: the rival pass's best path went through the garbage path.
        garbage_won: the first pass's best path went through the garbage path (then ``rival``
            is the best phrase's score and ``rival_choice`` its choice).
        rival_choice: the rival pass's choice key (None on the garbage path).
        unexplained: share of the loud audio the first pass's path called silence or noise.
        choice: the first pass's choice key (None when it ended on the garbage path).
        snr: how far the caller's loud syllables stood over the line's noise floor, dB
            (:meth:`ivr.asr.endpoint.Endpointer.peak_snr`).
        phrases: how many choices the grammar holds (0: not measured). The more phrases, the
            likelier out-of-grammar speech fits one of them, so the floors rise with it.
        phones: phones of the first pass's phrase, as decoded (0: not measured).
        span: seconds the first pass's phrase words took (0: not measured).
        voiced: seconds of loud audio in the utterance (the endpointer's; 0: not measured;
            kept for study, the rule uses ``span``: babble counts as loud audio).
        rescue_share: for ``garbage_won``: the share of the caller's loud audio inside the
            spotted phrase (:mod:`ivr.asr.rescue`; 1.0: the phrase is all the caller said).
        rescue_seconds: for ``garbage_won``: the spotted phrase's length, seconds.
    """

    score: float
    rival: float | None
    rival_garbage: bool
    garbage_won: bool
    rival_choice: str | None = None
    unexplained: float = 0.0
    choice: str | None = None
    snr: float = 0.0
    phrases: int = 0
    phones: int = 0
    span: float = 0.0
    voiced: float = 0.0
    rescue_share: float = 0.0
    rescue_seconds: float = 0.0

    @property
    def margin(self) -> float | None:
        """First pass minus rival per frame (for ``garbage_won``: phrase minus garbage; None
        when no phrase was found)."""
        if self.rival is None:
            return None if self.garbage_won else NO_RIVAL_MARGIN
        return self.rival - self.score if self.garbage_won else self.score - self.rival

    @property
    def garbage_rival(self) -> bool:
        """The chosen phrase's competitor was the garbage path (or nothing at all)."""
        return self.rival_garbage or self.rival is None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Constants:
    """The decision's thresholds (margins per frame, 1e-4 log units).

    Attributes:
        floor_garbage: a phrase whose rival was the garbage path is rejected when the first
            pass's score per frame is under this.
        floor_phrase: the same for a phrase whose rival was another phrase.
        quiet_snr: on a quiet line (``snr`` at least this) the ``*_quiet`` floors apply instead:
            there a right phrase fits the audio well, so a loose fit is more likely speech
            that is not in the grammar.
        floor_garbage_quiet, floor_phrase_quiet: the floors on a quiet line.
        confirm_garbage: confidence 0.5 where ``margin + weight_garbage * score`` reaches this,
            for a phrase whose rival was the garbage path.
        confirm_phrase: the same with ``weight_phrase``, for a phrase whose rival was a phrase.
        weight_garbage, weight_phrase: how much the first pass's own fit (its score per frame)
            counts beside the margin.
        rescue: when the garbage path won, the spotted phrase is accepted (below 0.5) when
            the rescue pass's score per frame is at least this much over the first pass's
            (for a grammar of two phrases; see ``rescue_per_doubling``).
        rescue_snr: rescues only on lines whose ``snr`` is under this (on a quiet line a
            right phrase rarely loses to the phone loop); elsewhere the rescue pass is not run.
        rescue_share: the least share of the caller's loud audio the spotted phrase must hold.
        rescue_per_doubling: added to ``rescue`` for every doubling of the grammar's phrases
            beyond two.
        scale: margin units per unit of the logistic's argument.
        unexplained: share of loud audio a phrase's path may call silence.
        floor_per_log_phrases: every floor rises by this times the natural log of the
            grammar's number of phrases: the more phrases, the likelier speech that is in none
            of them fits one (0: one floor whatever the grammar).
        pace: seconds per phone the path spent in the phrase (:func:`seconds_per_phone`)
            above which the caller may have said more than the phrase (a sentence matched to
            "papa", "maybe" to "may"), and the score is charged for it.
        pace_charge: the charge, per frame, for each second per phone over ``pace`` (0: none).
    """

    floor_garbage: float = -1e9
    floor_phrase: float = -1e9
    quiet_snr: float = 1e9
    floor_garbage_quiet: float = -1e9
    floor_phrase_quiet: float = -1e9
    confirm_garbage: float = 4.0
    confirm_phrase: float = 4.0
    weight_garbage: float = 0.0
    weight_phrase: float = 0.0
    rescue: float = 1e9  # never, until tuned
    rescue_snr: float = 1e9
    rescue_share: float = 0.0
    rescue_per_doubling: float = 0.0
    scale: float = 1.5
    unexplained: float = 0.65
    floor_per_log_phrases: float = 0.0
    pace: float = 1e9
    pace_charge: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def load_constants(path: Path = DECISION_FILE) -> Constants:
    """The thresholds written by ``bench/asr/tune_decision.py`` (defaults when none yet)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return Constants()
    known = set(Constants.__dataclass_fields__)
    values = {k: float(v) for k, v in data.get("constants", {}).items() if k in known}
    return Constants(**values)


def logistic(x: float) -> float:
    """1 / (1 + e^-x), with x clamped so that no argument overflows."""
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def seconds_per_phone(ev: Evidence) -> float:
    """Seconds the first pass's path spent in the phrase's words per phone of the phrase,
    counted one phone longer (0: not measured). A right answer takes about 0.1 s a phone; a
    sentence matched to a short phrase, several times that. The path's span, not the loud
    audio (``voiced``): babble counts as loud audio and stretched right answers in noise
    (tuning voices, 15 dB babble: out-of-grammar speech told from right answers with an area
    of 0.83 by the span, 0.73 by the loud audio)."""
    return ev.span / (ev.phones + 1) if ev.phones > 0 else 0.0


def fit(ev: Evidence, c: Constants) -> float:
    """The first pass's score per frame, less the charge for speech too slow for the phrase."""
    return ev.score - c.pace_charge * max(0.0, seconds_per_phone(ev) - c.pace)


NEVER = 1e9  # a threshold no margin reaches


def rescue_wanted(snr: float, c: Constants) -> bool:
    """Whether a rescued phrase could be accepted on a line ``snr`` dB over its noise floor
    (when not, the backend does not run the rescue pass at all)."""
    return c.rescue < NEVER and snr < c.rescue_snr


TIED = 0.49  # the confidence of a phrase tied with another: just under CONFIRM, so asked


def decide(ev: Evidence, c: Constants) -> tuple[bool, float]:
    """(accepted, confidence 0..1) for the first pass's phrase, or for the rescued phrase when
    ``ev.garbage_won``; 0.5 is where the flows ask the caller to confirm."""
    margin = ev.margin
    if margin is None:
        return False, 0.0
    if ev.garbage_won:
        return _rescued(ev, margin, c)
    if ev.unexplained > c.unexplained:
        return False, 0.0
    score = fit(ev, c)
    floor, confirm, weight = ((c.floor_garbage, c.confirm_garbage, c.weight_garbage)
                              if ev.garbage_rival
                              else (c.floor_phrase, c.confirm_phrase, c.weight_phrase))  # fmt: skip
    if ev.snr >= c.quiet_snr:
        floor = c.floor_garbage_quiet if ev.garbage_rival else c.floor_phrase_quiet
    floor += c.floor_per_log_phrases * math.log(max(ev.phrases, 1))
    confidence = logistic((margin + weight * score - confirm) / c.scale)
    if not ev.garbage_rival and margin <= 0.0:
        # Another phrase explains the audio exactly as well (the same words under two choices,
        # or homophones): however well both fit, acting on one of them is a guess. Ask.
        confidence = min(confidence, TIED)
    return score >= floor, confidence


def rescue_threshold(phrases: int, c: Constants) -> float:
    """The margin (rescue pass minus first pass, per frame) a spotted phrase of a grammar of
    ``phrases`` phrases needs."""
    return c.rescue + c.rescue_per_doubling * math.log2(max(phrases, 2) / 2)


def _rescued(ev: Evidence, margin: float, c: Constants) -> tuple[bool, float]:
    """The first pass ended on the garbage path: (accepted, confidence) for the phrase the
    rescue pass spotted. Never confident: at best just under :data:`CONFIRM`, so the flow
    always asks."""
    if ev.rival_choice is None or not rescue_wanted(ev.snr, c) or ev.rescue_share < c.rescue_share:
        return False, 0.0
    need = rescue_threshold(ev.phrases, c)
    return margin >= need, min(TIED, CONFIRM * logistic((margin - need) / c.scale))


__all__ = [
    "CONFIRM",
    "DECISION_FILE",
    "NO_RIVAL_MARGIN",
    "TIED",
    "Constants",
    "Evidence",
    "decide",
    "fit",
    "load_constants",
    "logistic",
    "rescue_threshold",
    "rescue_wanted",
    "seconds_per_phone",
]  # fmt: skip
