"""``ivr report``: KPIs from the call records."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from ivr.cli.main import ExitStatus
from ivr.config import Config
from ivr.store.db import StoreError, connect
from ivr.store.managers import DAY, Definitions
from ivr.store.queuereport import DEFAULT_SERVICE_LEVEL, DEFAULT_SHORT_ABANDON, service_levels_of
from ivr.store.report import build_report, format_csv, format_html, format_json, format_text

NAME = "report"
HELP = ("containment, transfers, abandonment, a per-node funnel, survey scores, figures per "
        "agent queue and per agent, and the managers' figures (docs/REPORTS.md)")
FORMATS = {"text": format_text, "json": format_json, "csv": format_csv, "html": format_html}
INTERVALS = {"15": 15, "60": 60, "day": DAY}
DEFAULTS = Definitions()


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
    parser.add_argument("--format", choices=list(FORMATS), default=None,
                        help="text (default), json, csv (section,label,figure,value) or html "
                        "(one self-contained page with charts)")
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("-o", "--output", metavar="FILE", help="write there instead of stdout")
    parser.add_argument("--include-qa", action="store_true",
                        help="count QA calls (ivr test's) too; left out by default")
    parser.add_argument("--interval", choices=list(INTERVALS), default="60",
                        help="minutes per trend interval, or day (UTC; default %(default)s)")
    definitions = parser.add_argument_group("what counts (docs/REPORTS.md)")
    definitions.add_argument("--csat-question", default=DEFAULTS.csat_question,
                             help="the survey question of CSAT (default %(default)s)")
    definitions.add_argument("--csat-satisfied", type=int, default=DEFAULTS.csat_satisfied,
                             metavar="ANSWER", help="answers at or above this are satisfied "
                             "(default %(default)s: 4 and 5 on a 1-5 scale)")
    definitions.add_argument("--fcr-question", default=DEFAULTS.fcr_question,
                             help="the survey question of first-contact resolution "
                             "(default %(default)s)")
    definitions.add_argument("--fcr-yes", type=int, default=DEFAULTS.fcr_yes, metavar="ANSWER",
                             help="the answer meaning resolved (default %(default)s)")
    definitions.add_argument("--auth-flow", default=DEFAULTS.auth_flow,
                             help="entering this flow is an authentication attempt "
                             "(default %(default)s)")
    definitions.add_argument("--auth-var", default=DEFAULTS.auth_var,
                             help="set true when authentication succeeds (default %(default)s)")


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
            short_abandon=args.short_abandon, include_qa=args.include_qa,
            definitions=Definitions(
                csat_question=args.csat_question, csat_satisfied=args.csat_satisfied,
                fcr_question=args.fcr_question, fcr_yes=args.fcr_yes,
                auth_flow=args.auth_flow, auth_var=args.auth_var,
                interval=INTERVALS[args.interval]),
        )
    except ValueError as exc:  # a bad --since/--until
        print(f"ivr report: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    finally:
        conn.close()
    render = FORMATS["json" if args.json and args.format is None else args.format or "text"]
    text = render(report)
    if args.output:
        try:
            Path(args.output).write_text(text if text.endswith("\n") else text + "\n",
                                         encoding="utf-8")
        except OSError as exc:
            print(f"ivr report: cannot write {args.output}: {exc}", file=sys.stderr)
            return ExitStatus.USAGE
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return ExitStatus.OK
