"""What a flow node listens for, as a recognizer grammar (``ivr asr --grammar FLOW:NODE``).

The node is entered in a real engine session on a stopped virtual clock and the
:class:`~ivr.engine.channel.ListenSpec` it asks its channel for is read back: the node's phrases
plus the spoken words of the flow's global commands, exactly as a call would have them, with no
second copy of that logic here. Only nodes that wait for the caller are entered (entering any
other would run it: webhooks, jumps).
"""

from __future__ import annotations

from pathlib import Path

from ivr.asr.base import Grammar
from ivr.asr.spec import GrammarSpecError
from ivr.config import Config
from ivr.core.callinfo import CallInfo
from ivr.core.clock import VirtualClock
from ivr.engine.actions import InlineActionRunner
from ivr.engine.channel import ListenSpec
from ivr.engine.runtime import Runtime
from ivr.engine.session import Session
from ivr.flow.loader import load_flow, load_flowset, make_flowset
from ivr.flow.model import Flow, FlowSet
from ivr.host.speech import grammar_for


def grammar_from_flow(flow: str | Path, node_id: str, language: str = "en",
                      config: Config | None = None) -> Grammar:
    """What node ``node_id`` of ``flow`` listens for in ``language``.

    Args:
        flow: a flow file, a folder of flows (the node id must then be in exactly one flow),
            or a flow id of ``config.flows_dir``.
        node_id: an input node (menu, confirm, recognize, collect, ...).
        language: one of the flow's languages.
        config: ivr.yaml (flows folder, actions path); defaults when None.

    Raises:
        GrammarSpecError: no such flow or node, a language the flow lacks, or a node that takes
            no speech.
        FlowError: the flow has errors.
    """
    flowset, found = _find_flow(str(flow), node_id, config)
    if language not in found.languages:
        raise GrammarSpecError(f"flow {found.id!r} has no language {language!r} (languages: "
                               f"{', '.join(found.languages)})")
    node = found.nodes.get(node_id)
    if node is None:
        raise GrammarSpecError(f"flow {found.id!r} has no node {node_id!r}")
    if not node.TAKES_INPUT:
        # Entering any other node would run it (webhooks, jumps): never do that here.
        raise GrammarSpecError(f"node {node_id!r} of flow {found.id!r} ({node.kind}) does not "
                               "wait for the caller")
    spec = _listen_spec(flowset, found, node_id, language, config)
    if spec is None:
        raise GrammarSpecError(f"node {node_id!r} of flow {found.id!r} takes no speech in "
                               f"{language!r} (no spoken choices, built-in grammar or spoken "
                               "global command)")
    return grammar_for(spec)


def _find_flow(ref: str, node_id: str, config: Config | None) -> tuple[FlowSet, Flow]:
    path = Path(ref)
    if path.is_file():
        flow = load_flow(path, config)
        return make_flowset([flow]), flow
    if path.suffix in (".yaml", ".yml"):
        raise GrammarSpecError(f"no such flow file: {ref}")
    if path.is_dir():
        flowset, _warnings = load_flowset(path, config)
        holders = [f for f in flowset.flows.values() if node_id in f.nodes]
        if len(holders) != 1:
            where = ", ".join(sorted(f"{f.source}:{node_id}" for f in holders))
            raise GrammarSpecError(
                f"node {node_id!r} is in no flow of {ref}" if not holders
                else f"node {node_id!r} is in several flows of {ref}: name one ({where})")
        return flowset, holders[0]
    flows_dir = config.flows_dir if config is not None else Path("flows")
    if not flows_dir.is_dir():
        raise GrammarSpecError(f"{ref!r} is no flow file or folder, and the flows folder "
                               f"{flows_dir} does not exist")
    flowset, _warnings = load_flowset(flows_dir, config)
    if ref not in flowset.flows:
        raise GrammarSpecError(f"no flow file, folder or flow id {ref!r} (flows in {flows_dir}:"
                               f" {', '.join(sorted(flowset.flows)) or 'none'})")
    return flowset, flowset.flows[ref]


class _ListenProbe:
    """A channel that only remembers what the engine listens for (nothing is played)."""

    def __init__(self) -> None:
        self.info = CallInfo("asr-grammar-probe")
        self.listening: ListenSpec | None = None
        self._playback = 0

    def attach(self, listener: object) -> None:
        pass

    def play(self, prompt: object) -> int:
        self._playback += 1
        return self._playback

    def stop_playback(self) -> None:
        pass

    def listen(self, spec: ListenSpec) -> None:
        self.listening = spec

    def stop_listening(self) -> None:
        self.listening = None

    def transfer(self, target: str) -> None:
        pass

    def ring_agent(self, offer: object) -> None:
        pass

    def stop_agent(self, offer_id: int) -> None:
        pass

    def record(self, spec: object) -> None:
        pass

    def hangup(self) -> None:
        pass


def _listen_spec(flowset: FlowSet, flow: Flow, node_id: str, language: str,
                 config: Config | None) -> ListenSpec | None:
    """Enter ``node_id`` in a session on a stopped virtual clock; what it listens for."""

    probe = _ListenProbe()
    runtime = Runtime(actions=InlineActionRunner(config.actions_path if config else None),
                      config_vars=dict(config.vars) if config else {})
    session = Session(flowset, flow.id, probe, VirtualClock(), runtime,
                      initial_vars={"lang": language})
    session.goto(node_id)
    spec = probe.listening
    return spec if spec is not None and spec.node == node_id else None
