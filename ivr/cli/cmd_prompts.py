"""``ivr prompts build | list``: render every flow prompt ahead of the calls, or show the state.

``build`` renders every constant prompt text of every flow, in every declared language, into
``prompts_dir/cache`` (skipping texts already rendered and prompts with a recording) and prints
how many were rendered, cached, recorded and left dynamic (rendered per call). Exit 1 when a
prompt could not be made ready (espeak-ng missing, an unreadable recording, a flow error).

``list`` shows each prompt id and language with where its audio comes from: ``recorded``,
``cached``, ``missing`` (not rendered yet) or ``dynamic``. It renders nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.cli.status import ExitStatus
from ivr.config import Config
from ivr.flow.errors import FlowError
from ivr.flow.model import FlowSet

if TYPE_CHECKING:  # the TTS modules load numpy: imported when a prompts command runs
    from ivr.tts.cache import PromptCache

NAME = "prompts"
HELP = "render flow prompts ahead of the calls (build) or show where each comes from (list)"

OK, FAILED, USAGE = ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="prompts_action", metavar="ACTION", required=True)
    build = actions.add_parser("build", help="render every constant prompt not yet rendered")
    build.add_argument("--force", action="store_true", help="render every prompt again")
    listing = actions.add_parser("list", help="each prompt id/language and its audio's source")
    for sub in (build, listing):
        sub.add_argument("--flows", metavar="DIR", help="flows folder (default: flows_dir)")


def run(args: argparse.Namespace, config: Config) -> int:
    from ivr.flow.loader import load_flowset
    from ivr.tts.cache import PromptCache

    flows_dir = Path(args.flows) if args.flows else config.flows_dir
    if not flows_dir.is_dir():
        print(f"ivr prompts: no such folder: {flows_dir}", file=sys.stderr)
        return USAGE
    try:
        flowset, _warnings = load_flowset(flows_dir, config)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        print("ivr prompts: fix the flows first (ivr validate)", file=sys.stderr)
        return FAILED
    cache = PromptCache(config.prompts_dir)
    if args.prompts_action == "build":
        return _build(flowset, cache, args.force)
    return _list(flowset, cache)


def _build(flowset: FlowSet, cache: PromptCache, force: bool) -> int:
    from ivr.tts.build import build_prompts
    from ivr.tts.engine import TTSUnavailable

    try:
        report = build_prompts(flowset, cache, force=force)
    except TTSUnavailable as exc:
        print(f"ivr prompts: {exc}", file=sys.stderr)
        return FAILED
    languages = sorted({item.language for item in report.items})
    print(f"{len(report.items)} prompts in {_plural(len(flowset.flows), 'flow')} "
          f"({', '.join(sorted(flowset.flows))}; {', '.join(languages)}) -> {cache.prompts_dir}")
    each = f", {report.render_seconds / report.rendered:.3f} s each" if report.rendered else ""
    print(f"  rendered  {report.rendered:4d} texts in {report.render_seconds:.1f} s{each}")
    print(f"  cached    {report.cached:4d} texts (unchanged, not rendered again)")
    print(f"  recorded  {report.recorded:4d} prompts (a recording wins)")
    print(f"  dynamic   {report.dynamic:4d} prompts (with variables: rendered per call)")
    for warning in report.warnings:
        print(f"warning: {warning}")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if report.errors:
        print(f"ivr prompts: {_plural(len(report.errors), 'prompt')} could not be made ready",
              file=sys.stderr)
        return FAILED
    return OK


def _list(flowset: FlowSet, cache: PromptCache) -> int:
    from ivr.tts.build import Source, prompt_sources

    rows = prompt_sources(flowset, cache)
    width = max((len(item.id) for item, _, _ in rows), default=2)
    flow_width = max((len(item.flow) for item, _, _ in rows), default=4)
    for item, source, path in rows:
        detail = _relative(path, cache.prompts_dir) if path else _excerpt(item.text)
        print(f"{item.flow:<{flow_width}}  {item.id:<{width}}  {item.language:<3} "
              f"{source.value:<8}  {detail}")
    counts = {s: sum(1 for _, source, _ in rows if source is s) for s in Source}
    print(", ".join(f"{counts[s]} {s.value}" for s in Source) + f" ({len(rows)} prompts)")
    return OK


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _excerpt(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
