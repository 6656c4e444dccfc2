"""Call affinity between worker processes that share one SIP port.

Each worker binds the SIP port with SO_REUSEPORT, and the kernel spreads datagrams among the
workers by a hash of the source and destination addresses. That keeps one peer on one worker,
which is right for many phones calling in, and wrong for a PBX trunk or a proxy: all their calls
come from one address and would land on one worker. So every datagram belongs to the worker
its Call-ID hashes to (``crc32(Call-ID) % workers``); a worker that receives somebody else's
datagram forwards it, with its source address, over a Unix datagram socket to the owner, which
handles it as if it had received it and answers from its own socket on the same port. A datagram
without a readable Call-ID stays where it landed (its answer, if any, is a 400 that needs no
dialog state).

The sockets live in Linux's abstract namespace (no files to clean up), named by a group string
the supervisor chooses (its pid and the SIP port) and the worker index.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
import zlib
from collections.abc import Callable

from ivr.sip.ids import IdGenerator
from ivr.sip.transport import Address

log = logging.getLogger("ivr.sip.affinity")

# A header line starting "Call-ID:" or the compact "i:" (RFC 3261 §7.3.3), any case, with
# optional white space before the colon (§7.3.1); the value runs to the end of the line.
_CALL_ID = re.compile(rb"\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_SOURCE = struct.Struct("!BH")  # length of the host text, port; then host, then the datagram
_MAX_FORWARD = 65535 + 64

Deliver = Callable[[bytes, Address], None]


def call_id_bytes(data: bytes) -> bytes | None:
    """The Call-ID of a raw SIP datagram (headers only, before the blank line), or None."""
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    match = _CALL_ID.search(head)
    if match is None:
        return None
    value = match.group(1).strip()
    return value or None


def owner_of(call_id: bytes, workers: int) -> int:
    """The worker that owns a Call-ID."""
    return zlib.crc32(call_id) % workers


class OwnedIds(IdGenerator):
    """The ids of worker ``index`` of ``workers``: every Call-ID it makes is its own
    (:func:`owner_of`), so the answers to the requests it sends (an INVITE to an agent, a
    REGISTER to a trunk) come back to it whichever worker the kernel hands them to. A random
    Call-ID would belong to another worker ``(workers - 1) / workers`` of the time, which would
    get the answers and drop them, knowing no such transaction."""

    def __init__(self, index: int, workers: int, seed: int | str | None = None) -> None:
        super().__init__(seed)
        self.index = index
        self.workers = workers

    def call_id(self, host: str | None = None) -> str:
        while True:  # ``workers`` draws on average
            value = super().call_id(host)
            if owner_of(value.encode(), self.workers) == self.index:
                return value


def socket_name(group: str, index: int) -> bytes:
    """The abstract Unix socket address of worker ``index`` in ``group``."""
    return f"\0ivr-sip-{group}-{index}".encode()


class CallAffinity:
    """One worker's end: forwards other workers' datagrams, takes its own from them.

    Args:
        group: Names the set of workers (unique per server on the machine).
        index: This worker, 0 .. ``workers`` - 1.
        workers: How many workers share the port.
    """

    def __init__(self, group: str, index: int, workers: int) -> None:
        if not 0 <= index < workers:
            raise ValueError(f"worker index {index} out of 0..{workers - 1}")
        self.group = group
        self.index = index
        self.workers = workers
        self.stats = {"forwarded": 0, "taken": 0, "lost": 0}
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliver: Deliver | None = None

    def start(self, deliver: Deliver) -> None:
        """Bind this worker's socket and hand forwarded datagrams to ``deliver``."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind(socket_name(self.group, self.index))
        self._sock = sock
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._on_readable)

    def close(self) -> None:
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
        self._sock = None

    def route(self, data: bytes, source: Address) -> bool:
        """The transport's router: True when ``data`` was sent to the worker that owns it."""
        call_id = call_id_bytes(data)
        if call_id is None or self._sock is None:
            return False
        owner = owner_of(call_id, self.workers)
        if owner == self.index:
            return False
        host = source[0].encode()
        try:
            self._sock.sendto(_SOURCE.pack(len(host), source[1]) + host + data,
                              socket_name(self.group, owner))  # fmt: skip
        except OSError as exc:  # the owner is gone (restarting): handle it here, as a stranger
            self.stats["lost"] += 1
            log.warning("call %s: worker %d unreachable (%s); handled by worker %d",
                        call_id.decode(errors="replace")[:80], owner, exc, self.index)
            return False
        self.stats["forwarded"] += 1
        return True

    def _on_readable(self) -> None:
        assert self._sock is not None and self._deliver is not None
        try:
            packet = self._sock.recv(_MAX_FORWARD)
        except (BlockingIOError, InterruptedError):
            return
        if len(packet) < _SOURCE.size:
            return
        length, port = _SOURCE.unpack_from(packet)
        start = _SOURCE.size + length
        host = packet[_SOURCE.size:start].decode(errors="replace")
        self.stats["taken"] += 1
        self._deliver(packet[start:], (host, port))
