"""The edits behind `Model.steer`, `Model.ablate` and `Model.patch`: functions of a block's output.

Each returns ``fn(hidden, step)`` for `deception_core.model.intervention.Intervention`; the
arithmetic runs in float32 and the result is cast back to the model's dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Edit = Callable[[torch.Tensor, int], torch.Tensor]


def add_along(unit: torch.Tensor, alpha: float) -> Edit:
    """``x + alpha u`` at every position and step."""

    def edit(hidden: torch.Tensor, _step: int) -> torch.Tensor:
        x = hidden.float() + alpha * unit.to(hidden.device)
        return x.to(hidden.dtype)

    return edit


def project_out(unit: torch.Tensor, mean: float | None = None) -> Edit:
    """``x - (x.u) u`` (``mean`` given: ``+ mean u``, the projection set to ``mean``) at every position and step."""

    def edit(hidden: torch.Tensor, _step: int) -> torch.Tensor:
        x = hidden.float()
        u = unit.to(x.device)
        x = x - (x @ u)[..., None] * u
        if mean is not None:
            x = x + float(mean) * u
        return x.to(hidden.dtype)

    return edit


def replace_at(positions: tuple[int, ...], values: torch.Tensor) -> Edit:
    """On the prompt pass (step 0), the states at ``positions`` replaced by ``values``
    (``[len(positions), d]`` for every row, or ``[batch, len(positions), d]``)."""

    def edit(hidden: torch.Tensor, step: int) -> torch.Tensor:
        if step != 0:
            return hidden
        x = hidden.clone()
        index = torch.tensor(positions, dtype=torch.long, device=x.device)
        x[:, index] = values.to(x.device, x.dtype).expand(x.shape[0], len(positions), x.shape[-1])
        return x

    return edit
