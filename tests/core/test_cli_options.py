"""`deception run`'s options derive from `RunConfig`: one source for names, types, choices and defaults."""

from __future__ import annotations

import json

import attrs
import click
import pytest
from click.testing import CliRunner

from deception_core.base.errors import ConfigError
from deception_core.base.types import Mode
from deception_core.cli.options import click_options, given_values, with_config_options
from deception_core.cli.run import config_from_command_line
from deception_core.cli.run import run as run_command
from deception_core.config.run import MODES, RunConfig, to_jsonable
from deception_core.config.structuring import cli_option, option, structure, structure_strings


def _options() -> dict[str, click.Option]:
    return {p.name: p for p in run_command.params if isinstance(p, click.Option)}


#: nested settings that only a config file can hold (``{kind: {name: {param: value}}}``)
CONFIG_FILE_ONLY = {"components"}


def test_every_config_field_is_an_option_with_the_config_default() -> None:
    options = _options()
    for field in attrs.fields(RunConfig):
        if field.name in CONFIG_FILE_ONLY:
            assert field.name not in options
            continue
        assert field.name in options, field.name
        shown = options[field.name].default
        default = to_jsonable(field.default)
        if isinstance(default, bool):
            assert shown is False  # a flag; --no-analyze sets analyze (default True) to False
        elif default is None or default == []:
            assert shown in (None, ())
        elif isinstance(default, list):
            assert shown == ",".join(default)
        else:
            assert str(shown) == str(default), field.name


def test_choices_come_from_the_config_and_modes_from_the_mode_enum() -> None:
    options = _options()
    assert tuple(options["mode"].type.choices) == MODES
    assert MODES == ("emergent", "instructed", "both")
    assert set(MODES) - {"both"} == {m.value for m in Mode}
    assert tuple(options["device"].type.choices) == cli_option(attrs.fields_dict(RunConfig)["device"]).choices


def _parse(*args: str) -> RunConfig:
    context = run_command.make_context("run", list(args))
    return config_from_command_line(context, dict(context.params))


def test_only_given_flags_reach_the_config_and_the_class_fills_the_rest() -> None:
    config = _parse("--trials", "5", "--no-analyze", "--scenario-name", "a", "--scenario-name", "b", "-t", "6")
    assert config.trials == 6
    assert config.analyze is False
    assert config.scenario_names == ("a", "b")
    assert config == RunConfig(trials=6, analyze=False, scenario_names=("a", "b"))


def test_flags_override_a_yaml_config_file(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("trials: 4\nfast: yes\nmax_tokens: 16\npositions: [last_prompt]\n")
    config = _parse("--config", str(path), "--max-tokens", "32")
    assert (config.trials, config.fast, config.max_tokens) == (4, True, 32)
    assert [p.value for p in config.positions] == ["last_prompt"]


def test_a_runs_config_json_is_a_valid_config_file(tmp_path) -> None:
    written = {"config": RunConfig(trials=7, layers="1,2", overwrite=True).to_dict(), "resolved": {"layers": [1, 2]}}
    (tmp_path / "config.json").write_text(json.dumps(written))
    # everything but the earlier run's --overwrite, which must be given again to take effect
    assert _parse("--config", str(tmp_path / "config.json")) == RunConfig(trials=7, layers="1,2")


@attrs.frozen(kw_only=True)
class _Extended:
    """A config class as another engineer would extend one: a field is an option."""

    workers: int = option(2, help="Worker processes.")
    batch: int | str = option(1, help="A number, or auto.")
    executor: str = option("local", choices=("local", "ray"))
    dry: bool = option(False, short="-n")
    tag: str | None = option(None, requires="dry")


def test_a_new_field_is_a_new_option_without_touching_the_command() -> None:
    @with_config_options(_Extended)
    @click.command()
    @click.pass_context
    def command(ctx, **params):
        click.echo(json.dumps(attrs.asdict(structure(_Extended, given_values(_Extended, ctx, params)))))

    result = CliRunner().invoke(command, ["--workers", "3", "--executor", "ray", "-n", "--tag", "x", "--batch", "4"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"workers": 3, "batch": 4, "executor": "ray", "dry": True, "tag": "x"}
    auto = CliRunner().invoke(command, ["--batch", "auto"])
    assert json.loads(auto.output)["batch"] == "auto"
    assert "[default: 2]" in CliRunner().invoke(command, ["--help"]).output
    refused = CliRunner().invoke(command, ["--executor", "slurm"])
    assert refused.exit_code == 2
    with pytest.raises(ConfigError, match="--tag takes effect only with --dry"):
        structure(_Extended, {"tag": "x"})


def test_a_hand_written_option_for_a_config_field_still_reaches_the_config() -> None:
    @with_config_options(_Extended)
    @click.command()
    @click.option("--extra-field", "extra", default=None)
    @click.pass_context
    def command(ctx, **params):
        click.echo(json.dumps(given_values(_Extended, ctx, params)))

    result = CliRunner().invoke(command, ["--workers", "5"])
    assert json.loads(result.output) == {"workers": 5}
    assert [o.name for o in click_options(_Extended)] == ["workers", "batch", "executor", "dry", "tag"]


def test_environment_strings_are_parsed_to_the_field_type_then_checked() -> None:
    assert structure_strings(_Extended, {"workers": "4", "dry": "true"}) == _Extended(workers=4, dry=True)
    with pytest.raises(ConfigError, match="workers must be an integer, got 'four'"):
        structure_strings(_Extended, {"workers": "four"})
    with pytest.raises(ConfigError, match="dry must be true or false, got 'maybe'"):
        structure_strings(_Extended, {"dry": "maybe"})
