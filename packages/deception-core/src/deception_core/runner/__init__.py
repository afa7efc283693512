"""The run: validate, load once, play trials, label, store, analyse."""

from deception_core.runner.runner import InterpretabilityRunner, RunResults

__all__ = ["InterpretabilityRunner", "RunResults"]
