"""Rendering every prompt of a set of flows ahead of the calls (``ivr prompts build``).

Every prompt of every flow is collected: node prompts, re-prompts (no-input, no-match, tapered
lists), survey questions, transfer/enqueue/hangup prompts and the flow's prompt library, in every
declared language, each under the id and with the text the engine plays it with
(:func:`ivr.flow.render.render_prompt`). Then, per prompt:

* a recording (by ``audio:`` id, then by prompt id) wins, converted to 8 kHz once if needed;
* a constant text is rendered once into the cache (identical texts share one file);
* a text with variables (``{balance|amount}``) cannot be rendered ahead: it is *dynamic* and
  rendered per call by :func:`render_dynamic`, cached the same way by its final text.

Prompts the engine makes up during a call (``NODE.confirm``, "Did you say ...?") are dynamic
too and are not listed here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ivr.flow.model import (
    Flow,
    FlowSet,
    Pos,
    Prompt,
)
from ivr.flow.render import part_text, render_prompt
from ivr.flow.template import compile_template
from ivr.tts.cache import PromptCache
from ivr.tts.engine import TTSError, TTSUnavailable
from ivr.tts.wavfile import PromptAudioError


class Source(StrEnum):
    """Where a prompt's audio comes from."""

    RECORDED = "recorded"
    CACHED = "cached"
    MISSING = "missing"
    DYNAMIC = "dynamic"


@dataclass(frozen=True)
class PromptItem:
    """One prompt as a call plays it: a flow's prompt id in one language.

    ``text`` is the final text for a constant prompt and the template for a dynamic one.
    """

    flow: str
    id: str
    language: str
    text: str
    audio: str | None
    dynamic: bool
    pos: Pos

    @property
    def recording_ids(self) -> list[str]:
        """The ids a recording may carry, in the order they win."""
        return [i for i in (self.audio, self.id) if i]


def flow_prompts(flow: Flow) -> Iterator[Prompt]:
    """Every Prompt of ``flow``: its library, then each node's prompts in file order."""
    yield from flow.prompts.values()
    for node in flow.nodes.values():
        yield from node.prompts()


def collect_prompts(flowset: FlowSet) -> list[PromptItem]:
    """Every prompt of every flow in every declared language, once each, in flow order."""
    items: dict[tuple[str, str, str, str], PromptItem] = {}
    for flow_id in sorted(flowset.flows):
        flow = flowset.flows[flow_id]
        for prompt in flow_prompts(flow):
            for language in flow.languages:
                for item in _prompt_items(flow, prompt, language):
                    items.setdefault((item.flow, item.id, item.language, item.text), item)
    return list(items.values())


def _prompt_items(flow: Flow, prompt: Prompt, language: str) -> Iterator[PromptItem]:
    # The engine's own rendering gives the played ids and texts; an empty scope is enough for
    # constant parts, and a dynamic part keeps its template as the text.
    rendered = render_prompt(prompt, {}, language, barge_in=True)
    for part, played in zip(prompt.parts, rendered, strict=True):
        template = part_text(part, language)
        dynamic = not compile_template(template).is_constant
        yield PromptItem(flow.id, played.id, language, template if dynamic else played.text,
                         part.audio, dynamic, part.pos)


@dataclass
class BuildReport:
    """What ``build_prompts`` did. Texts count unique renderings; the rest count prompts."""

    items: list[PromptItem] = field(default_factory=list)
    rendered: int = 0  # texts rendered now
    cached: int = 0  # texts already in the cache
    recorded: int = 0  # prompts served by a recording
    dynamic: int = 0  # prompts rendered per call
    render_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def build_prompts(flowset: FlowSet, cache: PromptCache, force: bool = False) -> BuildReport:
    """Render every constant prompt of ``flowset`` that is not cached or recorded.

    Args:
        flowset: the flows.
        cache: the prompts folder to fill.
        force: render every constant text again, cached or not.

    Raises:
        TTSUnavailable: the synthesizer cannot run here (nothing could be rendered).
    """
    report = BuildReport(items=collect_prompts(flowset))
    seen: set[str] = set()
    for item in report.items:
        where = f"{item.pos}: prompt {item.id} ({item.language})"
        try:
            recording = cache.find_recording(item.recording_ids, item.language)
        except PromptAudioError as exc:
            report.errors.append(f"{where}: {exc}")
            continue
        if recording is not None:
            report.recorded += 1
            if item.dynamic:
                report.warnings.append(f"{where}: the recording replaces a text with variables; "
                                       "callers will not hear the values")
            continue
        if item.audio:
            report.warnings.append(f"{where}: no recording {item.audio}.wav; using the text")
        if item.dynamic:
            report.dynamic += 1
        elif not item.text.strip():
            report.errors.append(f"{where}: no recording and no text to synthesize")
        else:
            _render(item, cache, force, seen, report, where)
    return report


def _render(item: PromptItem, cache: PromptCache, force: bool, seen: set[str],
            report: BuildReport, where: str) -> None:
    key = cache.key(item.text, item.language)
    if key in seen:  # the same text elsewhere (a library prompt, a shared sentence)
        return
    seen.add(key)
    started = time.perf_counter()
    try:
        _, rendered = cache.synthesize(item.text, item.language, force=force)
    except TTSUnavailable:
        raise
    except TTSError as exc:
        report.errors.append(f"{where}: {exc}")
        return
    if rendered:
        report.rendered += 1
        report.render_seconds += time.perf_counter() - started
    else:
        report.cached += 1


def prompt_sources(
    flowset: FlowSet, cache: PromptCache
) -> list[tuple[PromptItem, Source, Path | None]]:
    """Each prompt of ``flowset`` with where its audio comes from now (nothing is rendered).

    A recording is listed as found, not converted.
    """
    out: list[tuple[PromptItem, Source, Path | None]] = []
    for item in collect_prompts(flowset):
        found = (cache.recording(i, item.language) for i in item.recording_ids)
        recording = next((path for path in found if path is not None), None)
        if recording is not None:
            out.append((item, Source.RECORDED, recording))
        elif item.dynamic:
            out.append((item, Source.DYNAMIC, None))
        else:
            path = cache.cached(item.text, item.language)
            out.append((item, Source.CACHED if path else Source.MISSING, path))
    return out


def render_dynamic(text: str, language: str, cache: PromptCache) -> Path:
    """Call-time rendering of a filled-in text (see :meth:`PromptCache.render_dynamic`)."""
    return cache.render_dynamic(text, language)


__all__ = [
    "BuildReport",
    "PromptItem",
    "Source",
    "build_prompts",
    "collect_prompts",
    "flow_prompts",
    "prompt_sources",
    "render_dynamic",
]
