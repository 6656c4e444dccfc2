"""Runner pieces the load benchmarks share (bench/serve_load.py, bench/speech_load.py,
bench/acd_load.py): the tools they need, tcpdump's capture of the engine's RTP ports, and the
count of keys a flow recorded in the order they were pressed."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def require_tools(tools: tuple[str, ...], make_target: str) -> None:
    """Exit naming the first of ``tools`` not installed (``make MAKE_TARGET`` installs it)."""
    for tool in tools:
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} not found: `make {make_target}` installs it")


def start_capture(capture: Path, rtp: tuple[int, int]) -> subprocess.Popen[bytes]:
    """tcpdump on lo into ``capture``: the UDP of the ``rtp`` port range, both directions
    (kernel time stamps, nothing in the engine's path); returns once it is listening."""
    tcpdump = subprocess.Popen(
        ["tcpdump", "-i", "lo", "-n", "-s", "256", "-B", "65536", "-w", str(capture),
         f"udp and portrange {rtp[0]}-{rtp[1]}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(1.0)  # tcpdump is listening
    return tcpdump


def stop_capture(tcpdump: subprocess.Popen[bytes]) -> str:
    """Stop tcpdump (SIGINT: it writes out what it holds); the packets it says the kernel
    dropped, as it prints them ("?" if it does not say)."""
    tcpdump.send_signal(signal.SIGINT)
    _, err = tcpdump.communicate(timeout=30)
    return next((line.split()[0] for line in err.decode().splitlines()
                 if "dropped by kernel" in line), "?")  # fmt: skip


def prefix_match(have: list[str], want: list[str]) -> int:
    """How many of ``want`` ``have`` holds in order from the start (a lost key ends the count)."""
    matched = 0
    for a, b in zip(have, want, strict=False):
        if a != b:
            break
        matched += 1
    return matched
