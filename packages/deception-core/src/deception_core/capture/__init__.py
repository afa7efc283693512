"""Capture backends: generate replies and record the residual stream of those forward passes."""

from deception_core.contracts.capture import (
    CaptureBackend,
    CaptureResult,
    CaptureSpec,
    GenerationRequest,
    Sampling,
)
from deception_core.model.intervention import Intervention

__all__ = ["CaptureBackend", "CaptureResult", "CaptureSpec", "GenerationRequest", "Intervention", "Sampling"]
