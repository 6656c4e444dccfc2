"""One server per SIP port: refuse to start beside a server that already answers there.

``ivr serve --workers N`` binds its port with SO_REUSEPORT in every worker, so the kernel lets
a second such server bind it too and splits the calls between two servers that know nothing of
each other. :func:`hold_port` closes that gap, before anything binds, in two steps:

1. an exclusive ``flock`` on a lock file named after host and port in the user's runtime
   folder (``$XDG_RUNTIME_DIR``, else the temporary folder), held for the server's lifetime
   (the kernel drops it when the process ends, however it ends). Two servers starting at the
   same moment cannot both pass, although neither has bound the port yet;
2. a probe bind of the UDP port *without* SO_REUSEPORT, closed at once: it fails when any
   socket holds the port, with or without SO_REUSEPORT, on this address or the wildcard: an
   older server that took no lock, another program, another user's server.

A single-worker server and a multi-worker one are refused beside each other alike.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PortInUse(OSError):
    """Another process serves the address (an OSError: the CLI's setup-problem status)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"{host}:{port} is already served by another process")
        self.host = host
        self.port = port

    def __str__(self) -> str:
        return str(self.strerror)


def lock_dir() -> Path:
    """Where the lock files live: the user's runtime folder, else the temporary folder."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime)
    return Path(tempfile.gettempdir())


def lock_path(host: str, port: int) -> Path:
    """The lock file of ``host:port``."""
    safe = re.sub(r"[^A-Za-z0-9.-]", "_", host)
    return lock_dir() / f"ivr-sip-{safe}-{port}.lock"


@contextmanager
def hold_port(host: str, port: int) -> Iterator[None]:
    """Hold ``host:port`` for this process while the block runs (port 0: nothing to hold).

    Raises:
        PortInUse: another process holds the lock or has a socket on the port.
        OSError: the probe could not bind for another reason (an address not on this host,
            a privileged port).
    """
    if port == 0:
        yield
        return
    fd = _lock(host, port)
    try:
        _probe(host, port)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _lock(host: str, port: int) -> int | None:
    """The open, locked lock file; None when no lock file can be made (the probe decides)."""
    try:
        fd = os.open(lock_path(host, port), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:  # a read-only or foreign folder: the probe alone must do
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise PortInUse(host, port) from None
    return fd


def _probe(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(host, port) from None
            raise
