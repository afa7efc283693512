"""The output-folder policy: a run never destroys an earlier run.

``--output`` must be a new or empty folder, unless

- it holds the same run, unfinished (a crash or a full disk stopped it): the re-run resumes it from
  its checkpoint. "The same run" means: no finished dataset there, only files a run writes, and a
  ``config.json`` (if any) whose result-changing settings equal this run's; or
- ``--overwrite`` is given and the folder is a deception run folder: its contents are deleted first.

Everything else is refused with exit code 2 before anything is written. Without ``--checkpoint-dir``
a run keeps its finished trials in ``<output>/checkpoint`` while it runs (so a crash or a full disk
loses nothing) and removes that folder once the dataset is complete.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from deception_core.errors import DeceptionError, UsageError

#: the default checkpoint folder inside --output
DEFAULT_CHECKPOINT = "checkpoint"
#: what a run writes directly into its output folder before its dataset is complete
RUN_FILES = frozenset({"run.log", "config.json", "plugins.json", DEFAULT_CHECKPOINT})
#: files whose presence marks a folder as a deception run (or merge) folder
RUN_MARKERS = ("config.json", "dataset/meta.json", "merge.json", f"{DEFAULT_CHECKPOINT}/manifest.json")


class QuietFileHandler(logging.FileHandler):
    """``run.log``: when the disk fills up, logging stops quietly (the run reports the error itself)
    instead of printing a traceback for every line it could not write."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - the logging API's name
        self.failed = True

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)


class WriteFailed(DeceptionError):
    """An OS error while writing outputs (disk full, permissions, I/O); exit code 1, with what was kept."""

    exit_code = 1


def checkpoint_dir(config: Any) -> Path:
    """The checkpoint folder a run uses: ``--checkpoint-dir``, else ``<output>/checkpoint``."""
    return Path(config.checkpoint_dir) if config.checkpoint_dir else Path(config.output) / DEFAULT_CHECKPOINT


def is_run_folder(path: Path) -> bool:
    return any((path / marker).exists() for marker in RUN_MARKERS)


def _result_fields(config: Any) -> dict[str, Any]:
    from deception_core.runner.outputs import RESULT_FIELDS

    values = config.to_dict()
    return {name: values.get(name) for name in RESULT_FIELDS}


def _is_staging(name: str) -> bool:
    return name.startswith(".") and (".staging-" in name or ".tmp-" in name or ".old-" in name)


def check_output(config: Any, flag: str = "--output") -> str:
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
            raise UsageError(
                f"{flag} {out} is not empty and is not a deception run folder; --overwrite only replaces "
                "run folders. Pass a new or empty folder"
            )
        return "overwrite"
    shown = ", ".join(entries[:6]) + (f" and {len(entries) - 6} more" if len(entries) > 6 else "")
    refuse = UsageError(
        f"{flag} {out} is not empty (it holds {shown}); a run never replaces an earlier one. Pass a new "
        f"{flag}, or --overwrite to delete the earlier run there"
    )
    if (out / "dataset").exists() or any(e not in RUN_FILES and not _is_staging(e) for e in entries):
        raise refuse
    saved = out / "config.json"
    if saved.is_file():
        try:
            earlier = json.loads(saved.read_text()).get("config", {})
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, OSError):
            raise refuse from None
        wanted = _result_fields(config)
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
