"""Shared fixtures: the demo bank API that the bank flow's webhooks call, and the programs and
files of Debian packages (a test that uses one fails, naming the package, when it is missing)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import debs
import pytest

from ivr.demo import bank_api as demo


@pytest.fixture(scope="session")
def bank_api() -> Iterator[str]:
    """The demo bank API on a free port of 127.0.0.1, for the whole test session.

    ``IVR_BANK_API`` points at it, so ivr.yaml's ``bank_api: ${IVR_BANK_API:-...}`` expands to
    it in every configuration read after the fixture started (``ivr.cli.main.main`` reads the
    configuration on each call).
    """
    server, url = demo.start_background(port=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IVR_BANK_API", url)
        try:
            yield url
        finally:
            demo.stop(server)


@pytest.fixture(scope="session")
def sipp_program() -> str:
    return debs.program("sipp", "sip-tester")


@pytest.fixture(scope="session")
def baresip_program() -> str:
    return debs.program("baresip", "baresip")


@pytest.fixture(scope="session")
def espeak_program() -> str:
    return debs.program("espeak-ng", "espeak-ng")


@pytest.fixture(scope="session")
def synth_voices() -> None:
    """Festival (with its three voice packages) and flite: the ASR evaluation's other voices."""
    debs.program("text2wave", "festival")
    debs.program("flite", "flite")
    for folder, package in debs.FESTIVAL_VOICES.items():
        if not folder.is_dir():
            debs.missing(str(folder), package)


@pytest.fixture(scope="session")
def kamailio_program() -> str:
    return debs.program("kamailio", "kamailio", Path("/usr/sbin/kamailio"))


@pytest.fixture(scope="session")
def asterisk_sounds() -> Path:
    """Asterisk's English recordings (Allison): ``digits/7.wav``, ``hello-world.wav``..."""
    for name in ("digits/7.wav", "hello-world.wav", "conf-onlyperson.wav"):
        debs.file(debs.ALLISON / name, debs.SOUNDS_PACKAGE)
    return debs.ALLISON


@pytest.fixture(autouse=True)
def _restore_ivr_logger() -> Iterator[None]:
    """Put the ``ivr`` logger back after a test: ``main()`` run in-process sets it up (its own
    handler, no propagation to the root logger, where pytest's caplog listens)."""
    logger = logging.getLogger("ivr")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:], logger.level, logger.propagate = saved
