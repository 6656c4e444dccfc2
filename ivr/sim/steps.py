"""The call-script model (docs/TESTING.md): a Script and its steps, each with its line.

:mod:`ivr.sim.script` reads YAML into these; :mod:`ivr.sim.driver` plays them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ivr.sim.stubs import StubSet

DEFAULT_TIMEOUT = 600.0
DEFAULT_SIMILARITY = 0.8


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step; ``index`` counts from 1, ``line`` is where it is written."""

    KIND: ClassVar[str] = ""
    index: int
    line: int

    @property
    def kind(self) -> str:
        return self.KIND

    def describe(self) -> str:
        """A short text naming the step, as failure messages show it."""
        return self.KIND


@dataclass(frozen=True, kw_only=True)
class Expect(Step):
    KIND: ClassVar[str] = "expect"
    prompt: str | None = None
    text: str | None = None
    similarity: float = DEFAULT_SIMILARITY
    vars: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.prompt is not None:
            return f"expect {self.prompt}"
        if self.text is not None:
            return f"expect {self.text!r}"
        return "expect a prompt"


@dataclass(frozen=True, kw_only=True)
class Press(Step):
    KIND: ClassVar[str] = "press"
    digits: str
    barge_in: bool = False

    def describe(self) -> str:
        return f"press {self.digits}"


@dataclass(frozen=True, kw_only=True)
class Say(Step):
    KIND: ClassVar[str] = "say"
    text: str
    confidence: float = 1.0
    barge_in: bool = False

    def describe(self) -> str:
        return f"say {self.text!r}"


@dataclass(frozen=True, kw_only=True)
class Silence(Step):
    """``silence: N`` or ``wait: N`` (``word`` keeps which one was written)."""

    KIND: ClassVar[str] = "silence"
    seconds: float
    word: str = "silence"

    def describe(self) -> str:
        return f"{self.word} {self.seconds:g}"


@dataclass(frozen=True, kw_only=True)
class ExpectNode(Step):
    KIND: ClassVar[str] = "expect_node"
    node: str

    def describe(self) -> str:
        return f"expect_node {self.node}"


@dataclass(frozen=True, kw_only=True)
class Assert(Step):
    KIND: ClassVar[str] = "assert"
    vars: dict[str, Any]

    def describe(self) -> str:
        return "assert " + ", ".join(self.vars)


@dataclass(frozen=True, kw_only=True)
class Hangup(Step):
    KIND: ClassVar[str] = "hangup"


@dataclass(frozen=True, kw_only=True)
class ExpectTransfer(Step):
    KIND: ClassVar[str] = "expect_transfer"
    target: str | None = None  # None: any target

    def describe(self) -> str:
        return f"expect_transfer {self.target}" if self.target else "expect_transfer"


@dataclass(frozen=True, kw_only=True)
class ExpectQueue(Step):
    KIND: ClassVar[str] = "expect_queue"
    queue: str | None = None
    priority: int | None = None
    skills: tuple[str, ...] | None = None

    def describe(self) -> str:
        return f"expect_queue {self.queue}" if self.queue else "expect_queue"


@dataclass(frozen=True, kw_only=True)
class ExpectAgent(Step):
    """``expect_agent: ID``: the caller is connected to that (simulated) agent."""

    KIND: ClassVar[str] = "expect_agent"
    agent: str

    def describe(self) -> str:
        return f"expect_agent {self.agent}"


@dataclass(frozen=True)
class SimAgent:
    """An agent a script declares (``agents:``): who they are and how they behave when rung."""

    id: str
    skills: dict[str, int] = field(default_factory=dict)
    tier: str = "general"
    languages: tuple[str, ...] = ()
    answer_after: float = 2.0  # seconds of ringing before they answer (past the ring timeout:
    handle: float = 60.0  # no answer); how long they talk
    rejects: bool = False
    wrap_up: float = 10.0
    max_misses: int = 3
    username: str = ""  # the agent number typed on the agent line (default: the id)
    pin: str | None = field(default=None, repr=False)  # for the agent line (a test PIN)
    logged_in: bool = True  # False: starts logged out (the agent line logs them in)
    on_call: bool = False  # starts on a call of their own (the agent line's pending changes)


@dataclass(frozen=True, kw_only=True)
class ExpectHangup(Step):
    KIND: ClassVar[str] = "expect_hangup"


@dataclass(frozen=True)
class Caller:
    number: str = ""
    called: str = ""


@dataclass(frozen=True)
class Script:
    """One parsed call script."""

    path: str
    name: str
    call: str  # flow id
    steps: tuple[Step, ...]
    caller: Caller = field(default_factory=Caller)
    at: datetime | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    transfer_fails: tuple[str, ...] = ()
    record_seconds: float = 5.0
    agents: tuple[SimAgent, ...] = ()
    agent_line_down_after: int | None = None  # agent line requests answered before it is gone
    # Counts left by earlier calls (a counter node's key -> value), e.g. a locked-out account.
    counters: dict[str, int] = field(default_factory=dict)
    line: int = 1  # of `call:`
    outcome_line: int = 0
    timeout_line: int = 0
    stubs: StubSet = field(default_factory=StubSet)  # the script's own (ivr.sim.stubs)
    shared_stubs: StubSet = field(default_factory=StubSet)  # its folder's stubs.yaml

    @property
    def all_stubs(self) -> StubSet:
        """The rules a simulated call tries: the script's own first, then its folder's."""
        return self.stubs.then(self.shared_stubs)

    @property
    def wants_var_snapshots(self) -> bool:
        """True when some ``expect`` checks variables as its prompt starts."""
        return any(isinstance(s, Expect) and s.vars for s in self.steps)
