"""Shared fixtures: the demo bank API that the bank flow's webhooks call."""

from __future__ import annotations

import logging
from collections.abc import Iterator

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
