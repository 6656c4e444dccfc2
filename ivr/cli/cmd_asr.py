"""``ivr asr recognize`` and ``ivr asr eval``: run the speech recognizer on files.

``recognize`` decodes one WAV file against a grammar (a spec such as ``'balance | agent'`` or
``@digits:4``, or a flow node's with ``--choices-from FLOW:NODE``) and prints one JSON object.
Exit status: 0 the speech matched the grammar, 1 no match or no speech, 2 bad arguments (spec,
flow, file) or a backend that cannot run.

``eval`` runs a labelled set (a JSON Lines manifest, docs/ASR.md) and prints accuracy, digit
error rate, false-accept and false-reject rates, end-of-speech latency and real-time factor,
overall, per condition and per kind. Exit status: 0 every item ran, 1 some items could not run
(counted apart, never as passes), 2 a bad manifest or arguments.

Both are a stable interface for scripts; docs/ASR.md documents their flags and output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ivr.cli.status import ExitStatus
from ivr.config import Config

NAME = "asr"
HELP = "recognise speech in WAV files, and evaluate the recognizer on a labelled set"

OK, FAILED, USAGE = ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="asr_command", metavar="SUBCOMMAND")
    rec = sub.add_parser("recognize", help="decode one WAV file against a grammar (JSON out)",
                         description="Decode one WAV file against a grammar; print one JSON "
                         "object (text, choice, confidence, outcome, timings).")
    rec.add_argument("file", metavar="FILE.wav", help="a WAV file (any rate; mixed to 8 kHz)")
    rec.add_argument("--grammar", metavar="SPEC",
                     help="'balance | card=lost card/stolen card', @digits, @digits:4, "
                     "@digits:4-16, @yes_no, @amount")
    rec.add_argument("--choices-from", metavar="FLOW:NODE",
                     help="the grammar of a flow node (flow file, folder or id), global "
                     "commands included")
    rec.add_argument("--language", default="en", help="language of the speech (default: en)")
    _common(rec)
    ev = sub.add_parser("eval", help="evaluate the recognizer on a labelled set",
                        description="Run a manifest (JSON Lines) of labelled utterances and "
                        "print accuracy, digit error rate, false accepts and rejects, "
                        "end-of-speech latency and real-time factor.")
    ev.add_argument("manifest", metavar="MANIFEST", help="a .jsonl manifest (docs/ASR.md)")
    ev.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="decode in N processes (default: 1)")
    ev.add_argument("--json", action="store_true", help="print the summary as JSON")
    ev.add_argument("--results", metavar="FILE",
                    help="also write every item's result here (JSON Lines)")
    _common(ev)


def _common(parser: argparse.ArgumentParser) -> None:
    from ivr.asr.backends import BACKEND_NAMES

    parser.add_argument("--backend", default="auto", choices=BACKEND_NAMES,
                        help="auto: Vosk when asr_models/<language> exists, else PocketSphinx")
    parser.add_argument("--models-dir", metavar="DIR",
                        help="Vosk models folder (default: asr.models_dir of ivr.yaml)")
    parser.add_argument("--end-silence", type=float, default=0.8, metavar="S",
                        help="silence that ends the utterance (default: 0.8 s)")
    parser.add_argument("--max-speech", type=float, default=15.0, metavar="S",
                        help="longest utterance (default: 15 s)")
    parser.add_argument("--trailing-silence", type=float, default=1.0, metavar="S",
                        help="silence fed after the file's end (default: 1.0 s)")
    parser.add_argument("--gate", action="store_true",
                        help="run the live calls' speech gate ahead of the recognizer (it opens "
                             "the recognizer only for speech, with 0.5 s of pre-roll)")


def run(args: argparse.Namespace, config: Config) -> int:
    if args.asr_command is None:
        print("ivr asr: give a subcommand: recognize or eval", file=sys.stderr)
        return USAGE
    for name in ("end_silence", "max_speech"):
        if getattr(args, name) <= 0:
            print(f"ivr asr: --{name.replace('_', '-')} must be positive", file=sys.stderr)
            return USAGE
    if args.trailing_silence < 0:
        print("ivr asr: --trailing-silence cannot be negative", file=sys.stderr)
        return USAGE
    if args.asr_command == "recognize":
        return _recognize(args, config)
    return _eval(args, config)


def _models_dir(args: argparse.Namespace, config: Config) -> Path:
    return Path(args.models_dir) if args.models_dir else config.asr.models_dir


def _fail(message: str) -> int:
    print(f"ivr asr: {message}", file=sys.stderr)
    return USAGE


def _recognize(args: argparse.Namespace, config: Config) -> int:
    from ivr.asr.base import AsrError, AsrOptions
    from ivr.asr.spec import (
        GrammarSpecError,
        format_grammar_spec,
        parse_grammar_spec,
        split_flow_ref,
    )
    from ivr.flow.errors import FlowError
    from ivr.host.grammars import grammar_from_flow

    if bool(args.grammar) == bool(args.choices_from):
        return _fail("recognize: give exactly one of --grammar SPEC and --choices-from FLOW:NODE")
    path = Path(args.file)
    if not path.is_file():
        return _fail(f"no such file: {path}")
    try:
        if args.grammar:
            grammar = parse_grammar_spec(args.grammar, args.language)
        else:
            flow, node = split_flow_ref(args.choices_from)
            grammar = grammar_from_flow(flow, node, args.language, config)
    except GrammarSpecError as exc:
        return _fail(f"grammar: {exc}")
    except FlowError as exc:
        for diagnostic in exc.diagnostics:
            print(diagnostic, file=sys.stderr)
        return USAGE
    options = AsrOptions(end_silence=args.end_silence, max_speech=args.max_speech)
    try:
        from ivr.asr.backends import get_backend
        from ivr.asr.offline import recognize_file

        backend = get_backend(args.backend, args.language, _models_dir(args, config))
        result = recognize_file(path, grammar, backend, options, args.trailing_silence,
                                args.gate)  # fmt: skip
    except (AsrError, ImportError) as exc:
        return _fail(f"{args.backend} backend: {exc}")
    except (OSError, ValueError) as exc:  # unreadable or not a WAV
        return _fail(f"cannot read {path}: {exc}")
    try:
        spec: str | None = format_grammar_spec(grammar)
    except GrammarSpecError:  # a flow phrase holding '/' or '|' has no spec form
        spec = None
    out = {**result.to_json(), "language": args.language, "grammar": spec}
    print(json.dumps(out, ensure_ascii=False))
    return OK if result.outcome == "match" else FAILED


def _eval(args: argparse.Namespace, config: Config) -> int:
    from ivr.asr.base import AsrOptions
    from ivr.asr.evaluate import ManifestError, RunSettings, load_manifest, run_items
    from ivr.asr.metrics import format_table, result_lines, summarize

    if args.jobs < 1:
        return _fail("eval: --jobs must be at least 1")
    manifest = Path(args.manifest)
    try:
        items = load_manifest(manifest)
    except ManifestError as exc:
        return _fail(str(exc))
    if not items:
        return _fail(f"{manifest}: no items")
    settings = RunSettings(args.backend, _models_dir(args, config),
                           AsrOptions(end_silence=args.end_silence, max_speech=args.max_speech),
                           args.trailing_silence, args.gate)
    results = run_items(items, manifest.parent, settings, args.jobs,
                        _progress if sys.stderr.isatty() else None)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.results:
        try:
            Path(args.results).write_text(result_lines(results), encoding="utf-8")
        except OSError as exc:
            return _fail(f"cannot write {args.results}: {exc.strerror or exc}")
    summary = summarize(results)
    if args.json:
        body = {"manifest": str(manifest), "items": len(items),
                "settings": {"backend": args.backend, "end_silence": args.end_silence,
                             "max_speech": args.max_speech,
                             "trailing_silence": args.trailing_silence, "gate": args.gate},
                **summary.to_json()}
        print(json.dumps(body, ensure_ascii=False, indent=2))
    else:
        print(f"{manifest}: {len(items)} items, backend {', '.join(summary.backends) or '-'}")
        print(format_table(summary))
    for item_id, error in summary.errors[:10]:
        print(f"ivr asr eval: {item_id}: {error}", file=sys.stderr)
    if len(summary.errors) > 10:
        print(f"ivr asr eval: ... and {len(summary.errors) - 10} more items could not run",
              file=sys.stderr)
    return FAILED if summary.errors else OK


def _progress(done: int, total: int) -> None:
    print(f"\r{done}/{total}", end="", file=sys.stderr, flush=True)
