"""Helpers for the scenario tests: build a built-in scenario, and play a game with given texts."""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable

from deception_core.base.types import Condition
from deception_core.contracts.scenario import GameOptions, Request, TrialSpec
from deception_scenarios._plugin import SCENARIOS


def scenario_class(name: str):
    module, cls = SCENARIOS[name][0].split(":")
    return getattr(importlib.import_module(f"deception_scenarios.scenarios.{module}"), cls)


def make_scenario(name: str, counterpart: str = "llm"):
    return scenario_class(name)(counterpart=counterpart)


def start(name: str, condition: Condition = Condition.HIGH_INCENTIVE, counterpart: str = "llm", seed: int = 3,
          **options):
    scenario = make_scenario(name, counterpart)
    facts = scenario.sample_facts(random.Random(seed))
    spec = TrialSpec(name, condition.mode, condition, 0, seed)
    return scenario, facts, scenario.new_game(spec, facts, GameOptions(**options))


def play(game, answer: Callable[[Request], str]) -> list[Request]:
    """Play ``game`` to the end, answering each request with ``answer``; returns the requests made."""
    made: list[Request] = []
    for _ in range(200):
        if game.done:
            return made
        pending = list(game.pending())
        assert len(pending) == 1, "the generic game asks for one call at a time"
        made.append(pending[0])
        game.deliver(pending[0], answer(pending[0]))
    raise AssertionError("the game did not finish")
