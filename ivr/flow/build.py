"""Stage 3 of flow loading: schema-valid plain data -> the model dataclasses.

The builder trusts the shape (the schema stage passed) but not the meaning: calendars that do not
parse, a named choice without phrases, a ``{ref:}`` to a missing prompt are reported here as
diagnostics (stage ``semantic``) because this is where the values are read. Everything the later
checks need that the model does not keep (where a template or expression sits in the file, which
key spelled a node's type) is collected in :class:`BuildResult`.

Decisions the docs leave open are written down in docs/FLOWS.md ("Loading and checking").
The pieces nodes share (prompts, handlers, phrases, globals) are built in
:mod:`ivr.flow.buildparts`.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from ivr.flow.buildparts import BuildResult, PartsBuilder, Source
from ivr.flow.calparse import build_calendar
from ivr.flow.model import (
    DTMF_KEYS,
    AcdAction,
    ActionNode,
    Announce,
    BranchNode,
    Choice,
    CollectNode,
    Condition,
    ConfirmNode,
    CounterNode,
    Defaults,
    EnqueueNode,
    Flow,
    GotoNode,
    HangupNode,
    HoursNode,
    LanguageNode,
    MenuNode,
    Node,
    Pos,
    Prompt,
    QueueMessage,
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
from ivr.flow.settings import FlowSettings
from ivr.flow.yamlload import Document, child, pointer

__all__ = ["BuildResult", "Source", "build_flow", "merge_defaults"]

PLATFORM_DEFAULTS = Defaults()


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
    doc: Document, config: FlowSettings | None = None, skip: frozenset[str] = frozenset()
) -> BuildResult:
    """Build the model of a schema-valid document.

    Args:
        doc: the loaded YAML.
        config: ivr.yaml (languages and timers defaults); None for the platform values.
        skip: node ids whose schema check failed; they are left out (and not reported again).
    """
    return _Builder(doc, config, skip).build()


class _Builder(PartsBuilder):
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
            base, problems = merge_defaults(base, dict(self.config.timers))
            cfg = Pos(str(self.config.root / "ivr.yaml"), 1, 1)
            for problem in problems:
                self.error(cfg, f"ivr.yaml timers: {problem}")
        flow_values = self.data.get("defaults") or {}
        merged, problems = merge_defaults(base, flow_values)
        for problem in problems:  # the schema has already refused these; kept as a safety net
            self.error(self.pos.key("/defaults"), f"defaults: {problem}")
        return merged

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
        choices: dict[str, str] = {}
        say: dict[str, dict[str, tuple[str, ...]]] = {}
        for key, raw in b["choices"].items():  # "2": zh, or "2": {language: zh, say: [...]}
            choices[key] = raw if isinstance(raw, str) else raw["language"]
            if isinstance(raw, dict) and "say" in raw:
                said = raw["say"]
                # A mapping speaks only for the languages it lists (the others keep the built-in
                # names, not the default language's words); a list speaks for every language.
                say[key] = ({lang: tuple([w] if isinstance(w, str) else w)
                             for lang, w in said.items()}
                            if isinstance(said, dict) else self.phrases(said))
        return LanguageNode(
            nid, pos, self.prompt(b["prompt"], child(ptr, "prompt"), nid), choices,
            b["next"], self.input_options(b, ptr), self.vpos(ptr, "next"), say,
        )

    def n_set(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        values = dict(b["vars"])
        for name, value in values.items():
            self.value_source(value, child(child(ptr, "vars"), name))
        return SetNode(nid, pos, values, b["next"], self.vpos(ptr, "next"))

    def n_counter(self, nid: str, pos: Pos, b: dict[str, Any], ptr: str) -> Node:
        self.source("template", b["key"], child(ptr, "key"))
        return CounterNode(nid, pos, b["key"], b["into"], b["next"], int(b.get("add", 0)),
                           bool(b.get("reset", False)), float(b.get("expire", 900)),
                           self.vpos(ptr, "next"))  # fmt: skip

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
        if sum(kind in b for kind in ("webhook", "python", "acd")) != 1:
            self.error(self.pos.key(child("/nodes", nid)),
                       f"node '{nid}': an action needs exactly one of webhook:, python: or acd:")
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
            self.vpos(ptr, "next"), self.vpos(ptr, "on_error"), self.acd_action(b.get("acd"), ptr),
        )

    def acd_action(self, raw: dict[str, Any] | None, ptr: str) -> AcdAction | None:
        """An action's ``acd:`` request (the agent line); its templates are checked."""
        if raw is None:
            return None
        aptr = child(ptr, "acd")
        for part in ("agent", "pin", "reason"):
            if part in raw:
                self.source("template", raw[part], child(aptr, part))
        return AcdAction(raw["op"], raw["agent"], raw["pin"], raw.get("reason"))

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
        if "whisper" in b:
            self.source("template", b["whisper"], child(ptr, "whisper"))
        announce = Announce(**b.get("announce", {}))
        message = None
        if "message" in b:
            mptr = child(ptr, "message")
            message = QueueMessage(self.prompt(b["message"]["prompt"], child(mptr, "prompt"),
                                               f"{nid}.message"),
                                   float(b["message"].get("every", 120.0)))  # fmt: skip
        keys = {str(k): str(v) for k, v in (b.get("keys") or {}).items()}
        exits: tuple[str, ...] = ("on_max_wait", "on_no_agents", "on_full", "after")
        exit_pos = {label: self.vpos(ptr, label) for label in exits if label in b}
        exit_pos.update({f"key {k}": self.vpos(child(ptr, "keys"), k) for k in keys})
        return EnqueueNode(
            nid, pos, b["queue"], priority, tuple(b.get("skills") or ()),
            self.optional_prompt(b, ptr), b.get("tier", "general"), b.get("hold_music"),
            announce, message, b.get("whisper"), keys, b.get("on_max_wait"),
            b.get("on_no_agents"), b.get("on_full"), b.get("after"), exit_pos,
        )

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
