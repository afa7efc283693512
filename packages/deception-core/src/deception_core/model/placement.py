"""Where a model's modules go on a machine with several GPUs (Accelerate's ``device_map``).

A model that fits on the first GPU (with room left for the key/value cache) stays whole on it. A
larger one is split by decoder layer over the GPUs, balanced so every GPU keeps room for its
share of the cache; the plan never spills to CPU or disk (that would be far slower than the user
expects from ``--device auto``), it refuses instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from deception_core.base.errors import UsageError

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig

log = logging.getLogger("deception.models")

#: share of a GPU's free memory the weights may take (the rest: cache, activations, CUDA context)
WEIGHT_SHARE = 0.8


def weight_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def plan_device_map(config: PretrainedConfig, dtype: torch.dtype, free_bytes: Sequence[int]) -> dict[str, int] | None:
    """``None`` when the model fits on GPU 0, else a module -> GPU index map over all GPUs.

    ``free_bytes`` is the free memory of each GPU (``torch.cuda.mem_get_info``); tests pass made-up
    sizes, since nothing here touches a GPU: the model is built on the meta device.
    """
    from accelerate import infer_auto_device_map, init_empty_weights
    from accelerate.utils import get_balanced_memory
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        empty = AutoModelForCausalLM.from_config(config, dtype=dtype)
    size = weight_bytes(empty)
    budget = [int(WEIGHT_SHARE * free) for free in free_bytes]
    if not budget or size <= budget[0]:
        return None
    if len(budget) == 1 or size > sum(budget):
        raise UsageError(
            f"the model's weights ({size / 2**30:.1f} GiB) do not fit in {WEIGHT_SHARE:.0%} of the free memory of "
            f"{len(budget)} GPU(s) ({', '.join(f'{b / 2**30:.1f}' for b in budget)} GiB); use more or larger GPUs, "
            "a smaller --dtype (bfloat16), or a smaller model"
        )
    no_split = list(getattr(empty, "_no_split_modules", None) or [])
    memory = dict(enumerate(budget))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # accelerate warns about devices it cannot see (the planner is pure)
        balanced = get_balanced_memory(empty, max_memory=memory, no_split_module_classes=no_split, dtype=dtype)
        plan = infer_auto_device_map(empty, max_memory=balanced, no_split_module_classes=no_split, dtype=dtype)
        if not _on_gpus(plan):
            plan = infer_auto_device_map(empty, max_memory=memory, no_split_module_classes=no_split, dtype=dtype)
    if not _on_gpus(plan):
        raise UsageError(
            f"the model's weights ({size / 2**30:.1f} GiB) cannot be split over the {len(budget)} GPUs without "
            "spilling to CPU; use larger GPUs or a smaller --dtype"
        )
    return {name: int(device) for name, device in plan.items()}


def _on_gpus(plan: Mapping[str, object]) -> bool:
    return all(isinstance(device, int) for device in plan.values())


def cuda_free_bytes() -> list[int]:
    import torch

    return [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
