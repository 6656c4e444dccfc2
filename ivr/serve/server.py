"""``ivr serve``: real SIP calls answered with the flows of ``flows/``, on one machine.

The native transport over the engine host (:mod:`ivr.host`): the host starts first (flows,
store, prompts, speech, actions; a bad flow folder refuses to start), then the media engine (one
media clock for the process) and the SIP user agent. Each accepted call gets an RTP stream and a
:class:`SipChannel`; the host runs its session on the flow version current when the call was
answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ivr.config import Config
from ivr.core.clock import LoopClock, WallShiftedClock
from ivr.engine.channel import RenderedPrompt
from ivr.host.host import Admission, EngineHost, HostOptions
from ivr.host.queues import AuthorityQueues
from ivr.host.remote_queues import RemoteQueues
from ivr.media.player import EncodedAudio
from ivr.rtp.engine import MediaEngine
from ivr.rtp.stream import RtpStream, StreamConfig
from ivr.serve.agents import AgentDialer, start_media
from ivr.serve.callbacks import CallbackDialer
from ivr.serve.channel import SipChannel
from ivr.serve.unstarted import record_unstarted
from ivr.sip.admission import SourceLimits
from ivr.sip.affinity import CallAffinity, OwnedIds
from ivr.sip.call import SipCall
from ivr.sip.message import Request
from ivr.sip.offer_answer import LocalMedia, MediaPlan
from ivr.sip.register import Registration, RegistrationStatus
from ivr.sip.registrar import Registrar
from ivr.sip.timers import Timers
from ivr.sip.ua import UserAgent
from ivr.store.refused import RefusedCall

log = logging.getLogger("ivr.serve")

DRAIN_GRACE = 5.0  # seconds after the drain timeout for the last BYEs to complete
REGISTER_RETRY = 60  # seconds between attempts after a failed registration (the UA's default)
AT_HEADER = "X-Ivr-At"  # ISO 8601 with offset: the call's wall clock starts there (test_headers)
QA_HEADER = "X-Ivr-Qa"  # "1": a QA call (ivr test --live); its record is marked (test_headers)


@dataclass(frozen=True)
class RegisterOptions:
    """Sign in to a PBX as an extension (ivr.yaml ``sip.register``): the PBX then sends the
    calls for ``aor`` to this server. The binding refreshes itself, is retried after a failure
    and is removed when the server drains."""

    registrar: str  # sip:pbx.example:5060
    aor: str  # sip:1001@pbx.example
    username: str
    password: str = field(repr=False)
    expires: int = 3600


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
    media_timeout: float = 30.0  # seconds without RTP from the caller before we hang up
    # Trust the X-Ivr-At header of callers (a QA server running live call scripts: the call's
    # wall clock, for business hours, starts at the script's `at:`). Never on a public line.
    test_headers: bool = False
    sip_timers: Timers | None = None  # T1/T2/T4 (RFC 3261 defaults; tests shrink them)
    seed: int | None = None
    workers: int = 1  # processes sharing the SIP port (ivr/serve/workers.py); 0: one per core
    register: RegisterOptions | None = None
    # ivr/core/priority.py: applied by `ivr serve` to each engine process, never to a server a
    # test starts in its own process
    priority: str = "normal"
    # What one source address may take (ivr.yaml sip.per_source; per engine process).
    per_source: SourceLimits = field(default_factory=SourceLimits)
    # While the call store refuses writes, refuse new calls (503) rather than lose their
    # records (ivr.yaml sip.refuse_without_store).
    refuse_without_store: bool = True
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


def _log_registration(registration: Registration) -> None:
    log.info("call -: registration %s: %s (%s)", registration.aor, registration.status,
             registration.reason)  # fmt: skip


class IvrServer:
    """The engine process: SIP in, flows run (by the host), records out."""

    def __init__(self, config: Config, options: ServeOptions | None = None,
                 shared: SharedPort | None = None) -> None:
        self.config = config
        self.options = options or ServeOptions()
        self.shared = shared
        opts = self.options
        self.host = EngineHost(config, HostOptions(
            build_prompts=opts.build_prompts, watch_interval=opts.watch_interval,
            share=shared.workers if shared is not None else 1,
            acd_worker=shared.index if shared is not None else None))
        self._streams: dict[str, RtpStream] = {}
        # Answered calls whose session has not begun: ref -> (flow, monotonic answer time).
        self._unstarted: dict[str, tuple[str, float]] = {}

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the host, then media and SIP; raises FlowError for a bad flow folder."""
        await self.host.start()
        loop = asyncio.get_running_loop()
        opts, shared = self.options, self.shared
        self.media = MediaEngine(loop, opts.rtp_host or opts.host, opts.rtp_ports, seed=opts.seed,
                                 config=StreamConfig(on_gap=self.host.metrics.rtp_gap_seen,
                                                     inactivity_timeout=opts.media_timeout))
        acd = self.host.acd
        self.registrar = None if acd is None else Registrar(
            acd.config.realm, acd.credentials, LoopClock(loop), on_change=acd.binding_changed)
        self.ua = UserAgent(
            opts.host,
            opts.port,
            local_media_factory=self._media_for,
            on_incoming=self._incoming,
            max_calls=opts.max_calls if shared is None else -(-opts.max_calls // shared.workers),
            ringing=opts.ringing,
            timers=opts.sip_timers,
            registrar=self.registrar,
            ids=None if shared is None else OwnedIds(shared.index, shared.workers),
            on_refused=self._refused,
            per_source=opts.per_source,
        )
        self.agents = None if acd is None else AgentDialer(self.ua, self.media, self._whisper)
        if acd is not None and acd.config.callback is not None and \
                isinstance(acd.queues, AuthorityQueues | RemoteQueues):
            # Callbacks are placed by the process the authority offers them to: this one
            # (one ivr serve), or the worker it chose (--workers N).
            acd.queues.callbacks = CallbackDialer(
                self.ua, self.media, acd.queues, acd.config.callback, self.host.store.sink,
                LoopClock(loop)).offer  # fmt: skip
        if shared is None:
            await self.ua.start()
        else:
            self.affinity = CallAffinity(shared.group, shared.index, shared.workers)
            self.affinity.start(self._forwarded)
            await asyncio.to_thread(shared.wait_bound)
            await self.ua.start(reuse_port=True, router=self.affinity.route)
        if opts.register is not None and (shared is None or shared.index == 0):
            await self._register(opts.register)  # one binding for the port, not one per worker

    async def _register(self, spec: RegisterOptions) -> None:
        registration = await self.ua.register(spec.registrar, spec.aor, spec.username,
                                              spec.password, spec.expires,
                                              on_status=_log_registration)  # fmt: skip
        if registration.status != RegistrationStatus.REGISTERED:
            log.error("call -: registration of %s at %s failed (%s); retrying every %d s",
                      spec.aor, spec.registrar, registration.reason, REGISTER_RETRY)  # fmt: skip

    @property
    def address(self) -> tuple[str, int]:
        return self.ua.address

    async def drain(self) -> None:
        """No new calls; let the current ones finish (hang up the rest after the drain timeout);
        flush the records."""
        self.host.stop_reloading()
        # The flows end the calls still up at the drain timeout, so their records say the
        # server hung up (not the caller); the user agent's own timeout, later, is the net.
        cut = asyncio.get_running_loop().call_later(
            self.options.drain_timeout, self.host.cut_calls,
            "the server is shutting down: drain timeout reached")
        try:
            await self.ua.drain(self.options.drain_timeout + DRAIN_GRACE)
        finally:
            cut.cancel()
        await self.host.stop()
        if self.registrar is not None:
            self.registrar.close()
        self.media.close()
        if self.shared is not None:
            self.affinity.close()

    def _forwarded(self, data: bytes, source: tuple[str, int]) -> None:
        """A datagram a sibling worker received for one of our calls."""
        try:
            transport = self.ua.transport
        except RuntimeError:  # our SIP socket is not bound yet: the peer retransmits
            return
        transport.deliver(data, source)

    # --- calls ----------------------------------------------------------------------------

    async def _media_for(self, call: SipCall) -> LocalMedia:
        # Keyed by our id: a second INVITE reusing a Call-ID must not take the first's stream.
        stream = await self.media.open_stream(call.ref)
        self._streams[call.ref] = stream
        call.add_done_callback(self._call_done)
        host, port = stream.local_address
        return LocalMedia(host, port)

    def _is_qa(self, invite: Request) -> bool:
        """A live QA call, when this server trusts test headers (never a caller's say-so on a
        public line: it would take the call out of the production reports)."""
        return self.options.test_headers and (invite.headers.get(QA_HEADER) or "").strip() == "1"

    def _refused(self, invite: Request, caller: str, called: str, status: int,
                 reason: str) -> None:  # fmt: skip
        """Record an INVITE refused before an answer (the reports' offered calls)."""
        self.host.store.refused(RefusedCall(time.time(), invite.call_id(), caller, called,
                                            status, reason, "sip", self._is_qa(invite)))

    def _incoming(self, call: SipCall) -> None:
        call.qa = self._is_qa(call.invite)
        if self.options.refuse_without_store and self.host.store.failing:
            log.error("call %s: 503: the call store refuses writes (%d records lost)",
                      call.call_id, self.host.store.failed_writes)  # fmt: skip
            call.reject(503, "Call Records Unavailable")
            return
        admission = self.host.admit(call.called, call.ref)
        if admission is None:
            call.reject(404, "No flow for this number")
            return
        call.on_established = lambda: self._begin(call, admission)
        self._unstarted[call.ref] = (admission.flow_id, time.monotonic())
        call.accept()

    def _begin(self, call: SipCall, admission: Admission) -> None:
        stream, plan = self._streams.get(call.ref), call.media
        if call.ended:
            return
        try:
            if stream is None or plan is None:
                raise RuntimeError("no media for an established call")
            start_media(stream, plan, call.source[0])
            call.on_media_update = lambda p: self._media_update(call, stream, p)
            channel = SipChannel(call, stream, self._prompt_audio, self.host.recordings_dir,
                                 speech=self.host.speech, agents=self.agents)
            self.host.begin(channel, admission, self._clock_for(call, stream.loop))
            self._unstarted.pop(call.ref, None)  # the session records it from now on
        except Exception:
            # An answered call must end: never leave it up with no session (and no record).
            log.exception("call %s: could not start the call: hanging up", call.call_id)
            call.hangup()

    def _media_update(self, call: SipCall, stream: RtpStream, plan: MediaPlan) -> None:
        """A re-INVITE changed the media; a stream that cannot follow ends the call."""
        try:
            stream.start((plan.remote_address, plan.remote_port), plan.payload_type,
                         plan.dtmf_payload_type, send=plan.send, receive=plan.receive,
                         latch=True, send_unlatched=plan.remote_address == call.source[0])
        except (OSError, ValueError, RuntimeError):
            log.exception("call %s: media update failed: hanging up", call.call_id)
            call.hangup()

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
        unstarted = self._unstarted.pop(call.ref, None)
        if unstarted is not None:
            record_unstarted(self.host.store.sink, call, *unstarted)
        self.host.end(call.ref)
        stream = self._streams.pop(call.ref, None)
        if stream is not None:
            stream.close()

    # --- prompts --------------------------------------------------------------------------

    def _prompt_audio(self, prompt: RenderedPrompt) -> asyncio.Future[EncodedAudio | None]:
        return asyncio.ensure_future(self._load_prompt(prompt))

    async def _whisper(self, text: str, language: str) -> EncodedAudio | None:
        return await self._load_prompt(RenderedPrompt("whisper", language, text))

    async def _load_prompt(self, prompt: RenderedPrompt) -> EncodedAudio | None:
        audio = await self.host.prompt_audio(prompt)
        if audio is None:
            return None
        if isinstance(audio, Path):
            return await self.media.prompts.load(audio)
        return EncodedAudio.from_pcm(audio, prompt.id)
