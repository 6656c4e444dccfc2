"""``ivr models list | install | verify``, run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from vosk_helpers import KO_PACKAGE, installed_ko, make_fake_model, require_ko_model

from ivr.cli.main import main

Capsys = pytest.CaptureFixture[str]


def test_install_list_verify_a_model_folder(tmp_path: Path, capsys: Capsys) -> None:
    models = tmp_path / "models"
    source = make_fake_model(tmp_path / "src")
    assert main(["models", "install", str(source), "--language", "xx",
                 "--models-dir", str(models)]) == 0  # fmt: skip
    assert f"installed {source} as xx" in capsys.readouterr().out
    assert main(["models", "list", "--models-dir", str(models)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[2][:2] == ["xx", "vosk"] and rows[2][-2:] == ["lookahead", "verified"]
    assert main(["models", "verify", "xx", "--models-dir", str(models)]) == 0
    assert "xx: OK (7 files)" in capsys.readouterr().out


def test_verify_fails_on_a_changed_file(tmp_path: Path, capsys: Capsys) -> None:
    models = tmp_path / "models"
    main(["models", "install", str(make_fake_model(tmp_path / "src")), "--language", "xx",
          "--models-dir", str(models)])  # fmt: skip
    (models / "xx" / "am" / "final.mdl").write_bytes(b"tampered")
    capsys.readouterr()
    assert main(["models", "verify", "--models-dir", str(models)]) == 1
    out = capsys.readouterr().out
    assert "xx: changed: am/final.mdl" in out and "xx: FAILED (1 changed, 0 missing of 7)" in out
    assert main(["models", "list", "--models-dir", str(models)]) == 0
    assert "CHANGED: am/final.mdl" in capsys.readouterr().out


def test_install_refuses_an_incomplete_model(tmp_path: Path, capsys: Capsys) -> None:
    source = make_fake_model(tmp_path / "src", skip=("am/final.mdl",))
    models = tmp_path / "models"
    assert main(["models", "install", str(source), "--language", "xx",
                 "--models-dir", str(models)]) == 1  # fmt: skip
    assert "missing am/final.mdl" in capsys.readouterr().err
    assert not (models / "xx").exists()


def test_install_the_korean_package(tmp_path: Path, capsys: Capsys) -> None:
    require_ko_model()
    models = tmp_path / "models"
    assert main(["models", "install", KO_PACKAGE, "--link", "--models-dir", str(models)]) == 0
    assert (models / "ko" / "graph" / "HCLr.fst").is_file()  # language from the package name
    assert main(["models", "install", KO_PACKAGE, "--link", "--models-dir", str(models)]) == 1
    assert "already installed" in capsys.readouterr().err


def test_list_and_verify_the_session_model(tmp_path_factory: pytest.TempPathFactory,
                                           capsys: Capsys) -> None:
    models = installed_ko(tmp_path_factory)
    assert main(["models", "list", "--models-dir", str(models)]) == 0
    out = capsys.readouterr().out
    [row] = [line.split() for line in out.splitlines() if line.startswith("ko ")]
    assert row[:2] == ["ko", "vosk"] and row[-2:] == ["lookahead", "verified"]
    assert main(["models", "verify", "ko", "--models-dir", str(models)]) == 0
    assert "ko: OK (15 files)" in capsys.readouterr().out


def test_verify_usage_errors(tmp_path: Path, capsys: Capsys) -> None:
    models = tmp_path / "models"
    assert main(["models", "verify", "--models-dir", str(models)]) == 1
    assert "no models in" in capsys.readouterr().err
    make_fake_model(models / "xx")  # not installed by ivr: no manifest
    assert main(["models", "verify", "ko", "--models-dir", str(models)]) == 2
    assert "no 'ko' model" in capsys.readouterr().err
    assert main(["models", "verify", "--models-dir", str(models)]) == 1
    out = capsys.readouterr().out
    assert "xx: FAILED:" in out and "has no SHA256SUMS" in out


def test_list_an_empty_folder(tmp_path: Path, capsys: Capsys) -> None:
    assert main(["models", "list", "--models-dir", str(tmp_path / "none")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.split()[1:2] == ["vosk"]]
    # PocketSphinx's bundled English model is all there is (when its package is installed)
    assert lines[-1].split()[:2] == ["en", "pocketsphinx"] or lines[0].startswith("no models")
