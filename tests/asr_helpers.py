"""A tiny labelled speech set for the ASR evaluation tests, made by bench/asr/build_set.py.

Real audio: two Asterisk recordings (a digit, a 4-digit string) and a few espeak-ng phrases,
in the clean and μ-law conditions.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
MENU = "balance | card=lost card/stolen card | agent=agent/operator"


def load_build_set() -> ModuleType:
    """bench/asr/build_set.py as a module (bench/ is not a package)."""
    name = "asr_build_set"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "asr" / "build_set.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def tiny_specs() -> list[object]:
    bs = load_build_set()
    u = bs.UtteranceSpec
    return [
        u("ast-digit-7", "digit", "@digits:1", "7", "seven", "asterisk", ("digits/7",)),
        u("ast-digits4", "digits", "@digits:4", "4071", "four zero seven one", "asterisk",
          ("digits/4", "digits/0", "digits/7", "digits/1")),
        u("tts-balance", "command", MENU, "balance", "balance", "espeak:en-us:175"),
        u("tts-stolen", "command", MENU, "card", "stolen card", "espeak:en-gb:160"),
        u("tts-yes", "yes_no", "@yes_no", "yes", "yes", "espeak:en-us:175"),
        u("tts-oog", "oog", MENU, None, "what's the weather like", "espeak:en-us:175"),
    ]


def build_tiny(out_dir: Path, conditions: tuple[str, ...] = ("clean", "ulaw")) -> Path:
    """Write the tiny set into ``out_dir``; the manifest's path."""
    bs = load_build_set()
    items = bs.build_items(tiny_specs(), out_dir, seed=7, names=conditions)
    manifest = out_dir / "tiny.jsonl"
    from ivr.asr.evaluate import write_manifest

    write_manifest(manifest, items)
    return manifest


def load_bench(name: str) -> ModuleType:
    """``bench/asr/<name>.py`` as a module; its folder goes on ``sys.path`` (bench/ is not a
    package, and its modules import each other by name)."""
    import importlib

    folder = str(ROOT / "bench" / "asr")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)
