"""The media engine of one process: the media clock, RTP port allocation, streams, prompt cache.

One :class:`MediaEngine` per process and event loop (docs/ARCHITECTURE.md: one process per core,
each with its own loop and media clock). The SIP layer asks it for a stream per call, puts
``stream.local_address`` into its SDP, and starts the stream with the negotiated codec and remote
address::

    media = MediaEngine(loop)
    stream = await media.open_stream(call_id)
    host, port = stream.local_address                       # -> SDP c= / m=audio
    stream.start((plan.remote_address, plan.remote_port), plan.payload_type,
                 plan.dtmf_payload_type)
    stream.on_dtmf = listener.on_dtmf
    stream.player.play(await media.prompts.load(path), listener.on_playback_done)
    ...
    stream.close()

Ports: RTP takes even ports of ``port_range`` and, with ``rtcp=True``, the odd port above it is
bound too (RFC 3550 §11: the pair belongs to the session; whatever RTCP the peer sends there is
read and dropped, and no ICMP "port unreachable" goes back). The search starts at a random even
port of the range and moves on past ports in use, so several engine processes sharing one range
rarely collide and never fail because of it. Each stream then holds two file descriptors.

BLAS threads: the clock's batched in-band DTMF classification is one matrix product over all
calls' frames, which OpenBLAS (numpy's default BLAS) hands to a pool of threads that spin on the
other cores. Measured at 300 full-duplex calls with in-band detection: 85 to 108 % of a core
with OpenBLAS's default (2 threads here), 28 to 35 % with ``OPENBLAS_NUM_THREADS=1``. Start
engine processes (one per core) with that variable set; it must be in the environment before
numpy is first imported.

SSRCs, first sequence numbers and first timestamps come from one generator per engine: seeded
(``seed=``) it repeats exactly, for tests (STYLE.md rule 8); unseeded it uses the operating
system's random source, as RFC 3550 §5.1 wants them unpredictable.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import random
import socket

from ivr.media.clock import MediaClock
from ivr.media.player import PromptCache
from ivr.rtp.stream import RtpStream, StreamConfig


class PortAllocator:
    """Binds UDP sockets on even ports of a range (and optionally the odd port above each).

    Args:
        host: Numeric IPv4 or IPv6 address to bind.
        port_range: (low, high), both inclusive; RTP uses the even ports.
        rng: Chooses where the search starts.
        rtcp: Also bind port + 1.
    """

    def __init__(
        self, host: str, port_range: tuple[int, int], rng: random.Random, rtcp: bool = True
    ) -> None:
        low, high = port_range
        low += low & 1
        if rtcp:
            high -= 1  # the RTCP port of the last pair must fit
        if not 0 < low <= high <= 65535:
            raise ValueError(f"no even port in range {port_range}")
        self.host = host
        self.rtcp = rtcp
        self.family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        self._ports = range(low, high + 1, 2)
        self._next = rng.randrange(len(self._ports))
        self._in_use: set[int] = set()

    def bind(self) -> tuple[socket.socket, socket.socket | None]:
        """Bind the next free RTP socket (and its RTCP socket), non-blocking.

        Raises:
            OSError: every port of the range is taken (EADDRINUSE).
        """
        for _ in range(len(self._ports)):
            port = self._ports[self._next]
            self._next = (self._next + 1) % len(self._ports)
            if port in self._in_use:
                continue
            pair = self._try(port)
            if pair is not None:
                self._in_use.add(port)
                return pair
        raise OSError(errno.EADDRINUSE, f"no free RTP port on {self.host} in {self._ports}")

    def release(self, port: int) -> None:
        """Mark ``port`` free again (its sockets are already closed)."""
        self._in_use.discard(port)

    def _try(self, port: int) -> tuple[socket.socket, socket.socket | None] | None:
        rtp = self._socket(port)
        if rtp is None:
            return None
        if not self.rtcp:
            return rtp, None
        rtcp = self._socket(port + 1)
        if rtcp is None:
            rtp.close()
            return None
        return rtp, rtcp

    def _socket(self, port: int) -> socket.socket | None:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            return None
        sock.setblocking(False)
        return sock


class MediaEngine:
    """Owns the process's :class:`MediaClock`, its RTP ports and its streams.

    Args:
        loop: The event loop (default: the running one).
        host: Numeric address to receive RTP on.
        port_range: (low, high) inclusive; even ports for RTP.
        ptime: Packet time in seconds.
        seed: Seed for SSRCs, sequence numbers and timestamps (None: OS randomness).
        config: Settings for every stream (inactivity timeout, VAD, jitter window ...).
        rtcp: Bind each RTP port's RTCP port too (and drop what arrives there).
        prompt_cache_size: Prompts kept encoded in :attr:`prompts`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        host: str = "127.0.0.1",
        port_range: tuple[int, int] = (20000, 30000),
        *,
        ptime: float = 0.02,
        seed: int | str | None = None,
        config: StreamConfig | None = None,
        rtcp: bool = True,
        prompt_cache_size: int = 128,
    ) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.clock = MediaClock(self.loop, ptime)
        self.config = config or StreamConfig()
        self.prompts = PromptCache(prompt_cache_size)
        self._rng: random.Random = random.SystemRandom() if seed is None else random.Random(seed)
        self._ports = PortAllocator(host, port_range, self._rng, rtcp)
        self._streams: dict[RtpStream, int] = {}
        self._closed = False

    @property
    def streams(self) -> list[RtpStream]:
        """The open streams."""
        return [s for s in self._streams if not s.closed]

    async def open_stream(
        self, call_id: str = "-", config: StreamConfig | None = None
    ) -> RtpStream:
        """Reserve a port pair and make a stream on it (not sending until ``start``).

        Args:
            call_id: For the stream's log lines.
            config: Settings for this stream only (default: the engine's).

        Raises:
            OSError: no free port in the range.
            RuntimeError: the engine is closed.
        """
        if self._closed:
            raise RuntimeError("open_stream() on a closed MediaEngine")
        self._reap()
        sock, rtcp = self._ports.bind()
        rng = self._rng
        stream = RtpStream(
            self.clock,
            sock,
            rtcp_sock=rtcp,
            ssrc=rng.getrandbits(32),
            sequence=rng.getrandbits(16),
            timestamp=rng.getrandbits(32),
            config=config or self.config,
            call_id=call_id,
        )
        self._streams[stream] = stream.local_address[1]
        return stream

    def close(self) -> None:
        """Close every stream and stop the clock (idempotent)."""
        self._closed = True
        for stream in list(self._streams):
            stream.close()
        self._reap()
        self.clock.close()

    def _reap(self) -> None:
        """Give the ports of closed streams back to the allocator."""
        for stream, port in list(self._streams.items()):
            if stream.closed:
                del self._streams[stream]
                self._ports.release(port)
