"""The speech gate ahead of the recognizer (ivr.asr.gate).

Real speech (the Asterisk Allison prompts), real hold music (Asterisk's music on hold), key tones
made as a keypad makes them, and synthesized silence and line noise. Each run feeds 20 ms frames
and records where the gate opened and how long each opening lasted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from debs import ALLISON, SOUNDS_PACKAGE, file
from numpy.typing import NDArray

from ivr.asr.endpoint import Endpointer, SpeechStart
from ivr.asr.gate import PRE_ROLL, GateAction, GateConfig, SpeechGate
from ivr.media.g711 import ulaw_decode, ulaw_encode
from ivr.media.tones import dtmf_tone, dtmf_tones
from ivr.media.wav import load_8k_mono

RATE = 8000
MOH = Path("/usr/share/asterisk/moh")
MOH_PACKAGE = "asterisk-moh-opsound-wav"


def noise(seconds: float, level_db: float, seed: int = 1) -> NDArray[np.int16]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 32768 * 10 ** (level_db / 20), round(seconds * RATE))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def at_level(pcm: NDArray[np.int16], level_db: float) -> NDArray[np.int16]:
    """``pcm`` scaled so that its loud half averages ``level_db`` dBFS."""
    x = pcm.astype(np.float64)
    frames = x[: x.size // 160 * 160].reshape(-1, 160)
    power = np.sort((frames**2).mean(axis=1))[frames.shape[0] // 2 :].mean()
    gain = 32768 * 10 ** (level_db / 20) / np.sqrt(power)
    return np.clip(np.rint(x * gain), -32768, 32767).astype(np.int16)


def line(pcm: NDArray[np.int16], noise_db: float = -60.0) -> NDArray[np.int16]:
    """``pcm`` over quiet line noise, through G.711 μ-law as a call delivers it."""
    mixed = np.clip(pcm.astype(np.int32) + noise(pcm.size / RATE, noise_db), -32768, 32767)
    return ulaw_decode(ulaw_encode(mixed.astype(np.int16)))


@dataclass
class Run:
    opened_at: list[int] = field(default_factory=list)  # frame index of each opening
    lengths: list[int] = field(default_factory=list)  # frames each opening lasted
    gate: SpeechGate = field(default_factory=SpeechGate)


def run(pcm: NDArray[np.int16], *, confirm: bool = True, config: GateConfig | None = None,
        decide_after: int | None = None) -> Run:  # fmt: skip
    """Feed ``pcm``; with ``confirm`` the recognizer is taken to have heard speech at once
    (the worst case for bounding); ``decide_after`` frames after an opening the utterance is
    taken as decided (as a recognizer ends a real answer)."""
    out = Run(gate=SpeechGate(config))
    gate, start = out.gate, -1
    for i in range(pcm.size // 160):
        action = gate.feed(pcm[i * 160 : (i + 1) * 160])
        if action is GateAction.OPEN:
            out.opened_at.append(i)
            start = i
            if confirm:
                gate.confirm()
        elif action is GateAction.GIVE_UP:
            out.lengths.append(i - start)
        elif gate.is_open and decide_after is not None and i - start >= decide_after:
            gate.done()
            out.lengths.append(i - start)
    if gate.is_open:
        out.lengths.append(pcm.size // 160 - start)
    return out


def test_silence_and_quiet_line_noise_never_open_it() -> None:
    for pcm in (np.zeros(10 * RATE, np.int16), line(np.zeros(20 * RATE, np.int16), -60.0),
                line(np.zeros(20 * RATE, np.int16), -45.0)):  # fmt: skip
        result = run(pcm)
        assert result.opened_at == [] and result.gate.floor is not None


def test_every_prompt_opens_it_with_the_onset_inside_the_pre_roll() -> None:
    """The recognizer's own endpointer, fed the pre-roll and what follows, finds the same start
    of speech as when fed the whole recording: the gate is never late, and 0.3 s or more of the
    line before the first syllable is kept."""
    names = ["digits/7", "vm-no", "hours", "goodbye", "transfer", "one-moment-please",
             "call-forwarding", "telephone-number"]  # fmt: skip
    for name in names:
        speech = load_8k_mono(file(ALLISON / f"{name}.wav", SOUNDS_PACKAGE))
        pcm = line(np.concatenate([np.zeros(RATE, np.int16), at_level(speech, -20.0),
                                   np.zeros(RATE, np.int16)]))  # fmt: skip
        result = run(pcm, confirm=True, decide_after=10_000)
        assert len(result.opened_at) == 1, name
        opened = result.opened_at[0]
        whole = Endpointer()
        starts = [e for i in range(pcm.size // 160)
                  if isinstance(e := whole.feed(pcm[i * 160:(i + 1) * 160]), SpeechStart)]
        assert len(starts) == 1, name
        first_kept = opened + 1 - PRE_ROLL  # frame index of the first pre-roll frame
        assert starts[0].time - first_kept * 0.02 >= 0.3, name
        gated = Endpointer()
        gated_starts = [e for i in range(first_kept, pcm.size // 160)
                        if isinstance(e := gated.feed(pcm[i * 160:(i + 1) * 160]), SpeechStart)]
        assert gated_starts and abs(gated_starts[0].time + first_kept * 0.02
                                    - starts[0].time) < 0.001, name  # fmt: skip


def test_steady_noise_that_starts_abruptly_gets_one_bounded_opening() -> None:
    pcm = line(np.concatenate([np.zeros(2 * RATE, np.int16), noise(30.0, -25.0)]))
    result = run(pcm)
    config = result.gate.config
    assert len(result.opened_at) == 1
    assert result.lengths[0] <= config.steady_frames + 1
    assert not result.gate.is_open and result.gate.gave_up == 1


def test_an_opening_the_recognizer_does_not_confirm_is_given_up_within_a_second() -> None:
    pcm = line(np.concatenate([np.zeros(2 * RATE, np.int16), noise(10.0, -25.0)]))
    result = run(pcm, confirm=False)
    assert len(result.opened_at) == 1
    assert result.lengths == [result.gate.config.confirm_frames]


@pytest.mark.parametrize("track", ["macroform-robot_dity", "manolo_camp-morning_coffee",
                                   "macroform-the_simplicity"])
def test_hold_music_bleeding_into_the_line_never_holds_it_open(track: str) -> None:
    music = load_8k_mono(file(MOH / f"{track}.wav", MOH_PACKAGE))[: 60 * RATE]
    pcm = line(np.concatenate([np.zeros(RATE, np.int16), at_level(music, -30.0)]))
    config = GateConfig()
    result = run(pcm, config=config)
    assert result.opened_at, "music this loud opens the gate at least once"
    assert max(result.lengths) <= config.max_frames
    if track != "macroform-the_simplicity":  # as dynamic as speech: only the cap stops it
        # Steady enough to be given up on soon: the gate is shut most of the minute.
        assert sum(result.lengths) < 0.5 * (pcm.size // 160), result


def test_a_max_length_cap_ends_an_opening_whatever_the_audio() -> None:
    speech = at_level(load_8k_mono(file(ALLISON / "vm-options.wav", SOUNDS_PACKAGE)), -20.0)
    pcm = line(np.concatenate([np.zeros(RATE, np.int16), speech]))
    config = GateConfig.for_max_speech(2.0)
    result = run(pcm, config=config)
    assert config.max_frames == 200
    assert result.lengths[0] == config.max_frames


def test_key_tones_never_open_it() -> None:
    keys = dtmf_tones("1234567890*#", duration_ms=100, gap_ms=80)
    held = dtmf_tone("5", duration_ms=3000)
    for pcm in (line(np.concatenate([np.zeros(RATE, np.int16), keys])),
                line(np.concatenate([np.zeros(RATE, np.int16), held]))):  # fmt: skip
        assert run(pcm).opened_at == []


def test_after_giving_up_it_opens_again_for_speech_once_the_line_pauses() -> None:
    speech = at_level(load_8k_mono(file(ALLISON / "hours.wav", SOUNDS_PACKAGE)), -20.0)
    pcm = line(np.concatenate([np.zeros(RATE, np.int16), noise(4.0, -25.0),
                               np.zeros(RATE, np.int16), speech,
                               np.zeros(RATE, np.int16)]))  # fmt: skip
    result = run(pcm, decide_after=120)
    assert len(result.opened_at) == 2
    assert result.opened_at[1] * 0.02 > 6.0  # the second is the speech, after the pause


@pytest.mark.parametrize("max_speech", [1.0, 15.0])
def test_the_cap_follows_the_nodes_max_speech(max_speech: float) -> None:
    assert GateConfig.for_max_speech(max_speech).max_frames == round((max_speech + 2) / 0.02)
