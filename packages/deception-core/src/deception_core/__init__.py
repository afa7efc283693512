"""deception_core: the plugin core of the deception toolkit.

Light to import: plugin modules import ``hookimpl`` and ``lazy`` from here, and nothing heavy
(torch, transformers) is loaded until a run needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deception_core.config import RunConfig
from deception_core.hookspecs import hookimpl
from deception_core.registry import Kind, lazy
from deception_core.types import Condition, Label, Message, Mode, Position

if TYPE_CHECKING:
    from deception_core.runner import InterpretabilityRunner, RunResults

__all__ = [
    "Condition",
    "InterpretabilityRunner",
    "Kind",
    "Label",
    "Message",
    "Mode",
    "Position",
    "RunConfig",
    "RunResults",
    "__version__",
    "hookimpl",
    "lazy",
]


def __getattr__(name: str) -> Any:
    if name in ("InterpretabilityRunner", "RunResults"):
        from deception_core import runner

        return getattr(runner, name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("deception-core")
        except PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module 'deception_core' has no attribute {name!r}")
