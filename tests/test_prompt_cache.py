"""ivr.tts.cache: synthesized prompts rendered once, recordings winning, call-time lookups."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from tts_helpers import read, write_tone

from ivr.tts.cache import PromptCache
from ivr.tts.engine import Synthesizer

TEXT = "For balance press one"


@pytest.fixture
def cache(tmp_path: Path) -> PromptCache:
    return PromptCache(tmp_path / "prompts")


def test_key_depends_on_text_language_voice_and_engine(tmp_path: Path) -> None:
    cache = PromptCache(tmp_path)
    key = cache.key(TEXT, "en")
    assert key == PromptCache(tmp_path / "elsewhere").key(TEXT, "en")  # not on the folder
    assert len(key) == 64
    assert cache.key(TEXT + ".", "en") != key
    assert cache.key(TEXT, "zh") != key
    assert PromptCache(tmp_path, Synthesizer(voices={"en": "en-gb"})).key(TEXT, "en") != key
    assert PromptCache(tmp_path, Synthesizer(rate=140)).key(TEXT, "en") != key


def test_rendered_once_then_served_from_the_cache(cache: PromptCache) -> None:
    assert cache.lookup("main_menu", "en", TEXT) is None
    path, rendered = cache.synthesize(TEXT, "en")
    assert rendered
    assert path.parent == cache.cache_dir
    audio = read(path)
    assert (audio.rate, audio.channels, audio.width) == (8000, 1, 2)
    stamp = path.stat().st_mtime_ns
    again, rendered_again = cache.synthesize(TEXT, "en")
    assert (again, rendered_again) == (path, False)
    assert path.stat().st_mtime_ns == stamp  # untouched
    assert cache.lookup("main_menu", "en", TEXT) == path
    assert cache.lookup("any_other_id", "en", TEXT) == path  # keyed by text, not by id


def test_a_changed_text_renders_again(cache: PromptCache) -> None:
    first, _ = cache.synthesize(TEXT, "en")
    second, rendered = cache.synthesize(TEXT + " now", "en")
    assert rendered and second != first
    assert cache.lookup("main_menu", "en", TEXT + " now") == second


def test_force_renders_again(cache: PromptCache) -> None:
    path, _ = cache.synthesize(TEXT, "en")
    again, rendered = cache.synthesize(TEXT, "en", force=True)
    assert rendered and again == path


def test_sidecar_says_what_a_file_is(cache: PromptCache) -> None:
    path, _ = cache.synthesize("查询余额请按1。", "zh")
    meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["text"] == "查询余额请按1。"
    assert meta["language"] == "zh"
    assert meta["voice"] == "cmn-latn-pinyin"  # the Mandarin front-end's pinyin voice
    assert meta["synthesizer"] == cache.synthesizer.version
    assert sorted(p.suffix for p in cache.cache_dir.iterdir()) == [".json", ".wav"]


def test_a_recording_wins_over_the_synthesized_text(cache: PromptCache) -> None:
    synthesized, _ = cache.synthesize(TEXT, "en")
    recording = write_tone(cache.prompts_dir / "en" / "main_menu.wav")
    assert cache.lookup("main_menu", "en", TEXT) == recording  # 8 kHz mono already: used as is
    assert cache.lookup("other", "en", TEXT) == synthesized


def test_language_folder_first_then_the_shared_recording(cache: PromptCache) -> None:
    shared = write_tone(cache.prompts_dir / "welcome.wav")
    assert cache.lookup("welcome", "zh", "欢迎") == shared
    assert cache.lookup("welcome", "en", "Welcome") == shared
    english = write_tone(cache.prompts_dir / "en" / "welcome.wav", freq=880)
    assert cache.lookup("welcome", "en", "Welcome") == english
    assert cache.lookup("welcome", "zh", "欢迎") == shared


def test_the_audio_id_wins_over_the_prompt_id(cache: PromptCache) -> None:
    by_id = write_tone(cache.prompts_dir / "welcome.wav")
    jingle = write_tone(cache.prompts_dir / "jingle.wav", freq=660)
    assert cache.lookup("welcome", "en", "Welcome", audio="jingle") == jingle
    jingle.unlink()
    assert cache.lookup("welcome", "en", "Welcome", audio="jingle") == by_id


def test_a_recording_not_at_8khz_is_converted_once(cache: PromptCache) -> None:
    source = write_tone(cache.prompts_dir / "en" / "goodbye.wav", rate=16000, channels=2)
    converted = cache.lookup("goodbye", "en", "Goodbye.")
    assert converted is not None and converted.parent == cache.cache_dir
    assert converted.name.startswith("rec-")
    audio = read(converted)
    assert (audio.rate, audio.channels, audio.width) == (8000, 1, 2)
    assert audio.seconds == pytest.approx(0.5)
    stamp = converted.stat().st_mtime_ns
    assert cache.lookup("goodbye", "en", "Goodbye.") == converted
    assert converted.stat().st_mtime_ns == stamp  # not converted again
    # A new take of the recording is converted anew.
    write_tone(source, rate=22050, seconds=1.0)
    os.utime(source, ns=(stamp + 10**9, stamp + 10**9))
    newer = cache.lookup("goodbye", "en", "Goodbye.")
    assert newer is not None and newer != converted
    assert read(newer).seconds == pytest.approx(1.0)


def test_an_unreadable_recording_falls_back_to_the_text(
    cache: PromptCache, caplog: pytest.LogCaptureFixture
) -> None:
    synthesized, _ = cache.synthesize(TEXT, "en")
    bad = cache.prompts_dir / "en" / "main_menu.wav"
    bad.parent.mkdir(parents=True)
    bad.write_text("not audio")
    with caplog.at_level(logging.WARNING, logger="ivr.tts.cache"):
        assert cache.lookup("main_menu", "en", TEXT) == synthesized
    assert "main_menu.wav" in caplog.text


def test_ids_that_are_not_file_names_find_no_recording(cache: PromptCache) -> None:
    write_tone(cache.prompts_dir / "secret.wav")
    (cache.prompts_dir / "en").mkdir()
    assert cache.recording("../secret", "en") is None
    assert cache.recording(".hidden", "en") is None
    assert cache.recording("", "en") is None
    assert cache.recording("secret", "en") is not None


def test_empty_text_is_never_synthesized(cache: PromptCache) -> None:
    assert cache.lookup("beep", "en", "", audio="beep") is None
    beep = write_tone(cache.prompts_dir / "beep.wav", freq=1000, seconds=0.2)
    assert cache.lookup("beep", "en", "", audio="beep") == beep


def test_render_dynamic_renders_a_filled_in_text_once(cache: PromptCache) -> None:
    text = "Your available balance is one thousand twenty-four yuan."
    path = cache.render_dynamic(text, "en")
    assert read(path).rms > 500
    stamp = path.stat().st_mtime_ns
    assert cache.render_dynamic(text, "en") == path
    assert path.stat().st_mtime_ns == stamp
    assert cache.lookup("say_balance", "en", text) == path
