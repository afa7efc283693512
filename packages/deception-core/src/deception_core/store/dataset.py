"""Reading and writing datasets.

A dataset directory holds:

``meta.json``
    schema version, model (id, revision, dtype, depth, width), layers, positions, capture backend,
    the results-relevant config and package versions.
``samples.jsonl``
    one `deception_core.base.records.Sample` per focal utterance, in row order; ``row`` indexes the
    activation arrays.
``trials.jsonl``
    one `deception_core.base.records.Trial` per trial: private facts, full transcript, outcome.
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

A dataset directory appears complete or not at all: it is written into a staging directory beside
its final place and renamed into place when every file is there (`write_dataset`). ``meta.json``
records the sha256 of every other file (``files``); `read_dataset` recomputes them and refuses a
dataset whose files were changed after they were written, or whose activations are not finite.
Files honour the process umask.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import attrs
import numpy as np

from deception_core.base.errors import UsageError
from deception_core.base.records import RecordError, Sample, Trial, from_json, to_json
from deception_core.base.types import JSONObject, JSONValue, json_object
from deception_core.store.frames import dataset_frame
from deception_core.store.meta import DatasetMeta, as_dataset_meta

if TYPE_CHECKING:
    import pandas as pd

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


def _temporary_name(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file, fsync and rename, so readers never see half a file.

    The file is created with mode 0666 less the umask, like any other file the process writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path, "tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(path)  # a failed write names the file it was for
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed into place: a crash leaves the old
    file or the new one, never half of one."""
    atomic_write_bytes(path, text.encode())


def jsonl(records: Iterable[Mapping[str, object]]) -> str:
    return "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records)


def ragged_arrays(rows: Sequence[Sequence[int]], dtype: type = np.int32) -> tuple[np.ndarray, np.ndarray]:
    """CSR-style ``values`` and ``offsets`` (``[len(rows) + 1]``) of integer rows."""
    pieces: list[np.ndarray] = [np.asarray(row, dtype=dtype) for row in rows]
    values = np.concatenate(pieces) if pieces else np.zeros(0, dtype)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    return values.astype(dtype), offsets


@attrs.define(repr=False)
class Dataset:
    """A dataset in memory: typed samples and trials, and the activation arrays they index."""

    #: ``meta.json`` as a record (a mapping given here is read as that document)
    meta: DatasetMeta = attrs.field(converter=as_dataset_meta)
    samples: list[Sample]
    trials: list[Trial]
    arrays: dict[str, np.ndarray]

    def __repr__(self) -> str:
        return (f"<Dataset {len(self.samples)} samples, {len(self.trials)} trials, model {self.meta.model_id}, "
                f"layers {list(self.meta.layers)}, positions {list(self.meta.positions)}>")

    def to_pandas(self, activations: bool | Sequence[tuple[int, str]] = False) -> pd.DataFrame:
        """One row per sample; nested fields flattened as ``parent.child`` (see `deception_core.report.frames`).

        ``activations=True`` adds every ``act.layer{L}.{position}`` vector column; a list of
        ``(layer, position)`` pairs adds those only.
        """

        return dataset_frame(self, activations)

    @property
    def layers(self) -> list[int]:
        return list(self.meta.layers)

    @property
    def positions(self) -> list[str]:
        return [p for p in self.meta.positions if p != REPLY_ALL]

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

    def column(self, name: str) -> list[object]:
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
        meta = attrs.evolve(self.meta, positions=self.positions, n_samples=len(samples))
        return Dataset(meta, samples, trials, arrays)


STAGING_TAG = "staging"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_finite(arrays: dict[str, np.ndarray], where: str, fix: str) -> None:
    """Refuse floating-point arrays holding NaN or infinity (naming the first few arrays)."""
    bad = []
    for key, array in arrays.items():
        if np.issubdtype(array.dtype, np.floating) and array.size and not np.isfinite(array).all():
            bad.append(f"{key} ({int((~np.isfinite(array)).sum())} value(s))")
    if bad:
        raise DatasetError(f"{where}: activations that are not finite (NaN or infinity) in {', '.join(bad[:5])}; {fix}")


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_dataset(directory: str | Path, dataset: Dataset) -> Path:
    """Write ``dataset`` as the directory ``directory``, complete or not at all.

    The files go into a staging directory beside ``directory``, which is renamed into place once
    ``meta.json`` (with every other file's sha256) is written; an existing dataset there is replaced
    only then. A failure removes the staging directory and leaves any earlier dataset as it was.
    """
    from safetensors.numpy import save

    directory = Path(directory)
    arrays = {
        k: np.ascontiguousarray(v, dtype=np.float32 if np.issubdtype(v.dtype, np.floating) else v.dtype)
        for k, v in dataset.arrays.items()
    }
    arrays.update(_reply_id_arrays(dataset.samples))
    check_finite(arrays, "refusing to write the dataset",
                 "the model produced them (try --dtype float32) or the arrays were changed; nothing was written")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = _temporary_name(directory, STAGING_TAG)
    os.mkdir(staging, 0o777)
    try:
        atomic_write_bytes(staging / ACTIVATIONS_FILE, save(arrays) if arrays else save({}))
        atomic_write_text(staging / SAMPLES_FILE, jsonl(to_json(s) for s in dataset.samples))
        atomic_write_text(staging / TRIALS_FILE, jsonl(to_json(t) for t in dataset.trials))
        files = {name: sha256_file(staging / name) for name in (ACTIVATIONS_FILE, SAMPLES_FILE, TRIALS_FILE)}
        meta = attrs.evolve(dataset.meta, schema_version=SCHEMA_VERSION, n_samples=len(dataset.samples), files=files)
        atomic_write_text(staging / META_FILE, json.dumps(meta.to_json(), indent=2, sort_keys=True, default=str))
        replace_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def replace_directory(new: Path, target: Path) -> None:
    """Rename the finished directory ``new`` to ``target``; an existing ``target`` is removed only after."""
    old = None
    if target.is_symlink() or target.is_file():
        raise DatasetError(f"{target} exists and is not a directory; remove it or choose another output")
    if target.exists():
        try:
            target.rmdir()  # empty: just take its place
        except OSError:
            old = _temporary_name(target, "old")
            target.rename(old)
    new.rename(target)
    fsync_directory(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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


def _upgrade_v1_sample(record: Mapping[str, JSONValue]) -> JSONObject:
    """Schema 1 kept the call's tag only inside ``request_id`` (``caller#tag``)."""
    request_id = str(record.get("request_id") or "")
    return {**record, "tag": request_id.split("#", 1)[1] if "#" in request_id else ""}


def _samples_from_json(directory: Path, records: list[JSONObject], version: int,
                       arrays: dict[str, np.ndarray]) -> list[Sample]:
    if version == 1:
        records = [_upgrade_v1_sample(r) for r in records]
    reply_ids: list[np.ndarray | None] = [None] * len(records)
    if f"{REPLY_IDS}/offsets" in arrays:
        values, offsets = arrays.pop(f"{REPLY_IDS}/values"), arrays.pop(f"{REPLY_IDS}/offsets")
        reply_ids = [values[offsets[i] : offsets[i + 1]] for i in range(len(records))]
    try:
        return [from_json(Sample, r, reply_ids=ids) for r, ids in zip(records, reply_ids, strict=True)]
    except RecordError as error:
        raise DatasetError(f"{directory / SAMPLES_FILE}: {error}; the dataset is corrupt or from a newer toolkit") from None


def _trials_from_json(directory: Path, records: list[JSONObject]) -> list[Trial]:
    try:
        return [from_json(Trial, r) for r in records]
    except RecordError as error:
        raise DatasetError(f"{directory / TRIALS_FILE}: {error}; the dataset is corrupt or from a newer toolkit") from None


def _read_jsonl(path: Path) -> list[JSONObject]:
    records: list[JSONObject] = []
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


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _check_meta_shape(meta: object, path: Path) -> None:
    """The fields every reader relies on, with their types; a malformed file is named, not a traceback."""
    def bad(what: str) -> DatasetError:
        return DatasetError(f"{path} is malformed ({what}); the dataset is corrupt. Re-create it with `deception run`")

    if not isinstance(meta, dict):
        raise bad(f"a {type(meta).__name__}, not a JSON object")
    layers, positions, model = meta.get("layers"), meta.get("positions"), meta.get("model")
    if not isinstance(layers, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in layers):
        raise bad("'layers' is not a list of integers")
    if not isinstance(positions, list) or not all(isinstance(v, str) for v in positions):
        raise bad("'positions' is not a list of names")
    if not isinstance(model, dict):
        raise bad("'model' is not an object")
    files = meta.get("files")
    if files is not None and not (isinstance(files, dict) and all(isinstance(v, str) for v in files.values())):
        raise bad("'files' is not a mapping of file names to sha256 digests")


def verify_files(directory: Path, meta: Mapping[str, JSONValue]) -> None:
    """Recompute the sha256 of every file ``meta.json`` lists; refuse the dataset on a mismatch."""
    listed = meta.get("files")
    if listed is None:
        import logging

        logging.getLogger("deception").warning(
            "%s records no file checksums (written by an older version); its files are not verified", directory)
        return
    files = json_object(listed)  # its shape was checked with the rest of meta.json (`_check_meta_shape`)
    for name in (ACTIVATIONS_FILE, SAMPLES_FILE, TRIALS_FILE):
        if name not in files:
            raise DatasetError(f"{directory / META_FILE} lists no checksum for {name}; the dataset is corrupt")
    for name, expected in sorted(files.items()):
        if Path(name).name != name:
            raise DatasetError(f"{directory / META_FILE} lists a checksum for {name!r}, which is not a dataset file")
        path = directory / name
        if not path.is_file():
            raise DatasetError(f"{directory} is missing {name}; the dataset is incomplete")
        if sha256_file(path) != expected:
            raise DatasetError(
                f"{path} does not match the sha256 recorded in {META_FILE}: it was changed after the dataset was "
                "written. Restore the original file or re-create the dataset (deception run / deception merge)"
            )


def read_dataset(path: str | Path) -> Dataset:
    """Read a dataset (or a run directory containing one), checking its integrity."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    directory = resolve_dataset_dir(path)
    try:
        meta = json.loads((directory / META_FILE).read_text(), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as error:
        raise DatasetError(f"{directory / META_FILE} is not valid JSON ({error}); the dataset is corrupt") from None
    _check_meta_shape(meta, directory / META_FILE)
    version = meta.get("schema_version")
    if version not in READABLE_VERSIONS:
        raise DatasetError(
            f"{directory} has dataset schema version {version}; this toolkit reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    for name in (SAMPLES_FILE, TRIALS_FILE, ACTIVATIONS_FILE):
        if not (directory / name).is_file():
            raise DatasetError(f"{directory} is missing {name}; the dataset is incomplete")
    verify_files(directory, meta)
    sample_records = _read_jsonl(directory / SAMPLES_FILE)
    trial_records = _read_jsonl(directory / TRIALS_FILE)
    try:
        arrays = load_file(str(directory / ACTIVATIONS_FILE))
    except (SafetensorError, OSError, ValueError) as error:
        raise DatasetError(f"{directory / ACTIVATIONS_FILE} cannot be read ({error}); the file is corrupt") from None
    check_finite(arrays, str(directory / ACTIVATIONS_FILE), "the dataset is corrupt; re-create it with `deception run`")
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
