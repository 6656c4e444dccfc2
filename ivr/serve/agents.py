"""Agent legs over SIP: the queue rings an agent for a caller, and on answer the two are bridged.

An :class:`AgentDialer` belongs to the server (its user agent, its media engine, its prompts);
each ring is an :class:`AgentLeg`:

1. an RTP stream is opened for the agent's leg and the agent's registered contact is called from
   the server's own SIP socket (the agent sees the caller's number as From), for the offer's
   ring timeout; meanwhile the whisper ("corporate customer, verified") is rendered;
2. answered (200): the stream starts with the negotiated media and a
   :class:`~ivr.rtp.bridge.Bridge` relays audio and keys between caller and agent, after the
   whisper has played to the agent alone; the leg reports ``answered`` once the two hear each
   other;
3. 486/603/4xx: ``rejected``; the ring timeout (487 "no answer", 408): ``no_answer``; anything
   else (unreachable, 5xx): ``failed``;
4. once bridged, the agent's BYE (or a lost agent leg) reports ``ended``; :meth:`AgentLeg.stop`
   (the caller hung up, the queue withdrew the offer) cancels a ringing agent or hangs up a
   bridged one: no agent leg outlives its caller.

Every outcome is reported once, on the loop, to the ``report(offer_id, state)`` callback the
channel gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ivr.engine.queueing import ANSWERED, ENDED, FAILED, NO_ANSWER, REJECTED, AgentOffer
from ivr.media.player import EncodedAudio
from ivr.rtp.bridge import Bridge
from ivr.rtp.engine import MediaEngine
from ivr.rtp.stream import RtpStream
from ivr.sip.offer_answer import LocalMedia, MediaPlan
from ivr.sip.outgoing import OutgoingCall
from ivr.sip.ua import UserAgent

log = logging.getLogger("ivr.serve")

Report = Callable[[int, str], None]
# (text, language) -> the whisper's audio (None: nothing to say)
WhisperSource = Callable[[str, str], Awaitable[EncodedAudio | None]]
REJECTIONS = frozenset({403, 480, 486, 600, 603})
NO_ANSWER_STATUSES = frozenset({408, 487})


def start_media(stream: RtpStream, plan: MediaPlan, signalled_from: str | None = None) -> None:
    """Start ``stream`` with what the answer agreed (peer address, codec, telephone-event).

    RTP is latched (symmetric): it goes where the peer's RTP comes from. Before the peer's
    first packet it goes to the SDP address only when that is the address the signalling came
    from (``signalled_from``; None: the peer is one we called, at an address we chose): an SDP
    naming anybody else gets nothing until that somebody sends (no reflection).
    """
    trusted = signalled_from is None or signalled_from == plan.remote_address
    stream.start((plan.remote_address, plan.remote_port), plan.payload_type,
                 plan.dtmf_payload_type, latch=True, send_unlatched=trusted)  # fmt: skip


def leg_state(status: int) -> str:
    """What a final status to the agent's INVITE means for the queue."""
    if status in REJECTIONS:
        return REJECTED
    if status in NO_ANSWER_STATUSES:
        return NO_ANSWER
    return FAILED


class AgentDialer:
    """Rings agents for the callers of one server."""

    def __init__(self, ua: UserAgent, media: MediaEngine, whisper: WhisperSource) -> None:
        self.ua = ua
        self.media = media
        self.whisper = whisper

    def ring(self, offer: AgentOffer, caller_stream: RtpStream, caller: str, language: str,
             report: Report) -> AgentLeg:  # fmt: skip
        leg = AgentLeg(self, offer, caller_stream, caller, language, report)
        leg.task = asyncio.ensure_future(leg.run())
        return leg


class AgentLeg:
    """One agent rung for one caller (see the module docstring)."""

    def __init__(self, dialer: AgentDialer, offer: AgentOffer, caller_stream: RtpStream,
                 caller: str, language: str, report: Report) -> None:  # fmt: skip
        self.dialer = dialer
        self.offer = offer
        self.caller_stream = caller_stream
        self.caller = caller
        self.language = language
        self._report = report
        self.task: asyncio.Future[None] | None = None
        self.call: OutgoingCall | None = None
        self.stream: RtpStream | None = None
        self.bridge: Bridge | None = None
        self.stopped = False
        self._told: set[str] = set()

    async def run(self) -> None:
        offer = self.offer
        try:
            self.stream = await self.dialer.media.open_stream(f"agent-{offer.id}")
            whisper = asyncio.ensure_future(self._whisper())
            self.call = call = self.dialer.ua.call(
                offer.contact, LocalMedia(*self.stream.local_address), caller=self.caller or None,
                timeout=offer.ring_timeout)  # fmt: skip
            call.on_hangup = self._agent_gone
            status = await call.wait_answered()
            if self.stopped:
                return
            if status != 200 or not call.connected or call.media is None:
                self._close()
                self._tell(leg_state(status))
                return
            start_media(self.stream, call.media)
            audio = await whisper
            if self.stopped:
                return
            self.bridge = Bridge(self.caller_stream, self.stream, whisper=audio,
                                 on_connected=lambda: self._tell(ANSWERED))  # fmt: skip
        except Exception:  # a malformed contact, no RTP port: the agent cannot be reached
            log.exception("call %s: ringing agent %s failed", self.caller_stream.call_id,
                          offer.agent)  # fmt: skip
            self._close()
            self._tell(FAILED)

    async def _whisper(self) -> EncodedAudio | None:
        if not self.offer.whisper:
            return None
        try:
            return await self.dialer.whisper(self.offer.whisper, self.language)
        except Exception:  # say nothing rather than keep the caller from the agent
            log.exception("call %s: the whisper could not be rendered",
                          self.caller_stream.call_id)  # fmt: skip
            return None

    def _agent_gone(self) -> None:
        """The agent hung up (or their leg was lost)."""
        if self.stopped:
            return
        was_bridged = self.bridge is not None and self.bridge.connected
        self._close()
        self._tell(ENDED if was_bridged else FAILED)

    def stop(self) -> None:
        """The caller is gone or the offer was withdrawn: end the agent's leg, say nothing."""
        if self.stopped:
            return
        self.stopped = True
        self._close()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def _close(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        if self.call is not None and not self.call.ended:
            self.call.hangup()
        if self.stream is not None:
            with contextlib.suppress(Exception):
                self.stream.close()

    def _tell(self, state: str) -> None:
        """Report each state once (``answered`` then ``ended``, or one of the misses)."""
        if state in self._told or (self.stopped and state != ENDED):
            return
        self._told.add(state)
        self._report(self.offer.id, state)
