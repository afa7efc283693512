"""Plugins own their settings: their flags are mapped into their components' settings, and they may add commands.

The cloud guide's flags (``--sae``, ``--sae-layer``, ``--causal-samples``, ``--judge-model``, ...)
are no longer `RunConfig` fields; the plugin that owns each declares it through
``register_run_options``. They keep their names and defaults, ``deception run --help`` lists them,
and a config file with the old keys keeps working.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import attrs
import click
import pytest
from click.testing import CliRunner

from deception_core import plugins as plugin_module
from deception_core.base.errors import ConfigError, PluginError
from deception_core.cli import cli
from deception_core.cli.run import config_from_command_line, run
from deception_core.config.plugin_options import ComponentParams, RunOptions
from deception_core.config.run import RunConfig
from deception_core.config.structuring import option
from deception_core.contracts.hookspecs import hookimpl
from deception_core.plugins import build_plugin_set

CAUSAL_TESTS = ("patching", "ablation", "steering", "faithfulness")


def from_command_line(*args: str) -> RunConfig:
    ctx = run.make_context("run", list(args))
    return config_from_command_line(ctx, dict(ctx.params))


def help_text() -> str:
    result = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("flag", "default"), [
    ("--sae", None), ("--sae-layer", "12"), ("--sae-release", None), ("--sae-id", None), ("--sae-path", None),
    ("--causal", None), ("--causal-samples", "20"), ("--evaluator", "local"), ("--judge-model", None),
    ("--judge-url", None),
])
def test_run_help_lists_the_guides_plugin_flags_with_their_defaults(flag, default) -> None:
    lines = [line for line in help_text().splitlines() if line.strip().startswith(flag + " ")
             or line.strip() == flag]
    assert len(lines) == 1
    if default is not None:
        assert f"[default: {default}]" in lines[0]


def test_run_help_shows_what_a_plugin_flag_needs() -> None:
    line = next(line for line in help_text().splitlines() if line.strip().startswith("--causal-samples "))
    assert "(with --causal)" in line


def test_no_plugin_setting_is_a_run_config_field() -> None:
    names = {field.name for field in attrs.fields(RunConfig)}
    assert not {n for n in names if n.startswith(("judge_", "sae", "causal_"))}


def test_the_judge_flags_fill_the_chosen_judges_settings() -> None:
    config = from_command_line("--evaluator", "together", "--judge-model", "m-1", "--judge-url", "https://j.example")
    assert config.components == {"evaluator": {"together": {"model": "m-1", "base_url": "https://j.example"}}}


def test_the_sae_flags_fill_the_sae_components_settings() -> None:
    config = from_command_line("--sae", "--sae-layer", "20", "--sae-path", "/data/sae")
    assert config.components == {"sae": {"sae-lens": {"layer": 20, "path": "/data/sae"}}}


def test_sae_alone_takes_the_sae_settings_defaults() -> None:
    from deception_core.config.sae import SaeSettings, sae_settings

    assert sae_settings(from_command_line("--sae").components) == SaeSettings(layer=12)


def test_causal_samples_fills_every_causal_tests_samples() -> None:
    config = from_command_line("--causal", "--causal-samples", "30")
    assert config.components == {"causal_test": {name: {"samples": 30} for name in CAUSAL_TESTS}}


def test_the_causal_tests_default_to_the_guides_twenty_samples() -> None:
    from deception_causal.common import CausalSettings

    assert CausalSettings().samples == 20


def test_flags_left_out_set_nothing() -> None:
    assert from_command_line("--trials", "2").components == {}


def test_a_flag_overrides_the_same_setting_in_a_config_file(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"components": {"sae": {"sae-lens": {"layer": 5, "release": "r"}}}}))
    config = from_command_line("--config", str(path), "--sae", "--sae-layer", "7")
    assert config.components == {"sae": {"sae-lens": {"layer": 7, "release": "r"}}}


OLD_FILE = {"evaluator": "together", "judge_model": "m-1", "judge_url": "https://j.example", "sae": True,
            "sae_layer": 20, "sae_path": "/data/sae", "causal": True, "causal_samples": 30}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_config_file_with_the_old_keys_keeps_working(tmp_path, suffix) -> None:
    import yaml

    path = tmp_path / f"old{suffix}"
    path.write_text(json.dumps(OLD_FILE) if suffix == ".json" else yaml.safe_dump(OLD_FILE))
    from_file = from_command_line("--config", str(path))
    from_flags = from_command_line("--evaluator", "together", "--judge-model", "m-1", "--judge-url",
                                   "https://j.example", "--sae", "--sae-layer", "20", "--sae-path", "/data/sae",
                                   "--causal", "--causal-samples", "30")
    assert from_file == from_flags


def test_an_earlier_runs_config_json_with_the_old_keys_is_accepted(tmp_path) -> None:
    """A run's config.json written before the settings moved lists every old key at its value."""
    recorded = {**RunConfig(trials=2).to_dict(), "sae": False, "sae_layer": 12, "sae_release": None, "sae_id": None,
                "sae_path": None, "causal_samples": 20, "judge_model": None, "judge_url": None}
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"config": recorded, "resolved": {}}))
    config = from_command_line("--config", str(path))
    assert config == RunConfig(trials=2)


def test_an_old_key_in_a_file_is_checked_like_its_flag(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("sae_layer: 3\n")
    with pytest.raises(ConfigError, match="--sae-layer takes effect only with --sae"):
        from_command_line("--config", str(path))


@pytest.mark.parametrize(("key", "place"), [
    ("judge_model", "components={'evaluator': {EVALUATOR: {'model': ...}}}"),
    ("sae_layer", "components={'sae': {'sae-lens': {'layer': ...}}}"),
    ("causal_samples", "components={'causal_test': {TEST: {'samples': ...}}}"),
])
def test_an_old_key_in_python_names_its_new_place(key, place) -> None:
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_dict({key: 3})
    assert place in str(caught.value)
    assert "still takes them as flags" in str(caught.value)


def test_an_old_key_in_a_config_file_is_refused_by_python_with_its_new_place(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"judge_model": "m-1"}))
    with pytest.raises(ConfigError, match=r"judge_model in .*c\.json moved into the components' settings"):
        RunConfig.from_file(path)


# -- third-party plugins: their own flags and commands -----------------------------------------------


@attrs.frozen(kw_only=True)
class _TemperatureFlags:
    judge_temperature: float = option(0.0, help="The extra judge's sampling temperature.")


def _temperature(flags: _TemperatureFlags, set_keys: frozenset[str], config: RunConfig) -> ComponentParams:
    return {"evaluator": {config.evaluator: {"temperature": flags.judge_temperature}}} if set_keys else {}


class _ExtraPlugin:
    @hookimpl
    def register_run_options(self) -> RunOptions[Any]:
        return RunOptions("extra", _TemperatureFlags, _temperature)

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command(name="hello")
        def hello() -> None:
            """Say hello."""
            click.echo("hello from a plugin")

        @cli.command(name="run")
        def shadow() -> None:
            """Would shadow deception run."""


@pytest.fixture()
def extra_plugin(monkeypatch):
    monkeypatch.setattr(plugin_module, "_CACHED", build_plugin_set(extra_plugins={"extra": _ExtraPlugin()}))
    cli.forget_plugin_commands()
    yield
    cli.forget_plugin_commands()


def test_a_plugin_adds_a_flag_to_deception_run(extra_plugin) -> None:
    assert "--judge-temperature" in help_text()
    config = from_command_line("--judge-temperature", "0.5")
    assert config.components == {"evaluator": {"local": {"temperature": 0.5}}}


def test_a_plugin_flag_that_clashes_is_refused_naming_both(monkeypatch) -> None:
    class Clash:
        @hookimpl
        def register_run_options(self) -> RunOptions[Any]:
            return RunOptions("clash", _SaeLayerAgain, lambda flags, keys, config: {})

    plugin_set = build_plugin_set(extra_plugins={"clash": Clash()})
    with pytest.raises(PluginError, match=r"option 'sae_layer' of clash is already an option of deception-core"):
        plugin_set.run_options()


@attrs.frozen(kw_only=True)
class _SaeLayerAgain:
    sae_layer: int = option(3)


def test_a_plugin_adds_a_command_to_deception(extra_plugin) -> None:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result = CliRunner().invoke(cli, ["hello"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello from a plugin\n"


def test_a_plugin_command_never_replaces_a_core_command(extra_plugin) -> None:
    with pytest.warns(plugin_module.PluginLoadWarning, match="command 'run' is skipped"):
        CliRunner().invoke(cli, ["--help"])
    assert cli.get_command(click.Context(cli), "run") is run


def test_the_core_runs_its_own_commands_without_loading_plugin_commands(extra_plugin) -> None:
    CliRunner().invoke(cli, ["scenarios", "--help"])
    assert cli._plugin_commands is None


def test_the_python_tutorials_example_of_plugin_settings_builds() -> None:
    import re

    from deception_core.config.sae import sae_settings

    page = (Path(__file__).resolve().parents[2] / "docs/tutorials/python-research.md").read_text()
    blocks = re.findall(r"```python\n(.*?)\n```", page, flags=re.S)
    block = next(b for b in blocks if b.startswith("RunConfig(") and "components=" in b)
    config = eval(block, {"RunConfig": RunConfig})  # one expression: the config
    assert sae_settings(config.components).layer == 12
    assert config.components["causal_test"] == {"steering": {"samples": 30}}


def test_analyze_reads_an_old_config_file_as_run_does(tmp_path) -> None:
    from deception_core.cli.analyze import _analysis_components

    path = tmp_path / "config.json"
    path.write_text(json.dumps({**OLD_FILE, "components": {"analysis": {"probes": {"n_folds": 3}}}}))
    assert _analysis_components(str(path)) == {"probes": {"n_folds": 3}}
