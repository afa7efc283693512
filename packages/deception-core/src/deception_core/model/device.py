"""Device auto-detection and dtype resolution (imports torch lazily)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from deception_core.base.errors import UsageError

log = logging.getLogger("deception.models")


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but CUDA is not available; use --device cpu or auto")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError("--device mps was asked for but MPS (Apple silicon) is not available here; "
                         "use --device cpu or auto")
    return requested


def resolve_dtype(requested: str, device: str) -> str:
    """On CPU, half precision is slow or unsupported: fall back to float32 with a notice."""
    if device == "cpu" and requested != "float32":
        log.warning("--dtype %s on CPU would be slow; using float32 instead", requested)
        return "float32"
    return requested


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]
