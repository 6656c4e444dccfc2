"""Media plane load: N RTP streams on one MediaClock, sending to a sink process on 127.0.0.1.

Run::

    .venv/bin/python bench/media_load.py --streams 300 --seconds 10
    .venv/bin/python bench/media_load.py --streams 100,200,300,400 --seconds 10 --duplex
    .venv/bin/python bench/media_load.py --streams 200 --seconds 10 --duplex --bridge [--record]

What runs where:

* **this process**: one :class:`~ivr.rtp.engine.MediaEngine` (one event loop, one media clock)
  with N streams. Every stream plays a recorded prompt (Allison, from Debian's
  asterisk-core-sounds-en-wav) over and over through the shared prompt cache, PCMU, so each tick
  sends real prompt frames, never just silence;
* **a sink process** (spawned): receives every packet on one or more sockets and takes the kernel's
  arrival timestamp of each (SO_TIMESTAMPNS, so its own scheduling does not blur the figures) for
  a sample of streams. With ``--duplex`` it also sends 50 packets a second to every stream, from
  the address that stream is connected to, carrying the same prompt, so the streams' receive path
  (parse, jitter buffer, framing, batched decode, VAD levels, and with ``--inband`` the in-band
  DTMF classification) is loaded too, as in a real call.

With ``--bridge`` (and ``--duplex``) the streams are taken in pairs, each pair joined by an
:class:`~ivr.rtp.bridge.Bridge` (N/2 bridged calls: a caller's leg and an agent's) instead of
playing the prompt: what the sink sends to one stream of a pair goes out on the other, and
with ``--record`` every bridge records both directions to a WAV in a temporary directory.
Compare with the same ``--streams`` without ``--bridge`` for what relaying costs over plain
duplex streams playing a prompt.

Figures (after ``--warmup`` seconds, over ``--seconds``):

* CPU: ``time.process_time()`` of this process over wall time: the fraction of one core the media
  plane takes (the sink's CPU is not counted);
* the clock's wake-up lateness (p50/p99/max) and the duration of one pass (p50/p99/max);
* passes run late back to back (caught up) and ticks skipped after a stall;
* at the sink: packets received against packets sent, sequence gaps in the sample, and the
  inter-arrival gap of the sampled streams (p50/p99/max, 20 ms expected).

BLAS threads: the batched in-band DTMF classification is one matrix product over every call's
frames, which OpenBLAS spreads over a pool of threads that then spin on the other cores: measured
here at 300 duplex calls with ``--inband``, 85 to 108 % of a core with OpenBLAS's default threads
(2 on this machine) against 28 to 35 % with one. An engine process owns one core
(docs/ARCHITECTURE.md, "Processes and threads"), so this script sets ``OPENBLAS_NUM_THREADS=1``
before numpy loads, unless the environment already sets it (run with ``OPENBLAS_NUM_THREADS=2``
to see the difference).

The benchmark stops by itself: the sink has its own deadline and is terminated if it overstays.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import selectors
import socket
import struct
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads OpenBLAS

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.media.g711 import PCMU  # noqa: E402
from ivr.media.player import EncodedAudio  # noqa: E402
from ivr.rtp.bridge import Bridge  # noqa: E402
from ivr.rtp.engine import MediaEngine  # noqa: E402
from ivr.rtp.stream import RtpStream  # noqa: E402

PROMPT = Path("/usr/share/asterisk/sounds/en_US_f_Allison/conf-onlyperson.wav")
SO_TIMESTAMPNS = 35  # Linux; the socket module does not export it
_TIMESPEC = struct.Struct("@qq")
_HEADER = struct.Struct("!BBHII")


# ------------------------------------------------------------------------ sink process


def sink_main(conn: Connection, sinks: int, deadline: float, frames: list[bytes]) -> None:
    """Receive everything; time the sampled streams; in duplex mode, send to every stream."""
    socks = []
    for _ in range(sinks):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        socks.append(sock)
    conn.send([s.getsockname() for s in socks])
    setup = conn.recv()  # {"sample": [ports], "targets": [(sink index, (host, port))]}
    sample: dict[int, list[tuple[int, int]]] = {port: [] for port in setup["sample"]}
    targets = [
        (socks[i], tuple(addr), 1000 + n, n * 7919) for n, (i, addr) in enumerate(setup["targets"])
    ]
    sel = selectors.DefaultSelector()
    for sock in socks:
        sel.register(sock, selectors.EVENT_READ)
    sel.register(conn, selectors.EVENT_READ)
    received = send_errors = 0
    measuring = False
    tick = 0
    next_send = time.monotonic()
    cmsg = socket.CMSG_SPACE(_TIMESPEC.size)
    while time.monotonic() < deadline:
        timeout = (next_send - time.monotonic()) if targets else 0.05
        for key, _ in sel.select(max(0.0, min(timeout, 0.05))):
            if key.fileobj is conn:
                command = conn.recv()
                if command == "start":
                    measuring, received = True, 0
                    for kept in sample.values():
                        kept.clear()
                else:
                    deadline = 0.0
                continue
            ready = key.fileobj
            assert isinstance(ready, socket.socket)
            while True:
                try:
                    data, anc, _, addr = ready.recvmsg(2048, cmsg)
                except BlockingIOError:
                    break
                received += 1
                times = sample.get(addr[1])
                if times is not None and measuring and anc:
                    sec, nsec = _TIMESPEC.unpack(anc[0][2][: _TIMESPEC.size])
                    times.append((sec * 1_000_000_000 + nsec, struct.unpack_from("!H", data, 2)[0]))
        if targets and time.monotonic() >= next_send:
            frame = frames[tick % len(frames)]
            for sock, addr, ssrc, base in targets:
                header = _HEADER.pack(
                    0x80, PCMU, (base + tick) & 0xFFFF, (base + tick * 160) & 0xFFFFFFFF, ssrc
                )
                try:
                    sock.sendto(header + frame, addr)
                except OSError:
                    send_errors += 1
            tick += 1
            next_send += 0.02
    conn.send({"received": received, "send_errors": send_errors, "sample": summarise(sample)})


def summarise(sample: dict[int, list[tuple[int, int]]]) -> dict[str, float]:
    gaps: list[np.ndarray] = []
    lost = 0
    for times in sample.values():
        if len(times) < 2:
            continue
        arr = np.array(times, dtype=np.int64)
        gaps.append(np.diff(arr[:, 0]) / 1e6)
        lost += int(np.sum((np.diff(arr[:, 1]) & 0xFFFF) - 1))
    if not gaps:
        return {"streams": 0}
    g = np.concatenate(gaps)
    return {
        "streams": len(gaps),
        "gaps": int(g.size),
        "gap_p50_ms": float(np.percentile(g, 50)),
        "gap_p99_ms": float(np.percentile(g, 99)),
        "gap_max_ms": float(g.max()),
        "seq_lost": lost,
    }


# ------------------------------------------------------------------------ media side


async def run_load(args: argparse.Namespace, n: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    engine = MediaEngine(loop, port_range=tuple(args.ports), seed=1)
    prompt = await engine.prompts.load(PROMPT)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    deadline_wall = time.monotonic() + args.warmup + args.seconds + 30
    proc = ctx.Process(target=sink_main, args=(child, args.sinks, deadline_wall, list(prompt.ulaw)))
    proc.start()
    try:
        sink_addrs = await loop.run_in_executor(None, parent.recv)
        streams = [await engine.open_stream(f"bench-{i}") for i in range(n)]
        for i, stream in enumerate(streams):
            remote = tuple(sink_addrs[i % len(sink_addrs)])
            stream.start(remote, PCMU, None if args.inband else 101)
            if not args.bridge:
                loop_prompt(stream, prompt)
        records = tempfile.TemporaryDirectory(prefix="bridge-rec-") if args.record else None
        bridges = [
            Bridge(streams[i], streams[i + 1],
                   record=None if records is None else Path(records.name) / f"{i}.wav")
            for i in range(0, n - 1, 2)
        ] if args.bridge else []  # fmt: skip
        step = max(1, n // args.sample)
        sample = [s.local_address[1] for s in streams[::step]][: args.sample]
        targets = (
            [(i % len(sink_addrs), s.local_address) for i, s in enumerate(streams)]
            if args.duplex
            else []
        )
        parent.send({"sample": sample, "targets": targets})
        await asyncio.sleep(args.warmup)
        parent.send("start")
        engine.clock.reset_stats()
        sent0 = sum(s.stats.sent for s in streams)
        recv0 = sum(s.stats.received for s in streams)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(args.seconds)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        clock = engine.clock.stats()
        sent = sum(s.stats.sent for s in streams) - sent0
        got = sum(s.stats.received for s in streams) - recv0
        errors = sum(s.stats.send_errors for s in streams)
        relays = [r.stats for b in bridges for r in (b.a_to_b, b.b_to_a)]
        for bridge in bridges:
            bridge.stop()
        for bridge in bridges:
            await bridge.recorded()
        parent.send("stop")
        engine.close()
        result = await loop.run_in_executor(None, lambda: parent.recv() if parent.poll(35) else {})
        if records is not None:
            records.cleanup()
    finally:
        engine.close()
        proc.join(5)
        if proc.is_alive():
            proc.terminate()
            proc.join()
    return {
        "streams": n,
        "cpu": (cpu1 - cpu0) / (wall1 - wall0),
        "clock": clock,
        "sent": sent,
        "send_errors": errors,
        "stream_received": got,
        "sink": result,
        "bridges": len(bridges),
        "relayed": sum(r.sent for r in relays),
        "underruns": sum(r.underruns for r in relays),
        "dropped": sum(r.dropped for r in relays),
    }


def loop_prompt(stream: RtpStream, prompt: EncodedAudio) -> None:
    """Play ``prompt`` on ``stream`` again each time it ends."""
    stream.player.play(prompt, lambda _id: loop_prompt(stream, prompt))


def report(r: dict[str, Any], seconds: float) -> None:
    """Print one run's figures."""
    c = r["clock"]
    sink = r["sink"]
    s = sink.get("sample", {})
    ms = 1000.0
    n = r["streams"]
    print(f"streams {n}: CPU {100 * r['cpu']:.1f} % of one core")
    if r["bridges"]:
        print(
            f"  {r['bridges']} bridges: {100 * r['cpu'] / r['bridges']:.2f} % of a core each;"
            f" frames relayed {r['relayed']} (whole run), underruns {r['underruns']},"
            f" dropped {r['dropped']}"
        )
    print(
        f"  clock lateness p50 {c.lateness_p50 * ms:.2f} p99 {c.lateness_p99 * ms:.2f}"
        f" max {c.lateness_max * ms:.2f} ms; pass p50 {c.pass_p50 * ms:.2f}"
        f" p99 {c.pass_p99 * ms:.2f} max {c.pass_max * ms:.2f} ms;"
        f" caught up {c.caught_up}, skipped {c.skipped}, {c.ticks} ticks"
    )
    print(
        f"  sent {r['sent']} ({r['sent'] / seconds / n:.1f}/s per stream,"
        f" {r['send_errors']} errors); sink received {sink.get('received', '?')}"
        + (f"; streams received {r['stream_received']}" if r["stream_received"] else "")
    )
    if s.get("streams"):
        print(
            f"  inter-arrival gap of {s['streams']} streams ({s['gaps']} gaps):"
            f" p50 {s['gap_p50_ms']:.2f} p99 {s['gap_p99_ms']:.2f} max {s['gap_max_ms']:.2f} ms;"
            f" sequence numbers lost {s['seq_lost']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", default="300", help="count, or a comma-separated list")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--sample", type=int, default=20, help="streams timed at the sink")
    parser.add_argument("--sinks", type=int, default=1, help="receiving sockets at the sink")
    parser.add_argument("--duplex", action="store_true", help="the sink sends to every stream too")
    parser.add_argument("--inband", action="store_true", help="no telephone-event: in-band DTMF on")
    parser.add_argument("--bridge", action="store_true", help="pairs of streams bridged")
    parser.add_argument("--record", action="store_true", help="bridges record (with --bridge)")
    parser.add_argument("--ports", type=int, nargs=2, default=(40000, 49999))
    args = parser.parse_args(argv)
    if not PROMPT.exists():
        print(f"missing {PROMPT}: install asterisk-core-sounds-en-wav (make test does)")
        return 1
    mode = "duplex" if args.duplex else "send only"
    if args.bridge:
        mode += ", bridged in pairs" + (" and recorded" if args.record else "")
    blas = os.environ["OPENBLAS_NUM_THREADS"]
    print(
        f"media load: {mode}{', in-band DTMF' if args.inband else ''}, one process, one clock,"
        f" OPENBLAS_NUM_THREADS={blas}"
    )
    for n in (int(x) for x in args.streams.split(",")):
        report(asyncio.run(run_load(args, n)), args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
