"""JUnit XML for CI: one testsuite, one testcase per script, a failure carrying the divergence
(a script not run live is ``skipped``; checks a live run could not make are its system-out).

``time`` is the real time spent in the call's callbacks (what CI budgets); the virtual duration
and the outcome are testcase properties.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from ivr.sim.runner import ScriptResult


def junit_xml(results: Sequence[ScriptResult], suite: str = "ivr call scripts") -> str:
    """The JUnit XML document for ``results``."""
    skipped = sum(1 for r in results if r.skipped is not None)
    failures = sum(1 for r in results if not r.passed) - skipped
    total_time = sum(r.wall for r in results)
    root = ET.Element(
        "testsuites",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        time=f"{total_time:.6f}",
    )
    tsuite = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{total_time:.6f}",
    )
    for result in results:
        _testcase(tsuite, result)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(parent: ET.Element, result: ScriptResult) -> None:
    attrs = {
        "classname": f"ivr.flows.{result.flow or 'unknown'}",
        "name": result.name,
        "file": result.path,
        "time": f"{result.wall:.6f}",
    }
    if result.divergence is not None:
        attrs["line"] = str(result.divergence.line)
    case = ET.SubElement(parent, "testcase", attrs)
    props = ET.SubElement(case, "properties")
    ET.SubElement(props, "property", name="virtual_seconds", value=f"{result.duration:.3f}")
    ET.SubElement(props, "property", name="steps", value=str(result.steps))
    ET.SubElement(props, "property", name="outcome", value=str(result.outcome))
    if result.notes:
        ET.SubElement(case, "system-out").text = "\n".join(result.notes)
    if result.skipped is not None:
        ET.SubElement(case, "skipped", message=result.skipped)
    elif not result.passed:
        div = result.divergence
        message = f"{div.where()}: {div.message}" if div else "failed"
        failure = ET.SubElement(case, "failure", message=message, type="divergence")
        failure.text = div.format() if div else "failed"


def write_junit(results: Sequence[ScriptResult], path: str | Path) -> None:
    """Write the JUnit XML for ``results`` to ``path`` (folders are created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(junit_xml(results), encoding="utf-8")
