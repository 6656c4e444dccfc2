"""``ivr call``: place one SIP call to a running ``ivr serve``, press keys, speak, and report.

    ivr call sip:95588@127.0.0.1:5060 --digits "1,4" --wait 3

Each comma-separated group of ``--digits`` is sent (RFC 4733, or ``--dtmf info|inband``) once
the prompt playing has finished: a second of silence after speech, and no newer prompt in the
server's call record. ``--say TEXT`` is synthesized (ivr/tts, cached under prompts/) and sent as
the caller's voice after the digits, as the ``say`` steps of ``ivr test --live`` are
(:func:`~ivr.sim.live_call.synthesize_speech`): the server recognises it like a caller's speech.
What was heard is printed: the prompts from the server's call record (``--db``, this machine's
store by default) with the speech heard while each played.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ivr.config import Config
from ivr.core import events as ev
from ivr.core.events import MASK, Event
from ivr.sim.live import AT_HEADER, target_uri
from ivr.sim.live_call import (
    DTMF_MODES,
    LiveCaller,
    LivePhone,
    Segment,
    Sent,
    synthesize_speech,
)
from ivr.sim.records import CallRecords

NAME = "call"
HELP = "place one SIP call to a running ivr serve, press keys, speak, print what was heard"

OK, FAILED, USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="SIP_URI", help="whom to call, e.g. "
                        "sip:95588@127.0.0.1:5060")  # fmt: skip
    parser.add_argument("--digits", default="", help='keys, e.g. "1,62220212#,4": each group '
                        "after the prompt playing has finished")  # fmt: skip
    parser.add_argument("--say", metavar="TEXT", help="speak TEXT (synthesized) after the digits")
    parser.add_argument("--language", default="en", help="language of --say (default en)")
    parser.add_argument("--wait", type=float, metavar="S", help="after the last input, listen S "
                        "seconds, then hang up (default: until the server hangs up)")  # fmt: skip
    parser.add_argument("--hangup-after", type=float, default=None, metavar="S",
                        help="hang up S seconds after the answer at the latest (default: wait "
                        "for the call to end; Ctrl-C hangs up)")
    parser.add_argument("--db", metavar="PATH", help="the server's call store (default: store.path "
                        "of ivr.yaml); the report reads the call's prompts from it")  # fmt: skip
    parser.add_argument("--caller", default="ivr-call", help="the calling number (From user)")
    parser.add_argument("--dtmf", choices=DTMF_MODES, default="rfc4733",
                        help="how keys are sent (default rfc4733)")
    parser.add_argument("--at", metavar="ISO", help=f"send {AT_HEADER} (a server with "
                        "sip.test_headers runs the call at that wall time)")  # fmt: skip


def run(args: argparse.Namespace, config: Config) -> int:
    try:
        target = target_uri(args.target, "")
    except ValueError as exc:
        print(f"ivr call: {exc}", file=sys.stderr)
        return USAGE
    db = Path(args.db) if args.db else config.store_path
    speech = None
    if args.say:
        speech = _synthesize(config, args.say, args.language)
        if speech is None:
            return FAILED
    try:
        return asyncio.run(_place(args, target, db, speech))
    except OSError as exc:
        print(f"ivr call: {exc}", file=sys.stderr)
        return FAILED


def _synthesize(config: Config, text: str, language: str) -> NDArray[np.int16] | None:
    from ivr.tts.engine import TTSError

    try:
        return synthesize_speech(config.prompts_dir, text, language)
    except TTSError as exc:
        print(f"ivr call: cannot synthesize --say: {exc}", file=sys.stderr)
        return None


async def _place(args: argparse.Namespace, target: str, db: Path,
                 speech: NDArray[np.int16] | None) -> int:  # fmt: skip
    phone = LivePhone()
    await phone.start()
    records = CallRecords(db)
    caller = phone.caller(dtmf=args.dtmf, records=records)
    try:
        headers = [(AT_HEADER, args.at)] if args.at else []
        status = await caller.dial(target, caller=args.caller, headers=headers)
        print(_progress_line(caller, target), flush=True)
        if status != 200:
            return FAILED
        await _script(caller, args, speech)
        await caller.wait_until(lambda: caller.call_ended_in_record or bool(caller.record_error),
                                3.0)  # fmt: skip
        print(report(caller), flush=True)
        call = caller.call
        normal = call is not None and call.end_reason in ("remote bye", "local bye")
        return OK if normal else FAILED
    finally:
        await caller.close()
        await phone.close()
        records.close()


def call_deadline(answered: float, hangup_after: float | None) -> float:
    """When the caller hangs up at the latest: never by default, a full call plays out (a bank
    call with a queue and a survey takes minutes)."""
    return math.inf if hangup_after is None else answered + hangup_after


async def _script(caller: LiveCaller, args: argparse.Namespace,
                  speech: NDArray[np.int16] | None) -> None:  # fmt: skip
    """Digits, speech, the final wait; hang up unless the server did."""
    loop = asyncio.get_running_loop()
    deadline = call_deadline(caller.t0, args.hangup_after)
    since = caller.t0
    groups = args.digits.split(",") if args.digits else []
    for group in groups:
        if not await caller.wait_prompt_finished(since, deadline - loop.time()):
            break
        since = loop.time()
        if group:
            caller.press(group)
    ready = speech is not None and not caller.ended
    if ready and await caller.wait_prompt_finished(since, deadline - loop.time()):
        assert speech is not None
        await caller.say(speech, args.say)
    left = deadline - loop.time()
    if args.wait is not None:
        left = min(left, args.wait)
    await caller.wait_until(lambda: caller.ended, max(0.0, left))
    if not caller.ended:
        caller.hangup()
        await caller.wait_ended(5.0)


def _progress_line(caller: LiveCaller, target: str) -> str:
    call = caller.call
    if call is None:
        return f"call to {target}: not placed"
    statuses = ", ".join(f"{status} {reason}".strip() for _, status, reason in call.progress)
    line = f"call {call.call_id} to {target}: {statuses or 'no answer'}"
    if call.media is not None:
        dtmf = call.media.dtmf_payload_type
        extra = f", telephone-event {dtmf}" if dtmf is not None else ", no telephone-event"
        line += f" ({call.media.encoding}{extra})"
    if call.retry_after is not None:
        line += f" Retry-After {call.retry_after}"
    return line


def report(caller: LiveCaller) -> str:
    """What the caller heard and did, on the call's timeline (seconds since the answer)."""
    t0 = caller.t0
    prompts = [e for e in caller.events if e.kind == ev.PROMPT]
    segments = list(caller.monitor.segments)
    rows: list[tuple[float, str]] = []
    starts = [t0 + p.t for p in prompts]
    for i, prompt in enumerate(prompts):
        until = starts[i + 1] if i + 1 < len(starts) else float("inf")
        mine = [s for s in segments if starts[i] <= s.start < until]
        segments = [s for s in segments if s not in mine]
        heard = " ".join(_span(s, t0) for s in mine) or "no audio heard"
        text = str(prompt.data.get("text", ""))
        rows.append((prompt.t, f"prompt {prompt.data.get('prompt')} [{heard}] {text[:90]!r}"))
    rows += [(s.start - t0, f"heard {_span(s, t0)}") for s in segments]
    secret_at = _secret_entry_times(caller.events)
    rows += [(s.at - t0, f"sent {s.kind} {_shown(s, s.at - t0, secret_at)}".rstrip())
             for s in caller.sent]  # fmt: skip
    lines = [f"{t:8.2f}  {what}" for t, what in sorted(rows, key=lambda row: row[0])]
    lines.append(_ending(caller))
    return "\n".join(lines)


def _secret_entry_times(events: list[Event]) -> list[tuple[float, float]]:
    """When the server was in a node whose entry it recorded masked (a PIN, a card number):
    (entered, left) on the call's timeline."""
    secret_nodes = {e.node for e in events if e.kind == ev.INPUT and e.data.get("value") == MASK}
    enters = [e for e in events if e.kind in (ev.NODE_ENTER, ev.CALL_END)]
    spans = []
    for i, enter in enumerate(enters):
        if enter.kind == ev.NODE_ENTER and enter.node in secret_nodes:
            left = enters[i + 1].t if i + 1 < len(enters) else float("inf")
            spans.append((enter.t, left))
    return spans


def _shown(sent: Sent, at: float, secret_at: list[tuple[float, float]]) -> str:
    """What a sent key group may show: masked when the server took it as a secret entry."""
    if sent.kind == "dtmf" and any(start <= at < end for start, end in secret_at):
        return MASK
    return str(sent.detail)


def _span(segment: Segment, t0: float) -> str:
    end = f"{segment.end - t0:.2f}" if segment.end is not None else "..."
    return f"audio {segment.start - t0:.2f}-{end} s"


def _ending(caller: LiveCaller) -> str:
    call = caller.call
    how = call.end_reason if call is not None else "not placed"
    end = next((e for e in caller.events if e.kind == ev.CALL_END), None)
    if end is not None:
        record = f"outcome {end.data.get('outcome')} after {end.data.get('duration')} s"
    elif caller.record_error:
        record = f"no call record ({caller.record_error})"
    else:
        record = "no call_end in the call record"
    return f"ended: {how or 'still up'}; {record}"
