"""Stage 4 of flow loading: semantic checks over the built model, reporting every problem.

Errors refuse the flow; warnings (:attr:`Severity.WARNING`) are shown by ``ivr validate`` and
fail ``ivr lint``. The call graph (every target, escalation and global command) is analysed in
:mod:`ivr.flow.graphcheck`; this module checks names, values, prompts and expressions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ivr.flow import expr as _expr
from ivr.flow import template as _template
from ivr.flow.build import BuildResult
from ivr.flow.errors import Diagnostic, Severity
from ivr.flow.graphcheck import check_graph
from ivr.flow.langnames import choice_names, phrase_key
from ivr.flow.model import (
    BUILTIN_COMMANDS,
    ActionNode,
    CollectNode,
    CounterNode,
    EnqueueNode,
    Flow,
    GlobalCommand,
    HoursNode,
    LanguageNode,
    MenuNode,
    Node,
    Pos,
    Prompt,
    RecognizeNode,
    RecordNode,
    SetNode,
    SubflowNode,
    SurveyNode,
    TransferNode,
)
from ivr.flow.regex import RegexError, compile_regex
from ivr.flow.schema import did_you_mean
from ivr.flow.transferallow import allowed as transfer_allowed
from ivr.flow.transferallow import bad_entry
from ivr.flow.yamlload import Positions, child, pointer

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SINGLE_VAR = re.compile(r"^\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}$")
VALIDATE = re.compile(r"^(luhn|python:[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*)$")
ERROR, WARNING = Severity.ERROR, Severity.WARNING


def check_flow(
    result: BuildResult, positions: Positions, allow_known: bool = True, graph: bool = True,
    partial: dict[str, set[str]] | None = None,
) -> list[Diagnostic]:
    """Every semantic problem of one built flow.

    Args:
        result: the builder's output (the flow, its templates and expressions, type keys).
        positions: the document's position table.
        allow_known: whether the transfer allow-list is known (False: no ivr.yaml was given and
            the flow has none, so constant targets cannot be judged).
        graph: run every graph check (off when some nodes failed the schema and are missing).
        partial: with ``graph`` off, the likely targets of the missing nodes: the unreachable
            node warnings are still given (see :func:`check_graph`).
    """
    checker = _Checker(result, positions, allow_known)
    checker.run()
    if graph:
        checker.out.extend(check_graph(result.flow, positions))
    elif partial is not None:
        checker.out.extend(check_graph(result.flow, positions, partial))
    return checker.out


class _Checker:
    def __init__(self, result: BuildResult, positions: Positions, allow_known: bool) -> None:
        self.result = result
        self.flow: Flow = result.flow
        self.pos = positions
        self.allow_known = allow_known
        self.out: list[Diagnostic] = []
        self._seen: set[tuple[Pos, str]] = set()
        # Skipped nodes exist (their schema errors are reported); targets to them are fine.
        self.node_ids = set(self.flow.nodes) | set(result.skipped)

    def report(self, pos: Pos, message: str, severity: Severity = ERROR) -> None:
        if (pos, message) not in self._seen:
            self._seen.add((pos, message))
            self.out.append(Diagnostic(pos, message, severity, stage="semantic"))

    def at(self, node: Node, *fields: str | int) -> str:
        ptr = self.result.node_ptr(node.id)
        for name in fields:
            ptr = child(ptr, name)
        return ptr

    def run(self) -> None:
        self.check_node_ids()
        self.check_targets()
        self.check_globals(self.flow.globals, "/globals", None)
        self.check_prompts()
        self.check_sources()
        self.check_transfer_allow()
        for node in self.flow.nodes.values():
            method = getattr(self, "node_" + node.kind, None)
            if method is not None:
                method(node)

    # --- names and targets -----------------------------------------------------------------

    def check_node_ids(self) -> None:
        for node_id in self.node_ids:
            if node_id in BUILTIN_COMMANDS:
                self.report(self.pos.key(pointer("nodes", node_id)),
                            f"'{node_id}' is a built-in command and cannot be a node id "
                            f"(built-ins: {', '.join(sorted(BUILTIN_COMMANDS))})")
        if self.flow.start not in self.node_ids:
            self.unknown_target("start", self.flow.start, self.pos.value("/start"), "the flow")

    def check_targets(self) -> None:
        for node in self.flow.nodes.values():
            for label, target, pos in node.targets():
                if isinstance(node, HoursNode):  # the model keeps no per-field position here
                    pos = self.pos.value(self.at(node, label))
                self.target(label, target, pos, f"node '{node.id}'")
        escalate = self.flow.defaults.escalate
        if escalate:
            where = self.pos.value("/defaults/escalate")
            self.target("escalate", escalate, where, "defaults")

    def target(self, label: str, target: str, pos: Pos, where: str) -> None:
        if target not in self.node_ids and target not in BUILTIN_COMMANDS:
            self.unknown_target(label, target, pos, where)

    def unknown_target(self, label: str, target: str, pos: Pos, where: str) -> None:
        options = sorted(self.node_ids | BUILTIN_COMMANDS)
        self.report(pos, f"{where}: {label} goes to unknown node '{target}'"
                    f"{did_you_mean(target, options)}")

    def check_transfer_allow(self) -> None:
        """The flow's own allow-list entries must be numbers or plain SIP URIs (ivr.yaml's are
        checked when it is read)."""
        for i, entry in enumerate(self.flow.transfer_allow):
            ptr = pointer("transfer_allow", i)
            if ptr not in self.pos:
                break  # past the flow's own entries: ivr.yaml's follow
            problem = bad_entry(entry)
            if problem is not None:
                self.report(self.pos.value(ptr), problem)

    # --- global commands -------------------------------------------------------------------

    def check_globals(
        self, commands: dict[str, GlobalCommand], ptr: str, node: Node | None
    ) -> None:
        where = f"node '{node.id}', global" if node else "global command"
        phrases: dict[tuple[str, str], str] = {}
        for name, cmd in commands.items():
            if cmd.target is None:
                if node is not None and name not in self.flow.globals:
                    self.report(self.pos.key(child(ptr, name)),
                                f"{where} '{name}' switches off a command the flow does not have",
                                WARNING)
                continue
            self.target("goto", cmd.target, cmd.pos, f"{where} '{name}'")
            for lang, words in cmd.say.items():
                for word in words:
                    other = phrases.setdefault((lang, word.lower()), name)
                    if other != name:
                        self.report(self.pos.key(child(ptr, name)),
                                    f"{where}s '{other}' and '{name}' both answer to '{word}'")

    def effective_globals(self, opts: Any) -> dict[str, GlobalCommand]:
        if opts.globals_off:
            return {}
        merged = dict(self.flow.globals)
        merged.update(opts.globals or {})
        return {k: v for k, v in merged.items() if v.target is not None}

    def check_choice_clashes(self, node: Node, keys: Iterable[tuple[str, str]]) -> None:
        """Warn where a global command and a choice share a key: the choice wins (DTMF)."""
        opts = node.opts  # type: ignore[attr-defined]
        active = self.effective_globals(opts)
        overridden = set(opts.globals or {})
        for key, ptr in keys:
            cmd = active.get(key)
            if cmd is not None and key not in overridden and key in self.flow.globals:
                self.report(self.pos.key(ptr),
                            f"node '{node.id}': choice '{key}' hides the global command '{key}' "
                            f"({cmd.target}) here; add globals: {{\"{key}\": null}} to the node "
                            "if that is intended", WARNING)

    # --- prompts ---------------------------------------------------------------------------

    def check_prompts(self) -> None:
        for prompt in self.flow.prompts.values():
            self.prompt(prompt)
        for node in self.flow.nodes.values():
            for prompt in _node_prompts(node):
                self.prompt(prompt)

    def prompt(self, prompt: Prompt) -> None:
        languages = self.flow.languages
        for part in prompt.parts:
            for lang in part.text:
                if lang not in languages:
                    self.report(part.pos, f"prompt '{part.id}' has text in '{lang}', which is not "
                                f"one of the flow's languages ({', '.join(languages)})", WARNING)
            if part.audio:
                continue
            missing = [lang for lang in languages if lang not in part.text]
            if missing:
                self.report(part.pos, f"prompt '{part.id}' has no {' or '.join(missing)} text "
                            "(every prompt needs each language of the flow, or audio:)")
            # `zh: ""` would be dead air for every caller in that language.
            empty = [lang for lang, text in part.text.items() if not text.strip()]
            if empty:
                self.report(part.pos, f"prompt '{part.id}' has empty {' and '.join(empty)} "
                            "text (callers in that language would hear nothing)")

    # --- templates and expressions ---------------------------------------------------------

    def check_sources(self) -> None:
        for src in self.result.sources:
            where = f"node '{src.node}'" if src.node else "prompt"
            try:
                if src.kind == "expr":
                    _expr.compile_expr(src.text)
                else:
                    _template.compile_template(src.text)
            except (_expr.ExprError, _template.TemplateError) as exc:
                col = int(getattr(exc, "col", 0) or 0)
                what = "expression" if src.kind == "expr" else "template"
                message = getattr(exc, "message", str(exc))
                self.report(self.pos.inside(src.ptr, src.offset + col),
                            f"{where}: {what} {src.text.strip()!r} does not parse: {message}")

    # --- per node type ---------------------------------------------------------------------

    def identifier(self, node: Node, name: str, ptr: str, what: str, key: bool = False) -> None:
        if not IDENTIFIER.match(name):
            pos = self.pos.key(ptr) if key else self.pos.value(ptr)
            self.report(pos, f"node '{node.id}': {what} '{name}' is not a variable name "
                        "(letters, digits and '_', not starting with a digit)")

    def node_menu(self, node: MenuNode) -> None:
        self.check_globals(node.opts.globals or {}, self.at(node, "globals"), node)
        keys = [(c.dtmf, self.at(node, "choices", c.key)) for c in node.choices if c.dtmf]
        self.check_choice_clashes(node, keys)
        self.phrase_clashes(node)
        for choice in node.choices:
            for name in choice.set:
                self.identifier(node, name, self.at(node, "choices", choice.key, "set", name),
                                "variable", key=True)

    def phrase_clashes(self, node: MenuNode) -> None:
        active = self.effective_globals(node.opts)
        spoken = {(lang, w.lower()): name for name, cmd in active.items()
                  for lang, words in cmd.say.items() for w in words}
        for choice in node.choices:
            for lang, words in choice.say.items():
                for word in words:
                    name = spoken.get((lang, word.lower()))
                    if name is not None:
                        self.report(self.pos.key(self.at(node, "choices", choice.key)),
                                    f"node '{node.id}': choice '{choice.key}' phrase '{word}' is "
                                    f"also the global command '{name}', which wins", WARNING)

    def node_collect(self, node: CollectNode) -> None:
        self.check_globals(node.opts.globals or {}, self.at(node, "globals"), node)
        self.identifier(node, node.into, self.at(node, "into"), "into")
        if node.min > node.max:
            self.report(self.pos.value(self.at(node, "min")),
                        f"node '{node.id}': min ({node.min}) is more than max ({node.max})")
        if node.pattern is not None:
            try:
                compile_regex(node.pattern)
            except RegexError as exc:
                where = self.pos.inside(self.at(node, "pattern"), _syntax_offset(node.pattern))
                self.report(where, f"node '{node.id}': pattern {node.pattern!r} is not a "
                            f"regular expression RE2 runs: {exc}")
        if node.validate is not None and not VALIDATE.match(node.validate):
            self.report(self.pos.value(self.at(node, "validate")),
                        f"node '{node.id}': validate must be luhn or python:module:function, "
                        f"not {node.validate!r}")

    def node_recognize(self, node: RecognizeNode) -> None:
        self.check_globals(node.opts.globals or {}, self.at(node, "globals"), node)
        self.identifier(node, node.into, self.at(node, "into"), "into")

    def node_confirm(self, node: Node) -> None:
        opts = node.opts  # type: ignore[attr-defined]
        self.check_globals(opts.globals or {}, self.at(node, "globals"), node)
        self.check_choice_clashes(node, [(k, pointer("nodes", node.id)) for k in ("1", "2")])

    def node_language(self, node: LanguageNode) -> None:
        self.check_globals(node.opts.globals or {}, self.at(node, "globals"), node)
        self.check_choice_clashes(node, [(k, self.at(node, "choices", k)) for k in node.choices])
        for key, lang in node.choices.items():
            if lang not in self.flow.languages:
                self.report(self.pos.value(self.first(self.at(node, "choices", key, "language"),
                                                      self.at(node, "choices", key))),
                            f"node '{node.id}': '{lang}' is not one of the flow's languages "
                            f"({', '.join(self.flow.languages)})")
        self.language_phrase_clashes(node)

    def language_phrase_clashes(self, node: LanguageNode) -> None:
        """A choice's say: phrase that another choice also answers to (in the same listening
        language) is an error: it is ambiguous, and recognizers refuse a phrase under two keys."""
        keys = list(node.choices)
        done: set[str] = set()  # one report per phrase written (not per listening language)
        for index, key in enumerate(keys):
            say_ptr = self.at(node, "choices", key, "say")
            for lang, words in node.say.get(key, {}).items():
                for number, word in enumerate(words):
                    # Two say: lists sharing a phrase: reported once, at the later one.
                    other = next((k for k in keys if k != key
                                  and (k not in node.say or keys.index(k) < index)
                                  and phrase_key(word) in map(phrase_key,
                                                              choice_names(node, k, lang))), None)
                    ptr = self.first(child(child(say_ptr, lang), number),
                                     child(say_ptr, number), child(say_ptr, lang), say_ptr)
                    if other is None or ptr in done:
                        continue
                    done.add(ptr)
                    self.report(self.pos.value(ptr),
                                f"node '{node.id}': choice '{key}' phrase '{word}' is also a "
                                f"phrase of choice '{other}' ({node.choices[other]})")

    def first(self, *ptrs: str) -> str:
        """The first of ``ptrs`` that the document has (the last one otherwise)."""
        return next((p for p in ptrs if p in self.pos), ptrs[-1])

    def node_survey(self, node: SurveyNode) -> None:
        self.check_globals(node.opts.globals or {}, self.at(node, "globals"), node)
        for index, question in enumerate(node.questions):
            if not 2 <= question.scale <= 9:
                self.report(self.pos.value(self.at(node, "questions", index, "scale")),
                            f"node '{node.id}': question '{question.id}' scale must be 2 to 9 "
                            f"(one key per answer), not {question.scale}")

    def node_set(self, node: SetNode) -> None:
        for name in node.vars:
            self.identifier(node, name, self.at(node, "vars", name), "variable", key=True)

    def node_counter(self, node: CounterNode) -> None:
        self.identifier(node, node.into, self.at(node, "into"), "into")
        if node.reset and node.add:
            self.report(self.pos.value(self.at(node, "add")),
                        f"node '{node.id}': a counter either adds or resets, not both")

    def node_action(self, node: ActionNode) -> None:
        if node.into is not None:
            self.identifier(node, node.into, self.at(node, "into"), "into")
        for name in node.set:
            self.identifier(node, name, self.at(node, "set", name), "variable", key=True)
        if node.acd is not None:
            self.acd_action(node)

    def acd_action(self, node: ActionNode) -> None:
        """An agent line request: a pause has a reason and only a pause; the PIN is one variable
        that only secret collects fill (else it would be spoken back, logged and recorded)."""
        acd = node.acd
        assert acd is not None
        if acd.op == "pause" and not acd.reason:
            self.report(self.pos.value(self.at(node, "acd", "op")),
                        f"node '{node.id}': acd pause needs a reason (e.g. reason: break)")
        if acd.op != "pause" and acd.reason is not None:
            self.report(self.pos.value(self.at(node, "acd", "reason")),
                        f"node '{node.id}': acd {acd.op} takes no reason (only pause does)")
        where = self.pos.value(self.at(node, "acd", "pin"))
        single = _SINGLE_VAR.match(acd.pin)
        if single is None:
            self.report(where, f"node '{node.id}': acd pin must be one variable, e.g. "
                        "\"{agent_pin}\" (filled by a collect with secret: true)")
            return
        name = single.group(1)
        for other in self.flow.nodes.values():
            if isinstance(other, CollectNode) and other.into == name and not other.secret:
                self.report(where, f"node '{node.id}': acd pin {name!r} is filled by collect "
                            f"'{other.id}', which is not secret: true (the PIN would be "
                            "recorded and could be spoken back)")

    def node_record(self, node: RecordNode) -> None:
        self.identifier(node, node.into, self.at(node, "into"), "into")

    def node_hours(self, node: HoursNode) -> None:
        if node.calendar not in self.flow.calendars:
            self.report(self.pos.value(self.at(node, "calendar")),
                        f"node '{node.id}': unknown calendar '{node.calendar}'"
                        f"{did_you_mean(node.calendar, self.flow.calendars)}")

    def node_enqueue(self, node: EnqueueNode) -> None:
        if isinstance(node.priority, int) and not 0 <= node.priority <= 10:
            self.report(self.pos.value(self.at(node, "priority")),
                        f"node '{node.id}': priority must be 0 to 10, not {node.priority}")

    def node_transfer(self, node: TransferNode) -> None:
        try:
            template = _template.compile_template(node.to)
        except _template.TemplateError:
            return  # reported with the other templates
        where = self.pos.value(self.at(node, "to"))
        if not template.is_constant:
            self.report(where, f"node '{node.id}': transfer target {node.to!r} is a template, "
                        "so the allow-list can only be checked during the call", WARNING)
            return
        target = node.to.replace("{{", "{").replace("}}", "}")
        allow = self.flow.transfer_allow
        if not self.allow_known and not allow:
            return
        if not transfer_allowed(target, allow):
            listed = ", ".join(allow) if allow else "nothing is allowed"
            self.report(where, f"node '{node.id}': transfer target '{target}' is not in "
                        f"transfer_allow ({listed}); add it to the flow's or ivr.yaml's list")

    def node_subflow(self, node: SubflowNode) -> None:
        if node.flow == self.flow.id:
            self.report(self.pos.value(self.at(node, "flow")),
                        f"node '{node.id}': a flow cannot run itself as a sub-flow")


def _node_prompts(node: Node) -> list[Prompt]:
    prompts: list[Prompt] = []
    main = getattr(node, "prompt", None)
    if isinstance(main, Prompt):
        prompts.append(main)
    opts = getattr(node, "opts", None)
    if opts is not None:
        prompts.extend(opts.no_input.reprompts)
        prompts.extend(opts.no_match.reprompts)
    if isinstance(node, SurveyNode):
        prompts.extend(q.prompt for q in node.questions)
    return prompts


def _syntax_offset(pattern: str) -> int:
    """Where Python's parser finds a syntax error in ``pattern`` (RE2 does not say; compiling
    never runs the pattern, so this is safe for any pattern), else 0."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return exc.pos or 0
    return 0
