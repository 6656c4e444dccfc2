"""``ivr graph FLOW``: draw a flow as Mermaid, Graphviz DOT or a self-contained HTML page.

FLOW is a flow id of the flows folder (``bank-main``) or the path of a flow file. Without
``--format`` the format follows the output file's suffix (``.html``, ``.dot``/``.gv``, anything
else Mermaid); without ``-o`` the drawing goes to standard output.

Exit status: 0 drawn, 1 the flow has errors (printed as ``file:line:col``), 2 no such flow or
file, or the output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ivr.cli.status import ExitStatus
from ivr.config import Config
from ivr.flow.graph import FORMATS, render
from ivr.flow.model import Flow

NAME = "graph"
HELP = "draw a flow as Mermaid, Graphviz DOT or a self-contained HTML page"

OK, FAILED, USAGE = ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE
_SUFFIXES = {".html": "html", ".htm": "html", ".dot": "dot", ".gv": "dot"}


class _NoFlow(Exception):
    """FLOW names no flow file and no flow id."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("flow", metavar="FLOW", help="flow id in the flows folder, or a .yaml path")
    parser.add_argument(
        "-f",
        "--format",
        choices=FORMATS,
        help="output format (default: from the -o suffix, else mermaid)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")


def run(args: argparse.Namespace, config: Config) -> int:
    # The loader is imported here so that `ivr --help` does not pay for the schema machinery.
    from ivr.flow.errors import FlowError

    try:
        flow = find_flow(args.flow, config)
    except _NoFlow as exc:
        print(f"ivr graph: {exc}", file=sys.stderr)
        return USAGE
    except FlowError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        return FAILED
    fmt = args.format or _SUFFIXES.get(Path(args.output or "").suffix.lower(), "mermaid")
    text = render(flow, fmt)
    if not args.output:
        sys.stdout.write(text)
        return OK
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"ivr graph: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return USAGE
    return OK


def find_flow(name: str, config: Config) -> Flow:
    """The flow ``name`` refers to: a file path, ``<flows_dir>/<name>.yaml``, or a flow id.

    Raises:
        FlowError: the flow (or, for an id, the flows folder) has errors.
        _NoFlow: nothing matches ``name``.
    """
    from ivr.flow.loader import load_flow, load_flowset

    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise _NoFlow(f"no such flow file: {name}")
        return load_flow(path, config)
    candidate = config.flows_dir / f"{name}.yaml"
    if candidate.is_file():
        flow = load_flow(candidate, config)
        if flow.id == name:
            return flow
    if not config.flows_dir.is_dir():
        raise _NoFlow(f"no flow {name!r}: the flows folder {config.flows_dir} does not exist")
    flowset, _warnings = load_flowset(config.flows_dir, config)
    if name not in flowset.flows:
        known = ", ".join(sorted(flowset.flows)) or "none"
        raise _NoFlow(f"no flow {name!r} in {config.flows_dir} (flows: {known})")
    return flowset.flows[name]
