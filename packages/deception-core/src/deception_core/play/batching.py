"""How many generation calls share a batch, and which trials are in flight together.

Trials are played in *waves*: consecutive slices of the run's full plan (before any resume
filter). All trials of a wave are in flight at once and their pending calls share batches
whatever their scenario, mode, condition or caller. Because a wave is cut from the plan, not from
what is left to play, a resumed run replays the same waves with the same batch partners.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from deception_core.contracts.scenario import TrialSpec

if TYPE_CHECKING:
    import torch

    from deception_core.model.surface import Model

log = logging.getLogger("deception.runner")

#: the CPU batch size that `deception bench --pipeline` measured fastest on the embedded model
#: (2-core machine; larger batches gained nothing more per token)
CPU_BATCH_SIZE = 16
#: never more rows than this per batch (padding and the slowest row start to dominate)
MAX_AUTO_BATCH = 64
#: the longest prompt (tokens) a batch is sized for; game prompts stay well below it
PROMPT_BUDGET = 2048


def wave_size(batch_size: int) -> int:
    """Trials in flight together: twice the batch size, so batches stay full while some games
    wait for their other calls (one trial at a time at batch size 1). A crash costs at most the
    wave in flight."""
    return 1 if batch_size == 1 else 2 * batch_size


def waves(specs: Sequence[TrialSpec], batch_size: int) -> list[list[TrialSpec]]:
    """The plan cut into consecutive waves of ``wave_size(batch_size)`` trials."""
    size = wave_size(batch_size)
    return [list(specs[start : start + size]) for start in range(0, len(specs), size)]


def resolve_batch_size(requested: int | str, model: Model, max_new_tokens: int) -> int:
    """``requested`` if it is a number; for ``auto``, a size for the model's device."""
    if requested != "auto":
        return int(requested)
    if model.device != "cuda":
        return CPU_BATCH_SIZE
    import torch

    free = min(torch.cuda.mem_get_info(i)[0] for i in _cuda_devices(model.hf_model))
    size = cuda_batch_size(free, per_sequence_bytes(model.hf_model.config, PROMPT_BUDGET + max_new_tokens + 1,
                                                  _dtype_bytes(model.dtype)))
    log.info("--batch-size auto: %d (%.1f GiB free on the fullest GPU)", size, free / 2**30)
    return size


def cuda_batch_size(free_bytes: int, per_sequence: int, reserve: float = 0.2) -> int:
    """The largest power of two whose sequences fit in ``free_bytes`` less a ``reserve`` share."""
    room = int(free_bytes * (1 - reserve))
    size = 1
    while size * 2 <= MAX_AUTO_BATCH and size * 2 * per_sequence <= room:
        size *= 2
    return size


def per_sequence_bytes(config: Any, length: int, dtype_bytes: int) -> int:
    """Memory one sequence of ``length`` tokens needs while generating: its key/value cache, the
    prompt pass's attention scores (eager attention keeps them) and its widest activations."""
    text = getattr(config, "text_config", None) or config
    layers = int(text.num_hidden_layers)
    heads = int(text.num_attention_heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
    intermediate = int(getattr(text, "intermediate_size", None) or 4 * text.hidden_size)
    cache = 2 * layers * kv_heads * head_dim * length * dtype_bytes
    scores = heads * length * length * 4
    activations = 3 * length * intermediate * dtype_bytes
    return cache + scores + activations


def _dtype_bytes(name: str) -> int:
    return 4 if name == "float32" else 2


def _cuda_devices(hf_model: torch.nn.Module) -> list[int]:
    devices = {p.device.index or 0 for p in hf_model.parameters() if p.device.type == "cuda"}
    return sorted(devices) or [0]
