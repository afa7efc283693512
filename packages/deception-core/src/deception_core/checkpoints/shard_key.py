"""The per-checkpoint secret that binds checkpoint shards to their checkpoint.

A shard's plain sha256 only catches accidents: whoever edits a shard can recompute it. Each
checkpoint folder therefore holds a random key (``shard-key``, created once, readable by its
owner only) and every shard carries an HMAC-SHA256 under that key. A shard edited elsewhere, or
copied in from another checkpoint, fails the check and its trial is played again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from deception_core.base.errors import UsageError

KEY_FILE = "shard-key"
KEY_BYTES = 32


class CheckpointMismatch(UsageError):
    """A checkpoint directory that belongs to a run with a different config (or a damaged one)."""


def load_or_create_key(directory: Path) -> bytes:
    """The checkpoint's key; created (atomically, first writer wins) if the folder has none."""
    path = directory / KEY_FILE
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{KEY_FILE}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(KEY_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process created the key meanwhile: use theirs
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise CheckpointMismatch(f"{path} is not a checkpoint key; the checkpoint is damaged. Pass a new "
                                 "--checkpoint-dir (or delete that folder)")
    return key


def new_digest(key: bytes | None):
    """A hash object: HMAC-SHA256 under ``key``, or plain sha256 without one."""
    return hmac.new(key, digestmod=hashlib.sha256) if key is not None else hashlib.sha256()
