"""How ``ivr serve`` and ``ivr serve-pyvoip`` end on an error (ivr/cli/serving.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.cli.serving import run_server
from ivr.cli.status import ExitStatus
from ivr.flow.loader import load_text


class Refused(RuntimeError):
    pass


def refused_flows() -> None:
    load_text("flow: t\nstart: a\nnodes:\n  a: {goto: nowhere}\n", "t.yaml")


def test_refused_flows_fail_with_every_diagnostic(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_server("serve", refused_flows) == ExitStatus.FAILED
    err = capsys.readouterr().err
    assert err.startswith("ivr serve: flows refused:\nt.yaml:4:")
    assert "unknown node 'nowhere'" in err


def test_a_named_failure_fails_with_its_words(capsys: pytest.CaptureFixture[str]) -> None:
    def register() -> None:
        raise Refused("403 Forbidden")

    assert run_server("serve-pyvoip", register, {Refused: "registration failed"}) == 1
    assert capsys.readouterr().err == "ivr serve-pyvoip: registration failed: 403 Forbidden\n"


def test_an_os_error_is_a_setup_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:  # fmt: skip
    def bind() -> None:
        (tmp_path / "missing" / "file").read_text()

    assert run_server("serve", bind, {Refused: "registration failed"}) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert err.startswith("ivr serve: [Errno 2]") and "missing" in err


def test_the_servers_own_status_passes_through() -> None:
    assert run_server("serve", lambda: None) == ExitStatus.OK
    assert run_server("serve", lambda: 3) == 3


def test_other_errors_are_not_swallowed() -> None:
    def broken() -> None:
        raise Refused("a bug")

    with pytest.raises(Refused):
        run_server("serve", broken)  # a Refused is only a failure where the command names it
