"""Loading flows: YAML -> schema -> model -> semantic checks, one file or a whole folder.

Each stage has its own error type (:class:`YamlError`, :class:`SchemaError`,
:class:`SemanticError`); a refused flow raises the type of the earliest stage that found an
error, carrying every diagnostic found by any stage. Stages go as far as they safely can so that
one run shows as many problems as possible:

* a YAML syntax error stops everything (there is nothing to check);
* duplicate keys are reported and the first value is kept;
* schema errors inside some nodes leave those nodes out and the rest is still built and checked
  (targets to the broken nodes count as known; the graph checks wait for a clean schema);
* schema errors outside ``nodes`` stop before the model is built.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from ivr.flow.build import BuildResult, build_flow
from ivr.flow.checks import check_flow
from ivr.flow.errors import Diagnostic, FlowError, SchemaError, SemanticError, Severity, YamlError
from ivr.flow.flowset import check_flowset
from ivr.flow.model import Flow, FlowSet, Pos
from ivr.flow.schema import check_schema
from ivr.flow.settings import FlowSettings
from ivr.flow.yamlload import Document, load_yaml, unescape

_STAGE_ERRORS: dict[str, type[FlowError]] = {
    "yaml": YamlError,
    "schema": SchemaError,
    "semantic": SemanticError,
}


@dataclass
class Loaded:
    """One file's outcome: the flow (None when it could not be built) and every diagnostic."""

    source: str
    flow: Flow | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    build: BuildResult | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]


def refuse(diagnostics: list[Diagnostic]) -> FlowError:
    """The error for a refused flow: the type of the earliest stage that found an error."""
    errors = [d for d in diagnostics if d.severity is Severity.ERROR]
    stages = [d.stage for d in errors]
    for stage, error_type in _STAGE_ERRORS.items():
        if stage in stages:
            return error_type(sorted_diagnostics(diagnostics))
    return FlowError(sorted_diagnostics(diagnostics))


def sorted_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """By file, line, column; errors before warnings at the same place."""
    return sorted(diagnostics, key=lambda d: (d.pos.file, d.pos.line, d.pos.col,
                                              d.severity is not Severity.ERROR, d.message))


@contextmanager
def _no_gc() -> Iterator[None]:
    # Loading allocates many small objects and frees none of them: a collection pass in the
    # middle costs time and finds nothing.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def check_text(
    text: str, source: str = "<memory>", config: FlowSettings | None = None
) -> Loaded:
    """Run every stage on ``text`` and collect the diagnostics instead of raising."""
    with _no_gc():
        return _check_text(text, source, config)


def _check_text(text: str, source: str, config: FlowSettings | None) -> Loaded:
    try:
        doc = load_yaml(text, source)
    except YamlError as exc:
        return Loaded(source, None, list(exc.diagnostics))
    diagnostics = list(doc.diagnostics)
    report = check_schema(doc)
    diagnostics.extend(report.diagnostics)
    broken = _broken_nodes(report.pointers)
    if broken is None:
        diagnostics.extend(_warnings_despite(doc, config))
        return Loaded(source, None, sorted_diagnostics(diagnostics))
    result = build_flow(doc, config, frozenset(broken))
    diagnostics.extend(result.diagnostics)
    allow_known = config is not None or bool(result.flow.transfer_allow)
    whole = not broken and not doc.diagnostics
    partial = None if whole else _raw_edges(doc.data, broken)
    diagnostics.extend(check_flow(result, doc.positions, allow_known, graph=whole,
                                  partial=partial))  # fmt: skip
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    flow = replace(result.flow, digest=digest)
    result.flow = flow
    return Loaded(source, flow, sorted_diagnostics(diagnostics), result)


def _warnings_despite(doc: Document, config: FlowSettings | None) -> list[Diagnostic]:
    """The warnings of a flow with a schema error outside its nodes (lint shows them with the
    errors). The model is built as far as it goes; its errors would only repeat the schema's,
    and data that does not fit the schema may stop the builder: then there are none."""
    try:
        result = build_flow(doc, config, frozenset())
        found = check_flow(result, doc.positions, True, graph=False,
                           partial=_raw_edges(doc.data, set()))  # fmt: skip
    except Exception:  # the data does not fit the model: the schema errors say why
        return []
    return [d for d in found if d.severity is Severity.WARNING]


def _raw_edges(data: object, broken: set[str]) -> dict[str, set[str]]:
    """Likely targets of nodes that could not be built: every node id found among their
    values (so the nodes after a broken one are not reported as unreachable)."""
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict):
        return {}
    ids = set(nodes)
    edges: dict[str, set[str]] = {}
    for node_id in broken:
        found: set[str] = set()
        todo: list[object] = [nodes.get(node_id)]
        while todo:
            value = todo.pop()
            if isinstance(value, str) and value in ids:
                found.add(value)
            elif isinstance(value, dict):
                todo.extend(value.values())
            elif isinstance(value, list):
                todo.extend(value)
        edges[node_id] = found
    return edges


def _broken_nodes(pointers: Sequence[str]) -> set[str] | None:
    """Node ids with schema errors, or None when an error lies outside any node."""
    broken: set[str] = set()
    for ptr in pointers:
        parts = ptr.split("/")
        if len(parts) < 3 or parts[1] != "nodes":
            return None
        broken.add(unescape(parts[2]))
    return broken


def load_text(
    text: str, source: str = "<memory>", config: FlowSettings | None = None
) -> Flow:
    """Load one flow from YAML text.

    Args:
        text: the YAML source.
        source: the name shown in positions (a file name).
        config: ivr.yaml; it supplies the default languages, timers and the transfer allow-list.
            Without it the platform defaults apply and constant transfer targets are only checked
            against the flow's own ``transfer_allow`` (if it has one).

    Raises:
        FlowError: a subclass for the earliest failing stage, with every error and warning.
    """
    loaded = check_text(text, source, config)
    if loaded.errors or loaded.flow is None:
        raise refuse(loaded.diagnostics)
    return loaded.flow


def load_flow(path: str | Path, config: FlowSettings | None = None) -> Flow:
    """Load one flow file (see :func:`load_text`); sub-flow ids are not checked here."""
    path = Path(path)
    return load_text(_read(path), str(path), config)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise YamlError([Diagnostic(Pos(str(path), 1, 1), f"cannot read: {reason}",
                                    stage="yaml")]) from None


def flow_files(folder: str | Path) -> list[Path]:
    """The flow files of a folder: ``*.yaml`` directly in it, sorted by name."""
    return sorted(p for p in Path(folder).glob("*.yaml") if p.is_file())


def check_files(
    paths: Sequence[str | Path], config: FlowSettings | None = None
) -> list[Loaded]:
    """Load every file and check them together as one set (sub-flows, unique flow ids)."""
    loaded = []
    for path in paths:
        path = Path(path)
        try:
            text = _read(path)
        except YamlError as exc:
            loaded.append(Loaded(str(path), None, list(exc.diagnostics)))
            continue
        loaded.append(check_text(text, str(path), config))
    extra = check_flowset([item.build for item in loaded if item.build and item.flow])
    for item in loaded:
        item.diagnostics = sorted_diagnostics(
            item.diagnostics + [d for d in extra if d.pos.file == item.source]
        )
    return loaded


def make_flowset(flows: Iterable[Flow]) -> FlowSet:
    """A FlowSet whose version is the digest of every flow's id and digest."""
    by_id = {flow.id: flow for flow in flows}
    digest = hashlib.sha256()
    for flow_id in sorted(by_id):
        digest.update(f"{flow_id}\0{by_id[flow_id].digest}\n".encode())
    return FlowSet(by_id, digest.hexdigest())


def load_flowset(
    flows_dir: str | Path, config: FlowSettings | None = None
) -> tuple[FlowSet, list[Diagnostic]]:
    """Load every ``*.yaml`` in ``flows_dir`` as one consistent set.

    Returns:
        The flow set and the warnings.

    Raises:
        FlowError: with every file's errors (and warnings) when any file has an error, or when
            the folder has no flow files.
    """
    files = flow_files(flows_dir)
    if not files:
        raise YamlError([Diagnostic(Pos(str(flows_dir), 0, 0), "no flow files (*.yaml) here",
                                    stage="yaml")])
    loaded = check_files(files, config)
    diagnostics = [d for item in loaded for d in item.diagnostics]
    if any(item.errors or item.flow is None for item in loaded):
        raise refuse(diagnostics)
    flowset = make_flowset(item.flow for item in loaded if item.flow is not None)
    return flowset, [d for d in diagnostics if d.severity is Severity.WARNING]
