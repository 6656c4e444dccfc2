"""``ivr serve``: real SIP calls answered with the flows of ``flows/``, on one machine.

Wiring, in start-up order: the flow registry (a bad flow folder refuses to start; later a bad
change is refused and the running version keeps serving), the call store, prompt synthesis of
every constant prompt, the media engine (one media clock for the process), the speech
recognition workers (ivr.yaml ``asr:``; a missing engine or model leaves DTMF only), the action
runner, and the SIP user agent. Each accepted call gets an RTP stream, a :class:`SipChannel` and a
:class:`~ivr.engine.session.Session` on the flow version current when the call was answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ivr.asr.service import AsrService
from ivr.config import Config
from ivr.core.clock import LoopClock
from ivr.engine.actions import ThreadActionRunner
from ivr.engine.channel import QueueRequest, RenderedPrompt
from ivr.engine.logsink import log_event
from ivr.engine.runtime import Runtime
from ivr.engine.session import Session
from ivr.flow.errors import Diagnostic, FlowError
from ivr.flow.model import FlowSet
from ivr.flow.registry import FlowRegistry
from ivr.media.player import EncodedAudio
from ivr.media.tones import beep
from ivr.rtp.engine import MediaEngine
from ivr.rtp.stream import RtpStream
from ivr.serve.channel import SipChannel
from ivr.serve.watch import FolderWatch
from ivr.sip.affinity import CallAffinity
from ivr.sip.call import SipCall
from ivr.sip.offer_answer import LocalMedia
from ivr.sip.timers import Timers
from ivr.sip.ua import UserAgent
from ivr.store.db import CallStore
from ivr.tts.build import build_prompts
from ivr.tts.cache import PromptCache

log = logging.getLogger("ivr.serve")

DRAIN_GRACE = 5.0  # seconds after the drain timeout for the last BYEs to complete
AT_HEADER = "X-Ivr-At"  # ISO 8601 with offset: the call's wall clock starts there (test_headers)


class WallShiftedClock(LoopClock):
    """A loop clock whose wall time starts at ``wall_start`` (timers are the loop's own)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, wall_start: float) -> None:
        super().__init__(loop)
        self._offset = wall_start - time.time()

    def wall(self) -> float:
        return time.time() + self._offset


@dataclass
class ServeOptions:
    """How the server listens and how much it takes (ivr.yaml ``sip:``, overridable by flags)."""

    host: str = "127.0.0.1"
    port: int = 5060
    rtp_host: str | None = None  # default: host
    rtp_ports: tuple[int, int] = (20000, 30000)
    max_calls: int = 200
    ringing: tuple[str, ...] = ("180",)
    build_prompts: bool = True
    watch_interval: float = 1.0
    drain_timeout: float = 30.0
    # Trust the X-Ivr-At header of callers (a QA server running live call scripts: the call's
    # wall clock, for business hours, starts at the script's `at:`). Never on a public line.
    test_headers: bool = False
    sip_timers: Timers | None = None  # T1/T2/T4 (RFC 3261 defaults; tests shrink them)
    seed: int | None = None
    workers: int = 1  # processes sharing the SIP port (ivr/serve/workers.py); 0: one per core
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class SharedPort:
    """This server is worker ``index`` of ``workers`` processes on one SIP port.

    ``wait_bound`` returns once every worker's call-affinity socket is bound, so no worker
    forwards a datagram to a sibling that cannot take it yet.
    """

    group: str
    index: int
    workers: int
    wait_bound: Callable[[], None]


class IvrServer:
    """The engine process: SIP in, flows run, records out."""

    def __init__(self, config: Config, options: ServeOptions | None = None,
                 shared: SharedPort | None = None) -> None:
        self.config = config
        self.options = options or ServeOptions()
        self.shared = shared
        self.registry = FlowRegistry(config.flows_dir, config)
        self.sessions: dict[str, Session] = {}
        self._streams: dict[str, RtpStream] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self.recordings_dir = config.root / "var" / "recordings"
        self.asr: AsrService | None = None

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load and check flows, build prompts, open media and SIP; raises FlowError."""
        diagnostics = self.registry.reload()
        if FlowRegistry.has_errors(diagnostics):
            raise FlowError(diagnostics)
        loop = asyncio.get_running_loop()
        self.store = CallStore(self.config.store_path)
        self.prompts = PromptCache(self.config.prompts_dir)
        if self.options.build_prompts:
            report = await asyncio.to_thread(build_prompts, self.registry.current, self.prompts)
            log.info("call -: prompts: %d rendered, %d cached, %d recorded, %d per call",
                     report.rendered, report.cached, report.recorded, report.dynamic)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        opts = self.options
        self.media = MediaEngine(loop, opts.rtp_host or opts.host, opts.rtp_ports, seed=opts.seed)
        await self._start_asr()
        self.actions = ThreadActionRunner(loop, self.config.actions_path)
        self.runtime = Runtime(
            actions=self.actions,
            config_vars=dict(self.config.vars),
            transfer_allow=self.config.transfer_allow,
            actions_path=self.config.actions_path,
        )
        shared = self.shared
        self.ua = UserAgent(
            opts.host,
            opts.port,
            local_media_factory=self._media_for,
            on_incoming=self._incoming,
            max_calls=opts.max_calls if shared is None else -(-opts.max_calls // shared.workers),
            ringing=opts.ringing,
            timers=opts.sip_timers,
        )
        if shared is None:
            await self.ua.start()
        else:
            self.affinity = CallAffinity(shared.group, shared.index, shared.workers)
            self.affinity.start(self._forwarded)
            await asyncio.to_thread(shared.wait_bound)
            await self.ua.start(reuse_port=True, router=self.affinity.route)
        self.watch = FolderWatch(self.config.flows_dir, "*.yaml", self._flows_changed,
                                 opts.watch_interval)
        self.watch.start()

    async def _start_asr(self) -> None:
        asr = self.config.asr
        if asr.backend == "off":
            log.info("call -: speech recognition off (asr.backend: off): DTMF only")
            return
        workers = asr.worker_count  # for the machine: engine processes share them out
        if self.shared is not None:
            workers = -(-workers // self.shared.workers)
        self.asr = AsrService(asr.backend, asr.models_dir, workers,
                              languages=self.config.languages)  # fmt: skip
        await self.asr.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.ua.address

    async def drain(self) -> None:
        """No new calls; let the current ones finish (hang up the rest after the drain timeout);
        flush the records."""
        self.watch.stop()
        # The flows end the calls still up at the drain timeout, so their records say the
        # server hung up (not the caller); the user agent's own timeout, later, is the net.
        cut = asyncio.get_running_loop().call_later(self.options.drain_timeout, self._cut_calls)
        try:
            await self.ua.drain(self.options.drain_timeout + DRAIN_GRACE)
        finally:
            cut.cancel()
        for session in list(self.sessions.values()):
            session.on_hangup()
        self.media.close()
        if self.asr is not None:
            await self.asr.stop()
        if self.shared is not None:
            self.affinity.close()
        self.actions.shutdown(wait=False)
        await asyncio.to_thread(self.store.close)

    def _forwarded(self, data: bytes, source: tuple[str, int]) -> None:
        """A datagram a sibling worker received for one of our calls."""
        try:
            transport = self.ua.transport
        except RuntimeError:  # our SIP socket is not bound yet: the peer retransmits
            return
        transport.deliver(data, source)

    def _cut_calls(self) -> None:
        for session in list(self.sessions.values()):
            if not session.finished:
                session.fail("the server is shutting down: drain timeout reached")

    # --- flows ----------------------------------------------------------------------------

    def _flows_changed(self) -> None:
        task = asyncio.ensure_future(asyncio.to_thread(self.registry.reload))
        task.add_done_callback(self._reloaded)

    def _reloaded(self, task: asyncio.Future[list[Diagnostic]]) -> None:
        try:
            diagnostics = task.result()
        except Exception:  # a file read mid-write, a crash in a check: never stop serving
            log.exception("call -: flow reload failed; the running version keeps serving")
            return
        if FlowRegistry.has_errors(diagnostics):
            log.error("call -: flow change refused; the running version keeps serving:\n%s",
                      "\n".join(str(d) for d in diagnostics))
            return
        log.info("call -: flows reloaded (version %s)", self.registry.current.version[:12])
        if self.options.build_prompts:
            self._spawn(asyncio.to_thread(build_prompts, self.registry.current, self.prompts))

    # --- calls ----------------------------------------------------------------------------

    async def _media_for(self, call: SipCall) -> LocalMedia:
        stream = await self.media.open_stream(call.call_id)
        self._streams[call.call_id] = stream
        call.add_done_callback(self._call_done)
        host, port = stream.local_address
        return LocalMedia(host, port)

    def _incoming(self, call: SipCall) -> None:
        flowset = self.registry.current
        flow_id = self.config.flow_for(call.called)
        if flow_id is None or flow_id not in flowset.flows:
            log.warning("call %s: no flow answers %r", call.call_id, call.called)
            call.reject(404, "No flow for this number")
            return
        call.on_established = lambda: self._begin(call, flowset, flow_id)
        call.accept()

    def _begin(self, call: SipCall, flowset: FlowSet, flow_id: str) -> None:
        stream, plan = self._streams.get(call.call_id), call.media
        if stream is None or plan is None or call.ended:
            return
        stream.start((plan.remote_address, plan.remote_port), plan.payload_type,
                     plan.dtmf_payload_type)
        call.on_media_update = lambda p: stream.start(
            (p.remote_address, p.remote_port), p.payload_type, p.dtmf_payload_type,
            send=p.direction in ("sendrecv", "sendonly"),
            receive=p.direction in ("sendrecv", "recvonly"))
        channel = SipChannel(call, stream, self._prompt_audio, self.recordings_dir,
                             on_enqueue=self._enqueue, asr=self.asr)
        session = Session(flowset, flow_id, channel, self._clock_for(call, stream.loop),
                          self.runtime, [self.store.sink, log_event])
        self.sessions[call.call_id] = session
        session.start()

    def _clock_for(self, call: SipCall, loop: asyncio.AbstractEventLoop) -> LoopClock:
        at = call.invite.headers.get(AT_HEADER) if self.options.test_headers else None
        if at is None:
            return LoopClock(loop)
        try:
            when = datetime.fromisoformat(at.strip())
            if when.tzinfo is None:
                raise ValueError("no UTC offset")
        except ValueError as exc:
            log.warning("call %s: %s ignored: %s", call.call_id, AT_HEADER, exc)
            return LoopClock(loop)
        return WallShiftedClock(loop, when.timestamp())

    def _call_done(self, call: SipCall) -> None:
        session = self.sessions.pop(call.call_id, None)
        if session is not None and not session.finished:
            session.on_hangup()
        stream = self._streams.pop(call.call_id, None)
        if stream is not None:
            stream.close()

    def _enqueue(self, channel: SipChannel, request: QueueRequest) -> None:
        # The agent queue (ACD) is a later part; until then a queued caller is told so and
        # released. The call record already says `queued` with the queue's name.
        log.warning("call %s: queue %r requested; no agent queue configured yet",
                    channel.info.call_id, request.queue)
        channel.hangup()

    # --- prompts --------------------------------------------------------------------------

    def _prompt_audio(self, prompt: RenderedPrompt) -> asyncio.Future[EncodedAudio | None]:
        return asyncio.ensure_future(self._load_prompt(prompt))

    async def _load_prompt(self, prompt: RenderedPrompt) -> EncodedAudio | None:
        path = self.prompts.lookup(prompt.id, prompt.language, prompt.text, prompt.audio)
        if path is None and prompt.audio == "beep":
            return EncodedAudio.from_pcm(beep(), "beep")
        if path is None and prompt.text.strip():
            path = await asyncio.to_thread(self.prompts.render_dynamic, prompt.text,
                                           prompt.language)
        if path is None:
            return None
        return await self.media.prompts.load(Path(path))

    def _spawn(self, coro: Awaitable[object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
