"""The deception-causal plugin: registers its components lazily (no heavy imports here)."""

from __future__ import annotations

from deception_core import hookimpl  # noqa: F401
