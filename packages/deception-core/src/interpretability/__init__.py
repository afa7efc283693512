"""The predecessor's import path, kept so its scripts and the cloud guide's verify step work.

``from interpretability import InterpretabilityRunner`` gives `deception_core.InterpretabilityRunner`
(configured with a `deception_core.RunConfig`, not the predecessor's keyword arguments). New code
should import from `deception_core`.
"""

from __future__ import annotations

from typing import Any

import deception_core
from deception_core import RunConfig

__all__ = ["InterpretabilityRunner", "RunConfig", "RunResults"]


def __getattr__(name: str) -> Any:
    if name in ("InterpretabilityRunner", "RunResults"):
        return getattr(deception_core, name)
    raise AttributeError(f"module 'interpretability' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
