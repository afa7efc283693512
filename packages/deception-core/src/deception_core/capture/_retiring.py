"""Moved to `deception_core.model.retiring` (the model surface owns decoding); kept for old imports."""

from deception_core.model.retiring import generate_retiring, plain_generation_config

__all__ = ["generate_retiring", "plain_generation_config"]
