"""One call's RTP audio stream: a UDP socket, sending on the media clock, receiving and analysing.

**Sending.** Once :meth:`RtpStream.start` has been called, the stream sends one packet per media
clock tick, always: the player's next frame, or silence when nothing plays (the peer's jitter
buffer and any NAT on the way stay fed). SSRC, the first sequence number and the first timestamp
come from the engine's seedable generator. The timestamp advances 160 per tick whether or not a
packet goes out; the sequence number advances per packet sent. *Marker bit*: RFC 3551 §4.1 sets it
on the first packet of a talkspurt, after silence in which nothing was sent. This stream sends
continuously, so the only such packets are the first one after :meth:`RtpStream.start` and the
first after sending resumes (hold ended); prompt starts are not marked. Telephone events set their
own marker (RFC 4733). :meth:`RtpStream.send_dtmf` sends RFC 4733 events in place of audio, one
packet per tick; a playing prompt pauses meanwhile.

**Relaying** (:mod:`ivr.rtp.bridge`): a :class:`FrameFeed` set as :attr:`RtpStream.feed` is asked
for one frame on every tick, whether or not the stream sends then (so what it relays stays in
step with the media clock); the frame goes out when no telephone event is due and the player has
nothing to play (a prompt or an in-band key played on this stream wins), else it is dropped.

**Receiving.** Datagrams are read straight from the socket with ``loop.add_reader``, one per
callback, with no asyncio transport in between. The socket is ``connect()``-ed to the negotiated
remote, so the kernel drops datagrams from any other source; whatever still arrives
from another address (queued before the connect) is counted as *foreign* and dropped. With
``latch=True`` (a peer behind NAT whose packets do not come from its SDP address, "comedia") the
first well-formed RTP packet from anywhere chooses the peer; the stream connects to it and sends
there from then on, and other sources are dropped. RTCP, whether on the RTP port (RFC 5761
demultiplexing) or on port + 1, is read and ignored. Malformed datagrams are counted and dropped.
Accepted packets go to the stream's :class:`~ivr.rtp.receiver.RtpReceiver` (jitter buffer,
RFC 4733 and in-band DTMF, VAD, decoded frames; see there).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ivr.media.clock import MediaClock
from ivr.media.g711 import codec_for
from ivr.media.player import Player
from ivr.media.tones import dtmf_tones
from ivr.rtp.dtmf import dtmf_payloads, event_code
from ivr.rtp.packet import RtpPacket, RtpParseError
from ivr.rtp.receiver import AudioCallback, RtpReceiver, StreamConfig, StreamStats

__all__ = ["Address", "RtpStream", "StreamConfig", "StreamStats"]

log = logging.getLogger("ivr.rtp")

SAMPLES_PER_TICK = 160
_HEADER = struct.Struct("!BBHII")
_VERSION_BYTE = 0x80
_MAX_DATAGRAM = 2048

Address = tuple[str, int]


class FrameFeed(Protocol):
    """Frames from elsewhere (another call's leg) for a stream to send, one per tick."""

    def next_frame(self, payload_type: int) -> bytes | None:
        """This tick's 160-byte frame in ``payload_type``'s law, or None (silence)."""


class RtpStream:
    """One call's RTP session over a bound, non-blocking UDP socket (made by the MediaEngine).

    Public callback attributes, all optional, set by the call's channel: ``on_dtmf(digit)``,
    ``on_speech_start()``, ``on_speech_end()``, ``on_inactive()`` (scheduled on the loop) and
    ``on_audio(frame)`` (called from the media clock's pass with each decoded 20 ms frame).
    ``feed`` (a :class:`FrameFeed`) and ``receiver.relay`` are set by a bridge.

    Args:
        clock: The process's media clock.
        sock: The RTP socket, bound to an even port.
        rtcp_sock: A socket bound to port + 1 whose datagrams are read and dropped, or None.
        ssrc: Our synchronization source.
        sequence: First sequence number to send.
        timestamp: First RTP timestamp.
        config: Shared settings.
        call_id: Put in every log line.
    """

    def __init__(
        self,
        clock: MediaClock,
        sock: socket.socket,
        *,
        rtcp_sock: socket.socket | None = None,
        ssrc: int = 0,
        sequence: int = 0,
        timestamp: int = 0,
        config: StreamConfig | None = None,
        call_id: str = "-",
    ) -> None:
        self.clock = clock
        self.loop = clock.loop
        self.config = config or StreamConfig()
        self.call_id = call_id
        self.stats = StreamStats()
        self.player = Player(self.loop)
        self.ssrc = ssrc & 0xFFFF_FFFF
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_speech_start: Callable[[], None] | None = None
        self.on_speech_end: Callable[[], None] | None = None
        self.on_inactive: Callable[[], None] | None = None
        self.on_audio: AudioCallback | None = None
        self.feed: FrameFeed | None = None
        self.receiver = RtpReceiver(clock, self, self.stats, self.config, call_id)
        self._sock = sock
        self._rtcp = rtcp_sock
        host, port = sock.getsockname()[:2]
        self._local: Address = (host, port)  # kept: still known after close()
        self._seq = sequence & 0xFFFF
        self._ts = timestamp & 0xFFFF_FFFF
        self._closed = False
        self._started = False
        self._sending = False
        self._marker = False
        self._remote: Address | None = None  # where we send
        self._peer: tuple[object, ...] | None = None  # accepted source, as recvfrom reports it
        self._latch_pending = False
        self._pt = 0
        self._silence = b""
        self._dtmf_pt: int | None = None
        self._dtmf_queue: deque[tuple[str, int]] = deque()  # keys waiting to be sent
        self._dtmf_out: deque[tuple[bool, bytes, int]] = deque()  # packets of the current key
        self._dtmf_gap = 0  # ticks of audio still due before the next key
        self.loop.add_reader(sock.fileno(), self._on_readable)
        if rtcp_sock is not None:
            self.loop.add_reader(rtcp_sock.fileno(), self._on_rtcp)

    @property
    def local_address(self) -> Address:
        """(host, port) we receive RTP on: put it in the SDP (c= and m=audio)."""
        return self._local

    @property
    def remote_address(self) -> Address | None:
        """Where we send RTP (the negotiated or latched peer), or None before start()."""
        return self._remote

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    @property
    def sequence(self) -> int:
        """The sequence number of the next packet to send."""
        return self._seq

    def start(
        self,
        remote: Address,
        payload_type: int,
        dtmf_payload_type: int | None = None,
        *,
        send: bool = True,
        receive: bool = True,
        latch: bool = False,
    ) -> None:
        """Start (or, after a re-INVITE, update) the media session.

        Args:
            remote: The peer's RTP (host, port) from its SDP; a numeric IP address. Address
                0.0.0.0 (an RFC 2543 hold) means do not send.
            payload_type: 0 (PCMU) or 8 (PCMA), as negotiated.
            dtmf_payload_type: The negotiated telephone-event payload type, or None: then keys
                are detected in-band and :meth:`send_dtmf` sends tones.
            send: False for recvonly/inactive (on hold): nothing is sent and prompts pause.
            receive: False for sendonly/inactive: no inactivity timeout.
            latch: Take the first RTP source as the peer (comedia) instead of ``remote``.

        Raises:
            ValueError: a payload type other than 0 or 8, or a remote host that is not a numeric
                IP address.
            RuntimeError: the stream is closed.
        """
        if self._closed:
            raise RuntimeError("start() on a closed RTP stream")
        codec = codec_for(payload_type)
        held = remote[0] in ("0.0.0.0", "::")
        if not held:
            ipaddress.ip_address(remote[0])  # numeric only: never a DNS lookup on the loop
            if not latch:
                self._latch_pending = False
                self._connect(remote)
            elif self._peer is None:
                self._latch_pending = True  # send to the SDP address until the peer shows up
            if self._peer is None or not latch:
                self._remote = (remote[0], remote[1])
        self._pt = payload_type
        self._silence = bytes([codec.silence]) * SAMPLES_PER_TICK
        self._dtmf_pt = dtmf_payload_type
        if dtmf_payload_type is None:  # a re-INVITE dropped telephone-event
            self._dtmf_queue.clear()
            self._dtmf_out.clear()
        self.receiver.configure(payload_type, dtmf_payload_type, receive)
        sending = send and not held
        if sending and not self._sending:
            self._marker = True  # first packet of the stream, or after a hold
        self._sending = sending
        if not self._started:
            self._started = True
            self.clock.add(self)

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send key presses: RFC 4733 events, or in-band tones when not negotiated.

        Each key takes ``duration_ms`` (whole ticks) plus its three end packets, followed by
        ``StreamConfig.dtmf_gap_ms`` of audio before the next key. In-band tones are queued on
        the player like any audio.

        Raises:
            ValueError: a character that is not a DTMF key.
        """
        for digit in digits:
            event_code(digit)
        if self._dtmf_pt is None:
            self.player.play(dtmf_tones(digits, duration_ms, self.config.dtmf_gap_ms))
            return
        log.debug("[%s] > DTMF %d keys", self.call_id, len(digits))  # never the keys: PINs
        self._dtmf_queue.extend((digit, duration_ms) for digit in digits)

    def add_audio_sink(self, sink: AudioCallback) -> None:
        """Also give every decoded frame to ``sink`` (a recorder), besides ``on_audio``."""
        self.receiver.add_sink(sink)

    def remove_audio_sink(self, sink: AudioCallback) -> None:
        """Stop giving frames to ``sink``."""
        self.receiver.remove_sink(sink)

    def close(self) -> None:
        """Stop sending and receiving and close the sockets (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.clock.remove(self)
        self.clock.remove(self.receiver)
        self.player.stop()
        for sock in (self._sock, self._rtcp):
            if sock is not None:
                self.loop.remove_reader(sock.fileno())
                sock.close()

    # ---------------------------------------------------------------- media clock

    def clock_tick(self) -> None:
        """Send this tick's packet: a telephone event, the player's frame, the feed's frame, or
        silence."""
        ts = self._ts
        self._ts = (ts + SAMPLES_PER_TICK) & 0xFFFF_FFFF
        feed = self.feed
        relayed = None if feed is None else feed.next_frame(self._pt)
        if not self._sending:
            return
        if self._dtmf_out or self._dtmf_queue or self._dtmf_gap:
            event = self._next_event(ts)
            if event is not None:
                marker, data, event_ts = event
                second = (0x80 if marker else 0) | (self._dtmf_pt or 0)
                header = _HEADER.pack(_VERSION_BYTE, second, self._seq, event_ts, self.ssrc)
                self._emit(header + data)
                return
        payload = self.player.next_payload(self._pt)
        if payload is None:
            payload = relayed
        second = self._pt
        if self._marker:
            self._marker = False
            second |= 0x80
        header = _HEADER.pack(_VERSION_BYTE, second, self._seq, ts, self.ssrc)
        self._emit(header + (self._silence if payload is None else payload))

    def clock_housekeeping(self, now: float) -> None:
        """Let the receiver check its timers (inactivity, flushing held audio)."""
        self.receiver.housekeeping(now)

    def _emit(self, packet: bytes) -> None:
        try:
            if self._peer is not None:
                self._sock.send(packet)  # connected: cheaper than sendto (measured 20 %)
            elif self._remote is not None:
                self._sock.sendto(packet, self._remote)
            self.stats.sent += 1
        except OSError:  # ICMP unreachable from an earlier packet, a full buffer: RTP is lossy
            self.stats.send_errors += 1
        self._seq = (self._seq + 1) & 0xFFFF

    def _next_event(self, ts: int) -> tuple[bool, bytes, int] | None:
        if not self._dtmf_out:
            if self._dtmf_gap:
                self._dtmf_gap -= 1
                return None
            if not self._dtmf_queue:
                return None
            digit, duration_ms = self._dtmf_queue.popleft()
            self._dtmf_out.extend(dtmf_payloads(digit, ts, duration_ms=duration_ms))
        event = self._dtmf_out.popleft()
        if not self._dtmf_out:
            self._dtmf_gap = -(-self.config.dtmf_gap_ms // 20)
        return event

    # ---------------------------------------------------------------- receiving

    def _on_readable(self) -> None:
        # One datagram per call: the selector is level-triggered, so the loop calls again while
        # more are waiting. Reading until EAGAIN would cost a second, failing recvfrom per packet
        # in the usual case of one packet per tick (measured: 3 to 5 % of a core at 300 calls).
        try:
            data, addr = self._sock.recvfrom(_MAX_DATAGRAM)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ICMP port unreachable reported on a connected socket
            self.stats.send_errors += 1
            return
        self._datagram(data, addr)

    def _datagram(self, data: bytes, addr: tuple[object, ...]) -> None:
        stats = self.stats
        if addr != self._peer and not self._latch_pending:
            stats.foreign += 1
            if stats.foreign == 1 or stats.foreign % 1000 == 0:
                log.debug("[%s] x RTP from %s (%d foreign)", self.call_id, addr, stats.foreign)
            return
        if len(data) > 1 and 192 <= data[1] <= 223:  # RTCP types 192..223 (RFC 5761 §4)
            stats.rtcp += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpParseError as exc:
            stats.malformed += 1
            if stats.malformed == 1 or stats.malformed % 1000 == 0:
                log.debug("[%s] x %s (%d malformed)", self.call_id, exc, stats.malformed)
            return
        if self._latch_pending:
            self._latch(addr)
        self.receiver.packet(packet)

    def _latch(self, addr: tuple[object, ...]) -> None:
        self._latch_pending = False
        host, port = addr[0], addr[1]
        assert isinstance(host, str) and isinstance(port, int)
        self._connect((host, port))
        self._remote = (host, port)
        log.info("[%s] RTP latched to %s:%d", self.call_id, host, port)

    def _connect(self, remote: Address) -> None:
        """Connect the socket to the peer: the kernel then drops datagrams from other sources.

        Never disconnected: a hold (0.0.0.0) just stops sending, and a re-INVITE reconnects.
        """
        self._sock.connect(remote)
        self._peer = self._sock.getpeername()

    def _on_rtcp(self) -> None:
        assert self._rtcp is not None
        try:
            self._rtcp.recv(_MAX_DATAGRAM)
        except OSError:  # EAGAIN, or an ICMP error: nothing to ignore
            return
        self.stats.rtcp += 1
