"""`deception merge OUT RUN_DIR...`: combine the datasets of several pods."""

from __future__ import annotations

from pathlib import Path

import click

from deception_core.pipeline.merge import merge_runs


@click.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--allow-difference", "allow", multiple=True, metavar="FIELD",
              help="Merge even though the runs differ in this result-changing setting (e.g. seed); repeatable.")
@click.option("--overwrite", is_flag=True, help="Replace the results of an earlier merge or run in a non-empty OUT.")
def merge(out: str, run_dirs: tuple[str, ...], allow: tuple[str, ...], overwrite: bool) -> None:
    """Merge the datasets of runs that played different scenarios, modes or shards.

    Refuses runs with a different model, revision, dtype, layers, positions, capture backend,
    SAE or dataset schema, and trials present in more than one run. OUT then holds a dataset that
    `deception analyze OUT` reads. OUT must be new or empty (or --overwrite); it appears complete
    or not at all.
    """

    merge_runs(out, run_dirs, allow, overwrite=overwrite)
    click.echo((Path(out) / "summary.txt").read_text(), nl=False)
