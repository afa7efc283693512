"""Model specs, the embedded models, and loading (torch is imported only by `loading`)."""

from deception_core.model.spec import ModelInfo, ModelSpec, peek_model

__all__ = ["ModelInfo", "ModelSpec", "peek_model"]
