"""One parser of ``--layers``/``--positions`` for the run's config, `deception capture` and `deception bench`."""

from __future__ import annotations

import pytest

from deception_core.base.errors import ConfigError
from deception_core.base.selection import parse_layers, parse_positions
from deception_core.base.types import Position


def test_layers_are_sorted_without_repeats() -> None:
    assert parse_layers("9, 3,3") == (3, 9)


def test_a_list_of_layers_is_accepted() -> None:
    assert parse_layers([4, 1]) == (1, 4)


def test_no_layers_means_the_commands_default() -> None:
    assert parse_layers(None) is None


@pytest.mark.parametrize(("value", "problem"), [
    ("4,x", "comma-separated integers"),
    (",", "--layers is empty"),
    ("-1", "0 or more"),
    (["a"], "list of integers"),
    ([True], "list of integers"),
])
def test_bad_layers_are_refused_with_the_fix(value: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_layers(value)  # type: ignore[arg-type]


def test_positions_keep_their_order_without_repeats() -> None:
    assert parse_positions("reply_last,last_prompt,reply_last") == (Position.REPLY_LAST, Position.LAST_PROMPT)


def test_unknown_positions_are_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="reply_mean"):
        parse_positions("middle")


def test_the_config_reads_layers_with_the_shared_parser() -> None:
    from deception_core import RunConfig

    assert RunConfig(model="m", layers="9,3,3").layers == (3, 9)
