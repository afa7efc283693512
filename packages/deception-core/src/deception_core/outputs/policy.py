"""The output-folder policy: a run never destroys an earlier run.

``--output`` must be a new or empty folder, unless

- it holds the same run, unfinished (a crash or a full disk stopped it): the re-run resumes it from
  its checkpoint. "The same run" means: no finished dataset there, only files a run writes, and a
  ``config.json`` (if any) whose result-changing settings equal this run's; or
- ``--overwrite`` is given and the folder carries the marker this toolkit writes into every output
  folder it creates (`MARKER_FILE`), and is not an input of the same command (the model, a dataset
  read, the checkpoint folder) nor contains one: its contents are deleted first.

A folder is recognised by that marker alone, never by file names other programs also use (a Hugging
Face model folder has a ``config.json`` too). Folders written by versions before the marker are
refused for ``--overwrite`` with a message asking to delete them by hand.

Everything else is refused with exit code 2 before anything is written. Without ``--checkpoint-dir``
a run keeps its finished trials in ``<output>/checkpoint`` while it runs (so a crash or a full disk
loses nothing) and removes that folder once the dataset is complete.

Two processes never write one output folder: a command takes `OutputClaim` (an exclusive lock on a
file beside the folder) before it creates or changes the folder, checks the folder again under the
lock, and holds the lock until it is done. The process that does not get it exits with code 2
naming the one that did, having created and deleted nothing.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from deception_core.base.errors import DeceptionError, UsageError
from deception_core.base.types import JSONObject
from deception_core.config.resolved import recorded_result_config, result_config
from deception_core.config.sae import sae_settings
from deception_core.model.embedded import converted_dir
from deception_core.store.dataset import atomic_write_bytes, atomic_write_text, fsync_directory, replace_directory

if TYPE_CHECKING:
    from deception_core.config.run import RunConfig
    from deception_core.model.spec import ModelSpec

#: the default checkpoint folder inside --output
DEFAULT_CHECKPOINT = "checkpoint"
#: the marker every output folder this toolkit creates carries (run, merge, capture, analyze --output)
MARKER_FILE = "deception-run.json"
MARKER_FORMAT = "deception-output"
#: what a run writes directly into its output folder before its dataset is complete
RUN_FILES = frozenset({"run.log", "config.json", "plugins.json", DEFAULT_CHECKPOINT, MARKER_FILE})
#: files an output folder of an earlier version (before the marker) held; only used to word a refusal
LEGACY_RUN_FILES = ("config.json", "dataset/meta.json", "merge.json", f"{DEFAULT_CHECKPOINT}/manifest.json")


class QuietFileHandler(logging.FileHandler):
    """``run.log``: when the disk fills up, logging stops quietly (the run reports the error itself)
    instead of printing a traceback for every line it could not write."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        self.failed = True

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)


class WriteFailed(DeceptionError):
    """An OS error while writing outputs (disk full, permissions, I/O); exit code 1, with what was kept."""

    exit_code = 1


def checkpoint_dir(config: RunConfig) -> Path:
    """The checkpoint folder a run uses: ``--checkpoint-dir``, else ``<output>/checkpoint``."""
    return Path(config.checkpoint_dir) if config.checkpoint_dir else Path(config.output) / DEFAULT_CHECKPOINT


def write_marker(folder: Path, command: str) -> None:
    """Mark ``folder`` as an output folder of this toolkit (what ``--overwrite`` may delete)."""

    record = {"format": MARKER_FORMAT, "version": 1, "command": command, "created": _now(),
              "host": socket.gethostname(), "pid": os.getpid()}
    atomic_write_text(folder / MARKER_FILE, json.dumps(record, indent=2) + "\n")


@contextmanager
def staged_folder(staging: Path | None, target: Path, command: str) -> Iterator[None]:
    """Mark ``staging`` as this toolkit's output of ``command``, let the block write into it, then move
    it into ``target``: the folder appears whole or not at all. On any error, and on an interrupt, the
    staging folder is removed. ``staging`` None: the block writes in place, with nothing to move."""
    if staging is None:
        yield
        return
    try:
        write_marker(staging, command)
        yield
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_marker(folder: Path) -> JSONObject | None:
    """The marker of ``folder``, or None when it has none (a symbolic link or a file of another
    format does not count)."""
    path = folder / MARKER_FILE
    if path.is_symlink() or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("format") == MARKER_FORMAT else None


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` is an output folder this toolkit marked as its own."""
    return path.is_dir() and not path.is_symlink() and read_marker(path) is not None


def made_by(folder: Path) -> str:
    """`` (written by `deception run`, process 12 on host h, 2026-...)``, or "" without a marker."""
    record = read_marker(folder)
    if record is None:
        return ""
    return (f" (written by `deception {record.get('command', '?')}`, process {record.get('pid', '?')} on "
            f"{record.get('host', '?')}, {record.get('created', '?')})")


def refuse_unmarked(out: Path, flag: str) -> UsageError:
    """The refusal of ``--overwrite`` on a folder without the marker, worded for what it holds."""
    if any((out / name).exists() for name in LEGACY_RUN_FILES):
        return UsageError(
            f"{flag} {out} is not a deception run folder this version marked as its own (it has no {MARKER_FILE}: "
            "it was written by an earlier version, or holds another program's files such as a model's "
            "config.json); --overwrite only replaces marked run folders. If it is an old run you no longer need, "
            f"delete it by hand; otherwise pass a new or empty {flag}"
        )
    return UsageError(
        f"{flag} {out} is not empty and is not a deception run folder (no {MARKER_FILE}); --overwrite only "
        f"replaces run folders. Pass a new or empty {flag}"
    )


def refuse_inputs(out: Path, inputs: Iterable[tuple[str, str | Path | None]], flag: str) -> None:
    """Refuse an output folder that is, or contains, an input of the same command (``--overwrite``
    would delete it, and writing there would change what is being read)."""
    target = Path(out).expanduser().resolve()
    for what, path in inputs:
        if path is None or not str(path).strip():
            continue
        source = Path(path).expanduser().resolve()
        if source == target or target in source.parents:
            relation = "is" if source == target else "contains"
            raise UsageError(f"{flag} {out} {relation} {what} {path}, which this command reads; an output folder "
                             f"never replaces an input. Pass another {flag}")


def dataset_folder_above(path: Path) -> Path | None:
    """The dataset folder (``meta.json`` beside ``samples.jsonl``) that ``path`` is or lies inside, if any."""
    probe = Path(os.path.abspath(Path(path).expanduser()))
    return next((folder for folder in (probe, *probe.parents) if _is_dataset(folder)), None)


def run_folder_above(path: Path) -> Path | None:
    """The run or dataset folder that ``path`` is or lies inside, if any: a folder this toolkit marked,
    a dataset folder (``meta.json`` beside ``samples.jsonl``), or one holding such a ``dataset/``."""
    probe = Path(os.path.abspath(Path(path).expanduser()))
    for folder in (probe, *probe.parents):
        if read_marker(folder) is not None or _is_dataset(folder) or _is_dataset(folder / "dataset"):
            return folder
    return None


def _is_dataset(folder: Path) -> bool:
    return (folder / "meta.json").is_file() and (folder / "samples.jsonl").is_file()


def check_output_file(path: str | Path, overwrite: bool, flag: str = "--output",
                      own: str | Path | None = None, overwrite_flag: str | None = "--overwrite") -> Path:
    """Refuse a file output a command may not write: one inside a run or dataset folder (other than
    ``own``, the command's own file there, such as a run's ``report.html``), or an existing file
    without ``--overwrite``. Returns the path."""

    path = Path(path)
    if not str(path).strip():
        raise UsageError(f"{flag} is empty; pass the path of a new file")
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; pass the path of a file")
    is_own = own is not None and Path(os.path.abspath(path)) == Path(os.path.abspath(own))
    if not is_own:
        run = run_folder_above(path.parent)
        if run is not None:
            raise UsageError(f"{flag} {path} is inside the run or dataset folder {run}, which holds only what the "
                             f"toolkit wrote there; write {path.name} outside it")
        if (path.exists() or path.is_symlink()) and not overwrite:
            choice = f", or {overwrite_flag} to replace it" if overwrite_flag else " (or delete it first)"
            raise UsageError(f"{flag} {path} exists; a command never replaces a file it did not write. Pass another "
                             f"{flag}{choice}")
    check_writable(path.parent, flag)
    return path


def publish_file(path: Path, data: bytes, overwrite: bool, flag: str = "--output") -> None:
    """Write ``path`` atomically; without ``overwrite`` only if no file appeared there meanwhile (a hard
    link of the finished temporary file, which fails when the name exists)."""

    if overwrite:
        atomic_write_bytes(path, data)
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    atomic_write_bytes(tmp, data)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise UsageError(f"{flag} {path} was created by another process meanwhile; it was left as it is. "
                             f"Pass another {flag}") from None
        except OSError as error:  # a file system without hard links: the check above, then a rename
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if path.exists():
                raise UsageError(f"{flag} {path} was created by another process meanwhile; it was left as it "
                                 f"is. Pass another {flag}") from None
            os.replace(tmp, path)
        fsync_directory(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _is_staging(name: str) -> bool:
    return name.startswith(".") and (".staging-" in name or ".tmp-" in name or ".old-" in name)


def run_inputs(config: RunConfig, model_spec: ModelSpec | None = None) -> list[tuple[str, str | Path | None]]:
    """What a run reads from disk while it runs: the model being loaded, the checkpoint folder and
    the SAE (an output folder may be none of them, nor contain one)."""
    sae = sae_settings(config.components)
    inputs: list[tuple[str, str | Path | None]] = [("the checkpoint folder", config.checkpoint_dir),
                                                   ("the SAE", sae.path if sae is not None else None)]
    if model_spec is not None and model_spec.path is not None:
        inputs.append(("the model", model_spec.path))
    elif model_spec is not None and model_spec.embedded is not None:
        inputs.append(("the model", converted_dir(model_spec.embedded)))
    return inputs


def check_output(config: RunConfig, flag: str = "--output",
                 inputs: Iterable[tuple[str, str | Path | None]] = ()) -> str:
    """Refuse an output folder this run may not use; return ``"new"``, ``"resume"`` or ``"overwrite"``."""
    out = Path(config.output)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {out} is a file; pass a folder (new or empty)")
    if not out.is_dir():
        return "new"
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return "new"
    if config.overwrite:
        if not is_run_folder(out):
            raise refuse_unmarked(out, flag)
        refuse_inputs(out, inputs, flag)
        return "overwrite"
    shown = ", ".join(entries[:6]) + (f" and {len(entries) - 6} more" if len(entries) > 6 else "")
    refuse = UsageError(
        f"{flag} {out} is not empty (it holds {shown}){made_by(out)}; a run never replaces an earlier one. Pass a "
        f"new {flag}, or --overwrite to delete the earlier run there"
    )
    if (out / "dataset").exists() or any(e not in RUN_FILES and not _is_staging(e) for e in entries):
        raise refuse
    saved = out / "config.json"
    if saved.is_file():
        try:
            recorded = json.loads(saved.read_text()).get("config", {})
            if not isinstance(recorded, dict):
                raise refuse
            earlier = recorded_result_config(recorded)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, OSError):
            raise refuse from None
        wanted = result_config(config)
        differing = sorted(k for k in wanted if earlier.get(k) != wanted[k])
        if differing:
            raise UsageError(
                f"{flag} {out} holds an unfinished run with different settings ({', '.join(differing)}); "
                f"re-run with that run's settings to resume it, pass a new {flag}, or --overwrite to delete it"
            )
    return "resume"


def process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_staging(folder: Path) -> list[Path]:
    """Remove the staging folders and temporary files (``.<name>.staging-<pid>-<hex>``, ``.tmp-``) a killed
    process left in ``folder``; those of a live process, and anything else, are left alone."""
    removed = []
    for entry in folder.iterdir():
        if not _is_staging(entry.name) or entry.is_symlink():
            continue
        try:
            pid = int(entry.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        if process_alive(pid):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def clear_for_overwrite(out: Path) -> None:
    """Delete the contents of a run folder (``--overwrite``), never following symbolic links."""
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


#: errors that mean "the outputs cannot be written here" rather than a bug
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM})


def is_write_error(error: OSError) -> bool:
    return error.errno in WRITE_ERRNOS


def describe_os_error(error: OSError) -> str:
    what = error.strerror or str(error)
    where = f" {error.filename}" if error.filename else ""
    hint = {
        errno.ENOSPC: "free some space",
        errno.EDQUOT: "free some space (the disk quota is used up)",
        errno.EROFS: "choose a writable folder",
        errno.EACCES: "fix the folder's permissions",
        errno.EPERM: "fix the folder's permissions",
    }.get(error.errno or 0, "fix the cause")
    return f"writing{where} failed: {what}; {hint}"


LOCK_SUFFIX = "deception-lock"


class OutputClaim:
    """An exclusive claim on an output folder (or file) for one command, held from before the folder
    is created or changed until the command is done.

    The lock is ``flock`` on ``.<name>.deception-lock`` beside the target (beside, so that a folder
    built elsewhere and renamed into place, or deleted on failure, never takes the lock with it). The
    kernel releases it when the process dies, so a killed process leaves no stale claim; the file is
    removed on release, and a process that locked a file another one removed meanwhile tries again.
    The holder writes who it is into the file, which is what the refused process names. Folders it
    had to create for the lock are removed again on release when they are still empty (a command
    that failed leaves no trace).
    """

    def __init__(self, target: str | Path, command: str, flag: str = "--output") -> None:
        self.target = Path(target)
        self.command = command
        self.flag = flag
        absolute = Path(os.path.abspath(self.target))
        self.path = absolute.with_name(f".{absolute.name}.{LOCK_SUFFIX}")
        self._fd: int | None = None
        self._created: list[Path] = []  # the folders made for the lock, outermost first

    def __enter__(self) -> OutputClaim:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no flock on this platform: no claim
            return
        while True:
            self._make_parents()
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
            except FileNotFoundError:
                continue  # another process removed the empty folder it had made meanwhile: make it again
            except OSError as error:
                if error.errno != errno.ELOOP:
                    raise
                raise UsageError(f"{self.path} is a symbolic link, not a lock file of this toolkit; remove it and "
                                 "run the command again") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise UsageError(
                    f"{self.flag} {self.target} is being written by {self._holder()}; two commands never write "
                    f"one output. Wait for it to finish, or pass another {self.flag}"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file we locked on release: lock the new one
        record = {"command": self.command, "pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(record).encode())
        self._fd = fd

    def _make_parents(self) -> None:
        missing = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            self._created.append(folder)

    def _holder(self) -> str:
        """Who holds the lock, as it wrote into the file right after locking it (waited for up to a second)."""
        import time

        for _ in range(50):
            try:
                record = json.loads(self.path.read_text(encoding="utf-8"))
                return (f"`deception {record['command']}` (process {record['pid']} on {record['host']}, "
                        f"since {record['since']})")
            except (OSError, ValueError, KeyError, TypeError):
                time.sleep(0.02)  # locked a moment ago, its record not written yet
        return "another deception command"

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: the command wrote its output there
        self._created = []


def check_writable(path: Path, flag: str) -> None:
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{flag} {path} is inside {probe}, which is a file, not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path} is not writable (no write permission on {probe}); choose another directory")
