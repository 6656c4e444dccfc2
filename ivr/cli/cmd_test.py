"""``ivr test``: run QA call scripts on a virtual clock (docs/TESTING.md).

Actions answer from the scripts' stubs (their own ``stubs:``, then their folder's
``stubs.yaml``), so no backend has to run; ``--backend`` leaves the folder's out. With
``--live`` the scripts are real calls to a running server, each result printed as it comes,
after checking that the server's configuration honours the QA test headers.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ivr.cli.status import ExitStatus
from ivr.config import Config
from ivr.engine.logsink import log_event
from ivr.flow.errors import FlowError
from ivr.flow.model import FlowSet
from ivr.sim.coverage import CoverageReport, compute_coverage, format_coverage
from ivr.sim.junit import write_junit
from ivr.sim.live_call import DTMF_MODES
from ivr.sim.runner import (
    ScriptResult,
    all_events,
    display_path,
    run_parallel,
    script_error_result,
)
from ivr.sim.script import Say, Script, ScriptError, discover_scripts, load_script

NAME = "test"
HELP = "run QA call scripts against the flows on a virtual clock (or live over SIP: --live)"

OK, FAILED, USAGE = ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="script files or folders (default: scripts_dir of ivr.yaml)",
    )
    parser.add_argument("--flows", metavar="DIR", help="flows folder (default: flows_dir)")
    parser.add_argument("--coverage", action="store_true", help="report node/branch coverage")
    parser.add_argument(
        "--require-coverage",
        type=float,
        metavar="PCT",
        help="fail when node or branch coverage of all flows is below PCT percent",
    )
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML to FILE")
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        metavar="N",
        help="run the scripts in N processes (default 1)",
    )
    parser.add_argument(
        "--backend",
        action="store_true",
        help="run the actions the stubs.yaml of the scripts' folders stub against the real "
        "backend (a script's own stubs: still apply)",
    )
    parser.add_argument(
        "--store",
        metavar="PATH",
        help="write the call records to this SQLite store (default: none)",
    )
    live = parser.add_argument_group("live calls (docs/TESTING.md)")
    live.add_argument(
        "--live",
        metavar="SIP_URI",
        help="call a running `ivr serve` at SIP_URI (e.g. sip:127.0.0.1:5060) instead of "
        "simulating; --jobs calls at once",
    )
    live.add_argument("--db", metavar="PATH", help="live: the server's call store (default: "
                      "store.path of ivr.yaml)")  # fmt: skip
    live.add_argument("--dtmf", choices=DTMF_MODES, default="rfc4733",
                      help="live: how keys are sent (default rfc4733)")
    live.add_argument("--barge-in", action="store_true",
                      help="live: press keys as soon as the prompt starts (faster)")
    live.add_argument("--max-wait", type=float, default=30.0, metavar="S",
                      help="live: cap for silence/wait steps (default 30)")
    live.add_argument("--without-test-headers", action="store_true",
                      help="live: run although the configuration lacks sip.test_headers (at: "
                      "is ignored, calls are not marked as QA)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show flow warnings and the events of failed scripts",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    flows_dir = Path(args.flows) if args.flows else config.flows_dir
    if args.live and not _live_target_ok(args.live):
        return USAGE
    flows = _load_flows(flows_dir, config, args.verbose)
    if flows is None:
        return FAILED
    try:
        files = discover_scripts([Path(p) for p in args.paths] or [config.scripts_dir])
    except FileNotFoundError as exc:
        print(f"ivr test: no such file or folder: {exc}", file=sys.stderr)
        return USAGE
    if not files:
        where = ", ".join(args.paths) or display_path(config.scripts_dir)
        print(f"ivr test: no call scripts found in {where}", file=sys.stderr)
        return USAGE
    scripts, bad = _parse(files, shared_stubs=not args.backend and not args.live)
    if args.live and not _server_ready(args, config, scripts):
        return USAGE
    started = time.perf_counter()
    if args.live:
        _print_results(bad, args.verbose)
        results = _run_live(args, config, scripts) if scripts else []
    else:
        results = _simulate(args, config, flows, flows_dir, scripts)
    elapsed = time.perf_counter() - started
    if not args.live:  # live results were printed as they came
        _print_results(_in_file_order(files, results, bad), args.verbose)
    results = _in_file_order(files, results, bad)
    skipped = sum(1 for r in results if r.skipped is not None)
    failed = sum(1 for r in results if not r.passed) - skipped
    print(f"{len(results) - failed - skipped} passed, {failed} failed"
          + (f", {skipped} skipped" if skipped else ""))
    if args.verbose:
        clock = "real" if args.live else "simulated"
        virtual = sum(r.duration for r in results)
        print(f"({virtual:.1f} s of calls {clock} in {elapsed:.2f} s)")
    if args.junit:
        write_junit(results, args.junit)
    status = OK if failed == 0 else FAILED
    if args.coverage or args.require_coverage is not None:
        report = compute_coverage(flows, all_events(results))
        print(format_coverage(report))
        if not _coverage_ok(report, args.require_coverage):
            status = FAILED
    if args.store and not args.live:
        _store(args.store, results)
    return status


def _simulate(args: argparse.Namespace, config: Config, flows: FlowSet, flows_dir: Path,
              scripts: list[Script]) -> list[ScriptResult]:  # fmt: skip
    return (
        run_parallel(
            scripts,
            flows=flows,
            flows_dir=flows_dir,
            config=config,
            jobs=args.jobs,
            call_id_prefix=_call_id_prefix(args.store),
            sinks=[log_event],
        )
        if scripts
        else []
    )


def _live_target_ok(target: str) -> bool:
    from ivr.sim.live import target_uri

    try:
        target_uri(target, "")
    except ValueError as exc:
        print(f"ivr test: --live: {exc}", file=sys.stderr)
        return False
    return True


def _server_ready(args: argparse.Namespace, config: Config, scripts: Sequence[Script]) -> bool:
    """Before any call: does the server honour what live QA calls need? ``sip.test_headers``
    makes it start a call at the script's ``at:`` (business hours) and mark the call's record
    as QA (reports leave it out). The server runs on this machine with this configuration;
    without the setting the scripts with ``at:`` would fail one by one, minutes later."""
    if config.sip.test_headers or args.without_test_headers:
        return True
    timed = sum(1 for s in scripts if s.at is not None)
    print(
        "ivr test --live: the server needs `sip: {test_headers: true}` in its configuration "
        "(a QA server's; never a public line's), and this one has it off: without it "
        f"{timed} of {len(scripts)} scripts would run at the wrong time (their at: is "
        "ignored) and no call would be marked as a QA call (reports would count them). Start "
        "the server with a configuration that sets it and give the same one here (`ivr -c "
        "qa.yaml serve`, `ivr -c qa.yaml test --live ...`; docs/TESTING.md), or pass "
        "--without-test-headers to run anyway.",
        file=sys.stderr,
    )
    return False


def _run_live(args: argparse.Namespace, config: Config, scripts: list[Script]
              ) -> list[ScriptResult]:  # fmt: skip
    from ivr.asr.service import speech_support
    from ivr.sim.live import LiveOptions, run_live_scripts

    asr = config.asr  # the server on this machine reads the same ivr.yaml
    speaks = any(isinstance(step, Say) for script in scripts for step in script.steps)
    speech = speech_support(asr.backend, asr.models_dir, config.languages) if speaks else None
    options = LiveOptions(
        target=args.live,
        db=Path(args.db) if args.db else config.store_path,
        jobs=max(1, args.jobs),
        max_wait=args.max_wait,
        barge_in=args.barge_in,
        dtmf=args.dtmf,
        prompts_dir=config.prompts_dir,
        speech=speech,
        on_result=_progress(len(scripts), args.verbose),
    )
    print(f"calling {args.live}: {len(scripts)} scripts, {options.jobs} at a time "
          "(prompts play in real time)", flush=True)
    return run_live_scripts(scripts, options)


def _progress(total: int, verbose: bool) -> Callable[[ScriptResult], None]:
    """Prints each live result as it comes, numbered ``[n/N]``."""
    done = 0

    def show(result: ScriptResult) -> None:
        nonlocal done
        done += 1
        head, *rest = _result_lines(result, verbose)
        print("\n".join([f"[{done}/{total}] {head}", *rest]), flush=True)

    return show


def _load_flows(flows_dir: Path, config: Config, verbose: bool) -> FlowSet | None:
    from ivr.flow.loader import load_flowset

    try:
        flows, warnings = load_flowset(flows_dir, config)
    except FlowError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        print(f"ivr test: the flows in {display_path(flows_dir)} have errors", file=sys.stderr)
        return None
    if verbose:
        for warning in warnings:
            print(warning, file=sys.stderr)
    return flows


def _parse(files: Sequence[Path], *, shared_stubs: bool
           ) -> tuple[list[Script], list[ScriptResult]]:  # fmt: skip
    scripts, bad = [], []
    for path in files:
        try:
            scripts.append(load_script(path, shared_stubs=shared_stubs))
        except ScriptError as exc:
            bad.append(script_error_result(exc))
        except OSError as exc:
            bad.append(script_error_result(ScriptError(str(path), 1, 1, str(exc))))
    return scripts, bad


def _in_file_order(
    files: Sequence[Path], results: list[ScriptResult], bad: list[ScriptResult]
) -> list[ScriptResult]:
    order = {str(path): i for i, path in enumerate(files)}
    return sorted([*results, *bad], key=lambda r: order.get(r.path, len(order)))


def _print_results(results: Sequence[ScriptResult], verbose: bool) -> None:
    for result in results:
        print("\n".join(_result_lines(result, verbose)))


def _result_lines(result: ScriptResult, verbose: bool) -> list[str]:
    """The summary of one result; with ``verbose`` the events of a failed one."""
    lines = [result.summary()]
    if verbose and not result.passed and result.events:
        for event in result.events:
            node = f" {event.node}" if event.node else ""
            data = {k: v for k, v in event.data.items() if k != "flow"}
            lines.append(f"    {event.t:8.2f} {event.kind}{node} {data}")
    return lines


def _coverage_ok(report: CoverageReport, required: float | None) -> bool:
    if required is None:
        return True
    low = min(report.node_percent, report.branch_percent)
    if low + 1e-9 < required:
        print(f"coverage {low:.1f}% is below the required {required:g}%")
        return False
    return True


def _call_id_prefix(store: str | None) -> str:
    # Records written to a store must not collide with an earlier run's; ids stay short.
    return f"sim-{int(time.time())}" if store else "sim"


def _store(path: str, results: Sequence[ScriptResult]) -> None:
    from ivr.store.db import CallStore

    store = CallStore(path)
    try:
        for event in all_events(results):
            store.sink(event)
        store.flush()
    finally:
        store.close()
