"""`deception analyze RUN_DIR`: probes (and other analyses) on a stored dataset."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--output", "-o", default=None, help="Where to write results (default: RUN_DIR).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Processes for the probe analysis (default: every core, one for small data); results do not depend on it.")
@click.option("--train-from", "train_from", multiple=True, type=click.Path(file_okay=False),
              help="Also train probes on this dataset (repeatable) and evaluate them on RUN_DIR and each other.")
@click.option("--control", default=None, type=click.Path(file_okay=False),
              help="A benign control dataset: thresholds flag 1% of it (recall and honest samples flagged there).")
def analyze(run_dir: str, output: str | None, seed: int, jobs: int | None, train_from: tuple[str, ...],
            control: str | None) -> None:
    """Train and evaluate probes on an existing dataset without regenerating it."""
    from deception_core.dataset.store import atomic_write_text, read_dataset, resolve_dataset_dir
    from deception_core.plugins import get_plugin_set
    from deception_core.runner.analyse import run_analyses
    from deception_core.runner.outputs import label_table

    for extra in (*train_from, *([control] if control else [])):
        resolve_dataset_dir(extra)  # a wrong path fails here, before any work
    dataset = read_dataset(run_dir)
    out_dir = Path(output or run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {"seed": seed, "jobs": jobs, "train_from": list(train_from), "control": control}
    reports = run_analyses(get_plugin_set().registry, dataset, out_dir, options)
    text = "\n".join([label_table(dataset)] + [f"\n[{n}]\n{r['table']}" for n, r in reports.items()])
    atomic_write_text(out_dir / "analysis_summary.txt", text + "\n")
    click.echo(text)
