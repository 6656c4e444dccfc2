"""``ivr demo-api``: run the demo bank core system that the example flow's webhooks call."""

from __future__ import annotations

import argparse
import contextlib
import sys

from ivr.config import Config
from ivr.demo import bank_api

NAME = "demo-api"
HELP = "run the demo bank API (a local stand-in for the bank core system) on 127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=int,
        default=bank_api.DEFAULT_PORT,
        help=f"TCP port on 127.0.0.1 (default {bank_api.DEFAULT_PORT}; 0 picks a free one)",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    try:
        server = bank_api.make_server("127.0.0.1", args.port)
    except OSError as exc:
        print(f"ivr demo-api: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return 2
    with server:
        print(f"demo bank API on {server.url} (Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0
