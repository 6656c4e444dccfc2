"""Kamailio (Debian's ``kamailio`` package) as a real registrar + proxy for tests and benches.

:class:`Kamailio` writes a db_text ``subscriber`` file into a scratch folder, starts
``kamailio -f tests/kamailio/kamailio.cfg -DD -E ...`` in the foreground as a child process on
127.0.0.1 and a free port (never 5060: on a host with systemd the package may run its own there),
waits until it answers OPTIONS, and stops it with SIGTERM. Its log (stderr) goes to a file in the
scratch folder so a failing test can show it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

CONFIG = Path(__file__).resolve().parent / "kamailio" / "kamailio.cfg"
HOST = "127.0.0.1"
SUBSCRIBER_HEADER = (
    "id(int,auto) username(string) domain(string) password(string) ha1(string) ha1b(string) "
)


def _binary() -> str:
    return shutil.which("kamailio") or "/usr/sbin/kamailio"


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def write_subscribers(folder: Path, users: Mapping[str, str], domain: str = HOST) -> Path:
    """The db_text ``subscriber`` table: one row per ``username -> password``."""
    rows = [SUBSCRIBER_HEADER]
    for i, (user, password) in enumerate(users.items(), start=1):
        ha1 = _md5(f"{user}:{domain}:{password}")
        ha1b = _md5(f"{user}@{domain}:{domain}:{password}")
        rows.append(f"{i}:{user}:{domain}:{password}:{ha1}:{ha1b}")
    path = folder / "subscriber"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def options_ping(port: int, timeout: float = 0.3) -> int | None:
    """Send OPTIONS to the proxy itself; the status code of its answer, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.settimeout(timeout)
        me = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:8]
        request = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{me};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag={tag}\r\n"
            f"To: <sip:{HOST}:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), (HOST, port))
        try:
            data = sock.recv(4096)
        except OSError:  # timeout, or ICMP port unreachable before it binds
            return None
    parts = data.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class Kamailio:
    """One Kamailio process on 127.0.0.1.

    Args:
        workdir: Scratch folder (the subscriber table and the log go there).
        users: ``username -> password`` of the accounts it authenticates.
        port: UDP port (default: a free one).
    """

    def __init__(self, workdir: Path, users: Mapping[str, str], port: int | None = None) -> None:
        self.workdir = workdir
        self.users = dict(users)
        self.port = port or free_udp_port()
        self.host = HOST
        self.db_dir = workdir / "dbtext"
        self.log_path = workdir / "kamailio.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start it and wait until it answers OPTIONS with 200 (or raise RuntimeError)."""
        self.db_dir.mkdir(parents=True, exist_ok=True)
        write_subscribers(self.db_dir, self.users)
        args = [
            _binary(), "-f", str(CONFIG), "-DD", "-E", "-m", "64", "-M", "8", "-n", "2",
            "-l", f"udp:{self.host}:{self.port}", "-A", f'DBURL="text://{self.db_dir}"',
            "-w", str(self.workdir), "-Y", str(self.workdir),
        ]  # fmt: skip
        log = self.log_path.open("wb")
        self._proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=self.workdir,
                                      start_new_session=True)  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"kamailio exited with {self._proc.returncode}:\n{self.log()}")
            if options_ping(self.port) == 200:
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kamailio did not answer OPTIONS within {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM to the main process; SIGKILL to its group if it lingers. Returns its code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # Its own process group (start_new_session): the children go too.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout)
        return proc.returncode

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def __enter__(self) -> Kamailio:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(workdir: Path, users: Mapping[str, str]) -> Iterator[Kamailio]:
    """A started :class:`Kamailio`, stopped on exit."""
    with Kamailio(workdir, users) as kamailio:
        yield kamailio
