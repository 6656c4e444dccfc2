"""Every command works without ``audioop`` (removed in Python 3.13), but ``serve-pyvoip``.

pyVoIP imports the stdlib ``audioop``; only ``ivr serve-pyvoip`` may load it, so on Python 3.13
without ``audioop-lts`` every other command still runs and ``serve-pyvoip`` says what to install.
The CLI runs in a child process whose import system refuses ``audioop`` as 3.13 does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ivr.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]

# Run in the child: refuse audioop, run each argv through ivr.cli.main.main, print the results
# and which pyVoIP/audioop modules were loaded before serve-pyvoip ran.
CHILD = r"""
import contextlib, importlib.abc, io, json, sys

class NoAudioop(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "audioop":
            raise ModuleNotFoundError("No module named 'audioop'", name="audioop")
        return None

sys.meta_path.insert(0, NoAudioop())
from ivr.cli.main import main

def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}

argvs = json.loads(sys.argv[1])
results = [run(argv) for argv in argvs[:-1]]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("audioop", "pyVoIP")
                or m.startswith("ivr.pyvoip"))
results.append(run(argvs[-1]))
print(json.dumps({"results": results, "loaded": loaded}))
"""


def command_names() -> list[str]:
    """Every sub-command, as the parser knows them."""
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(subparsers.choices)


def test_every_command_runs_without_audioop_and_serve_pyvoip_names_the_fix() -> None:
    names = command_names()
    assert "serve-pyvoip" in names and "serve" in names and len(names) >= 10
    config = str(REPO / "ivr.yaml")
    argvs = [["--version"], *([name, "--help"] for name in names),
             ["-c", config, "serve-pyvoip", "--no-build"]]  # fmt: skip
    child = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argvs)], cwd=REPO,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    version, *helps, pyvoip = report["results"]

    assert version["code"] == 0 and version["out"].startswith("ivr "), version
    for name, result in zip(names, helps, strict=True):
        assert result["code"] == 0, (name, result["err"])
        assert result["out"].startswith(f"usage: ivr {name}"), (name, result["out"][:200])
    assert report["loaded"] == []  # no command but serve-pyvoip loads pyVoIP or audioop

    assert pyvoip == {"code": 2, "out": "", "err": "ivr serve-pyvoip: pyVoIP needs audioop; "
                      "on Python 3.13+ install audioop-lts\n"}  # fmt: skip
