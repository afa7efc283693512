"""The run: validate, load once, play trials, label, store, analyse."""

from deception_core.pipeline.runner import InterpretabilityRunner, RunResults

__all__ = ["InterpretabilityRunner", "RunResults"]
