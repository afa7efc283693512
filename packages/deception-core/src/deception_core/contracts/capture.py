"""The capture-backend interface.

A backend turns token-id prompts into replies and, for requests with ``capture=True``, returns the
residual stream after each chosen layer (TransformerLens ``blocks.{L}.hook_resid_post``; HF
``hidden_states[L + 1]`` before any final norm) at the recorded positions.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from deception_core.base.types import DEFAULT_POSITIONS, JSONObject, Position
from deception_core.model.intervention import Intervention
from deception_core.model.requests import GenerationRequest, Sampling

__all__ = ["CaptureBackend", "CaptureResult", "CaptureSpec", "GenerationRequest", "Intervention", "Sampling"]

if TYPE_CHECKING:
    import torch


@attrs.frozen
class CaptureSpec:
    """What to record: residual-stream layers, positions, and (TransformerLens backends only)
    extra hook points by name, such as ``blocks.3.hook_mlp_out``, whose activation is
    ``[batch, position, ...]``."""

    layers: tuple[int, ...]
    positions: tuple[Position, ...] = DEFAULT_POSITIONS
    hook_names: tuple[str, ...] = ()

    @property
    def store_all(self) -> bool:
        return Position.REPLY_ALL in self.positions


@attrs.define
class CaptureResult:
    """One generated reply and, if captured, its activations.

    ``activations[position]`` is a float32 tensor ``[n_layers, d_model]`` in the order of
    ``CaptureSpec.layers``; ``reply_all`` is ``[n_reply_tokens, n_layers, d_model]``.
    """

    prompt_ids: tuple[int, ...]
    reply_ids: tuple[int, ...]
    text: str
    stopped_by: str  # "eos" | "stop_string" | "max_tokens"
    activations: dict[Position, torch.Tensor] | None = None
    reply_all: torch.Tensor | None = None
    hooks: dict[str, dict[Position, torch.Tensor]] | None = None
    #: how an engine other than ``hf`` produced the reply ids (kept with the call), else None
    engine: JSONObject | None = None


class CaptureBackend(abc.ABC):
    """Generates with capture. One instance per run; holds the loaded model.

    A backend with settings declares ``settings_class`` (a frozen attrs class) and takes the value
    as a third constructor argument; the run structures ``components.capture_backend.<name>`` into
    it (`deception_core.config.components.settings_for`, unknown keys refused there)."""

    name: ClassVar[str]
    settings_class: ClassVar[type | None] = None

    def __init__(self, model: Any, spec: CaptureSpec) -> None:
        self.model = model
        self.spec = spec

    @abc.abstractmethod
    def generate(
        self,
        requests: Sequence[GenerationRequest],
        sampling: Sampling,
        interventions: Sequence[Intervention] = (),
    ) -> list[CaptureResult]:
        """Generate a reply for each request (one batch) and capture where asked."""

    def close(self) -> None:
        """Release what the backend holds (hooks, extra model copies)."""
