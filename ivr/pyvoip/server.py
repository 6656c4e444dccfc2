"""The engine as a pyVoIP extension: register to a PBX/registrar, answer what it sends.

A transport over the engine host (:mod:`ivr.host`): the host starts first (flows, store,
prompts, speech, actions; a bad flow folder refuses to start), then the pyVoIP phone (which
registers). Each call the registrar sends arrives on a pyVoIP thread (see
:mod:`ivr.pyvoip.phone`); that thread asks the loop which flow answers the called number,
answers, hands a :class:`PyVoipChannel` to the loop, where the host starts its session, and then
runs the call's media loop until the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from ivr.config import Config
from ivr.core.clock import LoopClock
from ivr.engine.channel import RenderedPrompt
from ivr.host.host import Admission, EngineHost, HostOptions
from ivr.media.wav import load_8k_mono
from ivr.pyvoip.channel import PyVoipChannel
from ivr.pyvoip.phone import CallLeg, PhoneOptions, PyVoipPhone
from ivr.pyvoip.pump import CallPump, to_unsigned8
from ivr.store.refused import RefusedCall

log = logging.getLogger("ivr.pyvoip")

HANDOFF_TIMEOUT = 5.0  # seconds a call thread waits for the loop to take the call
AUDIO_CACHE_SIZE = 256  # converted prompt files kept in memory


@dataclass
class PyVoipServeOptions:
    """The phone's options plus what the server does at start."""

    phone: PhoneOptions
    build_prompts: bool = True
    register_wait: float = 10.0
    watch_interval: float = 1.0  # seconds between looks at the flows folder (0: no reload)


class RegistrationFailed(RuntimeError):
    """The registrar did not accept the extension."""


class PyVoipServer:
    """Flows answering the calls a registrar sends to one pyVoIP extension."""

    def __init__(self, config: Config, options: PyVoipServeOptions) -> None:
        self.config = config
        self.options = options
        self.host = EngineHost(config, HostOptions(build_prompts=options.build_prompts,
                                                   watch_interval=options.watch_interval))
        self.pumps: dict[str, CallPump] = {}
        self._audio: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self.phone: PyVoipPhone | None = None

    # --- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the host, then register.

        Raises:
            FlowError: the flows folder has errors.
            RegistrationFailed: the registrar refused or did not answer.
        """
        await self.host.start()
        self.loop = asyncio.get_running_loop()
        self.phone = PyVoipPhone(self.options.phone, self._on_call, self._refused)
        phone = self.phone
        ok = await asyncio.to_thread(phone.start, self.options.register_wait)
        if not ok:
            status = phone.status
            await asyncio.to_thread(phone.stop)
            await self.host.stop()
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
        await self.host.stop()

    # --- calls (the call's pyVoIP thread) -------------------------------------------------

    def _refused(self, leg: CallLeg, reason: str) -> None:
        """Record a call pyVoIP turned down (486, its only refusal): the reports' offered
        calls. The store's refusal queue is thread-safe."""
        self.host.store.refused(RefusedCall(time.time(), leg.call_id, leg.caller, leg.called,
                                            486, reason, "pyvoip"))

    def _on_call(self, leg: CallLeg) -> None:
        admitted = asyncio.run_coroutine_threadsafe(self._admit(leg), self.loop)
        try:
            admission = admitted.result(HANDOFF_TIMEOUT)
        except Exception:
            log.exception("call %s: the engine did not take the call", leg.call_id)
            admission = None
        if admission is None:
            leg.deny()
            self._refused(leg, "no flow for this number")
            return
        try:
            leg.answer()
        except OSError as exc:
            # pyVoIP picks an RTP port from its range without trying it first; a port some
            # other socket holds makes answer() fail (measured under load when the range
            # overlapped the kernel's ephemeral ports). The call still rings: refuse it.
            log.warning("call %s: pyVoIP could not answer (%s): 486", leg.call_id, exc)
            leg.deny()
            self._refused(leg, "answer failed")
            return
        pump = CallPump(leg)
        begun = asyncio.run_coroutine_threadsafe(self._begin(leg, pump, admission), self.loop)
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

    async def _admit(self, leg: CallLeg) -> Admission | None:
        return self.host.admit(leg.called, leg.call_id)

    async def _begin(self, leg: CallLeg, pump: CallPump, admission: Admission) -> None:
        channel = PyVoipChannel(leg.info(), pump, self.loop, self._prompt_audio,
                                self.host.recordings_dir,
                                speech=self.host.speech)  # fmt: skip
        self.pumps[leg.call_id] = pump
        self.host.begin(channel, admission, LoopClock(self.loop))

    def _call_done(self, call_id: str) -> None:
        self.pumps.pop(call_id, None)
        self.host.end(call_id)

    # --- prompts --------------------------------------------------------------------------

    def _prompt_audio(self, prompt: RenderedPrompt) -> asyncio.Future[bytes | None]:
        return asyncio.ensure_future(self._load_prompt(prompt))

    async def _load_prompt(self, prompt: RenderedPrompt) -> bytes | None:
        audio = await self.host.prompt_audio(prompt)
        if audio is None:
            return None
        if isinstance(audio, Path):
            return await asyncio.to_thread(self._unsigned8, audio)
        return to_unsigned8(audio)

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
