"""The command line: listing commands and bad input (exit 2, nothing written, no model loaded)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deception_core.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_scenarios_lists_the_six_with_descriptions_and_plugin() -> None:
    result = invoke("scenarios")
    assert result.exit_code == 0
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    names = [line.split()[0] for line in lines]
    assert names[:6] == ["ultimatum_bluff", "hidden_value", "alliance_betrayal", "capability_bluff",
                         "info_withholding", "promise_break"]
    assert all(line.rstrip().endswith("[scenarios]") for line in lines[:6])


def test_plugins_json_reports_versions_and_components() -> None:
    rows = {row["name"]: row for row in json.loads(invoke("plugins", "--json").output)}
    assert rows["core"]["version"]
    assert {"kind": "capture_backend", "name": "hf"} in rows["core"]["components"]
    assert {"kind": "scenario", "name": "ultimatum_bluff"} in rows["scenarios"]["components"]
    assert "register_scenarios" in rows["scenarios"]["hooks"]


def test_unknown_scenario_exits_2_lists_valid_names_and_writes_nothing(tmp_path) -> None:
    out = tmp_path / "never"
    result = invoke("run", "--scenario-name", "nope", "--output", str(out))
    assert result.exit_code == 2
    assert "unknown scenario 'nope'" in result.output
    assert "ultimatum_bluff" in result.output
    assert not out.exists()


def test_layer_out_of_range_exits_2_before_loading(tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "never"
    result = invoke("run", "--model", str(tiny_model_dir), "--scenario-name", "ultimatum_bluff",
                    "--layers", "1,7", "--output", str(out))
    assert result.exit_code == 2
    assert "layer(s) [7] do not exist" in result.output
    assert "valid: 0 to 3" in result.output
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--dtype", "float8"), "Invalid value for '--dtype'"),
    (("--device", "tpu"), "Invalid value for '--device'"),
    (("--trials", "0"), "trials must be between 1 and"),
    (("--model", "./no/such/dir"), "no such directory"),
    (("--model", "embedded:nope"), "unknown embedded model"),
])
def test_bad_flags_exit_2_with_a_fix(args, message, tmp_path) -> None:
    out = tmp_path / "never"
    result = invoke("run", "--scenario-name", "ultimatum_bluff", "--output", str(out), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()
