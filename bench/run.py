"""Core benchmarks: simulated calls per second and validation time of a 1,000-node flow.

Run with ``make bench`` (or ``.venv/bin/python bench/run.py``); results are printed and written
to docs/PERFORMANCE.md. Each figure comes with a reference measured in the same run on the same
machine, so the ratio means something on any machine:

- simulated calls: the reference is the bare virtual clock running the same number of timer
  callbacks the calls needed (the scheduler floor); the ratio says how much the engine, the
  simulated channel and the caller driver cost on top of it.
- validation: the reference is PyYAML's own SafeLoader parsing the same text; the ratio says what
  positions, schema and semantic checks cost on top of plain parsing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.config import load_config  # noqa: E402
from ivr.core.clock import VirtualClock  # noqa: E402
from ivr.flow.loader import load_flowset, load_text  # noqa: E402
from ivr.sim.runner import make_runtime, run_scripts  # noqa: E402
from ivr.sim.script import parse_script  # noqa: E402

# Ten steps through the bank flow without webhooks: language, menu, branch hours,
# "anything else", no, one survey answer, the second question skipped by silence, goodbye.
TEN_STEP_SCRIPT = """
call: bank-main
caller: {number: "+8613800000099", called: "95588"}
at: "2027-01-04T10:00:00+08:00"
steps:
  - expect: choose_language
  - press: "1"
  - expect: main_menu
  - press: "4"
  - expect: branch_hours
  - expect: anything_else
  - press: "2"
  - expect: survey.satisfaction
  - press: "5"
  - expect_hangup                     # the second question is skipped by silence
outcome: self_service
"""


def best_of(repeats: int, func: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs, in seconds (the least disturbed by the machine)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_simulated_calls(calls: int, repeats: int) -> dict[str, float]:
    config = load_config(ROOT / "ivr.yaml")
    flows, _ = load_flowset(config.flows_dir, config)
    runtime = make_runtime(config)
    script = parse_script(TEN_STEP_SCRIPT, "bench/ten_steps.yaml")
    scripts = [script] * calls
    results = run_scripts(scripts, flows, runtime)
    failed = [r for r in results if not r.passed]
    if failed:
        raise SystemExit(f"benchmark script failed: {failed[0].summary()}")
    counter = _count_timers(lambda clock: run_scripts(scripts, flows, runtime, clock=clock))
    engine = best_of(repeats, lambda: run_scripts(scripts, flows, runtime))
    floor = best_of(repeats, lambda: _bare_timers(counter))
    return {
        "calls": calls,
        "seconds": engine,
        "calls_per_second": calls / engine,
        "timers": counter,
        "floor_seconds": floor,
        "ratio": engine / floor,
        "steps": len(script.steps),
    }


def _count_timers(run: Callable[[VirtualClock], object]) -> int:
    clock = VirtualClock()
    count = 0
    original = clock.call_later

    def counting(delay: float, callback: Callable[[], None]) -> object:
        nonlocal count
        count += 1
        return original(delay, callback)

    clock.call_later = counting  # type: ignore[method-assign,assignment]
    run(clock)
    return count


def _bare_timers(count: int) -> None:
    clock = VirtualClock()
    for i in range(count):
        clock.call_later(i * 0.001, _noop)
    clock.run(limit=float("inf"))


def _noop() -> None:
    pass


def generated_flow(nodes: int) -> str:
    """A flow of ``nodes`` nodes: chains of menus, prompts, sets and branches."""
    lines = ["flow: generated", "languages: [en]", "start: n0", 'globals: {"0": agent}', "nodes:"]
    body = nodes - 2
    for i in range(body):
        nxt = f"n{i + 1}" if i + 1 < body else "bye"
        kind = i % 4
        if kind == 0:
            lines += [
                f"  n{i}:",
                "    menu:",
                f'      prompt: "Menu {i}: press 1 to go on, 2 to leave."',
                f'      choices: {{"1": {nxt}, "2": bye}}',
                "      no_input: {goto: agent}",
                "      no_match: {goto: agent}",
            ]
        elif kind == 1:
            prompt = f'"Step {i} for {{call.caller}}."'
            lines.append(f"  n{i}: {{say: {{prompt: {prompt}, next: {nxt}}}}}")
        elif kind == 2:
            lines.append(f'  n{i}: {{set: {{vars: {{v{i}: "= {i} + 1"}}, next: {nxt}}}}}')
        else:
            lines += [
                f"  n{i}:",
                "    branch:",
                f"      when: [{{if: \"v{i - 1} > 0\", goto: {nxt}}}]",
                "      else: bye",
            ]
    lines += [
        "  bye: {hangup: {prompt: Goodbye.}}",
        "  agent: {enqueue: {queue: general}}",
    ]
    return "\n".join(lines) + "\n"


def bench_validation(nodes: int, repeats: int) -> dict[str, float]:
    text = generated_flow(nodes)
    flow = load_text(text, "generated.yaml")
    assert len(flow.nodes) == nodes, len(flow.nodes)
    validate = best_of(repeats, lambda: load_text(text, "generated.yaml"))
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    parse = best_of(repeats, lambda: yaml.load(text, Loader=loader))
    return {"nodes": nodes, "seconds": validate, "yaml_seconds": parse, "ratio": validate / parse}


def report(sim: dict[str, float], val: dict[str, float]) -> str:
    cpu = platform.processor() or platform.machine()
    return f"""# Performance

Measured by `make bench` (`bench/run.py`) on {platform.python_implementation()}
{platform.python_version()}, {cpu}, one process (one core). Each figure is the best of several
runs; the reference beside it is measured in the same run, so the ratio carries across machines.

## Simulated calls (virtual clock, in-process)
The bank flow, a {sim["steps"]:.0f}-step call script (language, menu, branch hours, anything
else, one survey answer, goodbye), {sim["calls"]:.0f} calls interleaved on one virtual clock.

| figure | value |
|---|---|
| calls per second | **{sim["calls_per_second"]:,.0f}** (goal: 1,000 or more on one core) |
| time for {sim["calls"]:.0f} calls | {sim["seconds"]:.3f} s |
| reference: bare virtual clock, same {sim["timers"]:.0f} timers | {sim["floor_seconds"]:.4f} s |
| ratio engine / reference | {sim["ratio"]:.1f} |

## Validating a generated 1,000-node flow
Menus, prompts, `set` and `branch` nodes in a chain (`bench/run.py: generated_flow`), through
every stage: YAML with positions, JSON Schema, semantic checks, model.

| figure | value |
|---|---|
| validation time | **{val["seconds"] * 1000:.1f} ms** (goal: under 200 ms) |
| reference: PyYAML safe loader (LibYAML), same text | {val["yaml_seconds"] * 1000:.1f} ms |
| ratio validation / reference | {val["ratio"]:.2f} |
"""


def keep_others(old: str, new: str) -> str:
    """``new``, then the sections of ``old`` that other benchmarks wrote (bench/serve_load.py,
    bench/acd_scale.py): this one rewrites only its own."""
    own = {line for line in new.splitlines() if line.startswith("## ")}
    sections = old.split("\n## ")[1:]
    others = ["## " + s.rstrip("\n") for s in sections if "## " + s.split("\n", 1)[0] not in own]
    return "\n\n".join([new.rstrip("\n"), *others]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    args = parser.parse_args()
    sim = bench_simulated_calls(args.calls, args.repeats)
    val = bench_validation(args.nodes, args.repeats)
    text = report(sim, val)
    output = Path(args.output)
    old = output.read_text(encoding="utf-8") if output.exists() else ""
    output.write_text(keep_others(old, text), encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
