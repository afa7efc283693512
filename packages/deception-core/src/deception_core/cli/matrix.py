"""`deception analyze --matrix DS1 DS2 ... --output DIR`: the generalisation matrix over several datasets.

Every dataset is read and verified (checksums), and the set is checked (one model by id and
fingerprint, no dataset given twice, none empty) before any training or writing; bad input exits 2
with nothing written. The results appear in ``--output`` whole or not at all (built in a staging
folder beside it, then renamed into place), as for `deception analyze --output`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from deception_core.analyse import analyse
from deception_core.base.errors import UsageError
from deception_core.base.types import JSONValue
from deception_core.model import fingerprint
from deception_core.outputs.policy import staged_folder
from deception_core.plugins import get_plugin_set
from deception_core.store.dataset import read_dataset, resolve_dataset_dir

if TYPE_CHECKING:
    from deception_core.store.dataset import Dataset

def _model_id(dataset: Dataset) -> object:
    model = dataset.meta.model
    return model.get("id") if isinstance(model, dict) else model


def read_matrix_datasets(paths: tuple[str, ...], control: str | None) -> tuple[dict[str, Dataset], Dataset | None]:
    """The datasets by the path given, and the control set: each read and verified, the set checked
    to come from one model, none given twice (the same folder or a copy), none empty."""

    for path in (*paths, *([control] if control else [])):
        resolve_dataset_dir(path)  # a wrong path fails here, before any dataset is read
    seen: dict[Path, str] = {}
    named: dict[str, Dataset] = {}
    for path in (*paths, *([control] if control else [])):
        where = resolve_dataset_dir(path).resolve()
        if where in seen:
            raise UsageError(f"{path} and {seen[where]} are the same dataset ({where}); pass each dataset once")
        seen[where] = path
        dataset = read_dataset(path)
        for other_path, other in named.items():
            files = dataset.meta.files
            if isinstance(files, dict) and files and files == other.meta.files:
                raise UsageError(f"{path} is a copy of {other_path} (the same files); pass each dataset once")
        if len(dataset) == 0:
            raise UsageError(f"{path} holds no samples; pass datasets with samples")
        named[path] = dataset
    ids = {path: str(_model_id(d)) for path, d in named.items()}
    if len(set(ids.values())) > 1:
        listing = ", ".join(f"{p}: {m}" for p, m in ids.items())
        raise UsageError(f"the datasets come from different models ({listing}); a probe reads one model's "
                         "activations: capture every dataset with the same --model")
    different = fingerprint.mismatch({path: d.meta.to_json() for path, d in named.items()})
    if different:
        raise UsageError(f"the datasets come from different models, though their ids may agree: {different}. A probe "
                         "reads one model's activations: capture every dataset with the same model files")
    older = fingerprint.unverified({path: d.meta.to_json() for path, d in named.items()})
    if older:
        click.echo(f"note: {', '.join(older)} record(s) no model fingerprint (written by an older version); only "
                   "the model id, depth and width were compared", err=True)
    control_set = named.pop(control) if control else None
    return named, control_set


def check_matrix_request(paths: tuple[str, ...], output: str | None, train_from: tuple[str, ...],
                         score_tokens: bool) -> None:
    """The flags `--matrix` takes: two datasets or more and a new ``--output``; not --train-from or --score-tokens."""
    if len(paths) < 2:
        raise UsageError(f"--matrix needs two datasets or more (got {len(paths)}); pass DS1 DS2 ...")
    if output is None:
        raise UsageError("--matrix writes into a new folder: pass --output DIR (the matrix belongs to no one dataset)")
    inside = [p for p in paths if Path(p).resolve() == Path(output).resolve()]
    if inside:
        raise UsageError(f"--output {output} is the dataset {inside[0]}; pass a new folder for the matrix")
    if train_from:
        raise UsageError("--matrix trains on every dataset it is given; pass the --train-from datasets as DS arguments")
    if score_tokens:
        raise UsageError("--score-tokens scores one run's reply tokens; it does not apply to --matrix")


def write_matrix_outputs(datasets: Mapping[str, Dataset], control: Dataset | None, out_dir: Path, new_folder: bool,
                         target: Path, options: dict[str, Any],
                         components: Mapping[str, Mapping[str, JSONValue]]) -> str:
    """Run every matrix analysis into ``out_dir`` (a staging folder when ``new_folder``) and move it into
    ``target``; returns the printed text."""
    analyses = analyse.matrix_analyses(get_plugin_set().registry, options, components)
    if not analyses:
        raise UsageError("no registered analysis computes a generalisation matrix; install deception-probes")
    with staged_folder(out_dir if new_folder else None, target, "analyze"):
        reports = analyse.run_matrix(analyses, datasets, control, out_dir, options)
        text = "\n".join(f"[{name}]\n{report.table}" for name, report in reports.items())
    return text
