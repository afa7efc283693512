"""The instructed-pairs contrast set as a registered statement set: captured by name, parameters through the
component settings route, and the same dataset as capturing the file it writes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from deception_core.base.registry import Kind
from deception_core.cli import cli
from deception_core.plugins import get_plugin_set
from deception_core.store.dataset import read_dataset
from deception_scenarios.contrast import InstructedPairs, InstructedPairsSettings, write_instructed_pairs

SMALL = {"n_arithmetic": 2, "n_units": 1, "seed": 3}


def test_instructed_pairs_is_registered_as_a_statement_set():
    entry = get_plugin_set().registry.get(Kind.STATEMENT_SET, "instructed_pairs")
    assert entry.load() is InstructedPairs


def test_the_plugin_listing_shows_the_statement_set():
    result = CliRunner().invoke(cli, ["plugins"])
    assert "statement_set: instructed_pairs" in result.output


def test_parameters_are_structured_into_the_settings_class():
    from deception_core.config.components import build

    built = build(Kind.STATEMENT_SET, "instructed_pairs", InstructedPairs, SMALL)
    assert built.settings == InstructedPairsSettings(**SMALL)


def test_unknown_parameters_are_refused_with_the_valid_ones():
    from deception_core.base.errors import ConfigError
    from deception_core.config.components import build

    with pytest.raises(ConfigError, match="n_units"):
        build(Kind.STATEMENT_SET, "instructed_pairs", InstructedPairs, {"n_facts": 3})


def test_capture_by_name_gives_the_dataset_of_the_generated_file(tmp_path, tiny_model_dir):
    runner = CliRunner()
    params = [arg for key, value in SMALL.items() for arg in ("--param", f"{key}={value}")]
    by_name = runner.invoke(cli, ["capture", "instructed_pairs", *params, "--model", str(tiny_model_dir),
                                  "--dtype", "float32", "--output", str(tmp_path / "by_name")])
    assert by_name.exit_code == 0, by_name.output
    path = write_instructed_pairs(tmp_path / "instructed_pairs.jsonl", **SMALL)
    by_file = runner.invoke(cli, ["capture", str(path), "--model", str(tiny_model_dir), "--dtype", "float32",
                                  "--output", str(tmp_path / "by_file")])
    assert by_file.exit_code == 0, by_file.output
    named, filed = read_dataset(tmp_path / "by_name"), read_dataset(tmp_path / "by_file")
    assert len(named.samples) == 2 * (20 + SMALL["n_arithmetic"] + SMALL["n_units"])
    assert [s.sample_id for s in named.samples] == [s.sample_id for s in filed.samples]
    assert [s.reply_text for s in named.samples] == [s.reply_text for s in filed.samples]
    assert sorted(named.arrays) == sorted(filed.arrays)
    for key in named.arrays:
        np.testing.assert_array_equal(named.arrays[key], filed.arrays[key])


def test_an_unknown_set_exits_2_listing_the_registered_sets(tmp_path):
    result = CliRunner().invoke(cli, ["capture", "no_such_set", "--model", "embedded:gemma-3-270m",
                                      "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    listed = result.output.split("registered sets: ", 1)[1].split(" (")[0].split(", ")
    expected = {"ai_liar", "apollo_instructed_pairs", "apollo_roleplaying", "inspect", "instructed_pairs",
                "liars_bench"}
    assert expected <= set(listed)
    assert not (tmp_path / "out").exists()


def test_a_bad_parameter_exits_2_before_loading(tmp_path):
    result = CliRunner().invoke(cli, ["capture", "instructed_pairs", "--param", "n_units=-1", "--model",
                                      "embedded:gemma-3-270m", "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "n_units must be 0 or more" in result.output


def test_param_with_a_file_is_refused(tmp_path):
    path = tmp_path / "facts.jsonl"
    path.write_text(json.dumps({"text": "Snow is white.", "label": "honest"}) + "\n")
    result = CliRunner().invoke(cli, ["capture", str(path), "--param", "seed=1", "--model", "embedded:gemma-3-270m",
                                      "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "is a file" in result.output
