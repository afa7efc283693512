"""deception_core: the plugin core of the deception toolkit.

Light to import: plugin modules import ``hookimpl`` and ``lazy`` from here, and nothing heavy
(torch, transformers) is loaded until a run needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deception_core.base.registry import Kind, lazy
from deception_core.base.types import Condition, Label, Message, Mode, Position
from deception_core.config.run import RunConfig
from deception_core.contracts.hookspecs import hookimpl

if TYPE_CHECKING:
    from deception_core.pipeline import InterpretabilityRunner, RunResults

__all__ = [
    "ActivationCache",
    "Condition",
    "InterpretabilityRunner",
    "Kind",
    "Label",
    "Message",
    "Model",
    "Mode",
    "Position",
    "RunConfig",
    "RunResults",
    "TextRecord",
    "__version__",
    "capture_texts",
    "hookimpl",
    "lazy",
    "load_model",
    "read_text_records",
]


def __getattr__(name: str) -> Any:
    if name in ("InterpretabilityRunner", "RunResults"):
        from deception_core import pipeline as runner

        return getattr(runner, name)
    if name in ("capture_texts", "read_text_records", "TextRecord"):
        from deception_core.capture import texts

        return getattr(texts, name)
    if name in ("load_model", "Model", "ActivationCache"):
        from deception_core.model import cache, surface

        return getattr(cache if name == "ActivationCache" else surface, name)
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("deception-core")
        except PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module 'deception_core' has no attribute {name!r}")
