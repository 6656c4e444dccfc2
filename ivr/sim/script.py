"""Call scripts (docs/TESTING.md): YAML read into dataclasses, every step with its line.

The YAML is composed into nodes (so every value keeps its position) and converted by hand with
the flow language's rules: keys are strings, only ``true``/``false`` are booleans, so
``press: 1`` and ``say: no`` mean the key "1" and the word "no". A bad script raises
:class:`ScriptError` naming the file, line and column.

Besides the keys of docs/TESTING.md a script may set ``transfer_fails`` (``true``, or fnmatch
patterns of targets whose transfer fails), ``record_seconds`` (how long the caller speaks into
a recording, default 5) and ``agent_line_down_after`` (the agent line's queue authority answers
that many requests, then is gone: later ones are ``unavailable``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ivr.flow.model import DTMF_KEYS
from ivr.sim.steps import (
    DEFAULT_SIMILARITY,
    DEFAULT_TIMEOUT,
    Assert,
    Caller,
    Expect,
    ExpectAgent,
    ExpectHangup,
    ExpectNode,
    ExpectQueue,
    ExpectTransfer,
    Hangup,
    Press,
    Say,
    Script,
    Silence,
    SimAgent,
    Step,
)
from ivr.sim.stubs import StubReply, StubRule, StubSet

__all__ = [
    "DEFAULT_SIMILARITY",
    "DEFAULT_TIMEOUT",
    "STEP_PARSERS",
    "Assert",
    "Caller",
    "Expect",
    "ExpectAgent",
    "ExpectHangup",
    "ExpectNode",
    "ExpectQueue",
    "ExpectTransfer",
    "Hangup",
    "Press",
    "Say",
    "Script",
    "ScriptError",
    "Silence",
    "SimAgent",
    "Step",
    "discover_scripts",
    "load_script",
    "parse_script",
]


class ScriptError(ValueError):
    """A call script that cannot be run, with its place: ``file:line:col: error: message``."""

    def __init__(self, path: str, line: int, col: int, message: str) -> None:
        self.path, self.line, self.col, self.message = path, line, col, message
        super().__init__(f"{path}:{line}:{col}: error: {message}")


# --- YAML nodes to values ----------------------------------------------------------------------

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?")
_NULLS = {"", "~", "null", "Null", "NULL"}


class _Reader:
    """Converts composed YAML nodes of one file, raising ScriptError with positions."""

    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, node: yaml.Node | None, message: str) -> ScriptError:
        if node is None:
            return ScriptError(self.path, 1, 1, message)
        mark = node.start_mark
        return ScriptError(self.path, mark.line + 1, mark.column + 1, message)

    def value(self, node: yaml.Node) -> Any:
        """Any node as plain Python data (keys strings, no YAML 1.1 surprises)."""
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item) for item in node.value]
        return {key: self.value(val) for key, (_, val) in self.mapping(node, "a value").items()}

    def scalar(self, node: yaml.ScalarNode) -> Any:
        text = node.value
        if node.style is not None or node.tag == "tag:yaml.org,2002:str":
            return text
        if text in _NULLS:
            return None
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if _INT.fullmatch(text):
            return int(text)
        if _FLOAT.fullmatch(text):
            return float(text)
        return text

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """A mapping's entries: key text -> (key node, value node)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, val_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, f"a key in {what} must be a plain value")
            key = key_node.value
            if key in out:
                raise self.error(key_node, f"duplicate key {key!r} in {what}")
            out[key] = (key_node, val_node)
        return out

    def text(self, node: yaml.Node, what: str, *, numbers: bool = False) -> str:
        """A string; ``numbers`` also takes a plain number as its text (digits, phone numbers)."""
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, str) and value:
            return value
        if numbers and isinstance(node, yaml.ScalarNode) and isinstance(value, int | float):
            return str(node.value)
        raise self.error(node, f"{what} must be a non-empty string")

    def number(
        self, node: yaml.Node, what: str, low: float = 0.0, high: float | None = None
    ) -> float:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(node, f"{what} must be a number")
        if value < low or (high is not None and value > high):
            limit = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise self.error(node, f"{what} must be {limit}, not {value:g}")
        return float(value)

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(value, bool):
            raise self.error(node, f"{what} must be true or false")
        return value

    def vars(self, node: yaml.Node, what: str) -> dict[str, Any]:
        entries = self.mapping(node, what)
        return {key: self.value(val) for key, (_, val) in entries.items()}

    def check_keys(
        self,
        node: yaml.Node,
        entries: dict[str, tuple[yaml.Node, yaml.Node]],
        allowed: set[str],
        what: str,
    ) -> None:
        for key, (key_node, _) in entries.items():
            if key not in allowed:
                hint = _did_you_mean(key, allowed)
                raise self.error(key_node, f"unknown key {key!r} in {what}{hint}")


def _did_you_mean(word: str, choices: set[str]) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- steps -------------------------------------------------------------------------------------

_StepParser = Callable[[_Reader, yaml.Node | None, int, int], Step]


def _need(r: _Reader, node: yaml.Node | None, kind: str) -> yaml.Node:
    if node is None or (isinstance(node, yaml.ScalarNode) and r.scalar(node) is None):
        raise r.error(node, f"step {kind!r} needs a value")
    return node


def _digits(r: _Reader, node: yaml.Node) -> str:
    digits = r.text(node, "press digits", numbers=True)
    bad = sorted(set(digits) - DTMF_KEYS)
    if bad:
        raise r.error(node, f"press: {''.join(bad)!r} is not a DTMF key (0-9 * # A-D)")
    return digits


def _parse_expect(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
    node = _need(r, node, "expect")
    if isinstance(node, yaml.ScalarNode):
        return Expect(index=index, line=line, prompt=r.text(node, "expect", numbers=True))
    entries = r.mapping(node, "expect")
    r.check_keys(node, entries, {"prompt", "text", "similarity", "vars"}, "expect")
    if not entries:
        raise r.error(node, "expect needs prompt, text or vars")
    prompt = None
    if "prompt" in entries:
        prompt = r.text(entries["prompt"][1], "expect prompt", numbers=True)
    return Expect(
        index=index,
        line=line,
        prompt=prompt,
        text=r.text(entries["text"][1], "expect text") if "text" in entries else None,
        similarity=(
            r.number(entries["similarity"][1], "similarity", 0.0, 1.0)
            if "similarity" in entries
            else DEFAULT_SIMILARITY
        ),
        vars=r.vars(entries["vars"][1], "expect vars") if "vars" in entries else {},
    )


def _parse_press(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
    node = _need(r, node, "press")
    if isinstance(node, yaml.ScalarNode):
        return Press(index=index, line=line, digits=_digits(r, node))
    entries = r.mapping(node, "press")
    r.check_keys(node, entries, {"digits", "barge_in"}, "press")
    if "digits" not in entries:
        raise r.error(node, "press needs digits")
    barge = r.boolean(entries["barge_in"][1], "barge_in") if "barge_in" in entries else False
    return Press(index=index, line=line, digits=_digits(r, entries["digits"][1]), barge_in=barge)


def _parse_say(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
    node = _need(r, node, "say")
    if isinstance(node, yaml.ScalarNode):
        return Say(index=index, line=line, text=r.text(node, "say", numbers=True))
    entries = r.mapping(node, "say")
    r.check_keys(node, entries, {"text", "confidence", "barge_in"}, "say")
    if "text" not in entries:
        raise r.error(node, "say needs text")
    return Say(
        index=index,
        line=line,
        text=r.text(entries["text"][1], "say text", numbers=True),
        confidence=(
            r.number(entries["confidence"][1], "confidence", 0.0, 1.0)
            if "confidence" in entries
            else 1.0
        ),
        barge_in=r.boolean(entries["barge_in"][1], "barge_in") if "barge_in" in entries else False,
    )


def _silence_parser(word: str) -> _StepParser:
    def parse(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
        seconds = r.number(_need(r, node, word), f"{word} (seconds)")
        return Silence(index=index, line=line, seconds=seconds, word=word)

    return parse


def _parse_expect_node(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
    return ExpectNode(index=index, line=line, node=r.text(_need(r, node, "expect_node"), "node"))


def _parse_assert(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
    node = _need(r, node, "assert")
    entries = r.mapping(node, "assert")
    r.check_keys(node, entries, {"vars"}, "assert")
    if "vars" not in entries:
        raise r.error(node, "assert needs vars")
    values = r.vars(entries["vars"][1], "assert vars")
    if not values:
        raise r.error(entries["vars"][1], "assert vars is empty")
    return Assert(index=index, line=line, vars=values)


def _no_value(kind: str, cls: type[Step]) -> _StepParser:
    def parse(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
        if node is not None and not (
            isinstance(node, yaml.ScalarNode) and r.scalar(node) in (None, True)
        ):
            raise r.error(node, f"step {kind!r} takes no value")
        return cls(index=index, line=line)

    return parse


def _parse_expect_transfer(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
    target = None
    if node is not None and not (isinstance(node, yaml.ScalarNode) and r.scalar(node) is None):
        target = r.text(node, "expect_transfer target", numbers=True)
    return ExpectTransfer(index=index, line=line, target=target)


def _parse_expect_queue(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
    if node is None or (isinstance(node, yaml.ScalarNode) and r.scalar(node) is None):
        return ExpectQueue(index=index, line=line)
    if isinstance(node, yaml.ScalarNode):
        return ExpectQueue(index=index, line=line, queue=r.text(node, "queue"))
    entries = r.mapping(node, "expect_queue")
    r.check_keys(node, entries, {"queue", "priority", "skills"}, "expect_queue")
    priority = None
    if "priority" in entries:
        priority = int(r.number(entries["priority"][1], "priority", 0, 10))
    skills = None
    if "skills" in entries:
        skills_node = entries["skills"][1]
        if not isinstance(skills_node, yaml.SequenceNode):
            raise r.error(skills_node, "skills must be a list")
        skills = tuple(r.text(item, "a skill") for item in skills_node.value)
    return ExpectQueue(
        index=index,
        line=line,
        queue=r.text(entries["queue"][1], "queue") if "queue" in entries else None,
        priority=priority,
        skills=skills,
    )


def _parse_expect_agent(r: _Reader, node: yaml.Node | None, index: int, line: int) -> Step:
    return ExpectAgent(index=index, line=line,
                       agent=r.text(_need(r, node, "expect_agent"), "agent id"))  # fmt: skip


_AGENT_KEYS = {"id", "skills", "tier", "languages", "answer_after", "handle", "rejects",
               "wrap_up", "max_misses", "username", "pin", "logged_in", "on_call"}  # fmt: skip
_TIERS = ("general", "accounts", "full")


def _parse_agents(r: _Reader, node: yaml.Node) -> tuple[SimAgent, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise r.error(node, "agents must be a list of agents ({id: ..., skills: [...]})")
    agents: list[SimAgent] = []
    for item in node.value:
        agent = _parse_agent(r, item)
        if any(a.id == agent.id for a in agents):
            raise r.error(item, f"agent {agent.id!r} is declared twice")
        agents.append(agent)
    return tuple(agents)


def _parse_agent(r: _Reader, item: yaml.Node) -> SimAgent:
    entries = r.mapping(item, "an agent")
    r.check_keys(item, entries, _AGENT_KEYS, "an agent")
    if "id" not in entries:
        raise r.error(item, "an agent needs an id")
    tier = r.text(entries["tier"][1], "tier") if "tier" in entries else "general"
    if tier not in _TIERS:
        raise r.error(entries["tier"][1], f"tier must be one of {', '.join(_TIERS)}")

    def num(key: str, default: float, low: float = 0.0) -> float:
        return r.number(entries[key][1], key, low) if key in entries else default

    return SimAgent(
        r.text(entries["id"][1], "id", numbers=True),
        _parse_skills(r, entries["skills"][1]) if "skills" in entries else {},
        tier,
        _parse_texts(r, entries["languages"][1], "languages") if "languages" in entries else (),
        num("answer_after", 2.0), num("handle", 60.0),
        r.boolean(entries["rejects"][1], "rejects") if "rejects" in entries else False,
        num("wrap_up", 10.0), int(num("max_misses", 3, 1)),
        r.text(entries["username"][1], "username", numbers=True) if "username" in entries else "",
        _parse_pin(r, entries["pin"][1]) if "pin" in entries else None,
        r.boolean(entries["logged_in"][1], "logged_in") if "logged_in" in entries else True,
        r.boolean(entries["on_call"][1], "on_call") if "on_call" in entries else False,
    )


def _parse_pin(r: _Reader, node: yaml.Node) -> str:
    """A simulated agent's PIN: 4 to 8 digits, in quotes (a leading zero is kept)."""
    pin = r.text(node, "pin")
    if not (pin.isdigit() and pin.isascii() and 4 <= len(pin) <= 8):
        raise r.error(node, "pin must be 4 to 8 digits in quotes")
    return pin


def _parse_texts(r: _Reader, node: yaml.Node, what: str) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise r.error(node, f"{what} must be a list")
    return tuple(r.text(item, what) for item in node.value)


def _parse_skills(r: _Reader, node: yaml.Node) -> dict[str, int]:
    """``[a, b]`` (level 5 each) or ``{a: 7, b: 3}`` (levels 1..10)."""
    if isinstance(node, yaml.SequenceNode):
        return {r.text(item, "a skill"): 5 for item in node.value}
    entries = r.mapping(node, "skills")
    return {key: int(r.number(value, f"skill {key}'s level", 1, 10))
            for key, (_, value) in entries.items()}  # fmt: skip


STEP_PARSERS: dict[str, _StepParser] = {
    "expect": _parse_expect,
    "press": _parse_press,
    "say": _parse_say,
    "silence": _silence_parser("silence"),
    "wait": _silence_parser("wait"),
    "expect_node": _parse_expect_node,
    "assert": _parse_assert,
    "hangup": _no_value("hangup", Hangup),
    "expect_transfer": _parse_expect_transfer,
    "expect_queue": _parse_expect_queue,
    "expect_agent": _parse_expect_agent,
    "expect_hangup": _no_value("expect_hangup", ExpectHangup),
}


def _parse_step(r: _Reader, node: yaml.Node, index: int) -> Step:
    line = node.start_mark.line + 1
    value: yaml.Node | None
    key_node: yaml.Node
    if isinstance(node, yaml.ScalarNode):
        kind, value, key_node = str(r.scalar(node)), None, node
    elif isinstance(node, yaml.MappingNode):
        entries = r.mapping(node, "a step")
        if len(entries) != 1:
            raise r.error(node, f"a step has exactly one key, not {len(entries)}")
        kind, (key_node, value) = next(iter(entries.items()))
    else:
        raise r.error(node, "a step must be a name or a mapping with one key")
    parser = STEP_PARSERS.get(kind)
    if parser is None:
        hint = _did_you_mean(kind, set(STEP_PARSERS))
        raise r.error(key_node, f"unknown step {kind!r}{hint}")
    if _is_null(r, value):
        if kind in _NEEDS_VALUE:
            raise r.error(key_node, f"step {kind!r} needs a value")
        value = None
    return parser(r, value, index, line)


_NEEDS_VALUE = {"expect", "press", "say", "silence", "wait", "expect_node", "assert"}


def _is_null(r: _Reader, node: yaml.Node | None) -> bool:
    return node is None or (isinstance(node, yaml.ScalarNode) and r.scalar(node) is None)


# --- stubs (ivr.sim.stubs) ---------------------------------------------------------------------

_REPLY_KEYS = {"result", "status", "error", "latency"}
_RULE_KEYS = _REPLY_KEYS | {"when", "replies"}
STUBS_FILE = "stubs.yaml"  # a folder's shared stubs: not a script


def _parse_stubs(r: _Reader, node: yaml.Node) -> StubSet:
    """``{KEY: reply-or-rule, KEY: [rule, ...]}``: rules in the order written."""
    rules: list[StubRule] = []
    for key, (_, value) in r.mapping(node, "stubs").items():
        items = value.value if isinstance(value, yaml.SequenceNode) else [value]
        if not items:
            raise r.error(value, f"stubs {key!r}: give at least one reply")
        rules.extend(_parse_rule(r, key, item) for item in items)
    return StubSet(tuple(rules))


def _where(r: _Reader, node: yaml.Node) -> str:
    return f"{r.path}:{node.start_mark.line + 1}"


def _parse_rule(r: _Reader, key: str, node: yaml.Node) -> StubRule:
    entries = r.mapping(node, f"stub {key!r}")
    r.check_keys(node, entries, _RULE_KEYS, f"stub {key!r}")
    when: dict[str, str] = {}
    if "when" in entries:
        when = {name: _when_text(r, val) for name, (_, val) in
                r.mapping(entries["when"][1], "when").items()}  # fmt: skip
    if "replies" in entries:
        inline = sorted(_REPLY_KEYS & set(entries))
        if inline:
            raise r.error(node, f"stub {key!r}: {', '.join(inline)} goes inside replies")
        listed = entries["replies"][1]
        if not isinstance(listed, yaml.SequenceNode) or not listed.value:
            raise r.error(listed, "replies must be a non-empty list of replies")
        replies = tuple(_parse_reply(r, key, item) for item in listed.value)
    else:
        replies = (_reply(r, key, node, entries),)
    return StubRule(key, replies, when, _where(r, node))


def _when_text(r: _Reader, node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise r.error(node, "a when value must be a plain value")
    value = r.scalar(node)
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else node.value  # 0123 stays 0123


def _parse_reply(r: _Reader, key: str, node: yaml.Node) -> StubReply:
    entries = r.mapping(node, f"a reply of stub {key!r}")
    r.check_keys(node, entries, _REPLY_KEYS, f"a reply of stub {key!r}")
    return _reply(r, key, node, entries)


def _reply(r: _Reader, key: str, node: yaml.Node,
           entries: dict[str, tuple[yaml.Node, yaml.Node]]) -> StubReply:  # fmt: skip
    if not _REPLY_KEYS & set(entries):
        raise r.error(node, f"stub {key!r}: give result, status, error or latency")
    error = None
    if "error" in entries:
        error = r.text(entries["error"][1], "error")
    status = 200
    if "status" in entries:
        status = int(r.number(entries["status"][1], "status", 100, 599))
    return StubReply(
        result=r.value(entries["result"][1]) if "result" in entries else None,
        status=status,
        error=error,
        latency=r.number(entries["latency"][1], "latency", 0.0, 86400.0)
        if "latency" in entries else 0.0,
        where=_where(r, node),
    )


def parse_stub_file(text: str, path: str) -> StubSet:
    """A folder's ``stubs.yaml``: one key, ``stubs:``, as in a script."""
    r = _Reader(path)
    root = _compose(text, path, "the stubs file")
    entries = r.mapping(root, "a stubs file")
    r.check_keys(root, entries, {"stubs"}, "a stubs file")
    if "stubs" not in entries:
        raise r.error(root, "a stubs file needs 'stubs'")
    return _parse_stubs(r, entries["stubs"][1])


def shared_stubs_for(script_path: Path, stop: Path | None = None) -> Path | None:
    """The nearest ``stubs.yaml`` in the script's folder or above it, up to ``stop`` (default:
    the working directory; a script outside it sees only its own folder's)."""
    folder = script_path.resolve().parent
    top = (stop or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / STUBS_FILE).is_file():
            return candidate / STUBS_FILE
        if candidate == top or top not in candidate.parents:
            return None
    return None


# --- the script --------------------------------------------------------------------------------

_TOP_KEYS = {
    "name",
    "call",
    "caller",
    "at",
    "vars",
    "steps",
    "outcome",
    "timeout",
    "transfer_fails",
    "record_seconds",
    "agents",
    "agent_line_down_after",
    "counters",
    "stubs",
}


def _parse_at(r: _Reader, node: yaml.Node) -> datetime:
    text = r.text(node, "at")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise r.error(node, f"at: {text!r} is not an ISO 8601 date and time") from None
    if when.tzinfo is None:
        raise r.error(node, "at: give the UTC offset, e.g. 2027-01-04T10:00:00+08:00")
    return when


def _parse_caller(r: _Reader, node: yaml.Node) -> Caller:
    if isinstance(node, yaml.ScalarNode):
        return Caller(number=r.text(node, "caller", numbers=True))
    entries = r.mapping(node, "caller")
    r.check_keys(node, entries, {"number", "called"}, "caller")
    number, called = (
        r.text(entries[key][1], f"caller {key}", numbers=True) if key in entries else ""
        for key in ("number", "called")
    )
    return Caller(number=number, called=called)


def _parse_transfer_fails(r: _Reader, node: yaml.Node) -> tuple[str, ...]:
    if isinstance(node, yaml.ScalarNode):
        value = r.scalar(node)
        if isinstance(value, bool):
            return ("*",) if value else ()
        return (r.text(node, "transfer_fails"),)
    if isinstance(node, yaml.SequenceNode):
        return tuple(r.text(item, "a transfer_fails pattern") for item in node.value)
    raise r.error(node, "transfer_fails must be true, false, a pattern or a list of patterns")


def _parse_counters(r: _Reader, node: yaml.Node) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in r.vars(node, "counters").items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise r.error(node, f"counters: {key!r} needs a whole number of 0 or more")
        out[key] = value
    return out


#: limits on a script or stubs file: its size, its nesting, its values once aliases are expanded
MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 50
MAX_NODES = 100_000


def _compose(text: str, path: str, what: str = "the script") -> yaml.Node:
    if len(text) > MAX_FILE_BYTES:
        raise ScriptError(path, 1, 1, f"{what} is larger than {MAX_FILE_BYTES} bytes")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScriptError(path, line, col, f"not valid YAML: {exc.problem or exc}") from None
    except RecursionError:
        raise ScriptError(path, 1, 1, f"{what} is nested too deeply") from None
    if root is None:
        raise ScriptError(path, 1, 1, f"{what} is empty")
    _check_size(root, path)
    return root


def _check_size(root: yaml.Node, path: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH and more than MAX_NODES values counted with every
    alias expanded (a "billion laughs" file would otherwise take all memory when read)."""
    todo: list[tuple[yaml.Node, int]] = [(root, 1)]
    count = 0
    while todo:
        node, depth = todo.pop()
        count += 1
        mark = node.start_mark
        if depth > MAX_DEPTH:
            raise ScriptError(path, mark.line + 1, mark.column + 1,
                              f"nested deeper than {MAX_DEPTH} levels")  # fmt: skip
        if count > MAX_NODES:
            raise ScriptError(path, mark.line + 1, mark.column + 1,
                              f"more than {MAX_NODES} values (aliases expanded)")  # fmt: skip
        if isinstance(node, yaml.SequenceNode):
            todo.extend((item, depth + 1) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                todo.extend(((key, depth + 1), (value, depth + 1)))


def parse_script(text: str, path: str = "<script>") -> Script:
    """Parse the text of a call script; raises :class:`ScriptError` with the file and line."""
    r = _Reader(path)
    root = _compose(text, path)
    entries = r.mapping(root, "a call script")
    r.check_keys(root, entries, _TOP_KEYS, "a call script")
    for required in ("call", "steps"):
        if required not in entries:
            raise r.error(root, f"the script needs {required!r}")
    steps_node = entries["steps"][1]
    if not isinstance(steps_node, yaml.SequenceNode):
        raise r.error(steps_node, "steps must be a list")

    def opt(key: str, read: Callable[[yaml.Node], Any], default: Any) -> Any:
        return read(entries[key][1]) if key in entries else default

    return Script(
        path=path,
        name=opt("name", lambda n: r.text(n, "name", numbers=True), Path(path).stem),
        call=r.text(entries["call"][1], "call (the flow id)"),
        steps=tuple(_parse_step(r, item, i) for i, item in enumerate(steps_node.value, 1)),
        caller=opt("caller", lambda n: _parse_caller(r, n), Caller()),
        at=opt("at", lambda n: _parse_at(r, n), None),
        vars=opt("vars", lambda n: r.vars(n, "vars"), {}),
        outcome=opt("outcome", lambda n: r.text(n, "outcome"), None),
        timeout=opt("timeout", lambda n: r.number(n, "timeout", 0.001), DEFAULT_TIMEOUT),
        transfer_fails=opt("transfer_fails", lambda n: _parse_transfer_fails(r, n), ()),
        record_seconds=opt("record_seconds", lambda n: r.number(n, "record_seconds"), 5.0),
        agents=opt("agents", lambda n: _parse_agents(r, n), ()),
        agent_line_down_after=opt("agent_line_down_after",
                                  lambda n: int(r.number(n, "agent_line_down_after")), None),
        counters=opt("counters", lambda n: _parse_counters(r, n), {}),
        stubs=opt("stubs", lambda n: _parse_stubs(r, n), StubSet()),
        line=_line(entries.get("call")),
        outcome_line=_line(entries.get("outcome")),
        timeout_line=_line(entries.get("timeout")),
    )


def _line(entry: tuple[yaml.Node, yaml.Node] | None) -> int:
    return entry[0].start_mark.line + 1 if entry else 0


def load_script(path: str | Path, *, shared_stubs: bool = True) -> Script:
    """Read and parse one script file, with its folder's ``stubs.yaml`` unless
    ``shared_stubs`` is False (the actions it stubs then run for real)."""
    script = parse_script(_read(Path(path)), str(path))
    found = shared_stubs_for(Path(path)) if shared_stubs else None
    if found is None:
        return script
    shared = parse_stub_file(_read(found), str(found))
    return replace(script, shared_stubs=shared)


def _read(path: Path) -> str:
    """The file's text, reading no more than MAX_FILE_BYTES (+1, to know it is larger)."""
    with path.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ScriptError(str(path), 1, 1, f"larger than {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScriptError(str(path), 1, 1, f"not UTF-8 text (byte {exc.start})") from None


def discover_scripts(paths: list[Path]) -> list[Path]:
    """Script files named by ``paths``: files as given, folders searched for ``*.yaml``/``*.yml``
    (recursively, sorted). Raises FileNotFoundError for a path that does not exist."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*")
                                if p.suffix in (".yaml", ".yml") and p.name != STUBS_FILE))
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(str(path))
    seen: set[Path] = set()
    unique = []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique
