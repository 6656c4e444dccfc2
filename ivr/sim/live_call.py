"""A scripted caller over real SIP and RTP: dials, listens, presses keys, speaks, hangs up.

**Speaking.** :func:`synthesize_speech` renders what the caller says with the prompt synthesizer
(ivr/tts, espeak-ng; cached by text under the prompts folder) as 8 kHz audio, and
:meth:`LiveCaller.say` sends it as RTP in the negotiated law (μ-law or A-law), like any audio:
the server hears TTS through G.711, finds the speech in it and recognises it. ``ivr call --say``
and the ``say`` steps of ``ivr test --live`` both speak this way.

:class:`LivePhone` is the SIP client and the media engine (one media clock) shared by every call
of a run; :class:`LiveCaller` is one call: its :class:`~ivr.sip.uac.OutgoingCall`, its RTP stream
and what it heard.

**Hearing.** Every received 20 ms frame goes through a voice-activity detector
(:class:`AudioMonitor`) whose end-of-speech silence is ``quiet_seconds`` (1 s): a stretch of
speech followed by that much silence is one *segment*. The server sends digital silence between
prompts, and prompt files pause for well under a second between sentences, so one segment is
about one prompt (or several queued back to back).

**When a prompt has finished** (what ``press`` waits for, as in the simulator): the caller is
*busy* while it hears speech, and also while the server's call record names a prompt that was
started after the last speech we heard ended: that prompt's audio is still to come (a prompt
with variables is synthesized first). A prompt whose audio never comes stops counting after
``no_audio_grace`` seconds. Record times are mapped to ours by the answer: the server's call
time 0 is the ACK, sent the moment the 200 arrives. Without a call record (a server on another
machine) only the audio decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ivr.core import events as ev
from ivr.core.events import Event
from ivr.media.player import EncodedAudio
from ivr.media.vad import Vad, VadConfig
from ivr.media.wav import load_8k_mono
from ivr.rtp.engine import MediaEngine
from ivr.rtp.stream import RtpStream, StreamConfig
from ivr.sim.records import CallRecords, RecordsUnavailable
from ivr.sip.offer_answer import PCMA, PCMU, LocalMedia
from ivr.sip.uac import OutgoingCall, SipClient

log = logging.getLogger("ivr.sim.live")

DTMF_MODES = ("rfc4733", "info", "inband")
FRAME_SECONDS = 0.02


def speech_language(text: str, call_language: str | None = None) -> str:
    """The language to speak ``text`` in: Mandarin for Chinese characters, else the call's
    language (English when that is unknown or Mandarin)."""
    if any("\u4e00" <= c <= "\u9fff" for c in text):
        return "zh"
    return call_language if call_language and call_language != "zh" else "en"


def synthesize_speech(prompts_dir: Path, text: str, language: str) -> NDArray[np.int16]:
    """``text`` spoken by the synthesizer, as 8 kHz mono samples (blocking: run it in a thread).

    Raises:
        TTSError: the synthesizer cannot render it.
    """
    from ivr.tts.cache import PromptCache

    return load_8k_mono(PromptCache(prompts_dir).render_dynamic(text, language))


@dataclass(frozen=True)
class PhoneOptions:
    """How the live caller dials and listens.

    Attributes:
        host: Our address for SIP and RTP (loopback by default).
        rtp_ports: Where our RTP ports come from (apart from a local server's range).
        quiet_seconds: Silence after speech that ends a prompt.
        poll_interval: Seconds between reads of the call record.
        no_audio_grace: Seconds after which a recorded prompt with no audio stops counting.
        answer_timeout: Seconds to wait for the final response to the INVITE.
    """

    host: str = "127.0.0.1"
    rtp_ports: tuple[int, int] = (40000, 49999)
    quiet_seconds: float = 1.0
    poll_interval: float = 0.05
    no_audio_grace: float = 3.0
    answer_timeout: float = 15.0


@dataclass
class Segment:
    """One stretch of speech heard: loop times of its start and end (None while it lasts)."""

    start: float
    end: float | None = None


class AudioMonitor:
    """Speech segments in the received audio (fed from the media clock's pass: kept cheap).

    Args:
        loop: The event loop (callbacks are scheduled on it, never run inside the pass).
        quiet_seconds: Silence that ends a segment.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, quiet_seconds: float = 1.0) -> None:
        self.loop = loop
        self.vad = Vad(VadConfig(end_silence=quiet_seconds))
        self.segments: list[Segment] = []
        self.frames = 0
        self.end_detected_at = -math.inf  # loop time the last segment was declared over
        self.on_change: Callable[[], None] | None = None
        self._t0: float | None = None

    @property
    def speaking(self) -> bool:
        """True while a segment lasts."""
        return self.vad.in_speech

    @property
    def last_end(self) -> float:
        """Loop time the last finished segment ended (-inf before any)."""
        for segment in reversed(self.segments):
            if segment.end is not None:
                return segment.end
        return -math.inf

    def frame(self, pcm: NDArray[np.int16]) -> None:
        """Take one decoded 20 ms frame."""
        if self._t0 is None:
            self._t0 = self.loop.time() - FRAME_SECONDS
        self.frames += 1
        event = self.vad.feed(pcm)
        if event is None:
            return
        at = self._t0 + event.time
        if event.kind == "start":
            self.segments.append(Segment(at))
        elif self.segments:
            self.segments[-1].end = at
            self.end_detected_at = self.loop.time()
        if self.on_change is not None:
            self.loop.call_soon(self.on_change)


class LivePhone:
    """The SIP client and media engine that a run's calls share (start, then place calls).

    Args:
        options: Addresses and timings.
        transfer_status: ``(refer_to) -> status`` for REFERs (default 200: transferred).
    """

    def __init__(self, options: PhoneOptions | None = None,
                 transfer_status: Callable[[str], int] | None = None) -> None:  # fmt: skip
        self.options = options or PhoneOptions()
        self._transfer_status = transfer_status
        self.client: SipClient | None = None
        self.media: MediaEngine | None = None

    async def start(self) -> None:
        """Bind the SIP socket and start the media clock."""
        loop = asyncio.get_running_loop()
        opts = self.options
        self.media = MediaEngine(loop, opts.host, opts.rtp_ports,
                                 config=StreamConfig(inactivity_timeout=None))  # fmt: skip
        self.client = SipClient(opts.host, 0, transfer_status=self._transfer_status)
        await self.client.start()

    async def close(self) -> None:
        """Close the client and the media engine."""
        if self.client is not None:
            await self.client.close()
        if self.media is not None:
            self.media.close()

    def caller(self, *, dtmf: str = "rfc4733", records: CallRecords | None = None) -> LiveCaller:
        """A new caller (not dialled yet)."""
        if dtmf not in DTMF_MODES:
            raise ValueError(f"dtmf must be one of {', '.join(DTMF_MODES)}, not {dtmf!r}")
        return LiveCaller(self, dtmf=dtmf, records=records)


@dataclass
class Sent:
    """Something the caller sent: loop time, kind (dtmf|speech|hangup) and detail."""

    at: float
    kind: str
    detail: str = ""


class LiveCaller:
    """One scripted call (made by :meth:`LivePhone.caller`).

    Attributes:
        call: The SIP call, after :meth:`dial`.
        stream: Its RTP stream.
        monitor: What was heard.
        events: The call's events read from the call record so far.
        sent: What we sent.
        record_error: Why the call record could not be read, if it could not.
    """

    def __init__(self, phone: LivePhone, *, dtmf: str, records: CallRecords | None) -> None:
        self.phone = phone
        self.dtmf = dtmf
        self.records = records
        self.loop = asyncio.get_running_loop()
        self.options = phone.options
        self.monitor = AudioMonitor(self.loop, phone.options.quiet_seconds)
        self.call: OutgoingCall | None = None
        self.stream: RtpStream | None = None
        self.events: list[Event] = []
        self.sent: list[Sent] = []
        self.record_error: str | None = None
        self.hung_up = False  # we sent the BYE (or CANCEL)
        self.transfer_status: Callable[[str], int] | None = None  # (refer_to) -> NOTIFY status
        self.on_event: Callable[[Event], None] | None = None
        self._watchers: list[Callable[[], None]] = []
        self._prompt_times: list[float] = []
        self._polled_at = -math.inf
        self._poller: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.monitor.on_change = self._notify

    # --- observing ---------------------------------------------------------------------------

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever something a caller notices changed (audio, records, end)."""
        self._watchers.append(callback)

    def _notify(self) -> None:
        self._changed.set()
        for callback in list(self._watchers):
            callback()

    @property
    def call_id(self) -> str:
        """The Call-ID ("" before :meth:`dial`)."""
        return self.call.call_id if self.call is not None else ""

    @property
    def t0(self) -> float:
        """Loop time of the answer: call time 0 of the server's records."""
        call = self.call
        if call is None or call.answered_at is None:
            return math.nan
        return call.answered_at

    @property
    def refers(self) -> list[str]:
        """The Refer-To of every REFER the server sent (transfers asked for)."""
        return list(self.call.refers) if self.call is not None else []

    @property
    def ended(self) -> bool:
        """True once the SIP call is over (or never came up)."""
        return self.call is None or self.call.ended

    @property
    def call_ended_in_record(self) -> bool:
        """True once the call record has its ``call_end``."""
        return any(e.kind == ev.CALL_END for e in self.events)

    @property
    def busy(self) -> bool:
        """True while a prompt plays or is still to come (see the module docstring)."""
        monitor = self.monitor
        if monitor.speaking:
            return True
        if self.records is not None and self.record_error is None:
            if self._polled_at < monitor.end_detected_at:
                return True  # read the record once more before calling it quiet
            now, last_end = self.loop.time(), monitor.last_end
            for started in reversed(self._prompt_times):
                if started <= last_end:
                    break
                if now - started < self.options.no_audio_grace:
                    return True
        return False

    # --- the call ----------------------------------------------------------------------------

    async def dial(self, target: str, *, caller: str = "caller",
                   headers: Sequence[tuple[str, str]] = ()) -> int:  # fmt: skip
        """Place the call; returns the final status (200 when answered and media agreed).

        Raises:
            ValueError: ``target`` is not a SIP URI.
            OSError: No RTP port.
        """
        phone = self.phone
        assert phone.client is not None and phone.media is not None, "LivePhone not started"
        self.stream = stream = await phone.media.open_stream("caller")
        host, port = stream.local_address
        dtmf_pt = None if self.dtmf == "inband" else 101
        local = LocalMedia(host, port, codecs=(PCMU, PCMA), dtmf_payload_type=dtmf_pt)
        self.call = call = phone.client.call(target, local, caller=caller, headers=list(headers))
        call.on_hangup = self._notify
        call.on_refer = lambda _target: self._notify()
        call.transfer_status = self.transfer_status
        try:
            status = await call.wait_answered(self.options.answer_timeout)
        except TimeoutError:
            call.hangup()
            stream.close()
            return 408
        plan = call.media
        if call.sip is None or status >= 300 or plan is None:
            stream.close()  # (a 2xx without usable media is ended by the client: ACK, BYE)
            return status if status >= 300 else 488
        stream.on_audio = self.monitor.frame
        stream.start((plan.remote_address, plan.remote_port), plan.payload_type,
                     plan.dtmf_payload_type)  # fmt: skip
        call.sip.add_done_callback(lambda _call: self._sip_ended())
        if self.records is not None:
            self._poller = asyncio.ensure_future(self._poll())
        return status

    def _sip_ended(self) -> None:
        if self.stream is not None:
            self.stream.close()
        self._notify()

    def press(self, digits: str) -> None:
        """Send keys now: RFC 4733 events (in-band tones when telephone-event was not agreed),
        or SIP INFO in ``info`` mode."""
        if self.call is None or self.stream is None or self.ended:
            return
        self.sent.append(Sent(self.loop.time(), "dtmf", digits))
        if self.dtmf == "info":
            task = asyncio.ensure_future(self.call.send_info(digits))
            task.add_done_callback(_log_failure)
        else:
            self.stream.send_dtmf(digits)

    def say(self, audio: EncodedAudio | ArrayLike, label: str = "") -> asyncio.Future[None]:
        """Play 8 kHz audio to the server (speech); the future resolves when it was sent."""
        done: asyncio.Future[None] = self.loop.create_future()
        if self.stream is None or self.ended:
            done.set_result(None)
            return done
        self.sent.append(Sent(self.loop.time(), "speech", label))
        def played(_id: int) -> None:
            if not done.done():
                done.set_result(None)

        self.stream.player.play(audio, played)
        return done

    def hangup(self) -> None:
        """End the call from our side (BYE, or CANCEL while ringing)."""
        if self.call is None or self.ended:
            return
        self.hung_up = True
        self.sent.append(Sent(self.loop.time(), "hangup"))
        self.call.hangup()

    async def wait_ended(self, timeout: float) -> bool:
        """Wait until the SIP call is over; False if it is not within ``timeout``."""
        if self.call is None:
            return True
        try:
            await self.call.wait_ended(timeout)
        except TimeoutError:
            return False
        return True

    async def wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``condition()`` holds (checked at every change); False on timeout."""
        deadline = self.loop.time() + timeout
        while not condition():
            left = deadline - self.loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.25))
        return True

    async def wait_prompt_finished(self, since: float, timeout: float) -> bool:
        """Wait until speech that began after loop time ``since`` was heard and is over (and no
        recorded prompt is still to come); False on timeout or when the call ended."""

        def finished() -> bool:
            if self.ended:
                return True
            heard = any(s.start >= since for s in self.monitor.segments)
            return heard and not self.busy

        return await self.wait_until(finished, timeout) and not self.ended

    async def close(self) -> None:
        """Hang up if still up, stop reading records, release the stream."""
        if not self.ended:
            self.hangup()
            await self.wait_ended(5.0)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.stream is not None:
            self.stream.close()

    # --- the call record ---------------------------------------------------------------------

    async def _poll(self) -> None:
        """Read new events every ``poll_interval`` until the record has the call's end (or
        a few seconds after the SIP call ended without it)."""
        records, interval = self.records, self.options.poll_interval
        assert records is not None
        ended_at: float | None = None
        while True:
            started = self.loop.time()
            try:
                await self.refresh()
            except RecordsUnavailable as exc:
                if self.record_error is None:
                    log.info("call %s: %s", self.call_id, exc)
                self.record_error = str(exc)
            else:
                self.record_error = None
            self._polled_at = started
            self._notify()
            if self.call_ended_in_record:
                return
            if self.ended:
                ended_at = ended_at or self.loop.time()
                if self.loop.time() - ended_at > 5.0:
                    return
            await asyncio.sleep(interval)

    async def refresh(self) -> list[Event]:
        """Read the events recorded since the last read (also fed to ``on_event``).

        Raises:
            RecordsUnavailable: The store cannot be read.
        """
        if self.records is None or self.call is None:
            return []
        last = self.events[-1].seq if self.events else 0
        new = await asyncio.to_thread(self.records.events, self.call.call_id, last)
        for event in new:
            self.events.append(event)
            if event.kind == ev.PROMPT:
                self._prompt_times.append(self.t0 + event.t)
            if self.on_event is not None:
                self.on_event(event)
        return new


def _log_failure(task: asyncio.Future[list[int]]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("INFO DTMF failed: %s", task.exception())
