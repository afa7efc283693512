"""`deception merge OUT RUN_DIR...`: combine the datasets of several pods."""

from __future__ import annotations

import click

from deception_core.errors import UsageError


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
def merge(out: str, run_dirs: tuple[str, ...]) -> None:
    """Merge the datasets of runs that played different scenarios or shards."""
    raise UsageError("deception merge is not available yet in this version of deception")
