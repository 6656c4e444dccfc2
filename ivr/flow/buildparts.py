"""Building the pieces nodes share: prompts (with their ids), re-prompt handlers, phrases,
global commands and input options, plus the record of every template and expression written.

Used by :mod:`ivr.flow.build`; the rules are in docs/FLOWS.md ("Prompts", "Loading and checking").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ivr.flow.errors import Diagnostic, Severity
from ivr.flow.model import (
    DTMF_KEYS,
    Flow,
    GlobalCommand,
    Handler,
    InputOptions,
    Pos,
    Prompt,
    PromptPart,
)
from ivr.flow.schema import did_you_mean
from ivr.flow.settings import FlowSettings
from ivr.flow.yamlload import Document, Positions, child, pointer

PROMPT_META = frozenset({"audio", "ref", "id", "then_prompt"})


@dataclass(frozen=True)
class Source:
    """A template or expression written in the flow, with where it sits for error positions."""

    kind: Literal["template", "expr"]
    text: str
    ptr: str
    offset: int = 0  # where ``text`` starts inside the scalar at ``ptr``
    node: str | None = None  # the node it belongs to, for messages


@dataclass
class BuildResult:
    """The built flow plus what the semantic checks need to point into the file."""

    flow: Flow
    positions: Positions
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    type_keys: dict[str, str] = field(default_factory=dict)  # node id -> type key as written
    skipped: frozenset[str] = frozenset()  # node ids not built (their schema check failed)

    def node_ptr(self, node_id: str) -> str:
        """Pointer of the node's body (``/nodes/ID/menu``)."""
        return pointer("nodes", node_id, self.type_keys.get(node_id, ""))


class PartsBuilder:
    """State of one build and the builders for the pieces nodes share."""

    def __init__(self, doc: Document, config: FlowSettings | None,
                 skip: frozenset[str]) -> None:
        self.doc = doc
        self.pos = doc.positions
        self.data: dict[str, Any] = doc.data
        self.config = config
        self.skip = skip
        default_langs = config.languages if config else ("en",)
        self.languages = tuple(self.data.get("languages") or default_langs)
        self.default_lang = self.languages[0]
        self.result = BuildResult(Flow(id="", start="", nodes={}), doc.positions, skipped=skip)
        self.library: dict[str, Prompt] = {}
        self.node_id: str | None = None

    # --- reporting -------------------------------------------------------------------------

    def error(self, pos: Pos, message: str, severity: Severity = Severity.ERROR) -> None:
        self.result.diagnostics.append(Diagnostic(pos, message, severity, stage="semantic"))

    def source(
        self, kind: Literal["template", "expr"], text: str, ptr: str, offset: int = 0
    ) -> None:
        self.result.sources.append(Source(kind, text, ptr, offset, self.node_id))

    def value_source(self, value: Any, ptr: str) -> None:
        """A set/args/body value: "= expr", a template, or a literal; containers recursively."""
        if isinstance(value, str):
            if value.startswith("="):
                self.source("expr", value[1:], ptr, 1)
            else:
                self.source("template", value, ptr)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.value_source(item, child(ptr, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.value_source(item, child(ptr, index))

    # --- the flow --------------------------------------------------------------------------


    def prompt(self, raw: Any, ptr: str, pid: str, library: bool = False) -> Prompt:
        """A Prompt with id ``pid`` (overridden by an explicit ``id:`` or a ``ref:``)."""
        pos = self.pos.value(ptr)
        if isinstance(raw, list):
            parts: list[PromptPart] = []
            then = True
            for index, item in enumerate(raw):
                item_ptr = child(ptr, index)
                parts.extend(self.parts(item, item_ptr, f"{pid}.part{index + 1}", library))
                if isinstance(item, dict) and item.get("then_prompt") is False:
                    then = False
            return Prompt(pid, tuple(parts), then, pos)
        parts = self.parts(raw, ptr, pid, library)
        then = not (isinstance(raw, dict) and raw.get("then_prompt") is False)
        if isinstance(raw, dict) and "id" in raw:
            pid = str(raw["id"])
        elif isinstance(raw, dict) and "ref" in raw and raw["ref"] in self.library:
            pid = self.library[raw["ref"]].id
        return Prompt(pid, tuple(parts), then, pos)

    def parts(self, raw: Any, ptr: str, pid: str, library: bool) -> list[PromptPart]:
        pos = self.pos.value(ptr)
        if isinstance(raw, str):
            self.source("template", raw, ptr)
            return [PromptPart(pid, {self.default_lang: raw}, None, pos)]
        if "ref" in raw:
            return self.ref_parts(raw, ptr, library)
        texts = {k: v for k, v in raw.items() if k not in PROMPT_META}
        for lang, text in texts.items():
            self.source("template", text, child(ptr, lang))
        return [PromptPart(str(raw.get("id", pid)), texts, raw.get("audio"), pos)]

    def ref_parts(self, raw: dict[str, Any], ptr: str, library: bool) -> list[PromptPart]:
        ref = raw["ref"]
        ref_pos = self.pos.value(child(ptr, "ref"))
        if library:
            self.error(ref_pos, f"prompt library entries cannot refer to other prompts ({ref})")
            return []
        extra = sorted(set(raw) - {"ref", "then_prompt"})
        if extra:
            self.error(ref_pos, f"a {{ref: {ref}}} prompt cannot also have {', '.join(extra)}")
        target = self.library.get(ref)
        if target is None:
            self.error(ref_pos, f"unknown prompt '{ref}'{did_you_mean(ref, self.library)}")
            return []
        return list(target.parts)

    def handler(self, raw: dict[str, Any] | None, ptr: str, label: str) -> Handler:
        if raw is None:
            return Handler()
        base = f"{self.node_id}.{label}"
        reprompt = raw.get("reprompt", "repeat")
        rp_ptr = child(ptr, "reprompt")
        reprompts: tuple[Prompt, ...] = ()
        if isinstance(reprompt, list):
            items = []
            for index, item in enumerate(reprompt):
                if item == "repeat":
                    self.error(self.pos.value(child(rp_ptr, index)),
                               f"node '{self.node_id}': 'repeat' can only be the whole reprompt,"
                               " not an item of a list")
                    continue
                pid = base if index == 0 else f"{base}.{index + 1}"
                items.append(self.prompt(item, child(rp_ptr, index), pid))
            reprompts = tuple(items)
        elif reprompt != "repeat":
            reprompts = (self.prompt(reprompt, rp_ptr, base),)
        goto = raw.get("goto")
        pos = self.pos.value(child(ptr, "goto")) if goto else self.pos.key(ptr)
        return Handler(reprompts, raw.get("after"), goto, pos)

    # --- phrases and globals ---------------------------------------------------------------

    def phrases(self, raw: Any) -> dict[str, tuple[str, ...]]:
        """A plain list is the default language's phrases and the fallback for the others; a
        language mapping gives each language its own (missing ones fall back too)."""
        if raw is None:
            return {}
        if isinstance(raw, str | list):
            words = _words(raw)
            return {lang: words for lang in self.languages}
        out = {lang: _words(words) for lang, words in raw.items()}
        fallback = out.get(self.default_lang)
        if fallback:
            for lang in self.languages:
                out.setdefault(lang, fallback)
        return out

    def globals(self, raw: dict[str, Any], ptr: str) -> dict[str, GlobalCommand]:
        out = {}
        for name, value in raw.items():
            item_ptr = child(ptr, name)
            key = name if name in DTMF_KEYS else None
            if isinstance(value, dict):
                target, say = value["goto"], self.phrases(value.get("say"))
                pos = self.pos.value(child(item_ptr, "goto"))
            else:
                target, say, pos = value, {}, self.pos.value(item_ptr)
            if key is None and not say and target is not None:
                self.error(self.pos.key(item_ptr),
                           f"global command '{name}' is not a DTMF key, so it needs say: phrases")
            out[name] = GlobalCommand(name, key, say, target, pos)
        return out

    def input_options(self, body: dict[str, Any], ptr: str, secret: bool = False) -> InputOptions:
        raw_globals = body.get("globals")
        node_globals: dict[str, GlobalCommand] | None = None
        off = False
        if raw_globals is False or (secret and "globals" not in body):
            node_globals, off = {}, True
        elif isinstance(raw_globals, dict):
            node_globals = self.globals(raw_globals, child(ptr, "globals"))
        return InputOptions(
            no_input=self.handler(body.get("no_input"), child(ptr, "no_input"), "no_input"),
            no_match=self.handler(body.get("no_match"), child(ptr, "no_match"), "no_match"),
            barge_in=body.get("barge_in"),
            timeout=body.get("timeout"),
            inter_digit_timeout=body.get("inter_digit_timeout"),
            confidence=body.get("confidence"),
            globals=node_globals,
            globals_off=off,
        )



def _words(raw: str | list[str]) -> tuple[str, ...]:
    return (raw,) if isinstance(raw, str) else tuple(raw)
