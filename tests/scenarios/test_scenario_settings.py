"""A scenario's settings reach it through ``components`` in a ``--config`` file, and only valid ones."""

from __future__ import annotations

import json

import attrs
import pytest
from click.testing import CliRunner

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.base.errors import ConfigError
from deception_core.base.registry import Kind
from deception_core.cli import cli
from deception_core.config.components import build, settings_for
from deception_scenarios.game import ScenarioSettings
from deception_scenarios.scenarios.alliance_betrayal import AllianceBetrayal, AllianceSettings
from deception_scenarios.scenarios.ultimatum import UltimatumBluff


def test_the_core_structures_a_scenarios_settings_into_its_class() -> None:
    assert build(Kind.SCENARIO, "ultimatum_bluff", UltimatumBluff, {}).counterpart == "llm"
    scripted = build(Kind.SCENARIO, "ultimatum_bluff", UltimatumBluff, {"counterpart": "scripted"})
    assert scripted.settings == ScenarioSettings(counterpart="scripted")
    assert scripted.counterpart == "scripted"
    alliance = build(Kind.SCENARIO, "alliance_betrayal", AllianceBetrayal, {"unparsable_vote": "abstain"})
    assert alliance.settings == AllianceSettings(unparsable_vote="abstain")
    assert alliance.unparsable_vote == "abstain"


def test_a_misspelt_or_invalid_scenario_setting_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="scenario 'ultimatum_bluff'.*counterpat.*Valid keys: counterpart"):
        settings_for(Kind.SCENARIO, "ultimatum_bluff", UltimatumBluff, {"counterpat": "scripted"})
    with pytest.raises(ConfigError, match="counterpart must be one of llm, scripted; got 'robot'"):
        settings_for(Kind.SCENARIO, "ultimatum_bluff", UltimatumBluff, {"counterpart": "robot"})
    with pytest.raises(ConfigError, match="Valid keys: counterpart, unparsable_vote"):
        settings_for(Kind.SCENARIO, "alliance_betrayal", AllianceBetrayal, {"unparseable_vote": "abstain"})


def _config_file(tmp_path, model_dir, scenario_settings: dict) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "model": str(model_dir), "scenario_names": ["ultimatum_bluff"], "trials": 1, "max_rounds": 1,
        "max_tokens": 4, "mode": "emergent", "analyze": False, "output": str(tmp_path / "out"),
        "components": {"scenario": {"ultimatum_bluff": scenario_settings}},
    }))
    return str(path)


def test_a_config_files_counterpart_setting_changes_who_plays_the_other_side(tiny_model_dir, tmp_path) -> None:
    config = RunConfig.from_file(_config_file(tmp_path, tiny_model_dir, {"counterpart": "scripted"}))
    dataset = InterpretabilityRunner(config).run().dataset
    assert {trial.outcome["counterpart"] for trial in dataset.trials} == {"scripted"}
    callers = {call["caller"].split("#")[0] for trial in dataset.trials for call in trial.calls}
    assert "counterpart.act" not in callers  # no generation call was spent on the other side
    recorded = json.loads((tmp_path / "out" / "config.json").read_text())
    assert recorded["config"]["components"]["scenario"] == {"ultimatum_bluff": {"counterpart": "scripted"}}
    llm = attrs.evolve(config, components={"scenario": {"ultimatum_bluff": {"counterpart": "llm"}}},
                       output=str(tmp_path / "llm"))
    played = InterpretabilityRunner(llm).run().dataset
    assert {trial.outcome["counterpart"] for trial in played.trials} == {"llm"}
    assert "counterpart.act" in {call["caller"].split("#")[0] for trial in played.trials for call in trial.calls}


def test_a_misspelt_scenario_setting_in_a_config_file_exits_2_before_anything_exists(tiny_model_dir,
                                                                                      tmp_path) -> None:
    path = _config_file(tmp_path, tiny_model_dir, {"counterpat": "scripted"})
    result = CliRunner().invoke(cli, ["run", "--config", path])
    assert result.exit_code == 2, result.output
    assert "scenario 'ultimatum_bluff'" in result.output
    assert "Valid keys: counterpart" in result.output
    assert not (tmp_path / "out").exists()
