"""The messages between the ASR service (on the event loop) and its decoding workers.

One stream socket per worker carries length-prefixed frames (4-byte big-endian length, then a
pickle). Both ends are our own code in our own processes, so pickle is safe here and keeps the
events the same dataclasses as :mod:`ivr.asr.base`.

To a worker, one message per media tick (a list of operations, in order)::

    [("open", sid, Grammar, AsrOptions), ("audio", sid, bytes), ("finish", sid),
     ("close", sid), ...]

``finish`` ends the utterance now (the speech gate heard the caller stop where the recognizer's
endpointer could not, in noise): the recognizer decides on what it heard, and its events come
back as for audio.

``audio`` holds one or more 20 ms frames of int16 samples (native byte order, 320 bytes each).

From a worker: ``("ready", pid, {language: None | why not})`` once its backends are loaded, then
one ``("events", seq, [(sid, event), ...])`` per message it processed (``seq`` counts them, so
the service knows how far behind a worker is even when nothing happened).
"""

from __future__ import annotations

import pickle
import socket
import struct
from dataclasses import dataclass
from typing import Any

_LENGTH = struct.Struct("!I")
MAX_MESSAGE = 64 << 20  # a sane upper bound: anything larger is a broken stream


@dataclass(frozen=True)
class StreamFailed:
    """The backend raised while decoding one stream (the worker goes on with the others)."""

    message: str


def encode(message: Any) -> bytes:
    """One frame: length prefix and pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Cuts a byte stream back into messages (fed whatever the socket delivered)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """The complete messages now available.

        Raises:
            ValueError: a length beyond :data:`MAX_MESSAGE` (the stream is corrupt).
        """
        buffer = self._buffer
        buffer += data
        out: list[Any] = []
        offset = 0
        while len(buffer) - offset >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer, offset)
            if size > MAX_MESSAGE:
                raise ValueError(f"ASR message of {size} bytes: the stream is corrupt")
            end = offset + _LENGTH.size + size
            if len(buffer) < end:
                break
            out.append(pickle.loads(buffer[offset + _LENGTH.size:end]))
            offset = end
        del buffer[:offset]
        return out


def send(sock: socket.socket, message: Any) -> None:
    """Send one message on a blocking socket (the worker's side)."""
    sock.sendall(encode(message))


def recv(sock: socket.socket) -> Any | None:
    """Receive one message from a blocking socket; None at the end of the stream."""
    head = _recv_exact(sock, _LENGTH.size)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    if size > MAX_MESSAGE:
        raise ValueError(f"ASR message of {size} bytes: the stream is corrupt")
    body = _recv_exact(sock, size)
    return None if body is None else pickle.loads(body)


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)
