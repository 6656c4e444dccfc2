"""What flow loading reads from the main configuration, as a protocol.

:class:`ivr.config.Config` satisfies it structurally. Flow loading only needs these attributes,
and ``ivr.config`` reads ivr.yaml with :mod:`ivr.flow.yamlload`, so the flow package must not
import ``ivr.config`` (that would be a cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol


class FlowSettings(Protocol):
    """The ivr.yaml values flows are built with.

    Attributes:
        root: the folder of ivr.yaml (messages about its ``timers:`` name ``root/ivr.yaml``).
        flows_dir: the folder of the flow files.
        languages: the default languages of a flow that names none.
        transfer_allow: patterns every transfer target must match (added to the flow's own).
        timers: platform default overrides (checked when a flow is built).
    """

    @property
    def root(self) -> Path: ...

    @property
    def flows_dir(self) -> Path: ...

    @property
    def languages(self) -> tuple[str, ...]: ...

    @property
    def transfer_allow(self) -> tuple[str, ...]: ...

    @property
    def timers(self) -> Mapping[str, Any]: ...
