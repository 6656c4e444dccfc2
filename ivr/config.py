"""ivr.yaml: the main configuration, read once by every command."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class ConfigError(ValueError):
    """ivr.yaml is missing a required value or has a wrong one."""


def expand_env(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace ``${NAME}`` and ``${NAME:-default}`` with environment values."""
    env = os.environ if environ is None else environ

    def repl(match: re.Match[str]) -> str:
        value = env.get(match.group("name"))
        if value is None or value == "":
            return match.group("default") or ""
        return value

    return _ENV_REF.sub(repl, text)


@dataclass(frozen=True)
class AsrConfig:
    """ivr.yaml ``asr:``: speech recognition for live calls (ivr/asr/service.py).

    ``backend``: auto (Vosk for a language with a model under ``models_dir``, PocketSphinx's
    bundled English otherwise), pocketsphinx, vosk, or off (DTMF only). ``workers``: decoding
    processes (0: one per core but one, at most 4).
    """

    backend: str = "auto"
    workers: int = 0
    models_dir: Path = Path("asr_models")

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, min(4, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class Config:
    """Everything ivr.yaml says, with paths made absolute against its folder."""

    root: Path
    flows_dir: Path
    prompts_dir: Path
    scripts_dir: Path
    actions_path: Path
    store_path: Path
    languages: tuple[str, ...] = ("en",)
    numbers: dict[str, str] = field(default_factory=dict)
    transfer_allow: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    timers: dict[str, Any] = field(default_factory=dict)
    asr: AsrConfig = field(default_factory=AsrConfig)
    raw: dict[str, Any] = field(default_factory=dict)

    def flow_for(self, number: str) -> str | None:
        """The flow that answers ``number`` (or the default flow)."""
        return self.numbers.get(number) or self.numbers.get("default")


def _path(root: Path, value: Any, default: str) -> Path:
    path = Path(str(value if value is not None else default))
    return path if path.is_absolute() else root / path


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read ivr.yaml (default: ``$IVR_CONFIG`` or ``./ivr.yaml``); a missing file gives defaults."""
    env = os.environ if environ is None else environ
    cfg_path = Path(path or env.get("IVR_CONFIG") or "ivr.yaml").resolve()
    data: dict[str, Any] = {}
    if cfg_path.exists():
        loaded = yaml.safe_load(expand_env(cfg_path.read_text(encoding="utf-8"), dict(env)))
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{cfg_path}: the top level must be a mapping")
        data = loaded or {}
    root = cfg_path.parent
    store = data.get("store") or {}
    asr = data.get("asr") or {}
    return Config(
        root=root,
        flows_dir=_path(root, data.get("flows_dir"), "flows"),
        prompts_dir=_path(root, data.get("prompts_dir"), "prompts"),
        scripts_dir=_path(root, data.get("scripts_dir"), "tests/scripts"),
        actions_path=_path(root, data.get("actions_path"), "flows/actions"),
        store_path=_path(root, store.get("path"), "var/calls.db"),
        languages=tuple(str(x) for x in data.get("languages") or ("en",)),
        numbers={str(k): str(v) for k, v in (data.get("numbers") or {}).items()},
        transfer_allow=tuple(str(x) for x in data.get("transfer_allow") or ()),
        vars=dict(data.get("vars") or {}),
        timers=dict(data.get("timers") or {}),
        # YAML 1.1 reads a bare `off` as false
        asr=AsrConfig("off" if asr.get("backend") is False else str(asr.get("backend", "auto")),
                      int(asr.get("workers") or 0),
                      _path(root, asr.get("models_dir"), "asr_models")),
        raw=data,
    )
