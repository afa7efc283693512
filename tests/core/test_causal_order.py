"""Causal tests run after the tests whose results they declare they need, and get those results in memory."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import pytest

from deception_core.base.errors import ConfigError, UsageError
from deception_core.base.registry import Kind, KindRegistry, Provider, Registry
from deception_core.config.run import RunConfig
from deception_core.contracts.analysis import CausalContext, CausalTest
from deception_core.intervene.causal import causal_test_order, run_causal_tests


class _Recording(CausalTest):
    seen: ClassVar[list[tuple[str, list[str]]]] = []

    def run(self, context: CausalContext) -> dict[str, Any]:
        self.seen.append((self.name, sorted(context.results)))
        inputs = {name: result.record["value"] for name, result in context.results.items()}
        return {"test": self.name, "status": "ok", "value": len(self.name) + sum(inputs.values())}


class Combined(_Recording):
    name = "combined"
    requires = ("first", "second")


class First(_Recording):
    name = "first"


class Second(_Recording):
    name = "second"
    requires = ("first",)


def _registry(*classes: type[CausalTest]) -> Registry:
    registry = Registry()
    view = KindRegistry(registry, Kind.CAUSAL_TEST, Provider("test"))
    for cls in classes:
        view.add(cls.name, lambda cls=cls: cls, summary=cls.__name__)
    return registry


def test_a_test_runs_after_the_tests_it_requires_whatever_the_registration_order() -> None:
    assert causal_test_order({"combined": Combined, "second": Second, "first": First}) == ["first", "second", "combined"]
    assert causal_test_order({"first": First, "other": Combined}) == ["first", "other"]  # a missing requirement is skipped


def test_requirements_in_a_cycle_are_refused() -> None:
    class Loop(_Recording):
        name = "loop"
        requires = ("second",)

    class Back(_Recording):
        name = "second"
        requires = ("loop",)

    with pytest.raises(UsageError, match="cycle"):
        causal_test_order({"loop": Loop, "second": Back})


def test_each_test_gets_exactly_the_results_it_requires_and_each_result_is_written(tmp_path) -> None:
    _Recording.seen.clear()
    context = CausalContext(None, None, None, None, RunConfig(), {}, None, tmp_path, None)  # type: ignore[arg-type]
    results = run_causal_tests(_registry(Combined, Second, First), context, tmp_path)
    assert _Recording.seen == [("first", []), ("second", ["first"]), ("combined", ["first", "second"])]
    assert results["combined"].record["value"] == len("combined") + 5 + (6 + 5)
    assert sorted(p.name for p in tmp_path.glob("causal_*.json")) == [
        "causal_combined.json", "causal_first.json", "causal_second.json"]


@attrs.frozen
class _Scale:
    factor: int = 1


class Scaled(_Recording):
    name = "scaled"
    settings_class = _Scale

    def __init__(self, settings: _Scale) -> None:
        self.settings = settings

    def run(self, context: CausalContext) -> dict[str, Any]:
        return {"test": self.name, "status": "ok", "value": self.settings.factor}


def test_a_test_gets_its_settings_from_the_components_route_and_unknown_keys_are_refused(tmp_path) -> None:
    config = RunConfig(components={"causal_test": {"scaled": {"factor": 7}}})
    context = CausalContext(None, None, None, None, config, {}, None, tmp_path, None)  # type: ignore[arg-type]
    assert run_causal_tests(_registry(Scaled), context, tmp_path)["scaled"].record["value"] == 7
    bad = attrs.evolve(context, config=RunConfig(components={"causal_test": {"scaled": {"factr": 7}}}))
    with pytest.raises(ConfigError, match=r"causal test 'scaled': unknown _Scale key\(s\): factr. Valid keys: factor"):
        run_causal_tests(_registry(Scaled), bad, tmp_path)
