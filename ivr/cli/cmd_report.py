"""``ivr report``: KPIs from the call records."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from ivr.cli.main import ExitStatus
from ivr.config import Config
from ivr.store.db import StoreError, connect
from ivr.store.queuereport import DEFAULT_SERVICE_LEVEL, DEFAULT_SHORT_ABANDON, service_levels_of
from ivr.store.report import build_report, format_json, format_text

NAME = "report"
HELP = ("containment, transfers, abandonment, a per-node funnel, survey scores, and figures per "
        "agent queue and per agent")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="the call store (default: store.path in ivr.yaml)")
    parser.add_argument("--flow", help="only the calls that started in this flow")
    parser.add_argument(
        "--since", help="calls started at or after this ISO date or date-time (UTC by default)"
    )
    parser.add_argument(
        "--until",
        help="calls started before this ISO date-time; a bare date includes that whole day",
    )
    parser.add_argument(
        "--service-level", type=_seconds, metavar="SECONDS",
        help="answered within this many seconds counts in the service level, for the queues "
        f"ivr.yaml gives no acd.queues.<queue>.service_level (default {DEFAULT_SERVICE_LEVEL:g})",
    )
    parser.add_argument(
        "--short-abandon", type=_seconds, metavar="SECONDS", default=DEFAULT_SHORT_ABANDON,
        help="hang-ups in a queue sooner than this are short abandons, counted apart and not in "
        "the abandon rate (default %(default)g)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace, config: Config) -> int:
    path = Path(args.db) if args.db else config.store_path
    if not path.is_file():  # do not create an empty store where the user mistyped a path
        print(f"ivr report: no call store at {path}", file=sys.stderr)
        return ExitStatus.USAGE
    try:
        conn = connect(path)
    except (StoreError, sqlite3.Error) as exc:
        print(f"ivr report: cannot open {path}: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    try:
        report = build_report(
            conn, args.flow, args.since, args.until, service_levels=service_levels_of(config),
            service_level=DEFAULT_SERVICE_LEVEL if args.service_level is None
            else args.service_level,
            short_abandon=args.short_abandon,
        )
    except ValueError as exc:  # a bad --since/--until
        print(f"ivr report: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    finally:
        conn.close()
    print(format_json(report) if args.json else format_text(report))
    return ExitStatus.OK
