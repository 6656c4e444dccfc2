"""``ivr report``: KPIs from the call records."""

from __future__ import annotations

import argparse
import sys

from ivr.config import Config
from ivr.store.db import connect
from ivr.store.report import build_report, format_json, format_text

NAME = "report"
HELP = "containment, transfer/queue rates, abandonment and a per-node funnel from call records"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="the call store (default: store.path in ivr.yaml)")
    parser.add_argument("--flow", help="only this flow's calls")
    parser.add_argument("--since", help="calls started at or after this ISO date/time (UTC)")
    parser.add_argument("--until", help="calls started before this ISO date/time (UTC)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace, config: Config) -> int:
    path = args.db or str(config.store_path)
    try:
        conn = connect(path)
    except Exception as exc:
        print(f"ivr report: cannot open {path}: {exc}", file=sys.stderr)
        return 2
    try:
        report = build_report(conn, args.flow, args.since, args.until)
    except ValueError as exc:  # a bad --since/--until
        print(f"ivr report: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    print(format_json(report) if args.json else format_text(report))
    return 0
