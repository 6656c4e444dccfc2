"""Flows against the agent queue as configured (``ivr validate``, ``ivr lint``).

Every ``enqueue`` node must name a queue of ``acd.queues`` (an error at the node); a queue no
configured agent could ever take the node's calls from (its members, skills, tier, the flow's
languages) is a warning. Without an ``acd:`` section every enqueue takes its no-agents exit:
that is allowed (a flow may be written before its agents are), and warned about once.

The agent line's ``action: {acd: ...}`` nodes are checked too (:func:`check_agent_line`): without
an ``acd:`` section they can only fail (a warning); a pause reason that is not one of
``acd.agent_line.reasons`` (when ops list them) is an error at the reason.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TypeVar

from ivr.acd.config import AcdConfig
from ivr.acd.model import QueueSpec, tier_rank
from ivr.flow.errors import Diagnostic, Severity
from ivr.flow.model import ActionNode, EnqueueNode, Flow, Node
from ivr.flow.template import TemplateError, compile_template

__all__ = ["check_agent_line", "check_enqueues"]

N = TypeVar("N", bound=Node)


def check_enqueues(flows: Iterable[Flow], acd: AcdConfig | None,
                   config_file: str = "ivr.yaml") -> list[Diagnostic]:  # fmt: skip
    """Problems of the enqueue nodes of ``flows`` against ``acd`` (None: no ``acd:`` section in
    ``config_file``), each at its node."""
    found = _found(flows, EnqueueNode)
    if not found:
        return []
    if acd is None:
        return [_no_acd(found[0][0], config_file, "every enqueue takes its no-agents exit "
                                                  "(docs/ACD.md, \"Configuration\")")]  # fmt: skip
    out = []
    for node, flow in found:
        queue = acd.queue(node.queue)
        if queue is None:
            names = [q.name for q in acd.queues]
            close = difflib.get_close_matches(node.queue, names, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            out.append(Diagnostic(node.pos, f"node '{node.id}': no queue '{node.queue}' in "
                                            f"{acd.where('queues')}{hint}"))  # fmt: skip
        elif queue.name in acd.asterisk_queues:
            continue  # Asterisk's agents take its calls: ours do not matter (docs/ASTERISK.md)
        elif not _anyone(acd, queue, node, flow.languages):
            out.append(Diagnostic(node.pos, f"node '{node.id}': no agent of queue "
                                  f"'{queue.name}' can take its calls "
                                  f"({_needs(queue, node, flow.languages)}), "
                                  "so every caller takes the no-agents exit",
                                  Severity.WARNING))  # fmt: skip
    return out


def _found(flows: Iterable[Flow], kind: type[N]) -> list[tuple[N, Flow]]:
    """The nodes of ``kind`` in ``flows`` with their flow, in file order (so the first, where a
    once-only warning goes, is the same from run to run)."""
    return sorted(((node, flow) for flow in flows for node in flow.nodes.values()
                   if isinstance(node, kind)),
                  key=lambda item: (item[0].pos.file, item[0].pos.line, item[0].pos.col))


def _no_acd(node: Node, config_file: str, consequence: str) -> Diagnostic:
    """The once-only warning at ``node`` that ``config_file`` has no ``acd:`` section."""
    return Diagnostic(node.pos, f"node '{node.id}': {config_file} has no acd: section, so "
                                f"{consequence}", Severity.WARNING)  # fmt: skip


def _anyone(acd: AcdConfig, queue: QueueSpec, node: EnqueueNode,
            languages: tuple[str, ...]) -> bool:  # fmt: skip
    """Whether some agent could take a call of ``node`` in one of the flow's ``languages``."""
    return any(queue.admits(agent, node.skills, node.tier, language)
               for agent in acd.agents for language in languages or ("",))  # fmt: skip


def _needs(queue: QueueSpec, node: EnqueueNode, languages: tuple[str, ...]) -> str:
    """What an agent must have: ``skills corporate; tier accounts; language en or zh``."""
    skills = tuple(dict.fromkeys((*queue.skills, *node.skills)))
    parts = [f"skills {', '.join(skills)}"] if skills else []
    if queue.members is not None:
        parts.append(f"members {', '.join(queue.members) or 'none'}")
    parts.append(f"tier {max(queue.tier, node.tier, key=tier_rank)}")
    if languages:
        parts.append(f"language {' or '.join(languages)}")
    return "; ".join(parts)


def check_agent_line(flows: Iterable[Flow], acd: AcdConfig | None,
                     config_file: str = "ivr.yaml") -> list[Diagnostic]:  # fmt: skip
    """Problems of the ``acd:`` action nodes of ``flows`` against ``acd``, each at its node (a
    reason at the node: the model keeps node positions only)."""
    found = [(node, flow) for node, flow in _found(flows, ActionNode) if node.acd is not None]
    if not found:
        return []
    if acd is None:
        return [_no_acd(found[0][0], config_file, "every acd action takes its on_error "
                                                  "(docs/ACD.md, \"The agent line\")")]  # fmt: skip
    reasons = acd.agent_line.reasons
    out = []
    for node, _flow in found:
        reason = node.acd.reason if node.acd is not None else None
        if node.acd is None or node.acd.op != "pause" or not reasons or not reason \
                or not _constant(reason) or reason in reasons:
            continue
        close = difflib.get_close_matches(reason, reasons, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (one of {', '.join(reasons)})"
        out.append(Diagnostic(node.pos, f"node '{node.id}': pause reason '{reason}' is not in "
                                        f"{acd.where('agent_line.reasons')}{hint}"))  # fmt: skip
    return out


def _constant(text: str) -> bool:
    """Whether a template has no variables (only those can be checked before a call)."""
    try:
        return compile_template(text).is_constant
    except TemplateError:
        return False
