"""`--scenarios N` follows the order scenarios declare at registration, not a list in the core."""

from __future__ import annotations

import pytest

from deception_core.base.errors import ConfigError
from deception_core.base.registry import Kind, KindRegistry, Provider, Registry
from deception_core.config.run import RunConfig
from deception_core.plan.plan import scenario_order, select_scenarios


def _registry(**orders: int | None) -> Registry:
    registry = Registry()
    view = KindRegistry(registry, Kind.SCENARIO, Provider("test"))
    for name, order in orders.items():
        metadata = {} if order is None else {"order": order}
        view.add(name, lambda: None, summary=name, **metadata)
    return registry


def test_ranked_scenarios_come_first_by_their_order_then_the_rest_alphabetically() -> None:
    registry = _registry(zeta=None, beta=2, alpha=None, gamma=0, delta=1)
    assert scenario_order(registry) == ["gamma", "delta", "beta", "alpha", "zeta"]


def test_scenarios_n_takes_the_first_n_ranked_and_refuses_more() -> None:
    registry = _registry(third_party=None, late=5, early=1)
    assert select_scenarios(RunConfig(scenarios=1), registry) == ["early"]
    assert select_scenarios(RunConfig(scenarios=2), registry) == ["early", "late"]
    with pytest.raises(ConfigError, match="between 1 and 2"):
        select_scenarios(RunConfig(scenarios=3), registry)


def test_the_installed_scenarios_declare_their_order() -> None:
    from deception_core.plugins import build_plugin_set

    registry = build_plugin_set().registry
    unranked = {"control", "roleplaying"}  # the control set and the role plays are played by name only
    entries = [e for e in registry.entries(Kind.SCENARIO) if e.name not in unranked]
    assert all(isinstance(e.metadata.get("order"), int) for e in entries)
    assert len({e.metadata["order"] for e in entries}) == len(entries)
