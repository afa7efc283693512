"""Which trials a run plays: scenario selection, conditions, seeds and shards (deterministic)."""

from __future__ import annotations

import hashlib

from deception_core.base.errors import ConfigError
from deception_core.base.registry import Kind, Registry
from deception_core.base.types import CONDITIONS_BY_MODE, Mode
from deception_core.config.run import RunConfig
from deception_core.contracts.scenario import TrialSpec


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from any parts, identical across processes and machines."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def ranked_scenarios(registry: Registry) -> list[str]:
    """Scenarios registered with an ``order`` (their plugin's ranking; ``--scenarios N`` takes the
    first N), lowest first."""
    ranked = [e for e in registry.entries(Kind.SCENARIO) if isinstance(e.metadata.get("order"), int)]
    return [e.name for e in sorted(ranked, key=lambda e: (e.metadata["order"], e.name))]


def scenario_order(registry: Registry) -> list[str]:
    """The ranked scenarios in their order, then the others alphabetically."""
    ranked = ranked_scenarios(registry)
    return ranked + sorted(n for n in registry.names(Kind.SCENARIO) if n not in ranked)


def select_scenarios(config: RunConfig, registry: Registry) -> list[str]:
    order = scenario_order(registry)
    builtin = ranked_scenarios(registry)
    if config.scenario_names:
        unknown = [n for n in config.scenario_names if n not in order]
        if unknown:
            raise ConfigError(
                f"unknown scenario {', '.join(map(repr, unknown))}. Valid names: {', '.join(order)} "
                "(see `deception scenarios`)"
            )
        return list(config.scenario_names)
    if not 1 <= config.scenarios <= len(builtin):
        raise ConfigError(
            f"--scenarios must be between 1 and {len(builtin)} (the ranked scenarios, in the order "
            f"{', '.join(builtin)}); got {config.scenarios}. Use --scenario-name to pick any registered "
            "scenario by name, third-party ones included."
        )
    return builtin[: config.scenarios]


def plan_trials(config: RunConfig, scenarios: list[str]) -> list[TrialSpec]:
    """Every trial of the run (after sharding), in a fixed order."""
    specs = []
    for mode_name in config.modes:
        mode = Mode(mode_name)
        for scenario in scenarios:
            for condition in CONDITIONS_BY_MODE[mode]:
                for index in range(config.trials):
                    seed = stable_seed(config.seed, scenario, mode.value, condition.value, index)
                    specs.append(TrialSpec(scenario, mode, condition, index, seed))
    if config.shard is not None:
        shard, total = config.shard
        specs = [s for s in specs if stable_seed("shard", s.key) % total == shard]
    return specs


def auto_layers(n_layers: int) -> tuple[int, ...]:
    """Three layers spread over the depth (a quarter, half and three quarters)."""
    picks = {min(n_layers - 1, max(0, round(n_layers * f))) for f in (0.25, 0.5, 0.75)}
    return tuple(sorted(picks))
