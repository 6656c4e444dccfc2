"""``ivr validate``: check flow files and report every problem as ``file:line:col``.

ivr.yaml is checked too: its schema when it is read (every command does that), and here that
every ``numbers:`` entry (``default`` too) names a flow of ``flows_dir``; those problems go to
stderr as ``ivr.yaml:LINE:COL: reason``. Every ``enqueue`` node must name a queue of
``acd.queues`` (an error at the node); a queue no agent could take the node's calls from, or no
``acd:`` section at all, is a warning (ivr/acd/checks.py).

Exit status 0 when no flow has an error (warnings are printed but do not fail; ``ivr lint``
fails on them too), 1 when some flow has an error, 2 when a path does not exist or ivr.yaml
has an error. A webhook whose fixed host is not in ``webhook_allow`` is an error, and webhooks
without any ``webhook_allow`` a warning (ivr/flow/webhookcheck.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ivr.acd.checks import check_agent_line, check_enqueues
from ivr.cli.status import ExitStatus
from ivr.config import Config, ConfigProblem
from ivr.flow.errors import Diagnostic, FlowError, Severity
from ivr.flow.loader import Loaded, check_files, flow_files, sorted_diagnostics
from ivr.flow.model import Pos
from ivr.flow.webhookcheck import check_webhooks
from ivr.flow.yamlload import load_yaml, pointer

NAME = "validate"
HELP = "check flows and report every error as file:line:col"

OK, FAILED, USAGE = ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="flow files or folders (default: flows_dir of ivr.yaml)",
    )


def run(args: argparse.Namespace, config: Config) -> int:
    return check_and_report(args.paths, config, NAME, fail_on_warnings=False)


def check_and_report(
    paths: list[str], config: Config, command: str, *, fail_on_warnings: bool
) -> int:
    """Check ivr.yaml's numbers and the flows at ``paths`` (or the configured folder), print,
    return the exit status."""
    config_problems = check_numbers(config)
    for problem in config_problems:
        pos = problem.pos
        print(ConfigProblem(Pos(_display(pos.file), pos.line, pos.col), problem.message),
              file=sys.stderr)  # fmt: skip
    status = _check_flows(paths, config, command, fail_on_warnings=fail_on_warnings)
    return USAGE if config_problems else status


def check_numbers(config: Config) -> list[ConfigProblem]:
    """A problem for every ``numbers:`` entry whose flow is not in ``flows_dir``."""
    if not config.numbers:
        return []
    known = flow_ids(config.flows_dir)
    listed = ", ".join(sorted(known)) if known else f"none in {_display(str(config.flows_dir))}"
    problems = []
    for number, flow_id in config.numbers.items():
        if flow_id in known:
            continue
        what = "the default number" if number == "default" else f"number '{number}'"
        problems.append(ConfigProblem(
            config.position(pointer("numbers", number)),
            f"{what} maps to flow '{flow_id}', which does not exist (flows: {listed})"))
    return problems


def flow_ids(folder: Path) -> set[str]:
    """The ids (``flow:``) of the flow files in ``folder``; a file that cannot be read counts
    by its name (its own problem is reported with the flows)."""
    ids: set[str] = set()
    for path in flow_files(folder) if folder.is_dir() else []:
        try:
            data = load_yaml(path.read_text(encoding="utf-8"), str(path)).data
        except (OSError, UnicodeDecodeError, FlowError):
            data = None
        flow_id = data.get("flow") if isinstance(data, dict) else None
        ids.add(flow_id if isinstance(flow_id, str) else path.stem)
    return ids


def _check_flows(
    paths: list[str], config: Config, command: str, *, fail_on_warnings: bool
) -> int:
    targets = [Path(p) for p in paths] if paths else [config.flows_dir]
    files: list[Path] = []
    for target in targets:
        if target.is_dir():
            found = flow_files(target)
            if not found:
                print(f"ivr {command}: no flow files (*.yaml) in {_display(str(target))}",
                      file=sys.stderr)
                return USAGE
            files.extend(found)
        elif target.is_file():
            files.append(target)
        else:
            print(f"ivr {command}: no such file or folder: {target}", file=sys.stderr)
            return USAGE
    results = _check_with_context(files, config)
    _check_queues(results, config)
    diagnostics = [d for item in results for d in item.diagnostics]
    for diagnostic in diagnostics:
        print(_format(diagnostic))
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    with_problems = sum(bool(r.diagnostics) for r in results)
    print(summary(len(results), errors, warnings, with_problems, strict=fail_on_warnings))
    if errors or (fail_on_warnings and warnings):
        return FAILED
    return OK


def _check_with_context(files: list[Path], config: Config) -> list[Loaded]:
    """Check ``files``; the other flows in their folders are loaded too (not reported), so that
    sub-flow references and flow-id clashes are judged against the whole folder."""
    wanted = {f.resolve() for f in files}
    context = sorted({p for f in files for p in flow_files(f.parent)} - set(files), key=str)
    context = [p for p in context if p.resolve() not in wanted]
    loaded = check_files([*files, *context], config)
    return loaded[: len(files)]


def _check_queues(results: list[Loaded], config: Config) -> None:
    """Add to ``results`` what their enqueue nodes do wrong against ``acd:`` (ivr/acd/checks.py)
    and their webhooks against ``webhook_allow`` (ivr/flow/webhookcheck.py)."""
    built = [r.flow for r in results if r.flow]
    extra = [*check_enqueues(built, config.acd, config.file),
             *check_agent_line(built, config.acd, config.file),
             *check_webhooks(built, config.webhook_allow, config.vars, config.file)]
    for item in results:
        mine = [d for d in extra if d.pos.file == item.source]
        if mine:
            item.diagnostics = sorted_diagnostics([*item.diagnostics, *mine])


def summary(
    flows: int, errors: int, warnings: int, flows_with_problems: int, strict: bool = False
) -> str:
    """``3 flows OK``, ``3 flows OK, 1 warning`` or ``2 errors, 1 warning in 1 flow``.

    With ``strict`` (lint) warnings are failures, so they are counted like errors.
    """
    if not errors and not warnings:
        return f"{_count(flows, 'flow')} OK"
    counts = ", ".join(
        _count(n, word) for n, word in ((errors, "error"), (warnings, "warning")) if n
    )
    if not errors and not strict:
        return f"{_count(flows, 'flow')} OK, {counts}"
    return f"{counts} in {_count(flows_with_problems, 'flow')}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _format(diagnostic: Diagnostic) -> str:
    pos = diagnostic.pos
    where = _display(pos.file)
    if pos.line:
        where += f":{pos.line}:{pos.col}"
    return f"{where}: {diagnostic.severity.value}: {diagnostic.message}"


def _display(file: str) -> str:
    """A path relative to the working folder when it lies inside it."""
    path = Path(file)
    if not path.is_absolute():
        return file
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return os.path.normpath(file)
