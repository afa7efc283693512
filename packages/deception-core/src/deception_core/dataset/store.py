"""Reading and writing datasets.

A dataset directory holds:

``meta.json``
    schema version, model (id, revision, dtype, depth, width), layers, positions, capture backend,
    the results-relevant config and package versions.
``samples.jsonl``
    one `deception_core.records.Sample` per focal utterance, in row order; ``row`` indexes the
    activation arrays.
``trials.jsonl``
    one `deception_core.records.Trial` per trial: private facts, full transcript, outcome.
``activations.safetensors``
    ``layer{L}/{position}`` -> float32 ``[n_samples, d_model]``; with every reply token stored,
    ``layer{L}/reply_all`` -> ``[n_reply_tokens_total, d_model]`` sliced by each sample's
    ``reply_all_offset`` / ``reply_all_length``. Ragged integer data is stored CSR-style as
    ``<name>/values`` + ``<name>/offsets`` (``[n_samples + 1]``): ``prompt_ids`` (the exact token ids
    each sample's reply was generated from), ``reply_ids`` (the token ids the model generated; the
    samples carry them in memory, schema 2 on) and, with ``--sae``, ``sae/{position}/indices`` +
    ``sae/{position}/values`` + ``sae/{position}/offsets`` (meta ``sae`` holds ``d_sae``).

Nothing is pickled; reading another machine's dataset runs no code from it. Schema 1 datasets
(no reply token ids, the call's tag only inside ``request_id``) still load.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from deception_core.errors import UsageError
from deception_core.records import RecordError, Sample, Trial, from_json, to_json

SCHEMA_VERSION = 2
#: versions this toolkit reads (older ones are upgraded on load)
READABLE_VERSIONS = (1, 2)
REPLY_IDS = "reply_ids"
META_FILE = "meta.json"
SAMPLES_FILE = "samples.jsonl"
TRIALS_FILE = "trials.jsonl"
ACTIVATIONS_FILE = "activations.safetensors"
REPLY_ALL = "reply_all"


class DatasetError(UsageError):
    """A dataset that cannot be read or combined as asked."""


def activation_key(layer: int, position: str) -> str:
    return f"layer{layer}/{position}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file, fsync and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def jsonl(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records)


def ragged_arrays(rows: Sequence[Sequence[int]], dtype: type = np.int32) -> tuple[np.ndarray, np.ndarray]:
    """CSR-style ``values`` and ``offsets`` (``[len(rows) + 1]``) of integer rows."""
    pieces: list[np.ndarray] = [np.asarray(row, dtype=dtype) for row in rows]
    values = np.concatenate(pieces) if pieces else np.zeros(0, dtype)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    return values.astype(dtype), offsets


@attrs.define
class Dataset:
    """A dataset in memory: typed samples and trials, and the activation arrays they index."""

    meta: dict[str, Any]
    samples: list[Sample]
    trials: list[Trial]
    arrays: dict[str, np.ndarray]

    @property
    def layers(self) -> list[int]:
        return [int(layer) for layer in self.meta["layers"]]

    @property
    def positions(self) -> list[str]:
        return [str(p) for p in self.meta["positions"] if p != REPLY_ALL]

    def __len__(self) -> int:
        return len(self.samples)

    def matrix(self, layer: int, position: str) -> np.ndarray:
        key = activation_key(layer, position)
        if key not in self.arrays:
            raise DatasetError(
                f"this dataset has no activations for layer {layer} at {position!r}; it has "
                f"layers {self.layers} and positions {self.positions}"
            )
        return self.arrays[key]

    def reply_tokens(self, layer: int, row: int) -> np.ndarray:
        sample = self.samples[row]
        start, length = sample.reply_all_offset, sample.reply_all_length
        if start is None or length is None:
            raise DatasetError("this dataset did not store every reply token (positions lack reply_all)")
        return self.arrays[activation_key(layer, REPLY_ALL)][start : start + length]

    def ragged(self, name: str, row: int) -> np.ndarray:
        """Row ``row`` of a CSR-style ragged array (``<name>/values`` + ``<name>/offsets``)."""
        offsets = self.arrays[f"{name}/offsets"]
        return self.arrays[f"{name}/values"][offsets[row] : offsets[row + 1]]

    def prompt_ids(self, row: int) -> list[int]:
        """The exact prompt token ids of sample ``row``."""
        return [int(i) for i in self.ragged("prompt_ids", row)]

    def column(self, name: str) -> list[Any]:
        """One field of every sample, in row order."""
        return [getattr(sample, name) for sample in self.samples]

    def subset(self, rows: Sequence[int]) -> Dataset:
        """The given rows, in that order (reply-token arrays are dropped)."""
        index = np.asarray(rows, dtype=np.int64)
        ragged = {k[: -len("/offsets")] for k in self.arrays if k.endswith("/offsets")}
        arrays = {
            k: v[index]
            for k, v in self.arrays.items()
            if not k.endswith(REPLY_ALL) and not any(k.startswith(name + "/") for name in ragged)
        }
        for name in ragged:  # every field of a group (values; SAE indices and values) shares its offsets
            offsets = self.arrays[f"{name}/offsets"]
            lengths = [int(offsets[i + 1] - offsets[i]) for i in index]
            for key in [k for k in self.arrays if k.startswith(name + "/") and k != f"{name}/offsets"]:
                source = self.arrays[key]
                pieces = [source[offsets[i] : offsets[i + 1]] for i in index]
                arrays[key] = np.concatenate(pieces) if pieces else source[:0]
            arrays[f"{name}/offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        samples = [attrs.evolve(self.samples[old_row], row=new_row, reply_all_offset=None, reply_all_length=None)
                   for new_row, old_row in enumerate(index.tolist())]
        keys = {s.trial_key for s in samples}
        trials = [t for t in self.trials if t.trial_key in keys]
        meta = dict(self.meta, positions=[p for p in self.meta["positions"] if p != REPLY_ALL], n_samples=len(samples))
        return Dataset(meta, samples, trials, arrays)


def write_dataset(directory: str | Path, dataset: Dataset) -> Path:
    """Write ``dataset`` into ``directory`` (each file atomically)."""
    from safetensors.numpy import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    meta = dict(dataset.meta, schema_version=SCHEMA_VERSION, n_samples=len(dataset.samples))
    arrays = {
        k: np.ascontiguousarray(v, dtype=np.float32 if np.issubdtype(v.dtype, np.floating) else v.dtype)
        for k, v in dataset.arrays.items()
    }
    arrays.update(_reply_id_arrays(dataset.samples))
    atomic_write_bytes(directory / ACTIVATIONS_FILE, save(arrays) if arrays else save({}))
    atomic_write_text(directory / SAMPLES_FILE, jsonl(to_json(s) for s in dataset.samples))
    atomic_write_text(directory / TRIALS_FILE, jsonl(to_json(t) for t in dataset.trials))
    atomic_write_text(directory / META_FILE, json.dumps(meta, indent=2, sort_keys=True, default=str))
    return directory


def _reply_id_arrays(samples: Sequence[Sample]) -> dict[str, np.ndarray]:
    """The samples' reply token ids as a ragged array (none when no sample carries them)."""
    known = [s.reply_ids is not None for s in samples]
    if not any(known):
        return {}
    if not all(known):
        missing = [s.sample_id or s.row for s, k in zip(samples, known, strict=True) if not k][:5]
        raise DatasetError(f"some samples carry reply token ids and some do not (e.g. {missing}); a dataset stores "
                           "them for every sample or for none")
    values, offsets = ragged_arrays([s.reply_ids or () for s in samples])
    return {f"{REPLY_IDS}/values": values, f"{REPLY_IDS}/offsets": offsets}


def _upgrade_v1_sample(record: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 kept the call's tag only inside ``request_id`` (``caller#tag``)."""
    request_id = str(record.get("request_id") or "")
    return {**record, "tag": request_id.split("#", 1)[1] if "#" in request_id else ""}


def _samples_from_json(directory: Path, records: list[dict[str, Any]], version: int,
                       arrays: dict[str, np.ndarray]) -> list[Sample]:
    if version == 1:
        records = [_upgrade_v1_sample(r) for r in records]
    reply_ids: list[Any] = [None] * len(records)
    if f"{REPLY_IDS}/offsets" in arrays:
        values, offsets = arrays.pop(f"{REPLY_IDS}/values"), arrays.pop(f"{REPLY_IDS}/offsets")
        reply_ids = [values[offsets[i] : offsets[i + 1]] for i in range(len(records))]
    try:
        return [from_json(Sample, r, reply_ids=ids) for r, ids in zip(records, reply_ids, strict=True)]
    except RecordError as error:
        raise DatasetError(f"{directory / SAMPLES_FILE}: {error}; the dataset is corrupt or from a newer toolkit") from None


def _trials_from_json(directory: Path, records: list[dict[str, Any]]) -> list[Trial]:
    try:
        return [from_json(Trial, r) for r in records]
    except RecordError as error:
        raise DatasetError(f"{directory / TRIALS_FILE}: {error}; the dataset is corrupt or from a newer toolkit") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path} line {number} is not valid JSON ({error}); the file is corrupt") from None
    return records


def resolve_dataset_dir(path: str | Path) -> Path:
    """Accept a dataset directory or a run directory that contains ``dataset/``."""
    path = Path(path)
    if (path / META_FILE).is_file():
        return path
    if (path / "dataset" / META_FILE).is_file():
        return path / "dataset"
    raise DatasetError(
        f"{path} holds no dataset (no {META_FILE} there or in {path / 'dataset'}); pass the output "
        "directory of a `deception run` or `deception merge`"
    )


def read_dataset(path: str | Path) -> Dataset:
    """Read a dataset (or a run directory containing one), checking its integrity."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    directory = resolve_dataset_dir(path)
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except json.JSONDecodeError as error:
        raise DatasetError(f"{directory / META_FILE} is not valid JSON ({error}); the dataset is corrupt") from None
    version = meta.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise DatasetError(
            f"{directory} has dataset schema version {version}; this toolkit reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    for name in (SAMPLES_FILE, TRIALS_FILE, ACTIVATIONS_FILE):
        if not (directory / name).is_file():
            raise DatasetError(f"{directory} is missing {name}; the dataset is incomplete")
    sample_records = _read_jsonl(directory / SAMPLES_FILE)
    trial_records = _read_jsonl(directory / TRIALS_FILE)
    try:
        arrays = load_file(str(directory / ACTIVATIONS_FILE))
    except (SafetensorError, OSError, ValueError) as error:
        raise DatasetError(f"{directory / ACTIVATIONS_FILE} cannot be read ({error}); the file is corrupt") from None
    n = len(sample_records)
    for key, array in arrays.items():
        if key.endswith("/offsets") and array.shape[0] != n + 1:
            raise DatasetError(f"{directory}: {key} does not match the {n} samples; the dataset is corrupt")
        if key.startswith("layer") and not key.endswith(REPLY_ALL) and array.shape[0] != n:
            raise DatasetError(
                f"{directory}: {key} has {array.shape[0]} rows but samples.jsonl has {n}; the dataset is corrupt"
            )
    samples = _samples_from_json(directory, sample_records, int(version), arrays)
    return Dataset(meta, samples, _trials_from_json(directory, trial_records), arrays)
