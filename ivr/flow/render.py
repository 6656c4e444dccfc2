"""Turning a flow Prompt into what the channel plays: text filled in for the call's language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ivr.flow.model import Prompt, PromptPart
from ivr.flow.template import compile_template

HOLD_MUSIC = "hold-music"  # the audio id of the platform's music on hold


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt ready to play: its id, language and final text (variables filled in).

    ``audio`` names a recorded prompt id when the flow gave one; the transport looks it up (or
    synthesizes ``text``). :data:`HOLD_MUSIC` names the platform's music on hold. ``secret`` is
    never set for spoken text: secrets are never spoken back.
    """

    id: str
    language: str
    text: str
    audio: str | None = None
    barge_in: bool = True
    loop: bool = False  # play again and again until stopped (hold music); never reported played


def part_text(part: PromptPart, language: str) -> str:
    """The part's template for ``language``, falling back to the first language written."""
    if language in part.text:
        return part.text[language]
    return next(iter(part.text.values()), "")


def render_prompt(
    prompt: Prompt, scope: Mapping[str, Any], language: str, barge_in: bool
) -> list[RenderedPrompt]:
    """One RenderedPrompt per part; a single-part prompt keeps the prompt's own id."""
    single = len(prompt.parts) == 1
    out = []
    for part in prompt.parts:
        text = compile_template(part_text(part, language)).render(scope, language, speak=True)
        out.append(
            RenderedPrompt(
                id=prompt.id if single else part.id,
                language=language,
                text=text,
                audio=part.audio,
                barge_in=barge_in,
            )
        )
    return out
