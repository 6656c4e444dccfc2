"""The engine as a pyVoIP extension: register to a PBX/registrar, answer what it sends.

Start-up order: the flow registry (a bad flow folder refuses to start), the call store, prompt
synthesis of every constant prompt, the action runner, then the pyVoIP phone (which registers).
Each call the registrar sends arrives on a pyVoIP thread (see :mod:`ivr.pyvoip.phone`); that
thread asks the loop which flow answers the called number, answers, hands a
:class:`PyVoipChannel` and a :class:`~ivr.engine.session.Session` to the loop, and then runs the
call's media loop until the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ivr.config import Config
from ivr.core.clock import LoopClock
from ivr.engine.actions import ThreadActionRunner
from ivr.engine.channel import RenderedPrompt
from ivr.engine.logsink import log_event
from ivr.engine.runtime import Runtime
from ivr.engine.session import Session
from ivr.flow.errors import FlowError
from ivr.flow.model import FlowSet
from ivr.flow.registry import FlowRegistry
from ivr.media.wav import load_8k_mono
from ivr.pyvoip.channel import PyVoipChannel
from ivr.pyvoip.phone import CallLeg, PhoneOptions, PyVoipPhone
from ivr.pyvoip.pump import CallPump, to_unsigned8
from ivr.store.db import CallStore
from ivr.tts.build import build_prompts
from ivr.tts.cache import PromptCache

log = logging.getLogger("ivr.pyvoip")

HANDOFF_TIMEOUT = 5.0  # seconds a call thread waits for the loop to take the call
AUDIO_CACHE_SIZE = 256  # converted prompt files kept in memory


@dataclass
class PyVoipServeOptions:
    """The phone's options plus what the server does at start."""

    phone: PhoneOptions
    build_prompts: bool = True
    register_wait: float = 10.0


class RegistrationFailed(RuntimeError):
    """The registrar did not accept the extension."""


def beep_audio(seconds: float = 0.25, freq: float = 1000.0) -> bytes:
    """The tone before a recording, as 8-bit unsigned audio."""
    t = np.arange(round(seconds * 8000)) / 8000.0
    return to_unsigned8((0.3 * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16))


class PyVoipServer:
    """Flows answering the calls a registrar sends to one pyVoIP extension."""

    def __init__(self, config: Config, options: PyVoipServeOptions) -> None:
        self.config = config
        self.options = options
        self.registry = FlowRegistry(config.flows_dir, config)
        self.sessions: dict[str, Session] = {}
        self.pumps: dict[str, CallPump] = {}
        self.recordings_dir = config.root / "var" / "recordings"
        self._audio: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self.phone: PyVoipPhone | None = None

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Load flows, open the store, build prompts, register.

        Raises:
            FlowError: the flows folder has errors.
            RegistrationFailed: the registrar refused or did not answer.
        """
        diagnostics = self.registry.reload()
        if FlowRegistry.has_errors(diagnostics):
            raise FlowError(diagnostics)
        self.loop = asyncio.get_running_loop()
        self.store = CallStore(self.config.store_path)
        self.prompts = PromptCache(self.config.prompts_dir)
        if self.options.build_prompts:
            report = await asyncio.to_thread(build_prompts, self.registry.current, self.prompts)
            log.info("call -: prompts: %d rendered, %d cached, %d recorded, %d per call",
                     report.rendered, report.cached, report.recorded, report.dynamic)
        self.recordings_dir.mkdir(parents=True, exist_ok=True)
        self.actions = ThreadActionRunner(self.loop, self.config.actions_path)
        self.runtime = Runtime(
            actions=self.actions,
            config_vars=dict(self.config.vars),
            transfer_allow=self.config.transfer_allow,
            actions_path=self.config.actions_path,
        )
        self.phone = PyVoipPhone(self.options.phone, self._on_call)
        phone = self.phone
        ok = await asyncio.to_thread(phone.start, self.options.register_wait)
        if not ok:
            status = phone.status
            await asyncio.to_thread(phone.stop)
            raise RegistrationFailed(
                f"{self.options.phone.username}@{self.options.phone.server}:"
                f"{self.options.phone.port}: {status}"
            )
        log.info("call -: registered %s at %s:%d (pyVoIP on %s:%d)", phone.options.username,
                 phone.options.server, phone.options.port, phone.options.local_ip,
                 phone.local_port)  # fmt: skip

    async def stop(self) -> None:
        """Hang up the calls, de-register, flush the records."""
        if self.phone is not None:
            await asyncio.to_thread(self.phone.stop)
        for session in list(self.sessions.values()):
            session.on_hangup()
        self.actions.shutdown(wait=False)
        await asyncio.to_thread(self.store.close)

    # --- calls (the call's pyVoIP thread) -------------------------------------------------

    def _on_call(self, leg: CallLeg) -> None:
        admitted = asyncio.run_coroutine_threadsafe(self._admit(leg.called), self.loop)
        try:
            choice = admitted.result(HANDOFF_TIMEOUT)
        except Exception:
            log.exception("call %s: the engine did not take the call", leg.call_id)
            choice = None
        if choice is None:
            leg.deny()
            return
        flowset, flow_id = choice
        try:
            leg.answer()
        except OSError as exc:
            # pyVoIP picks an RTP port from its range without trying it first; a port some
            # other socket holds makes answer() fail (measured under load when the range
            # overlapped the kernel's ephemeral ports). The call still rings: refuse it.
            log.warning("call %s: pyVoIP could not answer (%s): 486", leg.call_id, exc)
            leg.deny()
            return
        pump = CallPump(leg)
        begun = asyncio.run_coroutine_threadsafe(self._begin(leg, pump, flowset, flow_id),
                                                 self.loop)  # fmt: skip
        try:
            begun.result(HANDOFF_TIMEOUT)
        except Exception:
            log.exception("call %s: the session did not start", leg.call_id)
            leg.hangup()
            return
        try:
            pump.run()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed first
                self.loop.call_soon_threadsafe(self._call_done, leg.call_id)

    # --- calls (the loop) -----------------------------------------------------------------

    async def _admit(self, called: str) -> tuple[FlowSet, str] | None:
        flowset = self.registry.current
        flow_id = self.config.flow_for(called)
        if flow_id is None or flow_id not in flowset.flows:
            log.warning("call -: no flow answers %r: 486", called)
            return None
        return flowset, flow_id

    async def _begin(self, leg: CallLeg, pump: CallPump, flowset: FlowSet, flow_id: str) -> None:
        channel = PyVoipChannel(leg.info(), pump, self.loop, self._prompt_audio,
                                self.recordings_dir)  # fmt: skip
        session = Session(flowset, flow_id, channel, LoopClock(self.loop), self.runtime,
                          [self.store.sink, log_event])  # fmt: skip
        self.sessions[leg.call_id] = session
        self.pumps[leg.call_id] = pump
        session.start()

    def _call_done(self, call_id: str) -> None:
        self.pumps.pop(call_id, None)
        session = self.sessions.pop(call_id, None)
        if session is not None and not session.finished:
            session.on_hangup()

    # --- prompts --------------------------------------------------------------------------

    def _prompt_audio(self, prompt: RenderedPrompt) -> asyncio.Future[bytes | None]:
        return asyncio.ensure_future(self._load_prompt(prompt))

    async def _load_prompt(self, prompt: RenderedPrompt) -> bytes | None:
        path = await asyncio.to_thread(self.prompts.lookup, prompt.id, prompt.language,
                                       prompt.text, prompt.audio)  # fmt: skip
        if path is None and prompt.audio == "beep":
            return beep_audio()
        if path is None and prompt.text.strip():
            path = await asyncio.to_thread(self.prompts.render_dynamic, prompt.text,
                                           prompt.language)  # fmt: skip
        if path is None:
            return None
        return await asyncio.to_thread(self._unsigned8, Path(path))

    def _unsigned8(self, path: Path) -> bytes:
        """The prompt file as pyVoIP's 8-bit unsigned audio (converted once per file version)."""
        key = (str(path), path.stat().st_mtime_ns)
        audio = self._audio.get(key)
        if audio is None:
            audio = to_unsigned8(load_8k_mono(path))
            self._audio[key] = audio
            while len(self._audio) > AUDIO_CACHE_SIZE:
                self._audio.popitem(last=False)
        return audio
