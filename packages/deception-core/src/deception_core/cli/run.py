"""`deception run`: every flag of the cloud guide, same names, same defaults.

The run's own flags are derived from `RunConfig`'s fields (`deception_core.cli.options`); a
plugin's flags (``--sae-*``, ``--judge-*``, ``--causal-samples``) come from its
``register_run_options`` hook and are mapped into its components' settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import click

from deception_core.base.errors import ConfigError
from deception_core.cli.options import click_options, given_values, with_config_options
from deception_core.config.plugin_options import config_with_options, option_keys
from deception_core.config.run import RunConfig
from deception_core.pipeline import InterpretabilityRunner
from deception_core.plugins import get_plugin_set
from deception_core.ui.console import console_handler


class _RunCommand(click.Command):
    """`deception run`: the run's own options, then those the plugins add (``register_run_options``),
    loaded when the command parses its arguments or shows its help."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        extra = [option for declared in get_plugin_set().run_options() for option in click_options(declared.settings)]
        help_option = self.get_help_option(ctx)
        own = [param for param in params if param is not help_option]
        return [*own, *extra, *([help_option] if help_option is not None else [])]


@with_config_options(RunConfig)
@click.command(cls=_RunCommand)
@click.option("--config", "config_file", default=None,
              help="A JSON or YAML RunConfig (.yaml/.yml); flags given on the command line override it.")
@click.pass_context
def run(ctx: click.Context, /, **flags: object) -> None:
    """Run negotiation trials, capture activations, label, and train probes."""
    config = config_from_command_line(ctx, flags)
    handler = _configure_console(config.verbose)

    try:
        results = InterpretabilityRunner(config).run()
    finally:
        logging.getLogger("deception").removeHandler(handler)
    click.echo(results.summary)
    click.echo(f"wall time {results.wall_seconds:.1f} s; outputs in {Path(config.output).resolve()}")


def config_from_command_line(ctx: click.Context, flags: dict[str, object]) -> RunConfig:
    """``--config`` (if any) overlaid with the flags the user gave, structured and checked in one step.
    The plugins' flags (and their keys in the file, such as ``judge_model``) go into the components'
    settings (`deception_core.config.plugin_options`)."""
    config_file = cast("str | None", flags.pop("config_file"))  # --config: a path or left out
    options = get_plugin_set().run_options()
    given = given_values(RunConfig, ctx, flags)
    for declared in options:
        given.update(given_values(declared.settings, ctx, flags))
    if config_file is None:
        return config_with_options(given, options, source="the command line", given=tuple(given))
    if not config_file.strip():
        raise ConfigError("--config is empty; pass the path of a JSON or YAML config file")
    data, written = RunConfig.file_values(config_file)
    base = config_with_options(data, options, source=config_file, given=())  # bad values in the file named first
    plugin_values = {key: value for key, value in data.items() if key in option_keys(options)}
    return config_with_options({**base.to_dict(), **plugin_values, **given}, options,
                               source=f"--config {config_file} and the command line", given=(*written, *given))


def _configure_console(verbose: bool) -> logging.Handler:
    import logging

    logger = logging.getLogger("deception")
    handler = console_handler(verbose)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler
