"""Resumable runs: every finished trial is saved as one shard; a re-run skips the saved ones.

A checkpoint directory holds

``manifest.json``
    the *identity* of the run that may use it: the config fields that change what a trial
    produces (`deception_core.runner.outputs.RESULT_FIELDS`), the resolved layers and capture
    backend, and a sha256 of all of them. A run whose identity differs is refused (before any
    model loads) with the differing fields named. Fields that only choose *which* trials run
    (``--trials``, ``--scenarios``, ``--scenario-name``, ``--shard``) are not part of it, so a
    checkpoint can be extended with more trials or shared by shards.
``trials/<trial key>.safetensors``
    one file per finished trial, written atomically (temporary file, fsync, rename): the
    activation vectors, every-reply-token arrays and prompt ids as tensors, the trial and sample
    records as JSON in the safetensors metadata, and a sha256 over all of it. A shard that does not
    parse or whose checksum does not match (a torn write, a flipped bit, a planted file) is
    reported, deleted and its trial played again; it is never used.

Nothing is ever unpickled: shards are safetensors and JSON. Each shard holds one trial, so the
checkpoint costs one small write per trial, never a re-save of everything so far.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deception_core.dataset.store import atomic_write_bytes, atomic_write_text, ragged_arrays
from deception_core.errors import UsageError
from deception_core.records import RecordError, Sample, Trial, from_json, to_json
from deception_core.runner.shard_key import load_or_create_key, new_digest

log = logging.getLogger("deception")

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
TRIALS_DIR = "trials"
SHARD_SUFFIX = ".safetensors"


class CheckpointMismatch(UsageError):
    """A checkpoint directory that belongs to a run with a different config."""


def run_identity(config: Any, layers: Sequence[int], backend: str) -> dict[str, Any]:
    """Everything that changes what one trial produces, as plain JSON."""
    from deception_core.runner.outputs import RESULT_FIELDS

    values = config.to_dict()
    identity = {name: values[name] for name in RESULT_FIELDS}
    identity["resolved_layers"] = [int(layer) for layer in layers]
    identity["capture_backend"] = backend
    return identity


def identity_hash(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def shard_name(trial_key: str) -> str:
    """A file name for a trial key (``scenario/mode/condition/00001``)."""
    return trial_key.replace("/", "--") + SHARD_SUFFIX


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointMismatch(
            f"{path} is not valid JSON ({error}); the checkpoint is damaged. Delete {directory} or pass "
            "another --checkpoint-dir"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or not isinstance(
            manifest.get("identity"), dict):
        raise CheckpointMismatch(
            f"{path} is not a deception checkpoint manifest of format {FORMAT_VERSION}; pass another "
            "--checkpoint-dir or delete that directory"
        )
    return manifest


def check_checkpoint(directory: str | Path, config: Any, layers: Sequence[int], backend: str) -> None:
    """Refuse a checkpoint directory written by a run with a different result-changing config."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointMismatch(f"--checkpoint-dir {directory} is a file; pass a directory")
    manifest = _read_manifest(directory) if directory.is_dir() else None
    if manifest is None:
        return
    saved, wanted = manifest["identity"], run_identity(config, layers, backend)
    differing = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differing:
        details = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, this run {wanted.get(k)!r}" for k in differing)
        raise CheckpointMismatch(
            f"--checkpoint-dir {directory} was written by a run with a different config ({details}). "
            f"Re-run with the checkpoint's values for {', '.join(differing)}, or pass a new --checkpoint-dir"
        )


# -- one trial <-> one safetensors file ------------------------------------------------------------


def _digest(record_json: str, tensors: Mapping[str, np.ndarray], key: bytes | None = None) -> str:
    h = new_digest(key)  # keyed (HMAC) with the checkpoint's key: an edited shard cannot be re-signed
    h.update(record_json.encode())
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        h.update(f"\x00{name}\x00{array.dtype.str}\x00{array.shape}\x00".encode())
        h.update(array.tobytes())
    digest: str = h.hexdigest()
    return digest


def encode_trial(output: Any, key: bytes | None = None) -> bytes:
    """A `TrialOutput` as safetensors bytes with its records and checksum in the metadata."""
    from safetensors.numpy import save

    tensors: dict[str, np.ndarray] = {}
    positions = sorted(output.vectors[0]) if output.vectors else []
    for position in positions:
        tensors[f"vectors/{position}"] = np.stack([v[position] for v in output.vectors])
    has_reply = [r is not None for r in output.reply_all]
    for i, reply in enumerate(output.reply_all):
        if reply is not None:
            tensors[f"reply_all/{i}"] = reply
    tensors["prompt_ids/values"], tensors["prompt_ids/offsets"] = ragged_arrays(output.prompt_ids, np.int64)
    tensors["reply_ids/values"], tensors["reply_ids/offsets"] = ragged_arrays(
        [s.reply_ids or () for s in output.samples], np.int64)
    tensors = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    record = json.dumps(
        {"format": FORMAT_VERSION, "trial": to_json(output.trial), "samples": [to_json(s) for s in output.samples],
         "positions": positions, "has_reply_all": has_reply},
        sort_keys=True, default=str,
    )
    return save(tensors, metadata={"record": record, _sum_name(key): _digest(record, tensors, key)})


def _sum_name(key: bytes | None) -> str:
    return "hmac_sha256" if key is not None else "sha256"


def _ragged_rows(tensors: Mapping[str, np.ndarray], name: str) -> list[np.ndarray]:
    offsets, values = tensors[f"{name}/offsets"], tensors[f"{name}/values"]
    return [values[offsets[j] : offsets[j + 1]] for j in range(len(offsets) - 1)]


class CorruptShard(Exception):
    """A shard that cannot be trusted (unparseable, checksum mismatch, wrong trial)."""


def decode_trial(data: bytes, expected_key: str | None = None, key: bytes | None = None) -> Any:
    """Parse and verify a shard; raise `CorruptShard` if anything is off."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    from deception_core.runner.collect import TrialOutput

    try:
        tensors = load(data)
        metadata = _metadata(data)
    except (SafetensorError, ValueError, OSError, KeyError, TypeError, UnicodeDecodeError, OverflowError) as error:
        raise CorruptShard(f"not a readable safetensors file ({type(error).__name__}: {error})") from None
    record_json, checksum = metadata.get("record"), metadata.get(_sum_name(key))
    if not isinstance(record_json, str) or not isinstance(checksum, str):
        raise CorruptShard("no record or checksum in its metadata")
    if not hmac.compare_digest(_digest(record_json, tensors, key), checksum):
        raise CorruptShard("checksum mismatch")
    record = json.loads(record_json)
    if expected_key is not None and record["trial"].get("trial_key") != expected_key:
        raise CorruptShard(f"holds trial {record['trial'].get('trial_key')!r}, not {expected_key!r}")
    if "reply_ids/offsets" not in tensors:
        raise CorruptShard("written before shards stored the reply token ids")
    prompt_ids = [[int(i) for i in ids] for ids in _ragged_rows(tensors, "prompt_ids")]
    try:
        trial = from_json(Trial, record["trial"])
        samples = [from_json(Sample, s, reply_ids=ids)
                   for s, ids in zip(record["samples"], _ragged_rows(tensors, "reply_ids"), strict=True)]
    except (RecordError, ValueError) as error:
        raise CorruptShard(str(error)) from None
    vectors = [{p: tensors[f"vectors/{p}"][j] for p in record["positions"]} for j in range(len(samples))]
    reply_all = [tensors[f"reply_all/{j}"] if flag else None for j, flag in enumerate(record["has_reply_all"])]
    return TrialOutput(trial, samples, vectors, reply_all, prompt_ids)


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes (header: 8-byte little-endian length, then JSON)."""
    size = int.from_bytes(data[:8], "little")
    if size <= 0 or 8 + size > len(data):
        raise ValueError("header length out of range")
    header = json.loads(data[8 : 8 + size].decode())
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise ValueError("metadata is not a mapping")
    return metadata


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
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


class CheckpointStore:
    """The runner's trial sink for ``--checkpoint-dir``: resume, then save each finished trial."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.trials_dir = self.directory / TRIALS_DIR
        self.saved = 0
        self.resumed = 0
        self.redone: list[str] = []
        self.key: bytes | None = None

    def start(self, config: Any, checked: Any, meta: Mapping[str, Any], specs: Iterable[Any]) -> dict[str, Any]:
        """Write (or re-check) the manifest; return the valid saved trials among ``specs``."""
        check_checkpoint(self.directory, config, checked.layers, checked.backend)
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        self.key = load_or_create_key(self.directory)
        identity = run_identity(config, checked.layers, checked.backend)
        if _read_manifest(self.directory) is None:
            manifest = {"format": FORMAT_VERSION, "identity": identity, "identity_sha256": identity_hash(identity),
                        "model": meta.get("model"), "positions": meta.get("positions")}
            atomic_write_text(self.directory / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True, default=str))
        for stale in self.trials_dir.glob(".*"):  # temporary files of writes cut short by a crash
            stale.unlink(missing_ok=True)
        done: dict[str, Any] = {}
        for spec in specs:
            path = self.trials_dir / shard_name(spec.key)
            if not path.is_file():
                continue
            try:
                done[spec.key] = decode_trial(path.read_bytes(), spec.key, self.key)
            except CorruptShard as error:
                log.warning("checkpoint shard %s is corrupt (%s); trial %s will be played again", path, error, spec.key)
                path.unlink(missing_ok=True)
                self.redone.append(spec.key)
        self.resumed = len(done)
        if done:
            log.info("resuming from %s: %d trial(s) already done, %d corrupt shard(s) discarded",
                     self.directory, len(done), len(self.redone))
        return done

    def add(self, output: Any) -> None:
        atomic_write_bytes(self.trials_dir / shard_name(output.key), encode_trial(output, self.key))
        _fsync_directory(self.trials_dir)
        self.saved += 1

    def finish(self) -> None:
        log.info("checkpoint %s: %d trial(s) resumed, %d saved this run", self.directory, self.resumed, self.saved)


def checkpoint_sink(config: Any) -> CheckpointStore | None:
    """The trial sink a run uses by default: a `CheckpointStore` when ``--checkpoint-dir`` is set."""
    return CheckpointStore(config.checkpoint_dir) if config.checkpoint_dir else None
