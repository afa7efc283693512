"""The core's own plugin: the built-in capture backends and SAE releases.

Registered through the ``deception`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from deception_core.hookspecs import hookimpl


@hookimpl
def register_capture_backends(registry) -> None:
    registry.add(
        "hf",
        "deception_core.capture.hf:HFCaptureBackend",
        summary="PyTorch forward hooks on the HF decoder layers during generate (default)",
    )


@hookimpl(trylast=True)
def resolve_capture_backend(model_id: str, model_type: str | None, requested: str | None) -> str | None:
    return requested or "hf"
