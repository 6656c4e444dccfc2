"""Helpers for the media tests: a raw UDP peer on 127.0.0.1, waiting for a condition, prompts."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

import numpy as np
from debs import ALLISON
from numpy.typing import NDArray

from ivr.rtp.packet import RtpPacket

HELLO = ALLISON / "hello-world.wav"  # about 1.4 s of speech
LONG_PROMPT = ALLISON / "conf-onlyperson.wav"  # about 3 s


class RawPeer:
    """A plain non-blocking UDP socket on 127.0.0.1 that keeps every datagram it receives."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.datagrams: list[tuple[bytes, tuple[str, int]]] = []
        loop.add_reader(self.sock.fileno(), self._read)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()
        return host, port

    @property
    def packets(self) -> list[RtpPacket]:
        return [RtpPacket.parse(data) for data, _ in self.datagrams]

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        self.sock.sendto(data, to)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def _read(self) -> None:
        while True:
            try:
                self.datagrams.append(self.sock.recvfrom(2048))
            except BlockingIOError:
                return


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` every 10 ms; fail the test if it is still false after ``timeout``.

    The timeout only guards against a hang: tests assert counts and content, never timings.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def event_packet(digit_code: int, ts: int, seq: int, ssrc: int = 7, end: bool = True) -> bytes:
    """One RFC 4733 packet (payload type 101) for a raw peer to send."""
    payload = struct.pack("!BBH", digit_code, (0x80 if end else 0) | 10, 800)
    return bytes(RtpPacket(101, seq & 0xFFFF, ts, ssrc, payload, marker=True))


def best_correlation(source: NDArray[np.int16], recorded: NDArray[np.int16]) -> float:
    """Normalised correlation of ``source`` with the part of ``recorded`` that matches it best."""
    x = source.astype(np.float64)
    y = recorded.astype(np.float64)
    n = x.size
    assert y.size >= n, "recording shorter than the source"
    # Cross-correlation by FFT, then the normalised value at the best lag.
    size = 1 << int(np.ceil(np.log2(x.size + y.size)))
    corr = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)
    lag = int(np.argmax(corr[: y.size - n + 1]))
    segment = y[lag : lag + n]
    return float(x @ segment / np.sqrt((x @ x) * (segment @ segment)))


def dominant_frequency(pcm: NDArray[np.int16], rate: int = 8000) -> float:
    """The frequency (Hz) of the strongest component of ``pcm`` (Hann window)."""
    x = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(x.size, 1 / rate)[int(np.argmax(spectrum))])
