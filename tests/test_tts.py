"""ivr.tts.engine: real espeak-ng output through pyttsx3, converted to 8 kHz 16-bit mono."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from tts_helpers import read

from ivr.tts.engine import (
    ESPEAK_FIX,
    Synthesizer,
    TTSError,
    TTSUnavailable,
    base_language,
    espeak_version,
)

# RMS of espeak-ng speech measured here is about 2,600 (-22 dBFS); silence is 0. A floor of
# 500 (-36 dBFS) fails on silence or near-silence and passes real speech with a wide margin.
RMS_FLOOR = 500.0


@pytest.fixture(scope="module")
def synth() -> Synthesizer:
    return Synthesizer()


def _check_telephone_speech(path: Path, low: float, high: float) -> None:
    audio = read(path)
    assert (audio.rate, audio.channels, audio.width) == (8000, 1, 2)
    assert low <= audio.seconds <= high, f"{audio.seconds:.2f} s outside {low}..{high} s"
    assert audio.rms > RMS_FLOOR, f"RMS {audio.rms:.0f}: silence?"
    assert np.max(np.abs(audio.samples.astype(np.int32))) < 32767  # not clipped flat


def test_english_prompt_is_8khz_mono_speech(synth: Synthesizer, tmp_path: Path) -> None:
    path = synth.render("For balance press one", "en", tmp_path / "en.wav")
    # Four words at 160 words per minute: about 1.6 s with espeak-ng's end pause.
    _check_telephone_speech(path, 0.8, 3.5)


def test_mandarin_prompt_is_8khz_mono_speech(synth: Synthesizer, tmp_path: Path) -> None:
    path = synth.render("查询余额请按1。", "zh", tmp_path / "zh.wav")
    # Seven syllables read from pinyin (about 2.3 s).
    _check_telephone_speech(path, 1.0, 6.0)


def test_a_longer_text_takes_longer(synth: Synthesizer, tmp_path: Path) -> None:
    short = read(synth.render("Goodbye.", "en", tmp_path / "short.wav"))
    long = read(synth.render("Thank you for calling River Bank. Goodbye.", "en",
                             tmp_path / "long.wav"))
    assert long.seconds > short.seconds + 0.5


def test_rendering_replaces_an_existing_file_whole(synth: Synthesizer, tmp_path: Path) -> None:
    target = tmp_path / "prompt.wav"
    target.write_bytes(b"old, not a wav")
    synth.render("Welcome.", "en", target)
    assert read(target).rate == 8000
    assert [p.name for p in tmp_path.iterdir()] == ["prompt.wav"]  # no temporary left behind


def test_voices_per_language() -> None:
    synth = Synthesizer()
    assert synth.voice_for("en") == "en-us"
    assert synth.voice_for("zh") == "cmn-latn-pinyin"  # reads the front-end's pinyin
    assert synth.voice_for("zh-CN") == "cmn-latn-pinyin"
    assert synth.voice_for("fr") == "fr"  # espeak-ng's own voice for the language
    assert Synthesizer(voices={"en": "en-gb"}).voice_for("en_GB") == "en-gb"
    assert base_language("zh_TW") == "zh"


def test_version_names_the_engine_and_the_settings() -> None:
    version = Synthesizer(rate=150).version
    assert "pyttsx3-2.99" in version
    assert f"espeak-ng-{espeak_version()}" in version
    assert "rate-150" in version
    assert Synthesizer(rate=150).version != Synthesizer(rate=170).version


def test_missing_espeak_is_a_clear_error(tmp_path: Path) -> None:
    synth = Synthesizer(library="libespeak-ng-not-here.so.1")
    assert not synth.available()
    with pytest.raises(TTSUnavailable) as info:
        synth.render("Hello.", "en", tmp_path / "x.wav")
    assert str(info.value) == ESPEAK_FIX
    assert "apt-get install espeak-ng" in str(info.value)
    assert not (tmp_path / "x.wav").exists()


def test_empty_text_is_refused(synth: Synthesizer, tmp_path: Path) -> None:
    with pytest.raises(TTSError, match="nothing to say"):
        synth.render("   ", "en", tmp_path / "x.wav")


def test_unknown_voice_fails_and_the_engine_keeps_working(
    synth: Synthesizer, tmp_path: Path
) -> None:
    with pytest.raises(TTSError, match="no voice 'xx'"):
        synth.render("Hello.", "xx-nowhere", tmp_path / "x.wav")
    _check_telephone_speech(synth.render("Hello there.", "en", tmp_path / "ok.wav"), 0.4, 3.0)


def _speech_span(samples: np.ndarray) -> int:
    """Samples from the first to the last loud one: the speech without the pauses around it.

    espeak-ng's closing pause varies with what it said before (by up to 40 ms measured here);
    the speech itself varies by a few milliseconds.
    """
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > 1000)[0]
    return int(loud[-1] - loud[0]) if loud.size else 0


def test_renders_from_many_threads_keep_each_text_apart(synth: Synthesizer) -> None:
    texts = {"en": "Press one.", "zh": "请按井号键结束。",
             "en-us": "Please hold for the next agent."}
    alone = {lang: _speech_span(synth.render_samples(text, lang)) for lang, text in texts.items()}
    results: dict[str, list[int]] = {lang: [] for lang in texts}
    lock = threading.Lock()

    def worker(offset: int) -> None:
        langs = list(texts)
        for i in range(6):
            lang = langs[(offset + i) % len(langs)]
            span = _speech_span(synth.render_samples(texts[lang], lang))
            with lock:
                results[lang].append(span)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(alone.values())) == 3  # the three texts are told apart by their length
    for lang, spans in results.items():
        assert len(spans) == 6
        # Another text (or a truncated, mixed or empty one) would differ by far more than 5 %.
        assert all(abs(n - alone[lang]) < 0.05 * alone[lang] for n in spans), (lang, spans)


def test_blocking_api_runs_off_the_event_loop(synth: Synthesizer, tmp_path: Path) -> None:
    async def main() -> list[Path]:
        return await asyncio.gather(
            asyncio.to_thread(synth.render, "One.", "en", tmp_path / "1.wav"),
            asyncio.to_thread(synth.render, "二。", "zh", tmp_path / "2.wav"),
        )

    paths = asyncio.run(main())
    assert [read(p).rate for p in paths] == [8000, 8000]
