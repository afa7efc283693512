"""The ``transformer-lens`` capture backend: TransformerLens hook points during generation.

The loaded HF model is wrapped in place by a `TransformerBridge` (one model copy), so the hook
points ``blocks.{L}.hook_resid_post`` (and any other hook point named in
`CaptureSpec.hook_names`) fire inside the same ``generate`` call that writes the reply: batching,
left padding, per-request seeded sampling and stop strings are those of the ``hf`` backend.

Processing difference: none. The bridge keeps the HF weights as they are (no folded layer norms,
no centred unembedding), so ``hook_resid_post`` equals the HF decoder-layer output; the
equivalence test bounds the difference at float32 rounding. `close` unwraps the model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deception_core.capture.hf import HFCaptureBackend
from deception_core.contracts.capture import CaptureSpec
from deception_core.model.generation import StepRecorder
from deception_core.model.intervention import Intervention
from deception_core.model.lens import (
    HookPointRecorder,
    boot_bridge,
    check_hook_names,
    parameter_snapshot,
    unwrap_bridge,
)
from deception_core.model.surface import Model


class TransformerLensCaptureBackend(HFCaptureBackend):
    name = "transformer-lens"
    supports_hook_names = True
    settings_class = None  # the hf backend's row retirement does not apply here

    def __init__(self, model: Model, spec: CaptureSpec) -> None:
        super().__init__(model, spec)
        self._snapshot = parameter_snapshot(model.hf_model)
        self.bridge: Any = boot_bridge(model.hf_model, self.tokenizer, model.tl_name or model.model_id)
        try:
            check_hook_names(self.bridge, spec.hook_names)
        except Exception:
            self.close()
            raise

    def _make_recorder(self, record: bool, interventions: Sequence[Intervention]) -> StepRecorder:
        return HookPointRecorder(self.bridge, self.spec.layers, self.spec.hook_names, record, interventions)

    def close(self) -> None:
        """Unwrap the HF model again, so later ``hf`` backends or plain calls see it untouched."""
        if getattr(self, "bridge", None) is not None:
            unwrap_bridge(self.model.hf_model, self._snapshot)
            self.bridge = None
