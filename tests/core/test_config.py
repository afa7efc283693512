"""Configs are frozen, validated, and refuse unknown keys."""

from __future__ import annotations

import attrs
import pytest

from deception_core.base.errors import ConfigError
from deception_core.base.types import Position
from deception_core.config.run import RunConfig


def test_defaults_follow_the_cloud_guide() -> None:
    config = RunConfig()
    assert (config.model, config.dtype, config.mode, config.scenarios, config.trials) == (
        "google/gemma-2b-it", "bfloat16", "emergent", 3, 40)
    assert (config.max_rounds, config.max_tokens) == (3, 128)
    assert (config.evaluator, config.output, config.checkpoint_dir) == ("local", "./experiment_output", None)


def test_unknown_keys_are_refused_with_the_valid_ones_listed() -> None:
    with pytest.raises(ConfigError, match=r"unknown RunConfig key\(s\): tirals.*Valid keys:.*trials"):
        RunConfig.from_dict({"tirals": 3})


def test_configs_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        RunConfig().trials = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trials": 0}, "trials must be between 1 and"),
        ({"dtype": "float8"}, "dtype must be one of"),
        ({"device": "tpu"}, "device must be one of"),
        ({"layers": "4,x"}, "comma-separated integers"),
        ({"layers": [-1]}, "0 or more"),
        ({"positions": "middle"}, "positions must be among"),
        ({"shard": "3/2"}, "0 <= I < N"),
        ({"hybrid": True, "capture_backend": "hf"}, "drop one of the two"),
    ],
)
def test_bad_values_name_the_problem(changes, message) -> None:
    with pytest.raises(ConfigError, match=message):
        RunConfig(**changes)


def test_round_trip_through_plain_json() -> None:
    config = RunConfig(layers="9,4", positions="last_prompt,reply_all", scenario_names=["a", "a", "b"], shard="1/3")
    assert config.layers == (4, 9)
    assert config.positions == (Position.LAST_PROMPT, Position.REPLY_ALL)
    assert config.scenario_names == ("a", "b")
    assert RunConfig.from_dict(config.to_dict()) == config
