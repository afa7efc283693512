"""`deception analyze RUN_DIR`: probes (and other analyses) on a stored dataset."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deception_core.analyse import analyse  # the module: tests replace its run_analyses
from deception_core.analyse.analyse import build_analyses
from deception_core.base.errors import UsageError
from deception_core.base.types import JSONObject, JSONValue
from deception_core.capture.reply_states import REPLY_STATES_OPTION, LazyReplyStates, run_model_loader
from deception_core.cli.matrix import check_matrix_request, read_matrix_datasets, write_matrix_outputs
from deception_core.cli.options import refuse_unless
from deception_core.config.plugin_options import config_with_options
from deception_core.config.run import RunConfig
from deception_core.model import fingerprint
from deception_core.outputs.files import label_table
from deception_core.outputs.policy import (
    OutputClaim,
    check_writable,
    dataset_folder_above,
    is_run_folder,
    made_by,
    refuse_inputs,
    refuse_unmarked,
    staged_folder,
)
from deception_core.pipeline.merge import remove_leftover_staging
from deception_core.plugins import get_plugin_set
from deception_core.store.dataset import DatasetError, atomic_write_text, read_dataset, resolve_dataset_dir

if TYPE_CHECKING:
    from deception_core.base.records import AnalysisReport
    from deception_core.store.dataset import Dataset

#: ``.<output name>.staging-<pid>-<random>``: where ``--output`` is built before it is renamed into place
STAGING = "staging"


def _check_output(run_dir: str, output: str | None, overwrite: bool,
                  inputs: list[tuple[str, str | None]]) -> tuple[Path, bool]:
    """Where the results go, and whether that folder is new (then it is built whole and renamed into place).

    ``--overwrite`` replaces only a folder this toolkit marked as its own output, and never one that
    is, or contains, an input of this command (the run, its dataset, ``--train-from``, ``--control``)."""

    if output is None:
        return Path(run_dir), False
    out = Path(output)
    if not output.strip():
        raise UsageError("--output is empty; pass a new folder, or leave --output out to write into RUN_DIR")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--output {out} is a file; pass a new folder, or leave --output out to write into RUN_DIR")
    if out.exists() and out.resolve() == Path(run_dir).resolve():
        return out, False
    inside = dataset_folder_above(out)
    if inside is not None:
        raise UsageError(f"--output {out} is inside the dataset folder {inside}, which holds only the dataset's own "
                         "files; pass a folder outside it")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UsageError(f"--output {out} is not empty{made_by(out)}; pass a new folder, or --overwrite to "
                             "replace its results")
        if not is_run_folder(out):
            raise refuse_unmarked(out, "--output")
        refuse_inputs(out, inputs, "--output")
    check_writable(out, "--output")
    return out, True


def _analysis_components(config_path: str | None) -> dict[str, dict[str, JSONValue]]:
    """``components.analysis`` of a ``--config`` file (read as `deception run` reads it), each
    analysis's settings checked now, before the dataset is read (unknown keys: exit 2)."""
    if config_path is None:
        return {}

    data, written = RunConfig.file_values(config_path)  # the plugins' keys (sae_layer, ...) as `deception run` reads them
    config = config_with_options(data, get_plugin_set().run_options(), source=config_path, given=written)
    components = config.components.get("analysis", {})
    build_analyses(get_plugin_set().registry, {}, components)
    return components


def _same_content(a: Dataset, b: Dataset) -> bool:
    """Two datasets whose files have the same checksums (a copy is the same dataset)."""
    files_a, files_b = a.meta.files, b.meta.files
    return isinstance(files_a, dict) and bool(files_a) and files_a == files_b


def read_other_datasets(run_dir: str, dataset: Dataset, train_from: tuple[str, ...],
                        control: str | None) -> JSONObject:
    """Every ``--train-from`` and ``--control`` dataset, read and checked (checksums, the model's
    fingerprint, not the analysed dataset again, not empty) before anything is written; by path."""

    roles = [("the dataset analysed", run_dir, dataset)]
    loaded: dict[str, Any] = {}
    for flag, path in [*(("--train-from", p) for p in train_from), *((("--control", control),) if control else ())]:
        other = read_dataset(path)
        where = resolve_dataset_dir(path).resolve()
        for role, earlier_path, earlier in roles:
            if resolve_dataset_dir(earlier_path).resolve() == where or _same_content(other, earlier):
                what = "the same folder as" if resolve_dataset_dir(earlier_path).resolve() == where else "a copy of"
                why = ("a threshold set on the samples it then flags measures nothing" if flag == "--control" else
                       "a probe trained and tested on the same samples reports how well it fits them, not how it "
                       "transfers")
                raise UsageError(
                    f"{flag} {path} is {what} {role} ({earlier_path}): {why}. Pass a different dataset; the analysis "
                    "of RUN_DIR already cross-validates within it"
                )
        if len(other) == 0:
            use = ("its scores set the threshold that flags 1% of it" if flag == "--control" else
                   "a probe is trained on it")
            raise UsageError(f"{flag} {path} holds no samples; {use}. Pass a dataset with samples")
        roles.append((f"{flag} {path}", path, other))
        loaded[path] = other
    metas = {path: d.meta.to_json() for _, path, d in roles}
    different = fingerprint.mismatch(metas)
    if different:
        raise UsageError(
            f"the datasets come from different models, though their ids may agree: {different}. A probe reads "
            "one model's activations: capture every dataset with the same model files"
        )
    older = fingerprint.unverified(metas)
    if older and len(roles) > 1:
        click.echo(f"note: {', '.join(older)} record(s) no model fingerprint (written by an older version); only "
                   "the model id, depth and width were compared", err=True)
    return loaded


def _analyses_with_stage_lines(dataset: Dataset, out_dir: Path, options: dict[str, Any],
                               components: Mapping[str, Mapping[str, JSONValue]]) -> dict[str, AnalysisReport]:
    """Run the analyses with one line per stage on stderr (the `deception` logger at INFO)."""
    import logging

    logger = logging.getLogger("deception")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        return analyse.run_analyses(get_plugin_set().registry, dataset, out_dir, options, components)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@click.command()
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True, type=click.Path(file_okay=False))
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
@click.option("--matrix", is_flag=True,
              help="A generalisation matrix over every RUN_DIR given (two or more datasets of one model): train on "
                   "each, evaluate on each; writes a table, a JSON and a heat map into a new --output.")
@click.option("--layer", type=int, default=None,
              help="With --matrix: the layer every probe reads (default: the best by each dataset's validation folds).")
@click.option("--position", default=None,
              help="With --matrix: the position every probe reads, e.g. reply_mean (default: the best by validation "
                   "among the reply positions).")
@click.pass_context
def analyze(ctx: click.Context, run_dirs: tuple[str, ...], output: str | None, overwrite: bool,
            config_path: str | None, seed: int, jobs: int | None, train_from: tuple[str, ...], control: str | None,
            score_tokens: bool, matrix: bool, layer: int | None, position: str | None) -> None:
    """Train and evaluate probes on an existing dataset without regenerating it.

    The dataset's files are checked against the sha256 sums in its meta.json first. A new
    --output folder appears complete or not at all. With --matrix, every RUN_DIR given is a dataset
    of a generalisation matrix (train on each, evaluate on each).
    """
    import os
    import secrets

    refuse_unless(ctx, output is not None, "--output", "overwrite")  # results in RUN_DIR replace nothing of another
    refuse_unless(ctx, matrix, "--matrix", "layer", "position")
    if matrix:
        check_matrix_request(run_dirs, output, train_from, score_tokens)
    elif len(run_dirs) != 1:
        raise UsageError(f"pass one RUN_DIR (got {len(run_dirs)}); for a generalisation matrix over several "
                         "datasets add --matrix")
    run_dir = run_dirs[0]
    inputs: list[tuple[str, str | None]] = [("the run", p) for p in run_dirs]
    inputs += [("--config", config_path), ("--control", control)]
    inputs += [("--train-from", p) for p in train_from]
    for path in run_dirs:
        dataset_dir = _dataset_dir_or_none(path)
        if dataset_dir is not None:
            inputs.append(("the run's dataset", str(dataset_dir)))
    out_dir, new_folder = _check_output(run_dir, output, overwrite, inputs)
    components = _analysis_components(config_path)
    if matrix:
        _analyze_matrix(run_dirs, output, overwrite, inputs, control,
                        {"seed": seed, "jobs": jobs, "layer": layer, "position": position}, components)
        return
    for extra in (run_dir, *train_from, *([control] if control else [])):
        resolve_dataset_dir(extra)  # a wrong path fails here, before any work
    click.echo(f"reading the dataset in {run_dir}", err=True)
    dataset = read_dataset(run_dir)  # a damaged dataset is refused before anything is touched
    # every other dataset verified before the analysis writes anything (in RUN_DIR, or a staging folder)
    others = read_other_datasets(run_dir, dataset, train_from, control)
    reply_states = None
    if score_tokens:  # the model is checked (not loaded) now; it loads when a reply's tokens are needed

        reply_states = LazyReplyStates(run_model_loader(Path(run_dir), dataset))
    target = out_dir
    with OutputClaim(target, "analyze", "--output" if new_folder else "RUN_DIR"):
        out_dir, new_folder = _check_output(run_dir, output, overwrite, inputs)  # again, under the claim
        if new_folder:
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            remove_leftover_staging(out_dir, STAGING)  # left by a killed analyze into the same place
            out_dir = out_dir.with_name(f".{out_dir.name}.{STAGING}-{os.getpid()}-{secrets.token_hex(4)}")
            os.mkdir(out_dir, 0o777)
        options: dict[str, Any] = {"seed": seed, "jobs": jobs, "train_from": list(train_from), "control": control,
                                   "datasets": others}
        if reply_states is not None:
            options[REPLY_STATES_OPTION] = reply_states
        with staged_folder(out_dir if new_folder else None, target, "analyze"):
            reports = _analyses_with_stage_lines(dataset, out_dir, options, components)
            text = "\n".join([label_table(dataset)] + [f"\n[{n}]\n{r.table}" for n, r in reports.items()])
            atomic_write_text(out_dir / "analysis_summary.txt", text + "\n")
    click.echo(text)


def _analyze_matrix(run_dirs: tuple[str, ...], output: str | None, overwrite: bool, inputs: list[tuple[str, str | None]],
                    control: str | None, options: dict[str, Any], components: Mapping[str, Mapping[str, JSONValue]]
                    ) -> None:
    """`deception analyze --matrix`: every dataset read and checked, then the matrix built in a staging
    folder and renamed into ``--output``."""
    import os
    import secrets

    datasets, control_set = read_matrix_datasets(run_dirs, control)
    assert output is not None  # check_matrix_request
    target = Path(output)
    with OutputClaim(target, "analyze", "--output"):
        out_dir, new_folder = _check_output(run_dirs[0], output, overwrite, inputs)  # again, under the claim
        if new_folder:
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            remove_leftover_staging(out_dir, STAGING)
            out_dir = out_dir.with_name(f".{out_dir.name}.{STAGING}-{os.getpid()}-{secrets.token_hex(4)}")
            os.mkdir(out_dir, 0o777)
        text = write_matrix_outputs(datasets, control_set, out_dir, new_folder, target, options, components)
    click.echo(text)


def _dataset_dir_or_none(run_dir: str) -> Path | None:
    try:
        return resolve_dataset_dir(run_dir)
    except DatasetError:
        return None  # read_dataset says what is wrong, later
