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
    "Condition",
    "InterpretabilityRunner",
    "Kind",
    "Label",
    "Message",
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
    if name == "load_model":
        from deception_core.model.loading import load_model as _load
        from deception_core.model.spec import ModelSpec

        def load_model(model: str, device: str = "cpu", dtype: str = "float32"):
            """Load ``model`` (``embedded:NAME``, a directory or a Hugging Face id) for `capture_texts`."""
            return _load(ModelSpec.parse(model), device=device, dtype=dtype)

        return load_model
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("deception-core")
        except PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module 'deception_core' has no attribute {name!r}")
