"""deception_probes: probes, splits, metrics, nulls, generalisation and SAE-feature probes.

Importing this package is light (the plugin entry point imports it); numpy and scikit-learn are
imported by the modules that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deception_probes.methods import load_probe as _load

if TYPE_CHECKING:
    from deception_probes.methods import LinearProbe

__all__ = ["load_probe"]


def load_probe(path: Any) -> LinearProbe:
    """Load a probe saved by `LinearProbe.save` (``.safetensors`` + ``.json`` sidecar)."""

    return _load(path)
