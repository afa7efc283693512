"""`deception analyze RUN_DIR`: probes (and other analyses) on a stored dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _check_output(run_dir: str, output: str | None, overwrite: bool) -> tuple[Path, bool]:
    """Where the results go, and whether that folder is new (then it is built whole and renamed into place)."""
    from deception_core.errors import UsageError
    from deception_core.runner.validate import check_writable

    if output is None:
        return Path(run_dir), False
    out = Path(output)
    if not output.strip():
        raise UsageError("--output is empty; pass a new folder, or leave --output out to write into RUN_DIR")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out} is a file; pass a new folder, or leave --output out to write into RUN_DIR")
    if out.exists() and out.resolve() == Path(run_dir).resolve():
        return out, False
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UsageError(f"--output {out} is not empty; pass a new folder, or --overwrite to replace its results")
    check_writable(out, "--output")
    return out, True


def _analysis_components(config_path: str | None) -> dict[str, dict[str, Any]]:
    """``components.analysis`` of a ``--config`` file (read as `deception run` reads it), each
    analysis's settings checked now, before the dataset is read (unknown keys: exit 2)."""
    if config_path is None:
        return {}
    from deception_core.config import RunConfig
    from deception_core.plugins import get_plugin_set
    from deception_core.runner.analyse import build_analyses

    components = RunConfig.from_file(config_path).components.get("analysis", {})
    build_analyses(get_plugin_set().registry, {}, components)
    return components


def _analyses_with_stage_lines(dataset: Any, out_dir: Path, options: dict[str, Any],
                               components: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Run the analyses with one line per stage on stderr (the `deception` logger at INFO)."""
    import logging

    from deception_core.plugins import get_plugin_set
    from deception_core.runner.analyse import run_analyses

    logger = logging.getLogger("deception")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        return run_analyses(get_plugin_set().registry, dataset, out_dir, options, components)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--output", "-o", default=None, help="Where to write results (default: RUN_DIR); a new folder.")
@click.option("--overwrite", is_flag=True, help="Replace earlier results in a non-empty --output.")
@click.option("--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="A run config file (JSON or YAML); its components.analysis settings reach the analyses, "
                   "e.g. {\"components\": {\"analysis\": {\"probes\": {\"n_folds\": 3}}}}.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Processes for the probe analysis (default: every core, one for small data); results do not depend on it.")
@click.option("--train-from", "train_from", multiple=True, type=click.Path(file_okay=False),
              help="Also train probes on this dataset (repeatable) and evaluate them on RUN_DIR and each other.")
@click.option("--control", default=None, type=click.Path(file_okay=False),
              help="A benign control dataset: thresholds flag 1% of it (recall and honest samples flagged there, "
                   "and the score scale's 1 mark).")
@click.option("--score-tokens", is_flag=True,
              help="Load the run's model and score every reply token with the best probe by one teacher-forced "
                   "pass over the stored prompt and reply ids (not needed where the dataset stored reply_all).")
def analyze(run_dir: str, output: str | None, overwrite: bool, config_path: str | None, seed: int,
            jobs: int | None, train_from: tuple[str, ...], control: str | None, score_tokens: bool) -> None:
    """Train and evaluate probes on an existing dataset without regenerating it.

    The dataset's files are checked against the sha256 sums in its meta.json first. A new
    --output folder appears complete or not at all.
    """
    import os
    import secrets
    import shutil

    from deception_core.dataset.store import atomic_write_text, read_dataset, replace_directory, resolve_dataset_dir
    from deception_core.runner.outputs import label_table

    out_dir, new_folder = _check_output(run_dir, output, overwrite)
    components = _analysis_components(config_path)
    for extra in (*train_from, *([control] if control else [])):
        resolve_dataset_dir(extra)  # a wrong path fails here, before any work
    click.echo(f"reading the dataset in {run_dir}", err=True)
    dataset = read_dataset(run_dir)
    options: dict[str, Any] = {"seed": seed, "jobs": jobs, "train_from": list(train_from), "control": control}
    if score_tokens:
        from deception_core.capture.reply_states import REPLY_STATES_OPTION, LazyReplyStates, run_model_loader

        options[REPLY_STATES_OPTION] = LazyReplyStates(run_model_loader(Path(run_dir), dataset))
    target = out_dir
    if new_folder:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        out_dir = out_dir.with_name(f".{out_dir.name}.staging-{os.getpid()}-{secrets.token_hex(4)}")
        os.mkdir(out_dir, 0o777)
    try:
        reports = _analyses_with_stage_lines(dataset, out_dir, options, components)
        text = "\n".join([label_table(dataset)] + [f"\n[{n}]\n{r.table}" for n, r in reports.items()])
        atomic_write_text(out_dir / "analysis_summary.txt", text + "\n")
        if new_folder:
            replace_directory(out_dir, target)
    except BaseException:
        if new_folder:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    click.echo(text)
