"""The engine host: everything a transport needs to run calls, written once.

A transport (the native SIP server, the pyVoIP extension, a worker process of ``ivr serve
--workers``) brings calls in and carries their audio: a :class:`~ivr.engine.channel.Channel`
plus its signalling, and nothing else. What happens to a call once it is in is the host's:

* the flows (the registry, checked at start; a changed flow folder is reloaded without dropping
  the calls in progress, and a bad change is refused while the running version keeps serving);
* the call store (every step event of every call);
* the prompts (every constant prompt rendered at start and after a reload; a prompt with
  variables synthesized when it is played; recordings win over synthesis);
* the action runner and the flows' runtime (config variables, the transfer allow-list);
* speech recognition (the ASR worker processes, shared out when several engine processes run on
  one machine);
* the agent queue (ivr.yaml ``acd:``): the queue authority, the agents' accounts and
  registrations (:mod:`ivr.host.acd`);
* one :class:`~ivr.engine.session.Session` per call, created on the flow version current when
  the call was admitted;
* the end: calls still up when a drain times out are ended by their flows, records flushed.

Start-up order: flows (a bad folder raises :class:`~ivr.flow.errors.FlowError` and nothing else
starts), store, prompts, recordings folder, speech, actions, the flow folder watch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.asr.service import AsrService
from ivr.config import Config
from ivr.core.clock import Clock, LoopClock
from ivr.engine.actions import ThreadActionRunner
from ivr.engine.channel import Channel, ChannelListener, RenderedPrompt
from ivr.engine.logsink import log_event
from ivr.engine.queueing import Queues
from ivr.engine.runtime import ActionRunner, Runtime
from ivr.engine.session import Session
from ivr.flow.errors import Diagnostic, FlowError
from ivr.flow.model import FlowSet
from ivr.flow.registry import FlowRegistry
from ivr.flow.render import HOLD_MUSIC
from ivr.host.acd import HostAcd
from ivr.host.agentline import AgentLineActions
from ivr.host.asterisk import AsteriskQueues, CallFacts
from ivr.host.metrics import EngineMetrics
from ivr.host.speech import CallSpeech
from ivr.host.watch import FolderWatch
from ivr.media.tones import beep
from ivr.store.counters import StoreCounters
from ivr.store.db import CallStore, close_interrupted, connect
from ivr.tts.build import build_prompts
from ivr.tts.cache import PromptCache

log = logging.getLogger("ivr.host")

# What a prompt sounds like: a file to load (recorded or synthesized), or samples made here.
PromptAudio = Path | NDArray[np.int16]
# Music on hold when the flow names none and prompts/ has no hold-music.wav: a real recording
# (Debian's asterisk-moh-opsound-wav, which make installs), 8 kHz.
DEFAULT_HOLD_MUSIC = Path("/usr/share/asterisk/moh/macroform-the_simplicity.wav")


@dataclass(frozen=True)
class HostOptions:
    """What the host does besides running calls.

    ``build_prompts``: render every constant prompt at start and after each reload (a worker
    process whose supervisor rendered them passes False). ``watch_interval``: seconds between
    looks at the flows folder (0: no reload). ``share``: engine processes on this machine
    sharing its speech workers (``ivr serve --workers N``). ``speech``: recognise speech where
    ivr.yaml's ``asr:`` says so (False: DTMF only). ``acd_worker``: this process is that worker
    of the machine, whose queue authority the supervisor holds (None: hold it here).
    """

    build_prompts: bool = True
    watch_interval: float = 1.0
    share: int = 1
    speech: bool = True
    acd_worker: int | None = None


@dataclass(frozen=True)
class Admission:
    """A call the host will take: the flow that answers it, on the version current now."""

    flowset: FlowSet
    flow_id: str


class EngineHost:
    """Flows, store, prompts, actions, speech and sessions for one engine process."""

    def __init__(self, config: Config, options: HostOptions | None = None) -> None:
        self.config = config
        self.options = options or HostOptions()
        self.registry = FlowRegistry(config.flows_dir, config)
        self.sessions: dict[str, Session] = {}
        self.metrics = EngineMetrics()  # read by the web console (ivr/console)
        self.recordings_dir = config.root / "var" / "recordings"
        self.asr: AsrService | None = None
        self.acd: HostAcd | None = None
        self.asterisk: AsteriskQueues | None = None  # queues Asterisk runs (docs/ASTERISK.md)
        self._watch: FolderWatch | None = None
        self._tasks: set[asyncio.Future[object]] = set()

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load and check the flows, then open everything calls need.

        Raises:
            FlowError: the flows folder has errors (nothing was opened).
        """
        diagnostics = await asyncio.to_thread(self.registry.reload)
        if FlowRegistry.has_errors(diagnostics):
            raise FlowError(diagnostics)
        loop = asyncio.get_running_loop()
        if self.options.share == 1:  # several workers: prepare_machine did it, before any began
            await asyncio.to_thread(close_interrupted, self.config.store_path)
        self.store = CallStore(self.config.store_path)
        self.store.on_health = self.metrics.store_health  # /metrics and /healthz
        self.counters = StoreCounters(self.config.store_path)  # lockouts across calls
        self.prompts = PromptCache(self.config.prompts_dir)
        if self.options.build_prompts:
            await self._build_prompts()
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        await self._start_speech()
        self.actions = ThreadActionRunner(loop, self.config.actions_path,
                                          webhook_allow=self.config.webhook_allow)
        await self._start_acd(loop)
        actions: ActionRunner = self.actions
        if self.acd is not None:  # action: {acd: ...}, the phone agent line
            actions = AgentLineActions(self.actions, LoopClock(loop), self.acd.config.accounts,
                                       self.acd.ask_line)  # fmt: skip
        self.runtime = Runtime(
            actions=actions,
            config_vars=dict(self.config.vars),
            transfer_allow=self.config.transfer_allow,
            actions_path=self.config.actions_path,
            queues=self._queues(loop),
            counters=self.counters,
        )
        if self.options.watch_interval > 0:
            self._watch = FolderWatch(self.config.flows_dir, "*.yaml", self._flows_changed,
                                      self.options.watch_interval)  # fmt: skip
            self._watch.start()

    async def _start_speech(self) -> None:
        asr = self.config.asr
        if not self.options.speech:
            return
        if asr.backend == "off":
            log.info("call -: speech recognition off (asr.backend: off): DTMF only")
            return
        workers = -(-asr.worker_count // max(1, self.options.share))
        self.asr = AsrService(asr.backend, asr.models_dir, workers,
                              languages=self.config.languages)  # fmt: skip
        await self.asr.start()

    async def _start_acd(self, loop: asyncio.AbstractEventLoop) -> None:
        acd = self.config.acd
        if acd is None:
            return
        clock = LoopClock(loop)
        worker = self.options.acd_worker
        if worker is None:
            self.acd = await HostAcd.here(acd, clock, on_state=self.store.agent_sink())
        else:
            self.acd = await HostAcd.remote(acd, clock, worker)

    def _queues(self, loop: asyncio.AbstractEventLoop) -> Queues | None:
        """The sessions' queues: ours, with Asterisk's in front when ivr.yaml marks some."""
        ours = self.acd.queues if self.acd is not None else None
        acd = self.config.acd
        if acd is None or acd.asterisk is None or not acd.asterisk_queues:
            return ours
        self.asterisk = AsteriskQueues.over(acd.asterisk, acd.asterisk_queues, ours,
                                            self._call_facts, self.store.sink, LoopClock(loop))
        self.asterisk.start()
        return self.asterisk

    def _call_facts(self, call_id: str) -> CallFacts | None:
        session = self.sessions.get(call_id)
        if session is None or self.config.acd is None or self.config.acd.asterisk is None:
            return None
        channel = session.channel.info.x_header(self.config.acd.asterisk.header)
        return CallFacts(channel, session.elapsed, session.node_id, session.flow_id)

    def stop_reloading(self) -> None:
        """Stop watching the flows folder (a draining server takes no new flow versions)."""
        if self._watch is not None:
            self._watch.stop()
            self._watch = None

    def cut_calls(self, reason: str) -> None:
        """End every call still in a flow (its record says the server ended it)."""
        for session in list(self.sessions.values()):
            if not session.finished:
                session.fail(reason)

    async def stop(self) -> None:
        """The calls still up are gone; stop speech and actions; flush the records."""
        self.stop_reloading()
        for session in list(self.sessions.values()):
            session.on_hangup()
        if self.asr is not None:
            await self.asr.stop()
        if self.asterisk is not None:
            await self.asterisk.stop()
        if self.acd is not None:
            await self.acd.stop()
        self.actions.shutdown(wait=False)
        await asyncio.to_thread(self.store.close)
        self.counters.close()

    # --- flows ----------------------------------------------------------------------------

    async def _build_prompts(self) -> None:
        report = await asyncio.to_thread(build_prompts, self.registry.current, self.prompts)
        log.info("call -: prompts: %d rendered, %d cached, %d recorded, %d per call",
                 report.rendered, report.cached, report.recorded, report.dynamic)  # fmt: skip

    def _flows_changed(self) -> None:
        self._spawn(asyncio.to_thread(self.registry.reload), self._reloaded)

    def _reloaded(self, task: asyncio.Future[object]) -> None:
        try:
            diagnostics: list[Diagnostic] = task.result()  # type: ignore[assignment]
        except Exception:  # a file read mid-write, a crash in a check: never stop serving
            log.exception("call -: flow reload failed; the running version keeps serving")
            return
        if FlowRegistry.has_errors(diagnostics):
            log.error("call -: flow change refused; the running version keeps serving:\n%s",
                      "\n".join(str(d) for d in diagnostics))  # fmt: skip
            return
        log.info("call -: flows reloaded (version %s)", self.registry.current.version[:12])
        if self.options.build_prompts:
            self._spawn(self._build_prompts())

    def _spawn(self, awaitable: Awaitable[object],
               done: Callable[[asyncio.Future[object]], None] | None = None) -> None:  # fmt: skip
        task: asyncio.Future[object] = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if done is not None:
            task.add_done_callback(done)

    # --- calls ----------------------------------------------------------------------------

    def admit(self, called: str, call_id: str = "-") -> Admission | None:
        """The flow that answers ``called`` (ivr.yaml ``numbers:``), or None: refuse the call."""
        flowset = self.registry.current
        flow_id = self.config.flow_for(called)
        if flow_id is None or flow_id not in flowset.flows:
            log.warning("call %s: no flow answers %r", call_id, called)
            return None
        return Admission(flowset, flow_id)

    def begin(self, channel: Channel, admission: Admission, clock: Clock) -> Session:
        """Start the admitted call's session on ``channel``; the transport calls :meth:`end`."""
        session = Session(admission.flowset, admission.flow_id, channel, clock, self.runtime,
                          [self.store.sink, log_event, self.metrics.sink])  # fmt: skip
        self.sessions[channel.info.call_id] = session
        session.start()
        return session

    def end(self, call_id: str) -> None:
        """The transport is done with the call: a session still running hears the hang-up."""
        session = self.sessions.pop(call_id, None)
        if session is not None and not session.finished:
            session.on_hangup()

    def speech(self, call_id: str,
               listener: Callable[[], ChannelListener | None]) -> CallSpeech | None:  # fmt: skip
        """The call's speech input (None: no recognizer in this process, DTMF only)."""
        if self.asr is None:
            return None
        return CallSpeech(self.asr, listener, call_id, on_decision=self.metrics.asr)

    # --- prompts --------------------------------------------------------------------------

    async def prompt_audio(self, prompt: RenderedPrompt) -> PromptAudio | None:
        """What ``prompt`` sounds like: a recording or synthesis on disk, or a beep; None when
        there is nothing to play (empty text)."""
        # A few stat calls: cheaper on the loop than a hop to a thread and back.
        path = self.prompts.lookup(prompt.id, prompt.language, prompt.text, prompt.audio)
        if path is None and prompt.audio == "beep":
            return beep()
        if path is None and prompt.audio == HOLD_MUSIC:  # no recording of ours: the platform's
            return DEFAULT_HOLD_MUSIC if DEFAULT_HOLD_MUSIC.is_file() else None
        if path is None and prompt.text.strip():
            path = await asyncio.to_thread(self.prompts.render_dynamic, prompt.text,
                                           prompt.language)  # fmt: skip
        return Path(path) if path is not None else None


def prepare_machine(config: Config, render_prompts: bool = True) -> None:
    """What several engine processes of one machine need done once, before any starts: refuse
    bad flows, create the call store, render the prompts.

    Raises:
        FlowError: the flows folder has errors.
    """
    registry = FlowRegistry(config.flows_dir, config)
    diagnostics = registry.reload()
    if FlowRegistry.has_errors(diagnostics):
        raise FlowError(diagnostics)
    # One process creates the call store (and migrates it): two workers switching a new file
    # to WAL at once get "database is locked" (seen in bench/serve_load.py).
    connect(config.store_path).close()
    close_interrupted(config.store_path)  # calls a crash left open: none of ours is up yet
    if render_prompts:
        report = build_prompts(registry.current, PromptCache(config.prompts_dir))
        log.info("call -: prompts: %d rendered, %d cached, %d recorded, %d per call",
                 report.rendered, report.cached, report.recorded, report.dynamic)  # fmt: skip
