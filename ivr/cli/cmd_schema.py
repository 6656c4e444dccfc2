"""``ivr schema``: print the flow JSON Schema (for editors: yaml-language-server, VS Code)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ivr.config import Config
from ivr.flow.schema import flow_schema

NAME = "schema"
HELP = "print the JSON Schema of flow files (for editor completion and help)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE", help="write the schema to FILE")


def run(args: argparse.Namespace, config: Config) -> int:
    text = json.dumps(flow_schema(), indent=2, ensure_ascii=False) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"ivr schema: cannot write {args.output}: {exc.strerror}", file=sys.stderr)
            return 1
        print(f"wrote {args.output}")
        return 0
    sys.stdout.write(text)
    return 0
