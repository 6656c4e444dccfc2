"""Stage 3 of flow loading: schema-valid plain data -> the model dataclasses.

The builder trusts the shape (the schema stage passed) but not the meaning: calendars that do not
parse, a named choice without phrases, a ``{ref:}`` to a missing prompt are reported here as
diagnostics (stage ``semantic``) because this is where the values are read. Everything the later
checks need that the model does not keep (where a template or expression sits in the file, which
key spelled a node's type) is collected in :class:`BuildResult`.

Decisions the docs leave open are written down in docs/FLOWS.md ("Loading rules").
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from ivr.config import Config
from ivr.flow.calparse import build_calendar
from ivr.flow.errors import Diagnostic, Severity
from ivr.flow.model import (
    DTMF_KEYS,
    ActionNode,
    BranchNode,
    Choice,
    CollectNode,
    Condition,
    ConfirmNode,
    Defaults,
    EnqueueNode,
    Flow,
    GlobalCommand,
    GotoNode,
    Handler,
    HangupNode,
    HoursNode,
    InputOptions,
    LanguageNode,
    MenuNode,
    Node,
    Pos,
    Prompt,
    PromptPart,
    RecognizeNode,
    RecordNode,
    ReturnNode,
    SayNode,
    SetNode,
    SubflowNode,
    SurveyNode,
    SurveyQuestion,
    TransferNode,
    Webhook,
)
from ivr.flow.schema import did_you_mean
from ivr.flow.yamlload import Document, Positions, child, pointer

PROMPT_META = frozenset({"audio", "ref", "id", "then_prompt"})
PLATFORM_DEFAULTS = Defaults()


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


def merge_defaults(base: Defaults, values: dict[str, Any]) -> tuple[Defaults, list[str]]:
    """``base`` with ``values`` applied; returns the problems (unknown keys, wrong types)."""
    types = {f.name: f.type for f in fields(Defaults)}
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        kind = types.get(key)
        if kind is None:
            problems.append(f"unknown setting '{key}'")
            continue
        converted = _convert(str(kind), value)
        if converted is None and value is not None:
            problems.append(f"'{key}' has the wrong type ({value!r})")
            continue
        changes[key] = converted
    return replace(base, **changes), problems


def _convert(kind: str, value: Any) -> Any:
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind == "float":
        return float(value) if isinstance(value, int | float) else None
    if kind == "int":
        return value if isinstance(value, int) else None
    return str(value) if isinstance(value, str) else None  # "str" and "str | None"


def build_flow(
    doc: Document, config: Config | None = None, skip: frozenset[str] = frozenset()
) -> BuildResult:
    """Build the model of a schema-valid document.

    Args:
        doc: the loaded YAML.
        config: ivr.yaml (languages and timers defaults); None for the platform values.
        skip: node ids whose schema check failed; they are left out (and not reported again).
    """
    return _Builder(doc, config, skip).build()


class _Builder:
    def __init__(self, doc: Document, config: Config | None, skip: frozenset[str]) -> None:
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

    def build(self) -> BuildResult:
        data = self.data
        self.library = {
            pid: self.prompt(raw, pointer("prompts", pid), pid, library=True)
            for pid, raw in (data.get("prompts") or {}).items()
        }
        nodes: dict[str, Node] = {}
        for node_id, body in data["nodes"].items():
            if node_id in self.skip:
                continue
            self.node_id = node_id
            node = self.node(node_id, body)
            if node is not None:
                nodes[node_id] = node
        self.node_id = None
        config = self.config
        self.result.flow = Flow(
            id=data["flow"],
            start=data["start"],
            nodes=nodes,
            languages=self.languages,
            globals=self.globals(data.get("globals") or {}, "/globals"),
            defaults=self.defaults(),
            vars=dict(data.get("vars") or {}),
            prompts=self.library,
            calendars={
                name: build_calendar(name, raw, pointer("calendars", name), self.pos,
                                     self.result.diagnostics)
                for name, raw in (data.get("calendars") or {}).items()
            },
            transfer_allow=tuple(dict.fromkeys(
                [*(data.get("transfer_allow") or ()), *(config.transfer_allow if config else ())]
            )),
            description=data.get("description") or "",
            source=self.doc.source,
        )
        return self.result

    def defaults(self) -> Defaults:
        base = PLATFORM_DEFAULTS
        if self.config and self.config.timers:
            base, problems = merge_defaults(base, self.config.timers)
            cfg = Pos(str(self.config.root / "ivr.yaml"), 1, 1)
            for problem in problems:
                self.error(cfg, f"ivr.yaml timers: {problem}")
        flow_values = self.data.get("defaults") or {}
        merged, problems = merge_defaults(base, flow_values)
        for problem in problems:  # the schema has already refused these; kept as a safety net
            self.error(self.pos.key("/defaults"), f"defaults: {problem}")
        return merged

    # --- prompts ---------------------------------------------------------------------------

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

    # --- nodes -----------------------------------------------------------------------------

    def node(self, node_id: str, body: dict[str, Any]) -> Node | None:
        kind = next(iter(body))
        self.result.type_keys[node_id] = kind
        ptr = pointer("nodes", node_id, kind)
        raw = body[kind]
        method = getattr(self, "n_" + ("say" if kind == "prompt" else kind))
        pos = self.pos.key(pointer("nodes", node_id))
        node: Node | None = method(node_id, pos, raw if raw is not None else {}, ptr)
        return node

    def vpos(self, ptr: str, key: str) -> Pos:
        return self.pos.value(child(ptr, key))

    def n_say(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        return SayNode(nid, pos, self.prompt(b["prompt"], child(ptr, "prompt"), nid), b["next"],
                       b.get("barge_in", False), self.vpos(ptr, "next"))

    def n_menu(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        choices = []
        for key, raw in b["choices"].items():
            cptr = child(child(ptr, "choices"), key)
            dtmf = key if key in DTMF_KEYS else None
            if isinstance(raw, str):
                choices.append(Choice(key, dtmf, {}, raw, {}, self.pos.value(cptr)))
                if dtmf is None:
                    self.error(self.pos.key(cptr), f"node '{nid}': choice '{key}' is not a DTMF"
                               " key, so it needs say: phrases ({say: [...], goto: ...})")
                continue
            sets = dict(raw.get("set") or {})
            for name, value in sets.items():
                self.value_source(value, child(child(cptr, "set"), name))
            say = self.phrases(raw.get("say"))
            if dtmf is None and not say:
                self.error(self.pos.key(cptr), f"node '{nid}': choice '{key}' is not a DTMF key, "
                           "so it needs say: phrases")
            choices.append(Choice(key, dtmf, say, raw["goto"], sets, self.vpos(cptr, "goto")))
        return MenuNode(nid, pos, self.prompt(b["prompt"], child(ptr, "prompt"), nid),
                        tuple(choices), self.input_options(b, ptr))

    def n_collect(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        secret = bool(b.get("secret", False))
        return CollectNode(
            nid, pos, self.prompt(b["prompt"], child(ptr, "prompt"), nid), b["into"], b["next"],
            min=b.get("min", 1), max=b.get("max", 32), terminator=b.get("terminator"),
            pattern=b.get("pattern"), validate=b.get("validate"), secret=secret,
            opts=self.input_options(b, ptr, secret), next_pos=self.vpos(ptr, "next"),
        )

    def n_recognize(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        grammar = b["grammar"]
        if not isinstance(grammar, str):
            grammar = self.phrases(grammar)
        return RecognizeNode(
            nid, pos, self.prompt(b["prompt"], child(ptr, "prompt"), nid), grammar, b["into"],
            b["next"], b.get("dtmf", True), self.input_options(b, ptr), self.vpos(ptr, "next"),
        )

    def n_confirm(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        return ConfirmNode(
            nid, pos, self.prompt(b["prompt"], child(ptr, "prompt"), nid), b["yes"], b["no"],
            self.input_options(b, ptr), self.vpos(ptr, "yes"), self.vpos(ptr, "no"),
        )

    def n_language(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        return LanguageNode(
            nid, pos, self.prompt(b["prompt"], child(ptr, "prompt"), nid), dict(b["choices"]),
            b["next"], self.input_options(b, ptr), self.vpos(ptr, "next"),
        )

    def n_set(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        values = dict(b["vars"])
        for name, value in values.items():
            self.value_source(value, child(child(ptr, "vars"), name))
        return SetNode(nid, pos, values, b["next"], self.vpos(ptr, "next"))

    def n_branch(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        conditions = []
        for index, item in enumerate(b["when"]):
            item_ptr = child(child(ptr, "when"), index)
            self.source("expr", item["if"], child(item_ptr, "if"))
            conditions.append(Condition(item["if"], item["goto"], self.vpos(item_ptr, "goto")))
        return BranchNode(nid, pos, tuple(conditions), b["else"], self.vpos(ptr, "else"))

    def n_action(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        hook = b.get("webhook")
        webhook = None
        if ("webhook" in b) == ("python" in b):
            self.error(self.pos.key(child("/nodes", nid)),
                       f"node '{nid}': an action needs exactly one of webhook: or python:")
        if hook is not None:
            hptr = child(ptr, "webhook")
            self.source("template", hook["url"], child(hptr, "url"))
            for part in ("body", "params", "headers"):
                self.value_source(hook.get(part), child(hptr, part))
            webhook = Webhook(hook["url"], hook.get("method", "POST"), hook.get("body"),
                              hook.get("params"), dict(hook.get("headers") or {}))
        for part in ("args", "set"):
            self.value_source(b.get(part), child(ptr, part))
        return ActionNode(
            nid, pos, b["next"], b["on_error"], webhook, b.get("python"), dict(b.get("args") or {}),
            float(b.get("timeout", 5.0)), b.get("into"), dict(b.get("set") or {}),
            self.vpos(ptr, "next"), self.vpos(ptr, "on_error"),
        )

    def n_subflow(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        return SubflowNode(nid, pos, b["flow"], b["next"], self.vpos(ptr, "next"))

    def n_return(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        return ReturnNode(nid, pos)

    def n_goto(self, nid: str, pos: Pos, b: Any, ptr: str) -> Node:
        return GotoNode(nid, pos, b, self.pos.value(ptr))

    def n_hours(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        return HoursNode(nid, pos, b["calendar"], b["open"], b["closed"], b.get("holiday"))

    def n_transfer(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        self.source("template", b["to"], child(ptr, "to"))
        prompt = self.optional_prompt(b, ptr)
        return TransferNode(nid, pos, b["to"], b["on_fail"], prompt, self.vpos(ptr, "on_fail"))

    def n_enqueue(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        priority = b.get("priority", 5)
        if isinstance(priority, str):
            self.source("expr", priority.strip()[1:], child(ptr, "priority"),
                        priority.index("=") + 1)
        return EnqueueNode(nid, pos, b["queue"], priority, tuple(b.get("skills") or ()),
                           self.optional_prompt(b, ptr))

    def n_record(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        return RecordNode(
            nid, pos, self.prompt(b["prompt"], child(ptr, "prompt"), nid), b["into"], b["next"],
            float(b.get("max_seconds", 120.0)), b.get("finish_key", "#"), b.get("beep", True),
            self.vpos(ptr, "next"),
        )

    def n_survey(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        questions = []
        for index, q in enumerate(b["questions"]):
            qptr = child(child(ptr, "questions"), index)
            prompt = self.prompt(q["prompt"], child(qptr, "prompt"), f"{nid}.{q['id']}")
            questions.append(SurveyQuestion(q["id"], prompt, q["scale"], self.pos.value(qptr)))
        return SurveyNode(nid, pos, tuple(questions), b["next"], self.input_options(b, ptr),
                          self.vpos(ptr, "next"))

    def n_hangup(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        return HangupNode(nid, pos, self.optional_prompt(b, ptr),
                          b.get("outcome", "self_service"))

    def optional_prompt(self, b: dict[str, Any], ptr: str) -> Prompt | None:
        if "prompt" not in b:
            return None
        return self.prompt(b["prompt"], child(ptr, "prompt"), self.node_id or "")


def _words(raw: str | list[str]) -> tuple[str, ...]:
    return (raw,) if isinstance(raw, str) else tuple(raw)
