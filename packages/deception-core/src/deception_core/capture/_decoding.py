"""Moved to `deception_core.model.decoding` (the model surface owns decoding); kept for old imports."""

from deception_core.model.decoding import DelayedStopStrings, SeededSampler, trim_at_stop

__all__ = ["DelayedStopStrings", "SeededSampler", "trim_at_stop"]
