"""Load with speech: every caller's menus listen for speech, a third of the callers speak.

Run by ``make bench-load`` after bench/serve_load.py (SIPp and tcpdump installed)::

    .venv/bin/python bench/speech_load.py --calls 300 --write
    .venv/bin/python bench/speech_load.py --calls 60 --steady 10      # a smoke run

Three points in one run, each a fresh ``ivr serve --workers 2`` on 127.0.0.1 with the
repository's flows, callers from SIPp (Debian's ``sip-tester``) as in bench/serve_load.py:

1. **keys only** (the reference): ``--calls`` callers work the bank menu with keys
   (``asr.backend: off``), exactly as serve_load's callers do;
2. **listening in silence**: the same callers, but the engine recognises speech
   (``asr.backend: pocketsphinx``): every menu listens while they are quiet and press keys;
3. **speech**: two thirds of the callers as in 2, one third *speaking*: key 1 at the language
   menu, then "branch hours" at the main menu, "main menu" at "anything else", "branch hours"
   again, each said a second after the prompt it answers ends (espeak-ng, ``--voice``, 160
   words a minute, trimmed, at -20 dBFS, in place of the -70 dBFS line noise of the caller's
   pcap; every speaker plays the same pcap).

Figures over ``--steady`` seconds while every target call is up: RTP gap (what each caller
receives, tcpdump kernel time stamps), keys lost (pressed by SIPp, missing from the flow's
record), key → prompt, and for the speakers: spoken answers recorded by the flow (the input
event's text is the phrase said) and **speech → prompt**, from the end of the caller's speech
reaching the engine's port (the caller's first packet plus the speech's end in its pcap) to the
next prompt's first sound leaving it, minus that prompt's leading quiet: the end-of-speech
latency as a caller hears it (the recognizer's end silence included). CPU from /proc: the whole
engine (supervisor, workers and their ASR worker processes), and the ASR workers alone.

CPU per call: keys-only ``K / n``; a listening call in silence ``L / n`` (point 2); a speaking
call ``(S - (n - m) L / n) / m`` (point 3, ``m`` speakers). SIPp, tcpdump and this script share
the two cores with the engine, so the figures are a floor; the ratios carry across machines.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from load_run import prefix_match, require_tools, start_capture, stop_capture  # noqa: E402
from load_wire import (  # noqa: E402
    Key,
    Stream,
    gap_stats,
    key_latencies,
    leading_quiet,
    read_capture,
    write_caller_pcap,
)
from serve_load import (  # noqa: E402
    AT,
    NATIVE_RTP,
    PAUSE_AFTER_PROMPT,
    Engine,
    Plan,
    free_port,
    make_plan,
    percentile,
    prompt_audio,
    write_config,
)
from sipp_caller import caller_scenario  # noqa: E402

from ivr.media.wav import load_8k_mono  # noqa: E402

SPEECH_ALLOWANCE = 1.5  # s after the speech's end before the next prompt is expected to start
LATENCY_GOAL = 0.5  # s, end-of-speech latency p50 (docs/ASR.md)
SPEECH_DBFS = -20.0
KEYS_NUMBER, SPEAKERS_NUMBER = "95588", "1001"  # both dial bank-main; the records tell them apart


# --- the speaking caller ---------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    at: float  # seconds into the call
    pcm: np.ndarray
    text: str
    next_prompt: str

    @property
    def end(self) -> float:
        return self.at + len(self.pcm) / 8000


@dataclass(frozen=True)
class SpeakerPlan:
    keys: list[Key]
    utterances: list[Utterance]
    seconds: float
    quiet: list[float]  # leading quiet of each utterance's next prompt


def synthesize(text: str, voice: str, workdir: Path, wpm: int = 160) -> np.ndarray:
    """``text`` said by espeak-ng, at 8 kHz, trimmed to its sound, at -20 dBFS."""
    wav = workdir / f"say-{voice}-{text.replace(' ', '_')}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), text],
                   check=True, capture_output=True)  # fmt: skip
    x = load_8k_mono(wav).astype(np.float64)
    loud = np.nonzero(np.abs(x) > 300)[0]
    x = x[loud[0] : loud[-1] + 1]
    x *= 32768 * 10 ** (SPEECH_DBFS / 20) / math.sqrt(float(np.mean(x * x)))
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def make_speaker_plan(config_path: Path, voice: str, workdir: Path) -> SpeakerPlan:
    """Key 1, then three spoken answers, each a second after its prompt ends; the next prompt
    is expected ``SPEECH_ALLOWANCE`` after the speech ends (the recognizer's end silence)."""
    audio = prompt_audio(config_path)
    length = {k: len(v) / 8000 for k, v in audio.items()}
    t = length["choose_language"] + PAUSE_AFTER_PROMPT
    keys = [Key(t, "1", "main_menu")]
    t += length["main_menu"] + PAUSE_AFTER_PROMPT
    said = []
    for text, next_prompt, after in (
        ("branch hours", "branch_hours", length["branch_hours"] + length["anything_else"]),
        ("main menu", "main_menu", length["main_menu"]),
        ("branch hours", "branch_hours", length["branch_hours"] + length["anything_else"]),
    ):
        said.append(Utterance(t, synthesize(text, voice, workdir), text, next_prompt))
        t = said[-1].end + SPEECH_ALLOWANCE + after + PAUSE_AFTER_PROMPT
    seconds = t - PAUSE_AFTER_PROMPT + 0.5
    return SpeakerPlan(keys, said, seconds, [leading_quiet(audio[u.next_prompt]) for u in said])


def speech_latencies(streams: list[Stream], plan: SpeakerPlan, start: float, end: float
                     ) -> tuple[list[float], int]:  # fmt: skip
    """Milliseconds from each utterance's end reaching the engine to the next prompt's first
    sound leaving it (minus its leading quiet), for utterances ending within [start, end]; and
    how many of those got no prompt before the caller's next utterance (or the call's end)."""
    out, unanswered = [], 0
    for stream in streams:
        times = np.asarray(stream.out_times)
        loud = np.asarray(stream.out_loud, dtype=bool)
        for call_start in stream.starts_in:
            for i, said in enumerate(plan.utterances):
                ended = call_start + said.end
                if not start <= ended <= end:
                    continue
                limit = (call_start + plan.utterances[i + 1].at if i + 1 < len(plan.utterances)
                         else call_start + plan.seconds)  # fmt: skip
                after = np.nonzero((times > ended) & (times < limit) & loud)[0]
                if not len(after):
                    unanswered += 1
                    continue
                out.append((times[after[0]] - ended - plan.quiet[i]) * 1000)
    return out, unanswered


# --- processes -------------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the engine's workers and their ASR workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            tasks = Path(f"/proc/{current}/task").iterdir()
            for task in tasks:
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """CPU seconds used so far by ``pids``: all of them, and the ASR workers among them."""
    total = asr = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick
        total += used
        if b"ivr.asr.worker" in cmdline:
            asr += used
    return total, asr


def start_sipp(run_dir: Path, name: str, remote: str, service: str, pcap: Path,
               seconds: float, calls: int, total: int, steady: float) -> tuple[
                   subprocess.Popen[bytes], int]:  # fmt: skip
    """A SIPp caller instance playing ``pcap`` in every call; returns it and its media port
    (the port the engine sends that instance's callers their audio to)."""
    scenario = run_dir / f"{name}.xml"
    during = (f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
              f'  <pause milliseconds="{int(seconds * 1000)}"/>')
    scenario.write_text(caller_scenario(name, during, headers={"X-Ivr-At": AT}),
                        encoding="utf-8")  # fmt: skip
    rate = calls / seconds
    media = free_port()
    proc = subprocess.Popen(
        ["sipp", remote, "-sf", str(scenario), "-s", service, "-m", str(total),
         "-r", str(round(rate * 1000)), "-rp", "1000000", "-l", str(calls + 50),
         "-t", "u1", "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(media),
         "-max_socket", "2000", "-timeout", str(int(seconds * 2 + steady + 120)),
         "-trace_stat", "-stf", str(run_dir / f"{name}-stat.csv"), "-nostdin"],
        cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    return proc, media


def sipp_counts(path: Path) -> tuple[int, int, int]:
    with open(path, newline="") as fh:
        row = list(csv.DictReader(fh, delimiter=";"))[-1]
    return (int(row["SuccessfulCall(C)"]), int(row["FailedCall(C)"]),
            int(row["Retransmissions(C)"]))  # fmt: skip


# --- the records -----------------------------------------------------------------------------


@dataclass
class Records:
    calls: dict[str, int] = field(default_factory=dict)  # called number -> calls recorded
    keys_expected: int = 0
    keys_recorded: int = 0
    said_expected: int = 0
    said_recorded: int = 0  # spoken answers the flow got, as said, in order


def read_records(db: Path, plan: Plan, speakers: SpeakerPlan) -> Records:
    """Keys and spoken answers each call gave, against what its SIPp instance sent."""
    out = Records()
    if not db.exists():
        return out
    with sqlite3.connect(db) as conn:
        called = dict(conn.execute("SELECT call_id, called FROM calls").fetchall())
        inputs: dict[str, list[tuple[str, str]]] = {c: [] for c in called}
        for call_id, data in conn.execute(
                "SELECT call_id, data FROM events WHERE kind = 'input' ORDER BY seq"):
            value = json.loads(data or "{}")
            inputs.setdefault(call_id, []).append((str(value.get("mode")),
                                                   str(value.get("value"))))  # fmt: skip
    for call_id, number in called.items():
        out.calls[number] = out.calls.get(number, 0) + 1
        got = inputs.get(call_id, [])
        keys = [v for m, v in got if m == "dtmf"]
        want_keys = [k.digit for k in (speakers.keys if number == SPEAKERS_NUMBER else plan.keys)]
        out.keys_expected += len(want_keys)
        out.keys_recorded += prefix_match(keys, want_keys)
        if number == SPEAKERS_NUMBER:
            said = [v for m, v in got if m == "speech"]
            want_said = [u.text for u in speakers.utterances]
            out.said_expected += len(want_said)
            out.said_recorded += prefix_match(said, want_said)
    return out


# --- one point -------------------------------------------------------------------------------


@dataclass
class Point:
    name: str
    calls: int
    speakers: int
    asr: str
    figures: dict[str, float | int | str]


def run_point(name: str, calls: int, speakers: int, asr: str, plan: Plan,
              speaker_plan: SpeakerPlan, steady: float, workdir: Path,
              workers: int) -> Point:  # fmt: skip
    run_dir = workdir / name
    run_dir.mkdir()
    rtp = NATIVE_RTP
    sip_port = free_port()
    write_config(run_dir, rtp, None, asr)
    engine = Engine(["serve", "--listen", f"127.0.0.1:{sip_port}", "--workers", str(workers),
                     "--no-build"], run_dir, b"answering SIP")  # fmt: skip
    remote = f"127.0.0.1:{sip_port}"
    groups = [("keys", calls - speakers, KEYS_NUMBER, plan.seconds)]
    if speakers:
        groups.append(("speakers", speakers, SPEAKERS_NUMBER, speaker_plan.seconds))
    capture = run_dir / "rtp.pcap"
    tcpdump = start_capture(capture, rtp)
    sipps: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    longest = max(g[3] for g in groups)
    t0 = time.time()
    # Every call of both groups is up from the longest call's end until ``steady`` later: each
    # group goes on starting calls (at its own rate) until then.
    window = (t0 + longest + 2.0, t0 + longest + 2.0 + steady)
    for group, count, number, seconds in groups:
        pcap = run_dir / f"{group}.pcap"
        if group == "keys":
            write_caller_pcap(pcap, plan.keys, seconds)
        else:
            write_caller_pcap(pcap, speaker_plan.keys, seconds,
                              speech=[(u.at, u.pcm) for u in speaker_plan.utterances])
        total = math.ceil(count / seconds * (longest + 2.0 + steady)) + 1
        sipps[group] = start_sipp(run_dir, group, remote, number, pcap, seconds, count,
                                  total, steady)  # fmt: skip
    time.sleep(max(0.0, window[0] - time.time()))
    tree = process_tree(engine.proc.pid)
    (cpu0, asr0), wall0 = cpu_seconds(tree), time.time()
    time.sleep(max(0.0, window[1] - time.time()))
    cpu1, asr1 = cpu_seconds(tree)
    wall = time.time() - wall0
    for proc, _ in sipps.values():
        proc.wait()
    time.sleep(2.0)
    engine.stop()
    dropped = stop_capture(tcpdump)
    streams = read_capture(capture, *rtp)
    capture.unlink()  # hundreds of MB
    by_group = {g: [s for s in streams.values() if s.peer == media]
                for g, (_, media) in sipps.items()}  # fmt: skip
    gaps = gap_stats(streams, *window)
    key_lat, key_unanswered = key_latencies({i: s for i, s in enumerate(by_group["keys"])},
                                            plan.quiet, *window)  # fmt: skip
    said_lat, said_unanswered = speech_latencies(by_group.get("speakers", []), speaker_plan,
                                                 *window)  # fmt: skip
    records = read_records(run_dir / "calls.db", plan, speaker_plan)
    counts = [sipp_counts(run_dir / f"{g}-stat.csv") for g in sipps]
    figures: dict[str, float | int | str] = {
        "ok": sum(c[0] for c in counts), "failed": sum(c[1] for c in counts),
        "retrans": sum(c[2] for c in counts),
        "gap_p50": gaps["p50"], "gap_p99": gaps["p99"], "gap_max": gaps["max"],
        "cpu_cores": (cpu1 - cpu0) / wall, "asr_cores": (asr1 - asr0) / wall,
        "keys_expected": records.keys_expected, "keys_recorded": records.keys_recorded,
        "said_expected": records.said_expected, "said_recorded": records.said_recorded,
        "calls_recorded": sum(records.calls.values()), "capture_dropped": dropped,
        "key_n": len(key_lat), "key_unanswered": key_unanswered,
        "key_p50": statistics.median(key_lat) if key_lat else float("nan"),
        "key_p99": percentile(key_lat, 99),
        "said_n": len(said_lat), "said_unanswered": said_unanswered,
        "said_p50": statistics.median(said_lat) if said_lat else float("nan"),
        "said_p95": percentile(said_lat, 95), "said_max": max(said_lat, default=float("nan")),
        "load_start": os.getloadavg()[0],
    }  # fmt: skip
    return Point(name, calls, speakers, asr, figures)


# --- the report ------------------------------------------------------------------------------

HEADER = ("| run | calls up (speaking) | asr | engine CPU (cores) | of it ASR workers | "
          "RTP gap p50 / p99 / max (ms) | keys lost | key → prompt p50 / p99 (ms) | "
          "spoken answers recorded | speech → prompt p50 / p95 / max (ms) | "
          "SIPp ok / failed / retrans |\n|---|---|---|---|---|---|---|---|---|---|---|")


def row(p: Point) -> str:
    f = p.figures
    lost = int(f["keys_expected"]) - int(f["keys_recorded"])
    said = (f"{f['said_recorded']} of {f['said_expected']}" if p.speakers else "–")
    latency = (f"{float(f['said_p50']):.0f} / {float(f['said_p95']):.0f} / "
               f"{float(f['said_max']):.0f} (n={f['said_n']})" if p.speakers else "–")
    return (f"| {p.name} | {p.calls} ({p.speakers}) | {p.asr} | {float(f['cpu_cores']):.2f} | "
            f"{float(f['asr_cores']):.2f} | {float(f['gap_p50']):.1f} / "
            f"{float(f['gap_p99']):.1f} / {float(f['gap_max']):.1f} | {lost} of "
            f"{f['keys_expected']} | {float(f['key_p50']):.0f} / {float(f['key_p99']):.0f} | "
            f"{said} | {latency} | {f['ok']} / {f['failed']} / {f['retrans']} |")


def per_call(points: list[Point]) -> dict[str, float]:
    """Cores per call: keys-only, listening in silence, speaking (see the module doc)."""
    keys, silent, speech = points
    n = keys.calls
    k = float(keys.figures["cpu_cores"]) / n
    quiet = float(silent.figures["cpu_cores"]) / silent.calls
    m = speech.speakers
    spoke = (float(speech.figures["cpu_cores"]) - (speech.calls - m) * quiet) / m
    base = float(keys.figures["cpu_cores"])
    return {"keys": k, "silent": quiet, "speaking": spoke,
            "ratio_silent": float(silent.figures["cpu_cores"]) / base,
            "ratio": float(speech.figures["cpu_cores"]) / base}


def report(points: list[Point], workers: int, steady: float, plan: Plan,
           speaker_plan: SpeakerPlan, voice: str, load: float) -> str:  # fmt: skip
    c = per_call(points)
    speech = points[2].figures
    lost = {p.name: int(p.figures["keys_expected"]) - int(p.figures["keys_recorded"])
            for p in points}  # fmt: skip
    goals = (float(speech["gap_p99"]) < 25, lost[points[2].name] == 0,
             float(speech["said_p50"]) <= LATENCY_GOAL * 1000)
    lines = [
        "## Real calls under load with speech (SIPp, menus listening, a third speaking)",
        f"`bench/speech_load.py` ({time.strftime('%Y-%m-%d')}, load average {load:.1f} at the "
        f"start): `ivr serve --workers {workers}`, three runs of {points[0].calls} calls in one "
        f"bench run: keys only (`asr.backend: off`, the reference), every menu listening for "
        f"speech while the callers press keys (`pocketsphinx`), and the same with "
        f"{points[2].speakers} of the callers speaking their answers (espeak-ng `{voice}`, "
        f"\"branch hours\", \"main menu\", \"branch hours\", each a second after its prompt; key "
        f"1 at the language menu). Calls {plan.seconds:.0f} s (keys) and "
        f"{speaker_plan.seconds:.0f} s (speakers); figures over {steady:.0f} s while every "
        "call is up. Speech → prompt: from the end of the caller's speech reaching the "
        "engine's port to the next prompt's first sound leaving it (the end-of-speech wait "
        "included). CPU: the whole engine from /proc (supervisor, workers, ASR workers). SIPp, "
        "tcpdump and this script share the 2 cores.",
        "",
        HEADER,
        *(row(p) for p in points),
        "",
        f"- CPU per call: keys only {100 * c['keys']:.2f} % of a core; listening for speech in "
        f"silence {100 * c['silent']:.2f} % ({100 * (c['silent'] - c['keys']):+.2f} % for "
        f"the listening); speaking {100 * c['speaking']:.2f} % "
        f"({100 * (c['speaking'] - c['keys']):+.2f} %). Against the keys-only run: the "
        f"listening run used **{c['ratio_silent']:.2f}×** its CPU, the speech run "
        f"**{c['ratio']:.2f}×**.",
        f"- Goals in the speech run: RTP gap p99 < 25 ms: {'met' if goals[0] else 'not met'}; "
        f"no key lost: {'met' if goals[1] else 'not met'}; speech → prompt p50 ≤ "
        f"{LATENCY_GOAL * 1000:.0f} ms (the end-of-speech goal of docs/ASR.md): "
        f"{'met' if goals[2] else 'not met'}.",
    ]
    return "\n".join(lines) + "\n"


def write_performance(section: str) -> None:
    path = ROOT / "docs" / "PERFORMANCE.md"
    text = path.read_text(encoding="utf-8")
    start = text.find("## Real calls under load with speech")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("" if end < 0 else text[end:])
    else:  # after the keys-only section
        anchor = text.find("\n## ", text.find("## Real calls under load (SIPp"))
        text = (text.rstrip("\n") + "\n\n" + section if anchor < 0
                else text[:anchor + 1] + section + "\n" + text[anchor + 1:])  # fmt: skip
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="calls up at once in each run")
    parser.add_argument("--speaking", type=float, default=1 / 3, help="share that speaks")
    parser.add_argument("--workers", type=int, default=2, help="ivr serve --workers")
    parser.add_argument("--steady", type=float, default=30.0, help="seconds measured at load")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice of the speakers")
    parser.add_argument("--only", choices=("keys", "silent", "speech"),
                        help="one run only (no per-call figures; for trying things)")
    parser.add_argument("--write", action="store_true", help="update docs/PERFORMANCE.md")
    opts = parser.parse_args()
    require_tools(("sipp", "tcpdump", "espeak-ng"), "bench-load")
    load = os.getloadavg()[0]
    speakers = round(opts.calls * opts.speaking)
    runs = [("keys", 0, "off"), ("silent", 0, "pocketsphinx"),
            ("speech", speakers, "pocketsphinx")]  # fmt: skip
    if opts.only:
        runs = [r for r in runs if r[0] == opts.only]
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="speech_load_") as tmp:
        workdir = Path(tmp)
        config = write_config(workdir, NATIVE_RTP, None)
        plan = make_plan(config)
        speaker_plan = make_speaker_plan(config, opts.voice, workdir)
        print(f"keys call {plan.seconds:.1f} s, speakers' call {speaker_plan.seconds:.1f} s, "
              f"load average {load:.1f}", flush=True)
        print(HEADER, flush=True)
        for name, speaking, asr in runs:
            points.append(run_point(name, opts.calls, speaking, asr, plan, speaker_plan,
                                    opts.steady, workdir, opts.workers))  # fmt: skip
            print(row(points[-1]), flush=True)
    if len(points) < 3:
        return
    section = report(points, opts.workers, opts.steady, plan, speaker_plan, opts.voice, load)
    print(section)
    if opts.write:
        write_performance(section)


if __name__ == "__main__":
    main()
