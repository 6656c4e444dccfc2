"""What the load benchmark puts on the wire and reads back from it (bench/serve_load.py).

* :func:`write_caller_pcap` writes the caller's side of one call as a pcap file that SIPp plays
  (``play_pcap_audio``): quiet line noise in PCMU every 20 ms, and RFC 4733 key presses at given
  times in place of the audio, as a phone sends them.
* :func:`read_capture` reads tcpdump's capture of the servers' RTP ports (both directions).
* :func:`gap_stats` and :func:`key_latencies` turn it into the figures: the servers' packet
  spacing as the caller receives it, and the time from a key press reaching the server to the
  next prompt's first sound reaching the caller.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ivr.media.g711 import ulaw_decode, ulaw_encode
from ivr.rtp.dtmf import dtmf_payloads

TICK = 0.02
DTMF_PT = 101
LOUD = 100  # a sample above this (of 32767, about -50 dBFS) is sound, not line noise
_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_ETH_IP = struct.Struct("!6s6sHBBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_RTP = struct.Struct("!BBHII")
_SILENCE = {b"", b"\xff" * 160, b"\x7f" * 160}  # PCMU digital silence (+0 and -0)


@dataclass(frozen=True)
class Key:
    """A key the caller presses at ``at`` seconds into the call, and the prompt it should start."""

    at: float
    digit: str
    next_prompt: str


# --- the caller's audio ------------------------------------------------------------------------


def _frame(payload: bytes, when: float) -> bytes:
    udp_len = _UDP.size + len(payload)
    ip = _ETH_IP.pack(b"\0" * 6, b"\0" * 6, 0x0800, 0x45, 0, 20 + udp_len, 0, 0, 64, 17, 0,
                      bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))  # fmt: skip
    body = ip + _UDP.pack(6000, 6002, udp_len, 0) + payload
    sec = int(when)
    return _RECORD.pack(sec, round((when - sec) * 1e6), len(body), len(body)) + body


def write_caller_pcap(path: Path, keys: list[Key], seconds: float, seed: int = 7,
                      speech: list[tuple[float, np.ndarray]] | None = None) -> None:
    """``seconds`` of the caller's RTP: noise at about -70 dBFS, key presses at their times,
    and ``speech`` (``(at, 8 kHz int16 samples)``) in place of the noise from ``at`` on."""
    rng = np.random.default_rng(seed)
    ticks = int(seconds / TICK)
    starts = {round(k.at / TICK): k.digit for k in keys}
    spoken: dict[int, np.ndarray] = {}
    for at, pcm in speech or []:
        first = round(at / TICK)
        for i in range(len(pcm) // 160):
            spoken[first + i] = pcm[i * 160:(i + 1) * 160]
    out = [_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    seq, ssrc, tick, events = 1000, 0x1B2C3D4E, 0, 0
    pending: list[tuple[bool, bytes, int]] = []
    while tick < ticks:
        ts = 8000 + tick * 160
        if not pending and tick in starts:
            pending = list(dtmf_payloads(starts[tick], ts, duration_ms=100))
            events += 1
        if pending:
            marker, payload, event_ts = pending.pop(0)
            header = _RTP.pack(0x80, (0x80 if marker else 0) | DTMF_PT, seq, event_ts, ssrc)
        else:
            noise = rng.integers(-3, 4, 160)
            payload = ulaw_encode(spoken.get(tick, noise)).tobytes()
            header = _RTP.pack(0x80, 0, seq, ts, ssrc)
        out.append(_frame(header + payload, 1_700_000_000 + tick * TICK))
        seq = (seq + 1) & 0xFFFF
        tick += 1
    if events != len(keys):
        raise ValueError("two keys overlap: space them at least 200 ms apart")
    path.write_bytes(b"".join(out))


def leading_quiet(pcm: np.ndarray) -> float:
    """Seconds before the first sound of a prompt, in whole 20 ms frames (as it is sent)."""
    frames = len(pcm) // 160
    codes = ulaw_decode(ulaw_encode(pcm[: frames * 160]))
    loud = np.abs(codes.reshape(frames, 160)).max(axis=1) > LOUD
    first = int(np.argmax(loud)) if loud.any() else frames
    return first * TICK


# --- reading the capture ---------------------------------------------------------------------


@dataclass
class Stream:
    """One server RTP port's packets: to the caller (times, loud) and from it (key presses)."""

    out_times: list[float] = field(default_factory=list)
    out_loud: list[bool] = field(default_factory=list)
    keys_in: list[float] = field(default_factory=list)  # first packet of each telephone event
    # Each call's first packet from the caller (its pcap's time 0); a port the engine gave to
    # a later call too has one per call (a packet after 2 s without any starts a new one).
    starts_in: list[float] = field(default_factory=list)
    last_in: float = -1e9
    peer: int = 0  # the port it sends to (which load generator: callers, agents)


def read_capture(path: Path, low: int, high: int) -> dict[int, Stream]:
    """Per server port in ``low..high``: what it sent and the key presses it received."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise ValueError(f"{path}: not a little-endian pcap file")
    scale = 1e-6 if magic == 0xA1B2C3D4 else 1e-9
    streams: dict[int, Stream] = defaultdict(Stream)
    seen_events: set[tuple[int, int]] = set()
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, captured, _ = _RECORD.unpack_from(data, offset)
        start = offset + 16
        offset = start + captured
        if captured < 14 + 20 + 8 + 12 or data[start + 12:start + 14] != b"\x08\x00":
            continue
        ip = start + 14
        udp = ip + (data[ip] & 0x0F) * 4
        src, dst = struct.unpack_from("!HH", data, udp)
        rtp = udp + 8
        when = sec + frac * scale
        if low <= src <= high:
            payload = data[rtp + 12:offset]
            loud = payload not in _SILENCE and int(np.abs(ulaw_decode(payload)).max()) > LOUD
            stream = streams[src]
            stream.peer = dst
            stream.out_times.append(when)
            stream.out_loud.append(loud)
        elif low <= dst <= high:
            stream = streams[dst]
            if when - stream.last_in > 2.0:
                stream.starts_in.append(when)
            stream.last_in = when
        if low <= dst <= high and data[rtp + 1] & 0x7F == DTMF_PT:
            timestamp = struct.unpack_from("!I", data, rtp + 4)[0]
            if (dst, timestamp) not in seen_events:  # retransmitted end packets: one key
                seen_events.add((dst, timestamp))
                streams[dst].keys_in.append(when)
    return dict(streams)


# --- figures ---------------------------------------------------------------------------------


def gap_stats(streams: dict[int, Stream], start: float, end: float) -> dict[str, float]:
    """Spacing of each server stream's packets within [start, end]: p50, p99, max (ms)."""
    gaps = []
    for stream in streams.values():
        times = np.asarray(stream.out_times)
        window = times[(times >= start) & (times <= end)]
        if len(window) > 1:
            gaps.append(np.diff(window))
    if not gaps:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    pooled = np.concatenate(gaps) * 1000
    return {"p50": float(np.percentile(pooled, 50)), "p99": float(np.percentile(pooled, 99)),
            "max": float(pooled.max()), "n": float(len(pooled))}  # fmt: skip


def key_latencies(streams: dict[int, Stream], quiet: list[float], start: float, end: float
                  ) -> tuple[list[float], int]:  # fmt: skip
    """Milliseconds from each key press (first event packet at the server's port, within
    [start, end]) to the next prompt's first sound leaving it, minus that prompt's leading
    quiet (``quiet[i]`` for the stream's i-th key). Also the number of keys whose next prompt
    never sounded (lost keys, or the call ended first)."""
    out, unanswered = [], 0
    for stream in streams.values():
        times = np.asarray(stream.out_times)
        loud = np.asarray(stream.out_loud, dtype=bool)
        for i, pressed in enumerate(stream.keys_in):
            if not start <= pressed <= end or i >= len(quiet):
                continue
            after = np.nonzero((times > pressed) & loud)[0]
            # The key must have been pressed in a pause: sound right before it would be the old
            # prompt still playing, and its continuation would look like an instant answer.
            before = np.nonzero((times <= pressed) & (times > pressed - 0.2) & loud)[0]
            if len(before):
                continue
            if not len(after):
                unanswered += 1
                continue
            out.append((times[after[0]] - pressed - quiet[i]) * 1000)
    return out, unanswered
