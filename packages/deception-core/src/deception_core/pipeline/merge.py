"""Combine the datasets of several pods (different ``--scenario-name``s or ``--shard``s) into one.

Datasets are only combined when they measure the same thing: the same model (id, revision,
dtype, depth, width), layers, positions, capture backend, SAE, dataset schema, and the same
result-changing settings (``max_tokens``, ``seed``, ``temperature`` ...; a difference can be
accepted explicitly with ``allow_differences``). A trial present in two inputs is refused, never
silently kept twice or dropped.

Rows follow the *canonical order* that `InterpretabilityRunner` also uses: trials sorted by their
trial key (``scenario/mode/condition/index``, the index zero-padded), and within a trial the samples
in the order they were spoken. So merging the runs of two scenarios gives the same dataset, row for
row, as one run over both scenarios with the same seed.

Only JSON and safetensors are read: nothing from another machine is ever unpickled.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import numpy as np

from deception_core.base.records import Sample, Trial
from deception_core.base.types import JSONObject, JSONValue
from deception_core.config.resolved import RESULT_FIELDS
from deception_core.model import fingerprint
from deception_core.outputs import files as outputs  # the module: the torch export is replaced in tests
from deception_core.outputs.files import directory_size, label_table
from deception_core.outputs.policy import (
    OutputClaim,
    check_writable,
    is_run_folder,
    made_by,
    process_alive,
    refuse_inputs,
    refuse_unmarked,
    staged_folder,
)
from deception_core.store.dataset import (
    META_FILE,
    REPLY_ALL,
    SCHEMA_VERSION,
    Dataset,
    DatasetError,
    atomic_write_text,
    read_dataset,
    resolve_dataset_dir,
    write_dataset,
)
from deception_core.ui.progress import ProgressBar, progress_bar

log = logging.getLogger("deception")

#: ``meta["model"]`` fields that must agree
MODEL_FIELDS = ("id", "revision", "dtype", "n_layers", "d_model")
#: result-config fields checked elsewhere (resolved values) or that only choose which trials ran
NOT_COMPARED = ("model", "revision", "dtype", "layers", "positions", "mode")


def canonical_order(trial_keys: Iterable[str]) -> list[str]:
    """The order of trials in every dataset the toolkit writes: sorted by trial key."""
    return sorted(trial_keys)


def _describe(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _refuse_mismatch(what: str, values: Sequence[object], sources: Sequence[str], fix: str) -> None:
    listing = "; ".join(f"{src}: {_describe(v)}" for src, v in zip(sources, values, strict=True))
    raise DatasetError(f"cannot merge: the runs differ in {what} ({listing}). {fix}")


def check_compatible(
    datasets: Sequence[Dataset], sources: Sequence[str], allow_differences: Iterable[str] = ()
) -> dict[str, list[JSONValue]]:
    """Raise `DatasetError` unless the datasets can be merged; return the allowed differences."""
    allow = set(allow_differences)
    fix = "Merge only runs made with the same --model, --revision, --dtype, --layers and --positions."

    def same(what: str, values: Sequence[object], hint: str = fix) -> None:
        if any(_describe(v) != _describe(values[0]) for v in values[1:]):
            _refuse_mismatch(what, values, sources, hint)

    same("dataset schema version", [d.meta.schema_version for d in datasets],
         f"Re-create the older dataset with this toolkit (schema version {SCHEMA_VERSION}).")
    for field in MODEL_FIELDS:
        same(f"model {field}", [d.meta.model.get(field) for d in datasets])

    metas = {source: d.meta.to_json() for source, d in zip(sources, datasets, strict=True)}
    different = fingerprint.mismatch(metas)
    if different:
        raise DatasetError(f"cannot merge: the runs come from different models, though their ids may agree: "
                           f"{different}. Merge only datasets captured with the same model files")
    older = fingerprint.unverified(metas)
    if older and len(older) < len(metas):
        log.warning("%s record no model fingerprint (written by an older version): only the model id, depth and "
                    "width were compared; the merged dataset records no fingerprint", ", ".join(older))
    same("layers", [list(d.meta.layers) for d in datasets])
    same("positions", [list(d.meta.positions) for d in datasets])
    same("capture backend", [d.meta.capture_backend for d in datasets],
         "Merge only runs made with the same capture backend (--capture-backend / --hybrid).")
    same("SAE", [d.meta.sae for d in datasets], "Merge only runs made with the same --sae settings.")
    same("array names", [sorted(d.arrays) for d in datasets],
         "The runs stored different arrays; merge only runs made with the same options.")
    differences: dict[str, list[JSONValue]] = {}
    configs = [d.meta.result_config or {} for d in datasets]
    for field in sorted(set().union(*configs) - set(NOT_COMPARED)):
        values = [c.get(field) for c in configs]
        if all(_describe(v) == _describe(values[0]) for v in values[1:]):
            continue
        if field not in allow:
            _refuse_mismatch(
                f"--{field.replace('_', '-')} (changes results)", values, sources,
                f"Re-run with matching settings, or pass --allow-difference {field} to merge anyway.",
            )
        distinct: list[JSONValue] = []
        for v in values:
            if v not in distinct:
                distinct.append(v)
        differences[field] = distinct
    owner: dict[str, str] = {}
    clashes: list[str] = []
    for dataset, source in zip(datasets, sources, strict=True):
        for key in _trial_keys(dataset):
            if key in owner:
                clashes.append(f"{key} ({owner[key]} and {source})")
            owner[key] = source
    if clashes:
        shown = ", ".join(clashes[:5]) + (f" and {len(clashes) - 5} more" if len(clashes) > 5 else "")
        raise DatasetError(
            f"cannot merge: {len(clashes)} trial(s) appear in more than one run: {shown}. Each pod must play "
            "different trials (different --scenario-name, --mode or --shard I/N); do not pass a run twice"
        )
    return differences


def _trial_keys(dataset: Dataset) -> list[str]:
    keys = dict.fromkeys(t.trial_key for t in dataset.trials)
    keys.update(dict.fromkeys(s.trial_key for s in dataset.samples))
    return list(keys)


def _array_layout(dataset: Dataset, source: str) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """Split array names into ragged groups (name -> members), reply-token arrays and per-sample arrays."""
    ragged: dict[str, list[str]] = {k[: -len("/offsets")]: [] for k in dataset.arrays if k.endswith("/offsets")}
    tokens, rows = [], []
    for key in dataset.arrays:
        group = next((g for g in ragged if key.startswith(g + "/")), None)
        if group is not None:
            if key != f"{group}/offsets":
                ragged[group].append(key)
        elif key.endswith("/" + REPLY_ALL):
            tokens.append(key)
        elif dataset.arrays[key].shape[:1] == (len(dataset),):
            rows.append(key)
        else:
            raise DatasetError(
                f"cannot merge {source}: array {key!r} has {dataset.arrays[key].shape[0]} rows for "
                f"{len(dataset)} samples and is of no known layout; the dataset is corrupt or from a newer toolkit"
            )
    return ragged, tokens, rows


def merge_datasets(datasets: Sequence[Dataset], sources: Sequence[str], allow_differences: Iterable[str] = ()) -> Dataset:
    """One dataset holding every trial of ``datasets``, in canonical order (inputs are not modified)."""
    if not datasets:
        raise DatasetError("nothing to merge: pass at least one run directory")
    differences = check_compatible(datasets, sources, allow_differences)
    layouts = [_array_layout(d, s) for d, s in zip(datasets, sources, strict=True)]
    plan = _MergePlan.of(datasets)
    samples = _merged_samples(datasets, plan.picks)
    arrays = _merged_arrays(datasets, plan.picks, *layouts[0])
    meta = _merged_meta(datasets, sources, differences, plan, len(samples))
    trials = [plan.trials[k] for k in plan.order if k in plan.trials]
    return Dataset(meta, samples, trials, arrays)


@attrs.frozen
class _MergePlan:
    """Which input holds each trial, the trials in canonical order, and the (input, row) of every
    sample in the merged order."""

    order: list[str]
    picks: list[tuple[int, int]]
    trials: dict[str, Trial]

    @classmethod
    def of(cls, datasets: Sequence[Dataset]) -> _MergePlan:
        where: dict[str, int] = {}
        trial_records: dict[str, Trial] = {}
        rows_of: list[dict[str, list[int]]] = []
        for i, dataset in enumerate(datasets):
            by_trial: dict[str, list[int]] = {}
            for row, sample in enumerate(dataset.samples):
                by_trial.setdefault(sample.trial_key, []).append(row)
            rows_of.append(by_trial)
            for key in _trial_keys(dataset):
                where[key] = i
            for trial in dataset.trials:
                trial_records[trial.trial_key] = trial
        order = canonical_order(where)
        picks = [(where[key], row) for key in order for row in rows_of[where[key]].get(key, [])]
        return cls(order, picks, trial_records)


def _merged_samples(datasets: Sequence[Dataset], picks: Sequence[tuple[int, int]]) -> list[Sample]:
    """The picked samples renumbered, their every-token offsets moved to the merged arrays."""
    samples: list[Sample] = []
    token_offset = 0
    for new_row, (i, row) in enumerate(picks):
        sample = attrs.evolve(datasets[i].samples[row], row=new_row)
        length = sample.reply_all_length
        if sample.reply_all_offset is not None and length is not None:
            sample = attrs.evolve(sample, reply_all_offset=token_offset)
            token_offset += length
        samples.append(sample)
    return samples


def _merged_arrays(datasets: Sequence[Dataset], picks: Sequence[tuple[int, int]], ragged: dict[str, list[str]],
                   tokens: list[str], rows: list[str]) -> dict[str, np.ndarray]:
    """Per-sample rows, reply-token spans and ragged groups of the picked samples, in order."""
    arrays: dict[str, np.ndarray] = {}
    for key in rows:
        parts = [datasets[i].arrays[key][row : row + 1] for i, row in picks]
        arrays[key] = np.concatenate(parts) if parts else datasets[0].arrays[key][:0]
    for key in tokens:
        arrays[key] = _merged_token_array(datasets, picks, key)
    for group, members in ragged.items():
        arrays.update(_merged_ragged_group(datasets, picks, group, members))
    return arrays


def _merged_token_array(datasets: Sequence[Dataset], picks: Sequence[tuple[int, int]], key: str) -> np.ndarray:
    parts = []
    for i, row in picks:
        s = datasets[i].samples[row]
        if s.reply_all_offset is not None and s.reply_all_length is not None:
            start = s.reply_all_offset
            parts.append(datasets[i].arrays[key][start : start + s.reply_all_length])
    return np.concatenate(parts) if parts else datasets[0].arrays[key][:0]


def _merged_ragged_group(datasets: Sequence[Dataset], picks: Sequence[tuple[int, int]], group: str,
                         members: list[str]) -> dict[str, np.ndarray]:
    lengths = []
    pieces: dict[str, list[np.ndarray]] = {m: [] for m in members}
    for i, row in picks:
        offsets = datasets[i].arrays[f"{group}/offsets"]
        start, end = int(offsets[row]), int(offsets[row + 1])
        lengths.append(end - start)
        for member in members:
            pieces[member].append(datasets[i].arrays[member][start:end])
    arrays = {member: np.concatenate(pieces[member]) if pieces[member] else datasets[0].arrays[member][:0]
              for member in members}
    arrays[f"{group}/offsets"] = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    return arrays


def _merged_meta(datasets: Sequence[Dataset], sources: Sequence[str], differences: dict[str, list[JSONValue]],
                 plan: _MergePlan, n_samples: int) -> JSONObject:
    """The first input's meta, with the merged scenarios, the differences allowed and where each part came from."""
    meta = datasets[0].meta.to_json()
    if any("fingerprint" not in d.meta.model for d in datasets):  # not vouched for every part
        meta["model"] = {k: v for k, v in datasets[0].meta.model.items() if k != "fingerprint"}
    scenarios = list(dict.fromkeys(plan.trials[k].scenario if k in plan.trials else k.split("/")[0]
                                   for k in plan.order))
    result_config = dict(datasets[0].meta.result_config or {})
    for field, values in differences.items():
        result_config[field] = values
    plugins = [d.meta.plugins for d in datasets]
    if any(_describe(p) != _describe(plugins[0]) for p in plugins[1:]):
        log.warning("the merged runs used different plugin versions: %s",
                    "; ".join(f"{s}: {_describe(p)}" for s, p in zip(sources, plugins, strict=True)))
    meta.update(
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        scenarios=scenarios,
        result_config=result_config,
        n_samples=n_samples,
        merged_from=[
            {"source": s, "created": d.meta.created, "n_samples": len(d), "n_trials": len(_trial_keys(d)),
             "scenarios": None if d.meta.scenarios is None else list(d.meta.scenarios), "plugins": d.meta.plugins,
             "mode": (d.meta.result_config or {}).get("mode")}
            for d, s in zip(datasets, sources, strict=True)
        ],
    )
    if differences:
        meta["merged_differences"] = differences
    return meta


def _merged_mode(dataset: Dataset) -> str:
    modes = sorted({s.mode for s in dataset.samples} | {t.mode for t in dataset.trials if t.mode})
    return modes[0] if len(modes) == 1 else "both"


def allowed_difference_fields() -> tuple[str, ...]:
    """The result-changing settings `--allow-difference` may name."""

    return tuple(f for f in RESULT_FIELDS if f not in NOT_COMPARED)


def check_allowed_differences(allow: Iterable[str]) -> tuple[str, ...]:
    valid = allowed_difference_fields()
    unknown = [field for field in allow if field not in valid]
    if unknown:
        raise DatasetError(
            f"--allow-difference {', '.join(map(repr, unknown))}: not a result-changing setting a merge compares; "
            f"valid: {', '.join(valid)}"
        )
    return tuple(allow)


def check_merge_output(out: Path, run_dirs: Sequence[Path], overwrite: bool = False) -> None:
    """Refuse an output directory that already holds results (unless ``overwrite`` and it is a marked
    run folder), or that is, contains or lies inside one of the inputs."""

    if not str(out).strip():
        raise DatasetError("merge output is empty; pass a new directory")
    if out.exists() and not out.is_dir():
        raise DatasetError(f"merge output {out} is a file; pass a new directory")
    resolved = out.resolve()
    for run_dir in run_dirs:
        if resolved == run_dir.resolve() or run_dir.resolve() in resolved.parents:
            raise DatasetError(f"merge output {out} is inside the input {run_dir}; pass a directory outside the inputs")
    if out.is_dir() and any(out.iterdir()):
        entries = sorted(p.name for p in out.iterdir())
        shown = ", ".join(entries[:6]) + (f" and {len(entries) - 6} more" if len(entries) > 6 else "")
        if not overwrite:
            raise DatasetError(
                f"merge output {out} is not empty (it holds {shown}){made_by(out)}; pass a new directory, or "
                "--overwrite to replace the earlier results there"
            )
        if not is_run_folder(out):
            raise DatasetError(str(refuse_unmarked(out, "merge output")))
        refuse_inputs(out, [("the input", p) for p in run_dirs], "merge output")
    check_writable(out, "merge output")


def remove_leftover_staging(out: Path, label: str | None = None) -> None:
    """Remove staging folders ``.<out name>.<label>-<pid>-<random>`` (merges by default) beside ``out``
    whose process is gone (a kill, a power cut)."""

    for leftover in out.parent.glob(f".{out.name}.{label or MERGE_STAGING}-*"):
        parts = leftover.name.rsplit("-", 2)
        try:
            pid = int(parts[-2])
        except (ValueError, IndexError):
            continue
        if process_alive(pid) or leftover.is_symlink() or not leftover.is_dir():
            continue
        log.warning("removing %s, left by an interrupted %s (process %d is gone)", leftover,
                    "merge" if label is None else "command", pid)
        shutil.rmtree(leftover, ignore_errors=True)


MERGE_STAGING = "merge-staging"


def merge_runs(out: str | Path, run_dirs: Sequence[str | Path], allow_differences: Iterable[str] = (),
               overwrite: bool = False) -> Dataset:
    """Read, check and merge ``run_dirs`` into ``out/dataset`` (plus the torch export and a report).

    Everything is read and checked before anything is written. The whole output folder is built
    in a staging folder beside ``out`` (``.<name>.merge-staging-<pid>-<random>``) and renamed into
    place at the end, so ``out`` appears complete or not at all; a failure removes the staging
    folder, and one left by a killed merge is removed by the next merge into the same place. The
    output is claimed (`deception_core.outputs.policy.OutputClaim`) while it is written.
    """

    out = Path(out)
    inputs = [Path(p) for p in run_dirs]
    allow = check_allowed_differences(allow_differences)
    check_merge_output(out, inputs, overwrite)
    sources = [str(resolve_dataset_dir(p)) for p in inputs]
    bar = progress_bar(len(inputs) + 3, "merge", "step")  # read each input, merge, write, torch export
    datasets = []
    for path in inputs:
        bar.set_postfix_str(f"reading {path}")
        datasets.append(read_dataset(path))
        bar.update(1)
    bar.set_postfix_str("merging")
    merged = merge_datasets(datasets, sources, allow)
    bar.update(1)
    try:
        with OutputClaim(out, "merge", "merge output"):  # another merge into `out`: exit 2, nothing touched
            check_merge_output(out, inputs, overwrite)  # again, under the claim
            _write_merge(out, merged, len(inputs), bar)
    finally:
        bar.close()
    return merged


def _write_merge(out: Path, merged: Dataset, n_inputs: int, bar: ProgressBar) -> None:
    """Build ``out`` in a staging folder and rename it into place; ``bar`` counts the two writes."""
    import os
    import secrets

    out.parent.mkdir(parents=True, exist_ok=True)
    remove_leftover_staging(out)
    staging = out.with_name(f".{out.name}.{MERGE_STAGING}-{os.getpid()}-{secrets.token_hex(4)}")
    os.mkdir(staging, 0o777)
    with staged_folder(staging, out, "merge"):
        bar.set_postfix_str("writing the dataset")
        write_dataset(staging / "dataset", merged)
        bar.update(1)
        bar.set_postfix_str("writing the torch export")
        outputs.write_torch_export(staging, _merged_mode(merged), merged)
        bar.update(1)
        size = directory_size(staging / "dataset")
        report = {"sources": merged.meta.extra["merged_from"], "n_samples": len(merged), "n_trials": len(merged.trials),
                  "dataset_bytes": size, "differences": merged.meta.extra.get("merged_differences", {})}
        atomic_write_text(staging / "merge.json", json.dumps(report, indent=2, default=str))
        summary = (f"merged {n_inputs} run(s): {len(merged)} samples, {len(merged.trials)} trials, "
                   f"dataset {size / 1e6:.2f} MB in {out / 'dataset'}\n\n{label_table(merged)}\n")
        atomic_write_text(staging / "summary.txt", summary)
    if not (out / "dataset" / META_FILE).is_file():  # pragma: no cover - write_dataset writes meta last
        raise DatasetError(f"merge wrote no dataset into {out}")
