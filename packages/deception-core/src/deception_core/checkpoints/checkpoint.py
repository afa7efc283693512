"""Resumable runs: every finished trial is saved as one shard; a re-run skips the saved ones.

One ``--checkpoint-dir`` serves many experiments. Each distinct *identity* (the settings that
change what a trial produces, `deception_core.config.resolved.run_identity`: the result-changing
fields, the resolved layers and capture backend, the judge's resolved settings and the scenarios'
and capture backend's settings) keeps its own area, a sub-folder named after the model and a
hash of the identity::

    <checkpoint-dir>/
        gemma-2b-it-3f9c0a1b2c4d/          one area per result-changing config
            manifest.json                  its identity, in full, readable
            trials/<trial key>.safetensors one file per finished trial
            trials/<trial key>.claim       a trial some process is playing now

Re-running any experiment finds its own area and resumes it; fields that only choose *which*
trials run (``--trials``, ``--scenarios``, ``--scenario-name``, ``--shard``) are not part of the
identity, so an area can be extended with more trials or shared by shards.
``deception checkpoints DIR`` lists the areas of a folder. A folder written by the earlier layout
(``manifest.json`` at the top) is still used when its identity matches.

Shards are written atomically (a temporary file named ``.<shard>.<host>.<pid>.<random>.tmp``,
fsync, rename): the activation vectors, every-reply-token arrays and prompt ids as tensors, the
trial and sample records as JSON in the safetensors metadata, and a sha256 over all of it. A shard
that does not parse or whose checksum does not match is reported, deleted and its trial played
again; it is never used. Nothing is ever unpickled.

Several processes may share a folder (pods on one network volume): before playing a trial a
process *claims* it by creating ``<trial>.claim`` exclusively (owner host, pid and a random token
inside); a claim is kept fresh by a heartbeat and expires ``claim_ttl`` seconds after the last
beat, or at once when its owner is a dead process on the same host, so a crashed process's trials
are played by another. Trials claimed by others are waited for and read from their shards.
Clean-up deletes only files of these exact name patterns, never through a symbolic link.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol, cast

import numpy as np

from deception_core.base.records import RecordError, Sample, Trial, from_json, to_json
from deception_core.base.types import JSONObject, JSONValue, json_object
from deception_core.checkpoints.shard_key import CheckpointMismatch, load_or_create_key, new_digest
from deception_core.collect.collect import TrialOutput
from deception_core.config.resolved import ResolvedRun, identity_hash
from deception_core.config.run import RunConfig
from deception_core.contracts.scenario import TrialSpec
from deception_core.outputs.policy import process_alive
from deception_core.store.dataset import atomic_write_text, fsync_directory, ragged_arrays
from deception_core.ui.console import SHOW

log = logging.getLogger("deception")

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
TRIALS_DIR = "trials"
SHARD_SUFFIX = ".safetensors"
CLAIM_SUFFIX = ".claim"
DEFAULT_CLAIM_TTL = 120.0  # seconds without a heartbeat after which another process may take a trial over
_TEMPORARY = re.compile(r"^\.(?P<target>[^/]+)\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
_STALE_CLAIM = re.compile(r"^[^/]+\.claim\.stale-[0-9a-f]{8}$")





def area_name(identity: Mapping[str, JSONValue]) -> str:
    """The sub-folder of one identity: the model's last name component and 12 hex digits of its hash."""
    model = str(identity.get("model", "model")).rstrip("/").split("/")[-1].split(":")[-1]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-.")[:40] or "model"
    return f"{slug}-{identity_hash(identity)[:12]}"


def area_for(directory: str | Path, identity: Mapping[str, JSONValue]) -> Path:
    """Where a run of this identity keeps its trials: its own area, or the folder itself when the
    folder was written by the earlier one-run layout for this same identity."""
    directory = Path(directory)
    legacy = _read_manifest(directory) if (directory / MANIFEST_FILE).is_file() else None
    if legacy is not None and legacy["identity"] == dict(identity):
        return directory
    return directory / area_name(identity)


def shard_name(trial_key: str) -> str:
    """A file name for a trial key (``scenario/mode/condition/00001``)."""
    return trial_key.replace("/", "--") + SHARD_SUFFIX


def _read_manifest(directory: Path) -> JSONObject | None:
    path = directory / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest: JSONValue = json.loads(path.read_text())
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


def check_checkpoint(directory: str | Path, run: ResolvedRun) -> None:
    """Refuse a ``--checkpoint-dir`` that is a file, or whose area for this run is damaged."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointMismatch(f"--checkpoint-dir {directory} is a file; pass a directory")
    if not directory.is_dir():
        return
    wanted = run.identity
    area = area_for(directory, wanted)
    manifest = _read_manifest(area) if area.is_dir() else None
    if manifest is None:
        return
    saved = json_object(manifest["identity"])
    differing = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if differing:
        raise CheckpointMismatch(
            f"{area / MANIFEST_FILE} does not hold the identity its name stands for (fields {', '.join(differing)} "
            f"differ); it was edited or damaged. Delete {area} and re-run to play its trials again"
        )


def list_areas(directory: str | Path) -> list[JSONObject]:
    """What a checkpoint folder holds: one entry per area (identity, finished trials, live claims)."""
    directory = Path(directory)
    candidates = [directory] + sorted(p for p in directory.iterdir() if p.is_dir() and not p.is_symlink())
    areas: list[JSONObject] = []
    for area in candidates:
        if not (area / MANIFEST_FILE).is_file():
            continue
        try:
            manifest = _read_manifest(area)
        except CheckpointMismatch as error:
            areas.append({"area": str(area), "error": str(error)})
            continue
        if manifest is None:
            continue
        trials = area / TRIALS_DIR
        names = [e.name for e in os.scandir(trials) if e.is_file(follow_symlinks=False)] if trials.is_dir() else []
        shards = sorted(n[: -len(SHARD_SUFFIX)] for n in names if n.endswith(SHARD_SUFFIX) and not n.startswith("."))
        scenarios: dict[str, int] = {}
        for name in shards:
            scenario = name.split("--")[0]
            scenarios[scenario] = scenarios.get(scenario, 0) + 1
        areas.append({"area": str(area), "name": area.name if area != directory else ".", "identity": manifest["identity"],
                      "identity_sha256": manifest.get("identity_sha256"), "trials": len(shards), "by_scenario": scenarios,
                      "claims": sum(n.endswith(CLAIM_SUFFIX) for n in names)})
    return areas


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


def encode_trial(output: TrialOutput, key: bytes | None = None) -> bytes:
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


def decode_trial(data: bytes, expected_key: str | None = None, key: bytes | None = None) -> TrialOutput:
    """Parse and verify a shard; raise `CorruptShard` if anything is off."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

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


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname())[:40] or "host"


def _regular_file(path: Path) -> bool:
    """True for a plain file that is not a symbolic link (nothing is read or deleted through one)."""
    try:
        return path.is_file() and not path.is_symlink()
    except OSError:
        return False


class CheckpointStore:
    """The runner's trial sink for ``--checkpoint-dir``: resume, claim, then save each finished trial."""

    def __init__(self, directory: str | Path, *, claim_ttl: float = DEFAULT_CLAIM_TTL, poll_seconds: float = 1.0) -> None:
        self.directory = Path(directory)
        self.area = self.directory
        self.trials_dir = self.directory / TRIALS_DIR
        self.claim_ttl = float(claim_ttl)
        self.poll_seconds = float(poll_seconds)
        self.host, self.pid, self.token = _host(), os.getpid(), secrets.token_hex(8)
        self.saved = 0
        self.resumed = 0
        self.from_others = 0
        self.redone: list[str] = []
        self.key: bytes | None = None
        self._held: set[Path] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- start: area, manifest, clean-up, resume --------------------------------------------------

    def start(self, run: ResolvedRun, meta: Mapping[str, object], specs: Iterable[TrialSpec]) -> dict[str, TrialOutput]:
        """Find (or create) this run's area; return the valid saved trials among ``specs``."""
        check_checkpoint(self.directory, run)
        self.key = load_or_create_key(self.directory)  # one key for the whole folder, every area
        identity = run.identity
        self.area = area_for(self.directory, identity)
        self.trials_dir = self.area / TRIALS_DIR
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        if not (self.area / MANIFEST_FILE).is_file():
            manifest = {"format": FORMAT_VERSION, "identity": identity, "identity_sha256": run.identity_hash,
                        "model": meta.get("model"), "positions": meta.get("positions")}
            atomic_write_text(self.area / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True, default=str))
        self.clean_up()
        done: dict[str, TrialOutput] = {}
        planned = list(specs)
        for spec in planned:
            output = self._load(spec)
            if output is not None:
                done[spec.key] = output
        self.resumed = len(done)
        if done:  # on the console too: the user re-ran the command and should see what was reused
            log.info("resuming from %s: %d of %d trial(s) reused from the checkpoint, %d to play; "
                     "%d corrupt shard(s) discarded", self.area, len(done), len(planned), len(planned) - len(done),
                     len(self.redone), extra=SHOW)
        self._beat = threading.Thread(target=self._heartbeat, name="checkpoint-claims", daemon=True)
        self._beat.start()
        return done

    def clean_up(self) -> list[Path]:
        """Delete this store's leftovers only: temporary shard files of writers that are dead (same
        host) or silent for longer than the claim TTL, and stale claim files set aside by a take-over.
        Never a dotfile of another name, never through a symbolic link."""
        removed: list[Path] = []
        if self.trials_dir.is_symlink() or not self.trials_dir.is_dir():
            return removed
        now = time.time()
        for entry in os.scandir(self.trials_dir):
            if not entry.is_file(follow_symlinks=False):
                continue
            match = _TEMPORARY.match(entry.name)
            if match is not None:
                same_host = match.group("host") == self.host
                dead = same_host and int(match.group("pid")) != self.pid and not process_alive(int(match.group("pid")))
                old = now - entry.stat(follow_symlinks=False).st_mtime > self.claim_ttl
                if not (dead or old):
                    continue
            elif not _STALE_CLAIM.match(entry.name):
                continue
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except FileNotFoundError:
                pass
        return removed

    def _load(self, spec: TrialSpec) -> TrialOutput | None:
        path = self.trials_dir / shard_name(spec.key)
        if not _regular_file(path):
            return None
        try:
            return decode_trial(path.read_bytes(), spec.key, self.key)
        except CorruptShard as error:
            log.warning("checkpoint shard %s is corrupt (%s); trial %s will be played again", path, error, spec.key)
            path.unlink(missing_ok=True)
            self.redone.append(spec.key)
            return None
        except FileNotFoundError:
            return None

    # -- claims -----------------------------------------------------------------------------------

    def _claim_path(self, spec: TrialSpec) -> Path:
        return self.trials_dir / (shard_name(spec.key)[: -len(SHARD_SUFFIX)] + CLAIM_SUFFIX)

    def _claim_record(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid, "token": self.token, "claimed_at": time.time()})

    def _read_claim(self, path: Path) -> dict[str, object] | None:
        try:
            if path.is_symlink():
                return {}
            record: dict[str, object] = json.loads(path.read_text())
            return record
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # torn or foreign: judged by its age alone

    def _stale(self, path: Path, record: Mapping[str, object]) -> bool:
        """A claim whose owner cannot be playing the trial any more."""
        pid = record.get("pid")
        if record.get("host") == self.host and isinstance(pid, int):
            if pid == self.pid:
                return record.get("token") != self.token  # an earlier run in this very process
            if not process_alive(pid):
                return True
        try:
            age = time.time() - path.lstat().st_mtime
        except FileNotFoundError:
            return True
        return age > self.claim_ttl

    def _try_create(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(self._claim_record())
        with self._lock:
            self._held.add(path)
        return True

    def _take_over(self, path: Path, record: Mapping[str, object]) -> bool:
        """Move a stale claim aside and claim the trial; if someone else took it over first, give
        theirs back untouched."""
        aside = path.with_name(f"{path.name}.stale-{secrets.token_hex(4)}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return self._try_create(path)
        moved = self._read_claim(aside)
        if moved is not None and moved.get("token") != record.get("token"):
            with contextlib.suppress(OSError):  # we moved a fresh claim: put it back unless a newer one exists
                os.link(aside, path)
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        log.info("taking over trial claim %s (owner %s:%s stopped)", path.name, record.get("host"), record.get("pid"))
        return self._try_create(path)

    def claim(self, specs: Sequence[TrialSpec]) -> list[TrialSpec]:
        """The trials of ``specs`` this process may play: those nobody else is playing or has finished."""
        mine = []
        for spec in specs:
            shard, path = self.trials_dir / shard_name(spec.key), self._claim_path(spec)
            if shard.exists():
                continue
            claimed = self._try_create(path)
            if not claimed:
                record = self._read_claim(path)
                if record is None:
                    claimed = self._try_create(path)
                elif self._stale(path, record):
                    claimed = self._take_over(path, record)
            if claimed and shard.exists():  # finished elsewhere between the two checks
                self._release(path)
                claimed = False
            if claimed:
                mine.append(spec)
        return mine

    def release(self, specs: Sequence[TrialSpec]) -> None:
        """Give back the claims of ``specs`` (trials this process will not play after all)."""
        for spec in specs:
            self._release(self._claim_path(spec))

    def _release(self, path: Path) -> None:
        with self._lock:
            self._held.discard(path)
        record = self._read_claim(path)
        if record and record.get("token") == self.token:
            path.unlink(missing_ok=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(max(self.claim_ttl / 4, 0.05)):
            with self._lock:
                held = list(self._held)
            for path in held:
                with contextlib.suppress(OSError):
                    os.utime(path, follow_symlinks=False)

    def wait_for(self, specs: Sequence[TrialSpec]) -> dict[str, TrialOutput]:
        """Block until some of ``specs`` (claimed by other processes) are finished, returning them, or
        until one of them can be claimed again (its owner stopped), returning what arrived (maybe nothing)."""
        logged = False
        while True:
            arrived: dict[str, TrialOutput] = {}
            for spec in specs:
                output = self._load(spec)
                if output is not None:
                    arrived[spec.key] = output
            if arrived:
                self.from_others += len(arrived)
                return arrived
            for spec in specs:
                path = self._claim_path(spec)
                record = self._read_claim(path)
                if record is None or self._stale(path, record):
                    return {}
            if not logged:
                log.info("waiting for %d trial(s) other processes are playing in %s", len(specs), self.area)
                logged = True
            time.sleep(self.poll_seconds)

    # -- saving -----------------------------------------------------------------------------------

    def _write(self, path: Path, data: bytes) -> None:
        temporary = path.with_name(f".{path.name}.{self.host}.{self.pid}.{secrets.token_hex(4)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            if error.filename is None:  # a failed write names no file: name the shard (disk full, ...)
                raise OSError(error.errno, error.strerror, str(path)) from error
            raise
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def add(self, output: TrialOutput) -> None:
        path = self.trials_dir / shard_name(output.key)
        self._write(path, encode_trial(output, self.key))
        fsync_directory(self.trials_dir)
        self._release(path.with_name(path.name[: -len(SHARD_SUFFIX)] + CLAIM_SUFFIX))
        self.saved += 1

    def close(self) -> None:
        """Stop the heartbeat and give back every claim still held (a run that stopped early)."""
        self._stop.set()
        with self._lock:
            held = list(self._held)
        for path in held:
            self._release(path)

    def finish(self) -> None:
        self.close()
        log.info("checkpoint %s: %d trial(s) resumed, %d saved this run, %d played by other processes",
                 self.area, self.resumed, self.saved, self.from_others)


class TrialSink(Protocol):
    """Where a run keeps its finished trials (`CheckpointStore`); one that also claims trials is a
    `ClaimingSink`, and one with a ``close`` gives back what it holds when playing stops."""

    def start(self, run: ResolvedRun, meta: Mapping[str, object], specs: Iterable[TrialSpec]) -> dict[str, TrialOutput]:
        """The trials among ``specs`` already finished (resumed)."""
        ...

    def add(self, output: TrialOutput) -> None: ...

    def finish(self) -> None: ...


class ClaimingSink(Protocol):
    """A trial sink shared by several processes: it claims trials, gives claims back and waits for
    the trials others play (`CheckpointStore`)."""

    def claim(self, specs: Sequence[TrialSpec]) -> list[TrialSpec]: ...

    def release(self, specs: Sequence[TrialSpec]) -> None: ...

    def wait_for(self, specs: Sequence[TrialSpec]) -> dict[str, TrialOutput]: ...


def claimed_groups(sink: object, todo: Sequence[TrialSpec], done: Mapping[str, object],
                   groups: Callable[[list[TrialSpec]], list[list[TrialSpec]]],
                   on_arrival: Callable[[dict[str, TrialOutput]], None]) -> Iterator[list[TrialSpec]]:
    """The batches of ``todo`` this process plays. Without a sink that claims, simply ``groups(todo)``;
    with one, only trials it claims, then it waits for trials other processes play (``on_arrival``
    receives them) and plays any whose owner stopped, until every trial of ``todo`` is in ``done``."""
    if sink is None or not hasattr(sink, "claim"):
        yield from groups(list(todo))
        return
    claiming = cast(ClaimingSink, sink)  # a sink with ``claim`` has the whole claiming interface
    pending = list(todo)
    while pending:
        for group in groups(pending):
            fresh = [s for s in group if s.key not in done]
            if not fresh:
                continue
            mine = claiming.claim(fresh)
            if len(mine) < len(fresh):  # a group is played whole (same batch partners) or left to its players
                claiming.release(mine)
                continue
            yield group
        pending = [s for s in pending if s.key not in done]
        if pending:
            on_arrival(claiming.wait_for(pending))
            pending = [s for s in pending if s.key not in done]


def checkpoint_sink(config: RunConfig) -> CheckpointStore | None:
    """The trial sink a run uses by default: a `CheckpointStore` when ``--checkpoint-dir`` is set."""
    return CheckpointStore(config.checkpoint_dir) if config.checkpoint_dir else None
