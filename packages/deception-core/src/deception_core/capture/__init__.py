"""Capture backends: generate replies and record the residual stream of those forward passes."""

from deception_core.capture.base import (
    CaptureBackend,
    CaptureResult,
    CaptureSpec,
    GenerationRequest,
    Intervention,
    Sampling,
)

__all__ = ["CaptureBackend", "CaptureResult", "CaptureSpec", "GenerationRequest", "Intervention", "Sampling"]
