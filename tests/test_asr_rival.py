"""The rival pass's span and cost (ivr/asr/rival.py): scored over the speech only, from the first
pass's segments, on real PocketSphinx decoders and real (espeak-ng) speech; skipped only where
the decision cannot depend on it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sphinx_audio import espeak, feed, needs_espeak, padded

from ivr.asr import rival
from ivr.asr.base import AsrOptions, Final, Grammar, NoMatch
from ivr.asr.confidence import Constants, Evidence, decide
from ivr.asr.sphinx import CMN_PRIOR, DecoderPool, SphinxBackend, SphinxStream

GRAMMAR = Grammar(choices={"zero": ("zero",), "hotel": ("hotel",), "july": ("july",),
                           "sierra": ("sierra",)})  # fmt: skip
C = Constants(floor_garbage=-50.0, floor_phrase=-45.0, quiet_snr=40.0, floor_garbage_quiet=-40.0,
              floor_phrase_quiet=-35.0, confirm_garbage=10.0, confirm_phrase=6.0, scale=1.5,
              unexplained=0.65)  # fmt: skip


class _Kept(SphinxStream):
    """A stream that keeps its first pass's segments, frame count and path score for a test."""

    kept: tuple[list[object], int, float, list[bytes], object] | None = None

    def _judge(self, dec, segments, frames, score):  # type: ignore[no-untyped-def]
        hyp = dec.decoder.hyp()
        self.kept = (list(segments), frames, hyp.score, list(self._audio), dec)
        return super()._judge(dec, segments, frames, score)


@pytest.fixture(scope="module")
def pool() -> DecoderPool:
    return DecoderPool()


def _kept(pool: DecoderPool, pcm: np.ndarray) -> _Kept:
    SphinxBackend(pool).open(GRAMMAR, AsrOptions())  # builds the decoder (and checks the words)
    stream = _Kept(pool, GRAMMAR, AsrOptions(), full_evidence=True)
    feed(stream, padded(pcm, 0.5, 1.0))
    assert stream.kept is not None
    return stream


@needs_espeak
def test_the_segments_sum_to_the_path_score(pool: DecoderPool) -> None:
    # The first pass's score over a span is summed from its segments: over the whole utterance
    # that sum must be the path's own score, or the span score would measure something else.
    segments, _frames, path_score, _, _ = _kept(pool, espeak("hotel")).kept  # type: ignore[misc]
    whole = (0, segments[-1].end_frame)  # type: ignore[attr-defined]
    got = rival.span_score(segments, whole) * (whole[1] + 1)
    assert got == pytest.approx(rival.score_per_frame(path_score, 1), abs=2.0)


@needs_espeak
def test_the_span_holds_the_words_and_little_else(pool: DecoderPool) -> None:
    segments, frames, _, audio, _ = _kept(pool, espeak("july")).kept  # type: ignore[misc]
    words = [s for s in segments if s.word.startswith("july")]  # type: ignore[attr-defined]
    start, end = rival.speech_span(segments, frames, 10)
    assert start == words[0].start_frame - 10 and end == words[0].end_frame + 10  # type: ignore[attr-defined]
    assert end - start + 1 < frames * 0.8  # the pre-roll and trailing silence are left out
    assert rival.speech_span(segments, frames, None) == (0, frames - 1)
    assert rival.speech_span([], frames, 10) == (0, frames - 1)  # no word: everything
    cut = rival.span_audio(audio, (start, end))
    assert len(cut) == (end - start + 1) * rival.FRAME_BYTES + rival.WINDOW_BYTES
    assert cut == b"".join(audio)[start * rival.FRAME_BYTES : start * rival.FRAME_BYTES + len(cut)]


@needs_espeak
def test_the_rival_over_the_span_finds_what_it_found_over_everything(pool: DecoderPool) -> None:
    # "zero" against a grammar without it: over the span or the whole audio, the rival pass finds
    # the same competitor, and the span costs fewer frames.
    stream = _kept(pool, espeak("zero"))
    segments, frames, _, audio, dec = stream.kept  # type: ignore[misc]
    search = rival.ensure_search(dec.decoder, dec.rivals, GRAMMAR, "zero",  # type: ignore[attr-defined]
                                 _bigram(pool))  # fmt: skip
    assert search is not None
    span = rival.speech_span(segments, frames, 10)
    whole = rival.run_rival(dec.decoder, search[0], search[1], audio, CMN_PRIOR)  # type: ignore[attr-defined]
    part = rival.run_rival(dec.decoder, search[0], search[1], [rival.span_audio(audio, span)],  # type: ignore[attr-defined]
                           CMN_PRIOR)  # fmt: skip
    assert whole is not None and part is not None
    assert (part.garbage, part.choice) == (whole.garbage, whole.choice)


def _bigram(pool: DecoderPool) -> dict[tuple[str, str], float]:
    from ivr.asr.sphinx import phone_bigram

    return phone_bigram(pool.model_dir / "en-us" / "en-us-phone.lm.bin")


def test_same_words_are_a_tie_and_other_words_are_not() -> None:
    same = rival.RivalResult(-40.0, False, "b", "zero")
    assert rival.tie_same_words(same, "zero", -31.0) == rival.RivalResult(-31.0, False, "b", "zero")
    other = rival.RivalResult(-40.0, False, "s", "sierra")
    assert rival.tie_same_words(other, "zero", -31.0) == other
    garbage = rival.RivalResult(-40.0, True, None, "zero")
    assert rival.tie_same_words(garbage, "zero", -31.0) == garbage
    assert rival.tie_same_words(None, "zero", -31.0) is None


def test_the_rival_pass_is_skipped_only_where_decide_rejects_anyway() -> None:
    # Whatever the rival pass could have found, decide() rejects every case needed() skips.
    rescue_off = Constants(**{**C.to_json(), "rescue": 1e9})
    rescue_on = Constants(**{**C.to_json(), "rescue": 3.0})
    rivals = (None, -200.0, -60.0, -45.0, -30.0, -20.0, 0.0)
    skipped = 0
    for c, score, garbage_won, unexplained, snr, rival_score, rival_garbage in itertools.product(
            (rescue_off, rescue_on), (-80.0, -52.0, -48.0, -42.0, -30.0), (False, True),
            (0.0, 0.9), (20.0, 60.0), rivals, (False, True)):  # fmt: skip
        if rival.needed(c, score, garbage_won, unexplained):
            continue
        skipped += 1
        ev = Evidence(score, rival_score, rival_garbage, garbage_won,
                      None if rival_garbage else "hotel", unexplained, "zero", snr)  # fmt: skip
        assert not decide(ev, c)[0], ev
    assert skipped > 0
    assert rival.needed(rescue_on, -80.0, True, 0.0)  # a rescue may accept: run it
    assert rival.needed(C, -48.0, False, 0.0)  # over the lowest floor: run it


@needs_espeak
def test_skipping_the_rival_pass_changes_no_decision(pool: DecoderPool) -> None:
    # The same utterances with and without the skip: the same outcome and choice; and speech the
    # grammar does not hold is refused without a rival pass (skipped, or the garbage path won:
    # that goes to the rescue, ivr.asr.rescue, never to the rival pass).
    backend = SphinxBackend(pool)
    thorough = SphinxBackend(pool, full_evidence=True)
    skipped = 0
    for text in ("hotel", "july", "can I speak to a real person please", "what's the weather"):
        audio = padded(espeak(text), 0.5, 1.0)
        quick = backend.open(GRAMMAR, AsrOptions())
        full = thorough.open(GRAMMAR, AsrOptions())
        a = [e for e in feed(quick, audio) if isinstance(e, (Final, NoMatch))]
        b = [e for e in feed(full, audio) if isinstance(e, (Final, NoMatch))]
        assert [(type(e), getattr(e, "choice", None)) for e in a] == \
            [(type(e), getattr(e, "choice", None)) for e in b]  # fmt: skip
        assert full.evidence is not None
        # No rival pass: skipped, or the garbage path won (then only the rescue may look).
        skipped += quick.evidence is None or quick.evidence.garbage_won
    assert skipped >= 1
