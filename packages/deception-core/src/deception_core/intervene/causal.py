"""Run the registered causal tests in the order their declared dependencies need, passing each the
results it requires in memory."""

from __future__ import annotations

import graphlib
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import attrs

from deception_core.base.errors import UsageError
from deception_core.base.records import CausalResult
from deception_core.base.registry import Kind, Registry
from deception_core.config.components import build
from deception_core.contracts.analysis import CausalContext, CausalTest
from deception_core.store.dataset import atomic_write_text

log = logging.getLogger("deception")


def causal_test_order(tests: Mapping[str, type[CausalTest]]) -> list[str]:
    """The tests' names in registration order, except that each comes after the tests it requires."""
    graph = {name: [r for r in cls.requires if r in tests] for name, cls in tests.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as error:
        raise UsageError(f"the causal tests require each other in a cycle ({error.args[1]}); fix their `requires`") from None
    placed: list[str] = []
    for name in tests:
        _place(name, tests, placed)
    return placed


def _place(name: str, tests: Mapping[str, type[CausalTest]], placed: list[str]) -> None:
    if name in placed:
        return
    for required in tests[name].requires:
        if required in tests:
            _place(required, tests, placed)
    placed.append(name)


def run_causal_tests(registry: Registry, context: CausalContext, out_dir: Path) -> dict[str, CausalResult]:
    """Run every registered causal test; each gets the results of the tests it requires."""
    tests: dict[str, type[CausalTest]] = {entry.name: entry.load() for entry in registry.entries(Kind.CAUSAL_TEST)}
    results: dict[str, CausalResult] = {}
    for name in causal_test_order(tests):
        cls = tests[name]
        missing = [r for r in cls.requires if r not in tests]
        if missing:
            log.warning("causal test %s requires %s, which is not installed", name, ", ".join(missing))
        log.info("causal test %s", name)
        needed = {r: results[r] for r in cls.requires if r in results}
        test = build(Kind.CAUSAL_TEST, name, cls, context.config.component_params(Kind.CAUSAL_TEST.value, name))
        started = time.monotonic()
        record = test.run(_with_results(context, needed))
        log.info("causal test %s: %s in %.1f s", name, record.get("status"), time.monotonic() - started)
        results[name] = CausalResult(name, record)
        atomic_write_text(out_dir / f"causal_{name}.json", json.dumps(record, indent=2, default=str))
    return results


def _with_results(context: CausalContext, results: Mapping[str, CausalResult]) -> CausalContext:
    return attrs.evolve(context, results=dict(results))
