"""Run call scripts against a FlowSet: all calls interleaved on one virtual timeline.

Every script gets its own Session, SimChannel and :class:`~ivr.sim.driver.CallerDriver`; they all
share one :class:`VirtualClock`, so a thousand scripts run in one pass of the timer heap. Each
call sees the shared clock through a :class:`CallClock`: the same timeline, but its own wall time
(a script's ``at:`` sets the wall time of that call only; ``VirtualClock.set_wall`` would move it
for every interleaved call) and a guard that turns an exception in that call's callbacks into a
failed script instead of a failed run. With ``jobs > 1`` the scripts are split over a process pool;
each process loads the flows itself and interleaves its share.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ivr.acd.agentline import UNAVAILABLE, AgentLine, LineRequest
from ivr.acd.authority import QueueAuthority
from ivr.acd.config import AgentAccount, AgentLineConfig
from ivr.acd.model import TIERS, AgentSpec, ExitReason, Offer, Outcome, QueueSpec, Ticket
from ivr.config import Config
from ivr.core.clock import Clock, TimerHandle, VirtualClock
from ivr.core.events import Event, EventSink
from ivr.engine.channel import CallInfo
from ivr.engine.counters import MemoryCounters
from ivr.engine.runtime import Runtime
from ivr.flow.model import EnqueueNode, FlowSet
from ivr.host.agentline import AgentLineActions, LineDone
from ivr.host.queues import AuthorityQueues
from ivr.sim.channel import AgentPlan, SimChannel
from ivr.sim.driver import CallerDriver, SessionLike
from ivr.sim.script import Script, ScriptError, SimAgent
from ivr.sim.stubs import StubActionRunner, unknown_keys
from ivr.sim.verdict import Divergence

BUSY_QUEUE = "sim-busy"  # where simulated agents who start on a call (on_call: true) took it
# Callbacks run at one virtual instant before the run is declared stuck (a zero-delay loop).
MAX_CALLBACKS_PER_INSTANT = 1_000_000

SessionFactory = Callable[..., SessionLike]


@dataclass
class ScriptResult:
    """The outcome of one script (picklable: it comes back from worker processes)."""

    name: str
    path: str
    flow: str
    passed: bool
    divergence: Divergence | None = None
    events: list[Event] = field(default_factory=list)
    outcome: str | None = None
    duration: float = 0.0  # virtual seconds
    wall: float = 0.0  # real seconds spent in this call's callbacks
    steps: int = 0
    call_id: str = ""
    live: bool = False  # run over SIP/RTP (ivr.sim.live): duration is real seconds
    skipped: str | None = None  # not run, and why (live: a script that speaks)
    notes: list[str] = field(default_factory=list)  # checks the run could not make, and why
    backend_down: str | None = None  # an unstubbed webhook found nobody there (one line)

    def summary(self) -> str:
        """``PASS name (N steps, T s virtual)``, ``SKIP name: why``, or the FAIL line with its
        divergence; then one line per check not made."""
        if self.skipped is not None:
            return f"SKIP {self.name}: {self.skipped}"
        if self.passed:
            clock = "" if self.live else " virtual"
            head = f"PASS {self.name} ({self.steps} steps, {self.duration:.1f} s{clock})"
        elif self.backend_down is not None:
            head = f"FAIL {display_path(self.path)}: backend down: {self.backend_down}"
        elif self.divergence is None:
            head = f"FAIL {self.name}"
        else:
            head = f"FAIL {self.divergence.format()}"
        return "\n".join([head, *(f"  note: {note}" for note in self.notes)])


def display_path(path: str | Path) -> str:
    """A path relative to the working directory when it is below it."""
    return _relative(str(path), os.getcwd())


@functools.lru_cache(maxsize=4096)
def _relative(path: str, cwd: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(cwd))
    except ValueError:
        return path


def script_error_result(error: ScriptError) -> ScriptResult:
    """A script that could not be parsed, reported as a failed script."""
    where = Divergence(
        file=display_path(error.path),
        line=error.line,
        step=None,
        what="bad script",
        message=f"column {error.col}: {error.message}",
    )
    return ScriptResult(
        name=Path(error.path).stem, path=error.path, flow="", passed=False, divergence=where
    )


class CallClock:
    """One call's view of the shared VirtualClock: own wall time, guarded callbacks.

    Args:
        base: the shared clock.
        wall_start: the wall time (Unix seconds) at the call's start; None: the base's.
    """

    def __init__(self, base: VirtualClock, wall_start: float | None = None) -> None:
        self.base = base
        self._start = base.now()
        self._wall_start = base.wall() if wall_start is None else wall_start
        self.spent = 0.0  # real seconds spent in this call's callbacks
        self.closed = False  # after an error: later callbacks are dropped
        self.on_error: Callable[[BaseException], None] | None = None

    def now(self) -> float:
        return self.base.now()

    def wall(self) -> float:
        return self._wall_start + (self.base.now() - self._start)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return self.base.call_later(delay, lambda: self.run(callback))

    def run(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` for this call, timing it and containing its exceptions."""
        if self.closed:
            return
        began = time.perf_counter()
        try:
            callback()
        except Exception as exc:
            self.closed = True
            if self.on_error is not None:
                self.on_error(exc)
        finally:
            self.spent += time.perf_counter() - began


def _describe_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"engine error: {type(exc).__name__}: {exc}{where}"


def default_session_factory() -> SessionFactory:
    """The engine's Session class (imported late: the simulator is importable without it)."""
    from ivr.engine.session import Session

    return Session


def make_runtime(config: Config | None) -> Runtime:
    """The runtime a simulated call uses: in-process actions, the configuration's variables and
    transfer allow-list."""
    from ivr.engine.actions import InlineActionRunner

    actions_path = config.actions_path if config is not None else Path("flows/actions")
    return Runtime(
        actions=InlineActionRunner(actions_path, config.webhook_allow if config else None),
        config_vars=dict(config.vars) if config is not None else {},
        transfer_allow=config.transfer_allow if config is not None else (),
        actions_path=actions_path,
    )


def simulated_queues(agents: Sequence[SimAgent], flows: FlowSet,
                     clock: Clock) -> AuthorityQueues:  # fmt: skip
    """The agent queue one simulated call meets: its own queue authority on the call's clock,
    with the given agents (logged in, registered) and every queue the flows name."""
    names = sorted({node.queue for flow in flows.flows.values() for node in flow.nodes.values()
                    if isinstance(node, EnqueueNode)})  # fmt: skip
    specs = [AgentSpec(a.id, a.id, dict(a.skills), a.tier, a.languages, a.wrap_up,
                       a.max_misses) for a in agents]  # fmt: skip
    busy = [a for a in agents if a.on_call]
    queues = [QueueSpec(name) for name in names] + ([QueueSpec(BUSY_QUEUE)] if busy else [])
    authority = QueueAuthority(specs, queues, clock)
    for agent in agents:
        authority.registered(agent.id, f"sim:{agent.id}", 86400.0)
    _put_on_calls(authority, busy)
    for agent in agents:
        if agent.logged_in and not agent.on_call:
            authority.login(agent.id)
    return AuthorityQueues(authority)


class _AnswerAtOnce:
    """A listener that answers every offer: the other end of a simulated agent's own call."""

    def __init__(self, authority: QueueAuthority) -> None:
        self.authority = authority

    def offer(self, offer: Offer) -> None:
        self.authority.result(offer.id, Outcome.ANSWERED)

    def withdraw(self, offer: Offer) -> None:
        pass

    def exit(self, ticket: Ticket, reason: ExitReason) -> None:
        pass


def _put_on_calls(authority: QueueAuthority, busy: Sequence[SimAgent]) -> None:
    """Each of ``busy`` logs in alone and answers a call of its own (that never ends)."""
    authority.listener = _AnswerAtOnce(authority)
    for agent in busy:
        authority.login(agent.id)
        authority.join(Ticket(f"sim-busy-{agent.id}", BUSY_QUEUE, tier=TIERS[0]))
    authority.listener = None


def simulated_agent_line(runtime: Runtime, agents: Sequence[SimAgent], queues: AuthorityQueues,
                         clock: Clock, down_after: int | None = None) -> Runtime:  # fmt: skip
    """The runtime with the phone agent line over the call's own authority: ``acd:`` actions
    check the simulated agents' PINs (``pin:`` in the script) and change their state (a script
    without agents has no agent line: its ``acd:`` actions take ``on_error``). After
    ``down_after`` requests the authority is gone: the rest are ``unavailable``."""
    if not agents:  # no simulated agents, no agent queue to ask: acd actions take on_error
        return replace(runtime, queues=queues)
    line = AgentLine(queues.authority, AgentLineConfig())
    accounts = {a.id: AgentAccount(a.username or a.id, "", a.pin) for a in agents}

    asked = itertools.count(1)

    def ask(request: LineRequest, done: LineDone) -> Callable[[], None]:
        if down_after is not None and next(asked) > down_after:
            done({"error": UNAVAILABLE})  # as RemoteQueues says it when the authority is gone
        else:
            done(line.handle(request))
        return lambda: None

    return replace(runtime, queues=queues,
                   actions=AgentLineActions(runtime.actions, clock, accounts, ask))  # fmt: skip


def _script_counters(script: Script, wall: float) -> MemoryCounters | None:
    """The call's counters, starting as the script's ``counters:`` say (an hour to live);
    None (each call its own, empty) when it says nothing."""
    if not script.counters:
        return None
    counters = MemoryCounters()
    for key, value in script.counters.items():
        counters.preset(key, value, wall + 3600)
    return counters


def agent_plans(agents: Sequence[SimAgent]) -> Callable[[str], AgentPlan | None]:
    """How each simulated agent behaves when rung (for the SimChannel)."""
    return {a.id: AgentPlan(a.answer_after, a.handle, a.rejects) for a in agents}.get


class _Call:
    """One script being run: its clock view, channel, session and driver."""

    def __init__(
        self,
        script: Script,
        flows: FlowSet,
        runtime: Runtime,
        base: VirtualClock,
        call_id: str,
        factory: SessionFactory,
        sinks: Sequence[EventSink],
    ) -> None:
        self.script = script
        self.call_id = call_id
        self.clock = CallClock(base, script.at.timestamp() if script.at else None)
        info = CallInfo(call_id, script.caller.number, script.caller.called, "sim", qa=True)
        self.channel = SimChannel(
            self.clock,
            info,
            transfer_fails=script.transfer_fails,
            record_seconds=script.record_seconds,
            agents=agent_plans(script.agents),
        )
        queues = simulated_queues(script.agents, flows, self.clock)
        runtime = simulated_agent_line(runtime, script.agents, queues, self.clock,
                                       script.agent_line_down_after)
        # Stubs first: what they do not answer goes to the agent line, then the real actions.
        self.actions = StubActionRunner(script.all_stubs, flows, self.clock, runtime.actions)
        runtime = replace(runtime, actions=self.actions)
        runtime = replace(runtime, counters=_script_counters(script, self.clock.wall()))
        self.driver: CallerDriver | None = None
        self.error: str | None = None
        if script.call not in flows.flows:
            self.error = f"unknown flow {script.call!r} (flows: {', '.join(sorted(flows.flows))})"
            return
        stray = unknown_keys(script.stubs, flows)  # stubs.yaml may serve other flows too
        if stray:
            self.error = (f"stub {stray[0].key!r} ({stray[0].where}) names no action of the "
                          "flows (a node id, flow.node, a webhook path or module:function)")
            return
        try:
            self.session = factory(
                flows,
                script.call,
                self.channel,
                self.clock,
                runtime,
                sinks=[self._sink, *sinks],
                initial_vars=script.vars or None,
            )
        except Exception as exc:
            self.error = _describe_error(exc)
            return
        self.driver = CallerDriver(
            script, self.session, self.channel, self.clock, display_path(script.path)
        )
        self.clock.on_error = lambda exc: self._crashed(_describe_error(exc))

    def _sink(self, event: Event) -> None:
        if self.driver is not None:
            self.driver.on_event(event)

    def _crashed(self, message: str) -> None:
        assert self.driver is not None
        self.driver.fail_error(message)

    def start(self) -> None:
        if self.driver is None:
            return
        self.clock.run(self.session.start)
        if not self.clock.closed:
            self.clock.run(self.driver.begin)

    def stuck(self, message: str) -> None:
        if self.driver is not None and not self.driver.done:
            self.driver.fail_error(message)

    def _backend_down(self) -> Divergence:
        """The failure of a script whose unstubbed webhook found nobody at its backend: that,
        not the prompt that came instead, is what the tester must hear about."""
        down = self.actions.unreachable[0]
        return Divergence(
            display_path(self.script.path), self.script.line, None, "backend down",
            f"action {down.action}: {down.host}: {down.error}; start the backend or stub "
            "the action (stubs:, docs/TESTING.md)",
        )

    def result(self) -> ScriptResult:
        script = self.script
        base = ScriptResult(
            name=script.name,
            path=script.path,
            flow=script.call,
            passed=False,
            steps=len(script.steps),
            call_id=self.call_id,
            wall=self.clock.spent,
        )
        if self.driver is None:
            base.divergence = Divergence(
                display_path(script.path),
                script.line,
                None,
                f"call {script.call}",
                self.error or "not run",
            )
            return base
        driver = self.driver
        if not driver.done:  # cannot happen while the timeout timer exists; kept as a net
            driver.fail_error("the call stalled: nothing was scheduled")
        base.passed = driver.divergence is None
        base.divergence = driver.divergence
        if not base.passed and self.actions.unreachable:
            base.divergence = self._backend_down()
            base.backend_down = base.divergence.message
        base.events = driver.events
        base.outcome = driver.outcome
        base.duration = driver.duration
        return base


def run_scripts(
    scripts: Sequence[Script],
    flows: FlowSet,
    runtime: Runtime,
    *,
    clock: VirtualClock | None = None,
    sinks: Sequence[EventSink] = (),
    call_ids: Sequence[str] | None = None,
    session_factory: SessionFactory | None = None,
) -> list[ScriptResult]:
    """Run ``scripts`` interleaved on one virtual clock; results in the same order.

    Args:
        scripts: parsed scripts.
        flows: the flows the calls run on.
        runtime: actions and configuration shared by the calls.
        clock: the shared clock (default: a new VirtualClock).
        sinks: extra event sinks for every call (e.g. a call store).
        call_ids: one call id per script (default ``sim-1``, ``sim-2``, ...).
        session_factory: builds a session (default: :class:`ivr.engine.session.Session`).
    """
    base = clock or VirtualClock()
    factory = session_factory or default_session_factory()
    ids = list(call_ids) if call_ids is not None else [f"sim-{i + 1}" for i in range(len(scripts))]
    calls = [
        _Call(script, flows, runtime, base, call_id, factory, sinks)
        for script, call_id in zip(scripts, ids, strict=True)
    ]
    for call in calls:
        call.start()
    _run_clock(base, calls)
    return [call.result() for call in calls]


def _run_clock(base: VirtualClock, calls: list[_Call]) -> None:
    """Run every timer; a zero-delay loop that never lets time move fails the calls left."""
    instant, count = base.now(), 0
    while (due := base.next_due()) is not None:
        if due == instant:
            count += 1
            if count > MAX_CALLBACKS_PER_INSTANT:
                for call in calls:
                    call.stuck(
                        f"no progress: over {MAX_CALLBACKS_PER_INSTANT} callbacks at "
                        f"t={due:.2f}s without time moving"
                    )
                return
        else:
            instant, count = due, 0
        base.step()


# --- across processes --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Chunk:
    config: Config | None
    flows_dir: Path
    scripts: list[tuple[int, Script]]
    call_id_prefix: str


def _run_chunk(chunk: _Chunk) -> list[tuple[int, ScriptResult]]:
    """A worker process: load the flows, run its share of the scripts."""
    from ivr.flow.loader import load_flowset

    flows, _warnings = load_flowset(chunk.flows_dir, chunk.config)
    scripts = [s for _, s in chunk.scripts]
    ids = [f"{chunk.call_id_prefix}-{i + 1}" for i, _ in chunk.scripts]
    results = run_scripts(scripts, flows, make_runtime(chunk.config), call_ids=ids)
    return [(i, r) for (i, _), r in zip(chunk.scripts, results, strict=True)]


def run_parallel(
    scripts: Sequence[Script],
    *,
    flows: FlowSet | None = None,
    flows_dir: Path,
    config: Config | None = None,
    jobs: int = 1,
    call_id_prefix: str = "sim",
    sinks: Sequence[EventSink] = (),
) -> list[ScriptResult]:
    """Run ``scripts`` in this process (``jobs`` <= 1) or split over ``jobs`` processes.

    In this process, ``flows`` is used when given (else loaded from ``flows_dir``) and ``sinks``
    receive every event as it happens; worker processes load ``flows_dir`` themselves and the
    events come back in the results (``sinks`` are not called for them).
    """
    ids = [f"{call_id_prefix}-{i + 1}" for i in range(len(scripts))]
    if jobs <= 1 or len(scripts) <= 1:
        if flows is None:
            from ivr.flow.loader import load_flowset

            flows, _ = load_flowset(flows_dir, config)
        assert flows is not None
        return run_scripts(scripts, flows, make_runtime(config), sinks=sinks, call_ids=ids)
    jobs = min(jobs, len(scripts))
    chunks = [
        _Chunk(
            config,
            flows_dir,
            [(i, s) for i, s in enumerate(scripts) if i % jobs == k],
            call_id_prefix,
        )
        for k in range(jobs)
    ]
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited loop/threads
    with ctx.Pool(jobs) as pool:
        parts = pool.map(_run_chunk, chunks)
    ordered: dict[int, ScriptResult] = {i: r for part in parts for i, r in part}
    return [ordered[i] for i in range(len(scripts))]


def all_events(results: Sequence[ScriptResult]) -> list[Event]:
    """Every event of every result, call after call."""
    return [event for result in results for event in result.events]
