"""Imports run one way (docs/ARCHITECTURE.md): cli -> transports -> host -> engine and its peers
-> the SIP stack, RTP, the queue -> the settings reader -> the flow language and audio -> shared
ground.

Every module of the package is read with ``ast`` (imports inside functions and ``TYPE_CHECKING``
blocks included, relative ones resolved, ``importlib.import_module("ivr....")`` too) and every
import of another package of ``ivr`` is checked against the tiers below: a package may import
packages of lower tiers only; two packages of one tier never import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ivr"

# Lowest first. A top-level module (ivr/config.py) counts as a package of its own name.
TIERS: list[set[str]] = [
    {"ivr", "core", "logs"},  # shared ground: clocks, call identity, events, logging
    {"flow", "media"},  # the flow language (knows nothing of calls); audio building blocks
    {"configread"},  # reading a settings file against a schema (ivr.yaml, queues.yaml)
    {"sip", "rtp", "acd", "ami", "consoleconf"},  # SIP, RTP; the queue authority; Asterisk's
    # manager; console settings
    {"config", "engine", "store", "tts", "asr"},  # what the host puts together
    {"host"},  # one engine host for every transport
    {"serve", "pyvoip", "sim", "demo", "console"},  # transports, the demo backend, web console
    {"cli"},  # the command line: nothing but `python -m ivr` imports it
    {"__main__"},
]
# Narrower than the tiers allow: the engine knows flows and the shared ground, nothing else.
ONLY: dict[str, set[str]] = {"engine": {"core", "flow"}}


def tier_of(package: str) -> int:
    for index, tier in enumerate(TIERS):
        if package in tier:
            return index
    raise AssertionError(f"ivr/{package} is in no tier of tests/test_layers.py: place it")


def package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    if len(parts) == 1:
        return "ivr" if parts[0] == "__init__.py" else parts[0].removesuffix(".py")
    return parts[0]


def _dotted(path: Path) -> list[str]:
    """``ivr/host/host.py`` -> ``["ivr", "host", "host"]`` (a package's ``__init__`` is itself)."""
    parts = ["ivr", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in the file, wherever it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = _dotted(path)
    is_package = path.name == "__init__.py"
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # `from ivr import config` names a module, not an attribute
            if module == "ivr":
                found.extend((node.lineno, f"ivr.{alias.name}") for alias in node.names
                             if (PACKAGE / alias.name).is_dir()
                             or (PACKAGE / f"{alias.name}.py").is_file())
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def target_package(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "ivr":
        return None
    return parts[1] if len(parts) > 1 else "ivr"


def violations() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = package_of(path)
        for line, module in imported_modules(path):
            target = target_package(module)
            if target is None or target == source:
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{line}: {source} imports {module}"
            if source in ONLY and target not in ONLY[source]:
                out.append(f"{where}: {source} may import only {sorted(ONLY[source])}")
            elif tier_of(target) > tier_of(source):
                out.append(f"{where}: a lower layer imports a higher one")
            elif tier_of(target) == tier_of(source):
                out.append(f"{where}: two packages of one layer must not import each other")
    return out


def test_imports_run_one_way() -> None:
    problems = violations()
    assert not problems, "\n".join(problems)


def test_every_package_has_a_tier() -> None:
    for path in PACKAGE.iterdir():
        if path.name.startswith("_") and path.name != "__main__.py":
            continue
        if (path.is_dir() and (path / "__init__.py").exists()) or path.suffix == ".py":
            tier_of(path.name.removesuffix(".py"))


@pytest.mark.parametrize(("source", "line", "expected"), [
    ("ivr/sip/x.py", "from ivr.engine.clock import Clock", "lower layer imports a higher"),
    ("ivr/asr/x.py", "from ivr.store import db", "one layer"),
    ("ivr/rtp/x.py", "from ivr.host.speech import CallSpeech", "lower layer imports a higher"),
    ("ivr/store/x.py", "def f():\n    from ivr.host import host", "lower layer imports a higher"),
    ("ivr/engine/x.py", "from ivr.store.db import CallStore", "may import only"),
    ("ivr/asr/x.py", "from ivr.tts import build", "one layer"),
    ("ivr/serve/x.py", "from ..cli import main", "lower layer imports a higher"),
    ("ivr/media/x.py", "import importlib\nimportlib.import_module('ivr.rtp.stream')",
     "lower layer imports a higher"),
])  # fmt: skip
def test_the_check_catches_late_relative_and_dynamic_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, line: str, expected: str
) -> None:
    fake = tmp_path / "ivr"
    target = tmp_path / source
    target.parent.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (target.parent / "__init__.py").write_text("")
    target.write_text(line + "\n")
    monkeypatch.setitem(globals(), "PACKAGE", fake)
    problems = violations()
    assert len(problems) == 1 and expected in problems[0], problems
