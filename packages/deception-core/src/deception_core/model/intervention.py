"""An edit of the residual stream after one decoder block: the unit of steering, ablation and patching."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import attrs

if TYPE_CHECKING:
    import torch


#: where the causal tests' edits act: from the last prompt token on ("reply": that token and every
#: generated one), or at every position but the first ("all"); see `deception_core.model.conditions`
EditSites = Literal["reply", "all"]


@attrs.frozen
class Intervention:
    """Change the residual stream after ``layer`` during generation (steering, ablation, patching).

    ``fn(hidden, step)`` receives the block output ``[batch, seq, d_model]`` and the decoding step
    (0 is the prompt pass) and returns the replacement.
    """

    layer: int
    fn: Callable[[torch.Tensor, int], torch.Tensor]
