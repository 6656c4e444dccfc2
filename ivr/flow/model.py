"""The flow model: plain dataclasses that the loader builds and the engine runs.

Nothing here knows about YAML, calls or transports. Every node and field that came from a file
carries a :class:`Pos` so that later checks can point to the file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

DTMF_KEYS = frozenset("0123456789*#ABCD")
BUILTIN_COMMANDS = frozenset({"repeat", "back", "restart", "hangup"})


@dataclass(frozen=True)
class Pos:
    """A place in a source file (1-based line and column)."""

    file: str = "<memory>"
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Pos()


@dataclass(frozen=True)
class Defaults:
    """Timers and retry limits: platform values (docs/FLOWS.md, ``defaults:``), overridable per
    flow and node."""

    no_input_timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    terminator: str = "#"
    max_no_input: int = 3
    max_no_match: int = 3
    escalate: str | None = None  # None: the flow's `agent` node if it has one, else hang up
    barge_in: bool = True
    confidence: float = 0.5
    end_silence: float = 0.8
    max_speech: float = 15.0


# --- prompts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptPart:
    """One played piece: text per language (templates) and/or a recorded audio id."""

    id: str
    text: dict[str, str]  # language -> template text
    audio: str | None = None
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Prompt:
    """An ordered list of parts played as one prompt; ``id`` names the whole."""

    id: str
    parts: tuple[PromptPart, ...]
    then_prompt: bool = True  # for re-prompts: play the node prompt after this one
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Handler:
    """no_input / no_match handling for one node."""

    reprompts: tuple[Prompt, ...] = ()  # empty: replay the node prompt ("repeat")
    after: int | None = None  # None: flow default
    goto: str | None = None  # None: flow default escalation
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class GlobalCommand:
    """A global command: a DTMF key and/or spoken phrases leading to a target."""

    name: str  # the key as written ("0", "*", or a name such as "agent")
    key: str | None  # DTMF key, if any
    say: dict[str, tuple[str, ...]]  # language -> phrases
    target: str | None  # node id or built-in command; None switches the command off
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class InputOptions:
    """Options shared by every node that waits for the caller."""

    no_input: Handler = field(default_factory=Handler)
    no_match: Handler = field(default_factory=Handler)
    barge_in: bool | None = None
    timeout: float | None = None
    inter_digit_timeout: float | None = None
    confidence: float | None = None
    globals: dict[str, GlobalCommand] | None = None  # None: flow globals; {} = all off
    globals_off: bool = False


# --- nodes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """Base of every node type.

    A node kind carries its traits, and every part of the project reads them here instead of
    keeping its own list of kinds (a new kind sets its own):

    * ``TAKES_INPUT``: the caller answers it with keys or speech; it has no-input and no-match
      handlers (:attr:`input_options`);
    * ``WAITS_FOR_CALLER``: time passes with the caller involved (input nodes, a recording);
    * ``ESCALATES``: after the last no-input/no-match the call goes on elsewhere (an agent)
      unless the handler says where (a survey skips an unanswered question instead);
    * ``PLAYS_PROMPT``: it has a ``prompt`` of its own (:attr:`own_prompt`);
    * ``ENDS_FLOW``: the flow ends here (hang-up, transfer, queue, return to the calling flow).
    """

    TAKES_INPUT: ClassVar[bool] = False
    WAITS_FOR_CALLER: ClassVar[bool] = False
    ESCALATES: ClassVar[bool] = False
    PLAYS_PROMPT: ClassVar[bool] = False
    ENDS_FLOW: ClassVar[bool] = False

    id: str
    pos: Pos

    @property
    def kind(self) -> str:
        return type(self).KIND  # type: ignore[attr-defined]

    @property
    def own_prompt(self) -> Prompt | None:
        """The node's own prompt (None for kinds without one, or where it is optional)."""
        return getattr(self, "prompt", None) if self.PLAYS_PROMPT else None

    @property
    def input_options(self) -> InputOptions | None:
        """No-input/no-match handling and input settings, for kinds that take input."""
        return getattr(self, "opts", None) if self.TAKES_INPUT else None

    def prompts(self) -> list[Prompt]:
        """Every prompt the node may play: its own, its re-prompts, and a kind's others."""
        out = [self.own_prompt] if self.own_prompt is not None else []
        opts = self.input_options
        if opts is not None:
            out += [*opts.no_input.reprompts, *opts.no_match.reprompts]
        return out

    def targets(self) -> list[tuple[str, str, Pos]]:
        """Every (label, target, pos) this node can go to; labels name the branch."""
        return []


@dataclass(frozen=True)
class SayNode(Node):
    KIND = "say"
    PLAYS_PROMPT = True
    prompt: Prompt
    next: str
    barge_in: bool = False
    next_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos)]


@dataclass(frozen=True)
class Choice:
    key: str  # DTMF key or a name for a speech-only choice
    dtmf: str | None
    say: dict[str, tuple[str, ...]]
    goto: str
    set: dict[str, Any] = field(default_factory=dict)
    pos: Pos = NOWHERE


def _handler_targets(opts: InputOptions) -> list[tuple[str, str, Pos]]:
    out = []
    if opts.no_input.goto:
        out.append(("no_input", opts.no_input.goto, opts.no_input.pos))
    if opts.no_match.goto:
        out.append(("no_match", opts.no_match.goto, opts.no_match.pos))
    return out


@dataclass(frozen=True)
class MenuNode(Node):
    KIND = "menu"
    TAKES_INPUT = True
    WAITS_FOR_CALLER = True
    ESCALATES = True
    PLAYS_PROMPT = True
    prompt: Prompt
    choices: tuple[Choice, ...]
    opts: InputOptions = field(default_factory=InputOptions)

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [(f"choice {c.key}", c.goto, c.pos) for c in self.choices] + _handler_targets(
            self.opts
        )


@dataclass(frozen=True)
class CollectNode(Node):
    KIND = "collect"
    TAKES_INPUT = True
    WAITS_FOR_CALLER = True
    ESCALATES = True
    PLAYS_PROMPT = True
    prompt: Prompt
    into: str
    next: str
    min: int = 1
    max: int = 32
    terminator: str | None = None  # None: flow default
    pattern: str | None = None
    validate: str | None = None  # "luhn" or "python:module:function"
    secret: bool = False
    opts: InputOptions = field(default_factory=InputOptions)
    next_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos), *_handler_targets(self.opts)]


@dataclass(frozen=True)
class RecognizeNode(Node):
    KIND = "recognize"
    TAKES_INPUT = True
    WAITS_FOR_CALLER = True
    ESCALATES = True
    PLAYS_PROMPT = True
    prompt: Prompt
    grammar: str | dict[str, tuple[str, ...]]  # built-in name, or language -> phrases
    into: str
    next: str
    dtmf: bool = True
    opts: InputOptions = field(default_factory=InputOptions)
    next_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos), *_handler_targets(self.opts)]


@dataclass(frozen=True)
class ConfirmNode(Node):
    KIND = "confirm"
    TAKES_INPUT = True
    WAITS_FOR_CALLER = True
    ESCALATES = True
    PLAYS_PROMPT = True
    prompt: Prompt
    yes: str
    no: str
    opts: InputOptions = field(default_factory=InputOptions)
    yes_pos: Pos = NOWHERE
    no_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        yes_no = [("yes", self.yes, self.yes_pos), ("no", self.no, self.no_pos)]
        return [*yes_no, *_handler_targets(self.opts)]


@dataclass(frozen=True)
class LanguageNode(Node):
    KIND = "language"
    TAKES_INPUT = True
    WAITS_FOR_CALLER = True
    ESCALATES = True
    PLAYS_PROMPT = True
    prompt: Prompt
    choices: dict[str, str]  # DTMF key -> language
    next: str
    opts: InputOptions = field(default_factory=InputOptions)
    next_pos: Pos = NOWHERE
    # DTMF key -> listening language -> phrases, for choices with their own say: (the others
    # answer to their language's built-in names, ivr.flow.langnames)
    say: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos), *_handler_targets(self.opts)]


@dataclass(frozen=True)
class SetNode(Node):
    KIND = "set"
    vars: dict[str, Any]  # values: literals, templates, or "= expression" strings
    next: str
    next_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos)]


@dataclass(frozen=True)
class CounterNode(Node):
    """A count kept across calls (docs/FLOWS.md "counter"): read, add to or reset it."""

    KIND = "counter"
    key: str  # template: "login:{account}"
    into: str
    next: str
    add: int = 0
    reset: bool = False
    expire: float = 900.0
    next_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos)]


@dataclass(frozen=True)
class Condition:
    expr: str
    goto: str
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class BranchNode(Node):
    KIND = "branch"
    when: tuple[Condition, ...]
    otherwise: str
    else_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        out = [(f"if {c.expr}", c.goto, c.pos) for c in self.when]
        return [*out, ("else", self.otherwise, self.else_pos)]


@dataclass(frozen=True)
class Webhook:
    url: str
    method: str = "POST"
    body: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


#: what an ``acd:`` action asks of the queue authority (the phone agent line, docs/ACD.md)
ACD_OPS = ("status", "login", "logout", "pause", "resume")


@dataclass(frozen=True)
class AcdAction:
    """An agent line request: ``op`` for the agent typed as ``agent`` with ``pin`` (templates;
    the host checks the PIN and asks the queue authority). ``reason``: a pause's reason."""

    op: str
    agent: str
    pin: str
    reason: str | None = None


@dataclass(frozen=True)
class ActionNode(Node):
    KIND = "action"
    next: str
    on_error: str
    webhook: Webhook | None = None
    python: str | None = None  # "module:function"
    args: dict[str, Any] = field(default_factory=dict)
    timeout: float = 5.0
    into: str | None = None
    set: dict[str, Any] = field(default_factory=dict)
    next_pos: Pos = NOWHERE
    error_pos: Pos = NOWHERE
    acd: AcdAction | None = None  # handled by the host, beside webhook and python

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos), ("on_error", self.on_error, self.error_pos)]


@dataclass(frozen=True)
class SubflowNode(Node):
    KIND = "subflow"
    flow: str
    next: str
    next_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos)]


@dataclass(frozen=True)
class ReturnNode(Node):
    KIND = "return"
    ENDS_FLOW = True


@dataclass(frozen=True)
class GotoNode(Node):
    KIND = "goto"
    target: str
    target_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("goto", self.target, self.target_pos)]


@dataclass(frozen=True)
class HoursNode(Node):
    KIND = "hours"
    calendar: str
    open: str
    closed: str
    holiday: str | None = None

    def targets(self) -> list[tuple[str, str, Pos]]:
        out = [("open", self.open, self.pos), ("closed", self.closed, self.pos)]
        if self.holiday:
            out.append(("holiday", self.holiday, self.pos))
        return out


@dataclass(frozen=True)
class TransferNode(Node):
    KIND = "transfer"
    PLAYS_PROMPT = True
    ENDS_FLOW = True
    to: str  # template
    on_fail: str
    prompt: Prompt | None = None
    fail_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("on_fail", self.on_fail, self.fail_pos)]


@dataclass(frozen=True)
class Announce:
    """What a waiting caller is told, and how often (enqueue ``announce:``)."""

    position: bool = True
    wait: bool = True
    every: float = 60.0  # seconds between announcements, when the figures changed
    min_interval: float = 15.0  # never closer than this


@dataclass(frozen=True)
class QueueMessage:
    """A message repeated while the caller waits (enqueue ``message:``)."""

    prompt: Prompt
    every: float = 120.0


CALLBACK = "callback"  # a key target in enqueue ``keys:``: keep the place, be called back


@dataclass(frozen=True)
class EnqueueNode(Node):
    KIND = "enqueue"
    PLAYS_PROMPT = True
    ENDS_FLOW = True  # the call may end with the agent; exits and ``after`` go on in the flow
    queue: str
    priority: int | str = 5  # int, or "= expression"
    skills: tuple[str, ...] = ()
    prompt: Prompt | None = None
    tier: str = "general"
    hold_music: str | None = None  # a recorded prompt id; None: the platform's hold music
    announce: Announce = field(default_factory=Announce)
    message: QueueMessage | None = None
    whisper: str | None = None  # template, said to the agent only
    keys: dict[str, str] = field(default_factory=dict)  # DTMF key -> node id or CALLBACK
    on_max_wait: str | None = None
    on_no_agents: str | None = None
    on_full: str | None = None
    after: str | None = None
    exit_pos: dict[str, Pos] = field(default_factory=dict)  # label -> where its target is written

    def targets(self) -> list[tuple[str, str, Pos]]:
        exits = [("on_max_wait", self.on_max_wait), ("on_no_agents", self.on_no_agents),
                 ("on_full", self.on_full), ("after", self.after)]  # fmt: skip
        out = [(label, t, self.exit_pos.get(label, NOWHERE)) for label, t in exits if t]
        for key, target in self.keys.items():
            if target != CALLBACK:
                label = f"key {key}"
                out.append((label, target, self.exit_pos.get(label, NOWHERE)))
        return out

    def prompts(self) -> list[Prompt]:
        return [*super().prompts(), *([self.message.prompt] if self.message else [])]


@dataclass(frozen=True)
class RecordNode(Node):
    KIND = "record"
    WAITS_FOR_CALLER = True
    PLAYS_PROMPT = True
    prompt: Prompt
    into: str
    next: str
    max_seconds: float = 120.0
    finish_key: str = "#"
    beep: bool = True
    next_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos)]


@dataclass(frozen=True)
class SurveyQuestion:
    id: str
    prompt: Prompt
    scale: int
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class SurveyNode(Node):
    KIND = "survey"
    TAKES_INPUT = True
    WAITS_FOR_CALLER = True
    questions: tuple[SurveyQuestion, ...]
    next: str
    opts: InputOptions = field(default_factory=InputOptions)
    next_pos: Pos = NOWHERE

    def targets(self) -> list[tuple[str, str, Pos]]:
        return [("next", self.next, self.next_pos)]

    def prompts(self) -> list[Prompt]:
        return [*super().prompts(), *(question.prompt for question in self.questions)]


@dataclass(frozen=True)
class HangupNode(Node):
    KIND = "hangup"
    PLAYS_PROMPT = True
    ENDS_FLOW = True
    prompt: Prompt | None = None
    outcome: str = "self_service"


NODE_TYPES: dict[str, type[Node]] = {
    cls.KIND: cls
    for cls in (
        SayNode,
        MenuNode,
        CollectNode,
        RecognizeNode,
        ConfirmNode,
        LanguageNode,
        SetNode,
        CounterNode,
        BranchNode,
        ActionNode,
        SubflowNode,
        ReturnNode,
        GotoNode,
        HoursNode,
        TransferNode,
        EnqueueNode,
        RecordNode,
        SurveyNode,
        HangupNode,
    )
}


# --- calendars and flows -----------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """Business hours: weekly ranges (minutes from midnight), holidays and per-date overrides."""

    name: str
    timezone: str
    weekly: dict[int, tuple[tuple[int, int], ...]]  # weekday 0=Mon -> ((start, end) minutes)
    holidays: frozenset[str] = frozenset()  # ISO dates
    overrides: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)  # () = closed
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Flow:
    """One flow file, checked and ready to run."""

    id: str
    start: str
    nodes: dict[str, Node]
    languages: tuple[str, ...] = ("en",)
    globals: dict[str, GlobalCommand] = field(default_factory=dict)
    defaults: Defaults = field(default_factory=Defaults)
    vars: dict[str, Any] = field(default_factory=dict)
    prompts: dict[str, Prompt] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    transfer_allow: tuple[str, ...] = ()
    description: str = ""
    source: str = "<memory>"
    digest: str = ""  # sha256 of the source text: the flow's version

    @property
    def default_language(self) -> str:
        return self.languages[0]


@dataclass(frozen=True)
class FlowSet:
    """Every flow loaded together: one consistent version that a call runs on from start to end."""

    flows: dict[str, Flow]
    version: str = ""  # combined digest

    def get(self, flow_id: str) -> Flow:
        return self.flows[flow_id]
