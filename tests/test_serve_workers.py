"""``ivr serve --workers N``: several engine processes on one SIP port, calls kept together.

The affinity tests run two real :class:`CallAffinity` ends on one event loop; the end-to-end
test starts the command as a subprocess and calls it with SIPp from a single source port (as a
PBX trunk would), so the kernel's SO_REUSEPORT hash alone would give every call to one worker.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import (
    REPO,
    bank_flows,
    calls,
    free_port,
    sip_call_ids,
    sipp,
    wait_for,
    write_config,
)

from ivr.sip.affinity import CallAffinity, OwnedIds, call_id_bytes, owner_of
from ivr.sip.portlock import PortInUse, hold_port

pytestmark = pytest.mark.timeout(120)

INVITE = (
    b"INVITE sip:95588@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
    b"i:  %s \r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Content-Length: 11\r\n\r\n"
    b"Call-ID: no"
)


def test_call_id_is_read_from_long_and_compact_headers_but_not_from_the_body() -> None:
    assert call_id_bytes(INVITE % b"abc@host") == b"abc@host"
    long_form = INVITE.replace(b"i:  %s ", b"CALL-ID : %s") % b"xyz"
    assert call_id_bytes(long_form) == b"xyz"
    assert call_id_bytes(INVITE.replace(b"i:  %s \r\n", b"")) is None  # the body's is no header
    assert call_id_bytes(b"garbage") is None


def test_owner_is_stable_and_spreads_call_ids() -> None:
    owners = [owner_of(f"call-{n}@10.0.0.1".encode(), 2) for n in range(200)]
    assert owners == [owner_of(f"call-{n}@10.0.0.1".encode(), 2) for n in range(200)]
    assert 60 < owners.count(0) < 140


def test_a_worker_makes_only_call_ids_it_owns() -> None:
    """The answers to a worker's own requests (an INVITE to an agent) must come back to it."""
    for index in range(3):
        ids = OwnedIds(index, 3, seed=index)
        made = [ids.call_id("127.0.0.1") for _ in range(200)]
        assert {owner_of(c.encode(), 3) for c in made} == {index}
        assert len(set(made)) == 200 and all(c.endswith("@127.0.0.1") for c in made)


def test_a_datagram_goes_to_the_worker_that_owns_its_call() -> None:
    async def scenario() -> None:
        group = f"test-{os.getpid()}-{free_port()}"
        got: list[tuple[int, bytes, tuple[str, int]]] = []
        ends = [CallAffinity(group, i, 2) for i in range(2)]
        for i, end in enumerate(ends):
            end.start(lambda data, source, i=i: got.append((i, data, source)))
        try:
            ids = {owner_of(b"c%d" % n, 2): b"c%d" % n for n in range(20)}
            theirs, ours = INVITE % ids[1], INVITE % ids[0]
            assert ends[0].route(theirs, ("127.0.0.9", 5071)) is True
            assert ends[0].route(ours, ("127.0.0.9", 5071)) is False  # worker 0 keeps its own
            assert ends[0].route(b"no call id", ("127.0.0.9", 5071)) is False
            for _ in range(100):
                if got:
                    break
                await asyncio.sleep(0.01)
            assert got == [(1, theirs, ("127.0.0.9", 5071))]
            ends[1].close()  # a worker that is restarting: the datagram is handled here
            assert ends[0].route(theirs, ("127.0.0.9", 5071)) is False
            assert ends[0].stats == {"forwarded": 1, "taken": 0, "lost": 1}
            assert ends[1].stats["taken"] == 1
        finally:
            for end in ends:
                end.close()

    asyncio.run(scenario())


@pytest.mark.usefixtures("sipp_program")
def test_two_workers_share_one_port_and_take_a_trunks_calls_between_them(
    bank_api: str, tmp_path: Path
) -> None:
    port = free_port()
    flows = bank_flows(tmp_path / "flows", port)
    prompts = tmp_path / "prompts"
    write_config(tmp_path, flows, prompts, port=port, drain_timeout=1, rtp_ports="29000-29999")
    log_file = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr", "-c", str(tmp_path / "ivr.yaml"), "--log-level", "debug",
         "--log-file", str(log_file), "serve", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"with 2 worker processes" in line, proc.stderr.read() if proc.stderr else line
        # One SIPp socket for every call (-t u1): one source address, as from a PBX trunk.
        code, stats, errors = sipp(("127.0.0.1", port), tmp_path,
                                   ["-sn", "uac", "-s", "95588", "-t", "u1", "-d", "500"],
                                   calls=30, limit=30, rate=30)  # fmt: skip
        assert code == 0, errors
        assert (stats["SuccessfulCall(C)"], stats["FailedCall(C)"]) == ("30", "0")
        ended = wait_for(lambda: [c for c in calls(tmp_path / "calls.db")
                                  if c["outcome"] is not None] or None, 10)  # fmt: skip
        wait_for(lambda: len([c for c in calls(tmp_path / "calls.db")
                              if c["outcome"] is not None]) == 30 or None, 10)  # fmt: skip
        assert ended
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    records = calls(tmp_path / "calls.db")
    assert len(records) == 30 and all(c["outcome"] == "abandoned" for c in records)
    # Every call was answered by the worker that owns its Call-ID, and both workers had some.
    log = log_file.read_text(encoding="utf-8")
    workers_by_call: dict[str, set[str]] = {}
    for worker, call_id in re.findall(r" (w[01]) \w+ ivr\.[\w.]+: call (\S+@127\.0\.0\.1):", log):
        workers_by_call.setdefault(call_id, set()).add(worker)
    assert set(workers_by_call) == sip_call_ids(tmp_path / "calls.db")
    for call_id, workers in workers_by_call.items():
        assert workers == {f"w{owner_of(call_id.encode(), 2)}"}, (call_id, workers)
    assert {w for ws in workers_by_call.values() for w in ws} == {"w0", "w1"}


def test_workers_that_cannot_bind_the_port_make_the_command_fail_instead_of_hang(
    tmp_path: Path,
) -> None:
    port = free_port()
    flows = bank_flows(tmp_path / "flows", port)
    write_config(tmp_path, flows, tmp_path / "prompts", port=port)
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_RUNTIME_DIR": str(tmp_path)}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:  # no SO_REUSEPORT
        taken.bind(("127.0.0.1", port))
        proc = subprocess.run(
            [sys.executable, "-m", "ivr", "-c", str(tmp_path / "ivr.yaml"), "serve",
             "--workers", "2", "--no-build"],
            capture_output=True, env=env, cwd=tmp_path, timeout=90, check=False,
        )  # fmt: skip
    assert proc.returncode == 2
    assert b"answering SIP" not in proc.stdout
    assert proc.stderr.decode() == (
        f"ivr serve: 127.0.0.1:{port} is already served by another process\n")


# --- one server per port ---------------------------------------------------------------------


def serve_command(config: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "ivr", "-c", str(config), "serve", "--workers", str(workers),
            "--no-build"]  # fmt: skip


@pytest.mark.parametrize("first,second", [(2, 2), (2, 1), (1, 2)])
def test_a_second_server_on_a_served_port_is_refused(
    tmp_path: Path, first: int, second: int
) -> None:
    port = free_port()
    flows = bank_flows(tmp_path / "flows", port)
    write_config(tmp_path, flows, tmp_path / "prompts", port=port, drain_timeout=1)
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_RUNTIME_DIR": str(tmp_path)}
    config = tmp_path / "ivr.yaml"
    proc = subprocess.Popen(serve_command(config, first), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=tmp_path)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert b"answering SIP" in line, proc.stderr.read() if proc.stderr else line
        refused = subprocess.run(serve_command(config, second), capture_output=True, env=env,
                                 cwd=tmp_path, timeout=90, check=False)  # fmt: skip
        assert refused.returncode == 2
        assert refused.stdout == b""
        assert refused.stderr.decode() == (
            f"ivr serve: 127.0.0.1:{port} is already served by another process\n")
        assert proc.poll() is None  # the first one serves on
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_the_port_is_held_before_anything_binds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two servers starting at once: the second is refused by the lock, not by the bind."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    port = free_port()
    with (hold_port("127.0.0.1", port),
          pytest.raises(PortInUse, match=re.escape(f"127.0.0.1:{port} is already served")),
          hold_port("127.0.0.1", port)):  # fmt: skip
        pass
    with hold_port("127.0.0.1", port):  # released with the first holder
        pass
    assert [p.name for p in tmp_path.iterdir()] == [f"ivr-sip-127.0.0.1-{port}.lock"]
