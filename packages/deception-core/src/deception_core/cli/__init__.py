"""The `deception` command line."""

from __future__ import annotations

import sys

import click

from deception_core.errors import UsageError


class _Group(click.Group):
    """Turns the toolkit's `UsageError` into a message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsageError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="deception-core", prog_name="deception")
def cli() -> None:
    """Mechanistic interpretability of deception in LLM agents."""


def _register_commands() -> None:
    from deception_core.cli import analyze, bench, checkpoints, listing, merge, run, saes

    cli.add_command(run.run)
    cli.add_command(listing.scenarios)
    cli.add_command(listing.plugins)
    cli.add_command(analyze.analyze)
    cli.add_command(merge.merge)
    cli.add_command(bench.bench)
    cli.add_command(saes.saes)
    cli.add_command(checkpoints.checkpoints)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="deception")
