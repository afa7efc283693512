"""The `deception` command line."""

from __future__ import annotations

import sys
from typing import Any

import click

from deception_core.base.errors import NotApplied, UsageError
from deception_core.cli import analyze, bench, capture, checkpoints, listing, merge, report, run, saes
from deception_core.outputs.policy import WriteFailed, describe_os_error, is_write_error
from deception_core.plugins import PluginLoadWarning, get_plugin_set


class _Group(click.Group):
    """Turns the toolkit's errors into a message and an exit code, never a traceback.

    Exit codes: 2 for bad input (`UsageError`); 1 when writing the outputs failed (disk full, no
    permission, I/O error: `WriteFailed`, or such an `OSError` from any command), or when a command
    refused to apply its result and kept the earlier one (`NotApplied`).
    """

    _plugin_commands_added = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:  # the core's own commands need no plugin loaded
            self._add_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)

    def _add_plugin_commands(self) -> None:
        """The commands plugins add through ``register_commands``, once; one whose name is taken is
        skipped with a warning naming it."""
        if self._plugin_commands_added:
            return
        self._plugin_commands_added = True
        import warnings

        added = click.Group(name=self.name)
        get_plugin_set().manager.hook.register_commands(cli=added)
        for name, command in added.commands.items():
            if name in self.commands:
                warnings.warn(f"a plugin's command {name!r} is skipped: `deception {name}` already exists",
                              PluginLoadWarning, stacklevel=2)
                continue
            self.add_command(command, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(2)
        except NotApplied as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(NotApplied.exit_code)
        except WriteFailed as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(WriteFailed.exit_code)
        except OSError as error:
            if not is_write_error(error):
                raise
            click.echo(f"Error: {describe_os_error(error)}; nothing half-written was left", err=True)
            ctx.exit(WriteFailed.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deception-core", prog_name="deception")
def cli() -> None:
    """Mechanistic interpretability of deception in LLM agents."""


def _register_commands() -> None:
    cli.add_command(run.run)
    cli.add_command(listing.scenarios)
    cli.add_command(listing.plugins)
    cli.add_command(analyze.analyze)
    cli.add_command(merge.merge)
    cli.add_command(bench.bench)
    cli.add_command(report.report)
    cli.add_command(report.export)
    cli.add_command(report.relabel)
    cli.add_command(capture.capture)
    cli.add_command(saes.saes)
    cli.add_command(checkpoints.checkpoints)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="deception")
