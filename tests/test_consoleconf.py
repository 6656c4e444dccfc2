"""ivr.yaml ``console:`` (ivr/consoleconf.py) and ``ivr console hash-password``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ivr.cli.main import main
from ivr.config import ConfigError, load_config
from ivr.consoleconf import (
    DEFAULT_LISTEN,
    hash_password,
    is_loopback,
    parse_hash,
    verify_password,
)

HASH = hash_password("correct horse battery")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # messages name ivr.yaml as given: relative


def load(tmp_path: Path, text: str) -> object:
    (tmp_path / "ivr.yaml").write_text(text, encoding="utf-8")
    return load_config("ivr.yaml", environ={})


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_no_section_no_console_and_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "ivr.yaml", environ={}).console is None
    config = load_config(ROOT / "ivr.yaml", environ={})
    assert config.console is not None  # the bundled ivr.yaml serves one
    assert (config.console.host, config.console.port) == DEFAULT_LISTEN


def test_users_roles_and_lifetime_are_read(tmp_path: Path) -> None:
    config = load(tmp_path, f"console:\n  listen: 127.0.0.1:9000\n  session_lifetime: 600\n"
                            f"  users:\n    ann: {{role: supervisor, password_hash: '{HASH}'}}\n")
    console = config.console  # type: ignore[attr-defined]
    assert (console.port, console.session_lifetime) == (9000, 600.0)
    ann = console.users["ann"]
    assert ann.may("viewer") and ann.may("supervisor") and not ann.may("admin")
    assert HASH not in repr(ann)


@pytest.mark.parametrize(("text", "expected"), [
    ("console:\n  lissen: 1\n", "ivr.yaml:2:3: unknown key 'lissen' in console (did you mean "
                                "'listen'?)"),
    ("console:\n  listen: here\n", "ivr.yaml:2:11: console.listen must be HOST:PORT"),
    ("console:\n  users:\n    ann: {role: boss, password_hash: x}\n",
     "ivr.yaml:3:17: console.users.ann.role must be one of viewer, supervisor, admin"),
    ("console:\n  users:\n    ann: {role: viewer, password_hash: hunter2hunter2}\n",
     "ivr.yaml:3:40: console.users.ann.password_hash: expected scrypt$N$r$p$SALT$KEY"),
    ("console:\n  users:\n    ann: {role: viewer}\n", "ivr.yaml:3:5: console.users.ann needs a "
                                                       "password_hash"),
    ("console:\n  session_lifetime: 5\n", "ivr.yaml:2:21: console.session_lifetime must be 60 "
                                          "or more"),
])  # fmt: skip
def test_mistakes_are_reported_where_they_are(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(p.startswith(expected) for p in found), found
    assert not any("hunter2" in p for p in found)  # a password written by mistake never shows


def test_a_hash_with_a_huge_cost_is_refused(tmp_path: Path) -> None:
    huge = HASH.replace("$16384$", f"${1 << 30}$", 1)
    with pytest.raises(ValueError, match="out of bounds"):
        parse_hash(huge)
    assert not verify_password("correct horse battery", huge)


def test_hash_and_verify() -> None:
    assert verify_password("correct horse battery", HASH)
    assert not verify_password("correct horse batterY", HASH)
    assert hash_password("same password") != hash_password("same password")  # salted


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")


def test_hash_password_reads_stdin_and_prints_a_hash(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-pass-word\n"))
    assert main(["console", "hash-password"]) == 0
    out = capsys.readouterr()
    printed = out.out.strip()
    assert verify_password("s3cret-pass-word", printed)
    assert "s3cret" not in out.out + out.err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["console", "hash-password"]) == 2
    assert "at least 8" in capsys.readouterr().err
