"""`deception run`: every flag of the cloud guide, same names, same defaults.

The flags are derived from `RunConfig`'s fields (`deception_core.cli.options`); add an option there.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from deception_core.base.errors import ConfigError
from deception_core.cli.options import given_values, with_config_options
from deception_core.config.run import RunConfig
from deception_core.pipeline import InterpretabilityRunner
from deception_core.ui.console import console_handler


@with_config_options(RunConfig)
@click.command()
@click.option("--config", "config_file", default=None,
              help="A JSON or YAML RunConfig (.yaml/.yml); flags given on the command line override it.")
@click.pass_context
def run(ctx: click.Context, /, **flags: Any) -> None:
    """Run negotiation trials, capture activations, label, and train probes."""
    config = config_from_command_line(ctx, flags)
    handler = _configure_console(config.verbose)

    try:
        results = InterpretabilityRunner(config).run()
    finally:
        logging.getLogger("deception").removeHandler(handler)
    click.echo(results.summary)
    click.echo(f"wall time {results.wall_seconds:.1f} s; outputs in {Path(config.output).resolve()}")


def config_from_command_line(ctx: click.Context, flags: dict[str, Any]) -> RunConfig:
    """``--config`` (if any) overlaid with the flags the user gave, structured and checked in one step."""
    config_file = flags.pop("config_file")
    given = given_values(RunConfig, ctx, flags)
    if config_file is None:
        return RunConfig.from_dict(given, source="the command line", given=tuple(given))
    if not config_file.strip():
        raise ConfigError("--config is empty; pass the path of a JSON or YAML config file")
    data, written = RunConfig.file_values(config_file)
    base = RunConfig.from_dict(data, source=config_file, given=())  # bad values in the file named first
    return RunConfig.from_dict({**base.to_dict(), **given}, source=f"--config {config_file} and the command line",
                               given=(*written, *given))


def _configure_console(verbose: bool):
    import logging

    logger = logging.getLogger("deception")
    handler = console_handler(verbose)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler
