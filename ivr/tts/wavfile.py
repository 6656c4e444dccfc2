"""What prompts need on top of :mod:`ivr.media.wav`: errors that say the fix, and a complete file.

Reading, writing and resampling are :mod:`ivr.media.wav`'s (any PCM or float WAV, any rate and
channel count). This module turns its :class:`~ivr.media.wav.WavError` into a
:class:`PromptAudioError` that says how to convert the file, converts a recording to 8 kHz once,
tells when pyttsx3 has finished writing a file, and joins the audio of a prompt rendered in pieces
(a Mandarin prompt with English words).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.media.wav import WavError, WavFormat, load_8k_mono, read_wav_header, write_wav

SILENCE_LEVEL = 0.003  # sample level (of 1.0) below which synthesized audio counts as silence
SEAM_EDGE = 0.01  # seconds of quiet kept each side of a seam (the end of a fading sound)
CONVERT_HINT = "convert it with: sox IN.wav -r 8000 -c 1 -b 16 -e signed-integer OUT.wav"


class PromptAudioError(ValueError):
    """A WAV file that cannot be used as a prompt; the message names the file and the fix."""


def recording_format(path: Path) -> WavFormat:
    """The format of the recording at ``path``, from its header alone.

    Raises:
        PromptAudioError: not a WAV file :mod:`ivr.media.wav` reads.
    """
    try:
        return read_wav_header(path).format
    except WavError as exc:
        raise _refused(path, exc) from None


def convert_to_telephone(source: Path, target: Path) -> int:
    """Convert the WAV ``source`` to 8 kHz 16-bit mono at ``target`` (atomically).

    The folder of ``target`` is made when it does not exist yet.

    Returns:
        The number of samples written.

    Raises:
        PromptAudioError: ``source`` is not a WAV file :mod:`ivr.media.wav` reads.
    """
    try:
        pcm = load_8k_mono(source)
    except WavError as exc:
        raise _refused(source, exc) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    write_wav(target, pcm)
    return int(pcm.size)


def _refused(path: Path, exc: WavError) -> PromptAudioError:
    reason = str(exc).removeprefix(f"{path}: ")
    return PromptAudioError(f"{path}: not a PCM WAV file ({reason}); {CONVERT_HINT}")


def is_complete_wav(path: Path) -> bool:
    """True when ``path`` is a WAV file whose data chunk is all there, ending the file.

    A writer (the stdlib ``wave`` module among them) puts the data length into the header before
    it writes the samples, so a file whose size reaches the end of the declared data is complete.
    """
    try:
        header = read_wav_header(path)
    except (OSError, WavError):
        return False
    return header.data_offset + header.data_size == header.file_size


def join_with_pauses(
    pieces: list[NDArray[np.float64]], pauses: list[float], rate: int
) -> NDArray[np.float64]:
    """Audio pieces (floats) as one: at each seam the silences around it become one pause.

    A synthesizer ends every piece with a silence of its own and may start with one; at a seam
    both are trimmed to :data:`SEAM_EDGE` and ``pauses[i]`` seconds put between piece ``i`` and
    ``i + 1``. The start of the first piece and the end of the last are kept as they are.
    """
    if not pieces or len(pauses) != len(pieces) - 1:
        raise ValueError(f"{len(pieces)} pieces need {len(pieces) - 1} pauses, got {len(pauses)}")
    edge = int(SEAM_EDGE * rate)
    out: list[NDArray[np.float64]] = []
    for index, piece in enumerate(pieces):
        loud = np.nonzero(np.abs(piece) > SILENCE_LEVEL)[0]
        first, last = index == 0, index == len(pieces) - 1
        start = 0 if first or not loud.size else max(0, int(loud[0]) - edge)
        end = piece.size if last or not loud.size else min(piece.size, int(loud[-1]) + 1 + edge)
        out.append(piece[start:end])
        if not last:
            out.append(np.zeros(int(pauses[index] * rate)))
    return np.concatenate(out)


__all__ = [
    "CONVERT_HINT",
    "PromptAudioError",
    "convert_to_telephone",
    "is_complete_wav",
    "join_with_pauses",
    "recording_format",
]
