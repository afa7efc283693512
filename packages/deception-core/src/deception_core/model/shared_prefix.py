"""A left-padded prompt pass that computes each shared token prefix once.

Prompts that start the same way (the judge's instructions before every case, the same scenario
briefing in several trials) would otherwise run the same tokens through the model once per row.
Here rows are grouped by common prefix; each group's prefix is run once, its key/value cache is
copied into every row of the group, and only the rest of each prompt is fed. The result is the
cache, attention mask and positions a plain left-padded pass over the whole prompts would leave,
so the caller continues exactly as after that pass.

Exact up to float noise, also for sliding-window attention: every row keeps the plain layout
(left padding, then its tokens at consecutive indices), so index distances equal position
distances as in the plain pass. Only plain dynamic cache layers are rebuilt; any other cache (or
a model without ``logits_to_keep``) falls back to the plain pass. No hooks should be recording:
the prefix pass is an extra forward call.

A `PrefixMemory` holds a prefix that the caller knows many prompts open with (a judge's fixed
instructions) and its cache, run once and reused by every later pass; at batch size 1, where a
batch has no partner to share with, that is the only sharing there is. The prefix is given, never
learned from earlier calls, so what a pass computes depends only on its own prompts: a batch
replayed after a resume gives the same numbers as the first time.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch

from deception_core.model.padding import mask_positions, pad_batch

if TYPE_CHECKING:
    from transformers import DynamicCache, PreTrainedModel
    from transformers.modeling_outputs import CausalLMOutputWithPast

#: below this many shared tokens a prefix is not worth a separate forward call
MIN_SHARED_TOKENS = 32


@attrs.frozen
class PromptPass:
    """What a left-padded pass over whole prompts leaves behind."""

    output: CausalLMOutputWithPast  # the model output of the last forward call (logits of each row's last prompt token)
    cache: DynamicCache
    mask: torch.Tensor  # [rows, width], 0 on left padding
    position: torch.Tensor  # [rows, width] position ids
    shared_tokens: int  # prompt tokens not fed again thanks to sharing (0 for a plain pass)


@attrs.define
class PrefixMemory:
    """A token prefix that many prompts open with, and its key/value cache once it has been run.

    The cache comes from one pass over all of ``tokens`` (one row, positions 0.., no padding), so
    its values are the same whichever prompts use it and whenever; a pass uses as much of it as
    all its prompts share.
    """

    tokens: tuple[int, ...]
    cache: DynamicCache | None = None


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def prefix_groups(prompts: Sequence[Sequence[int]], min_shared: int = MIN_SHARED_TOKENS) -> tuple[list[int], list[int]]:
    """``(group of each row, shared prefix length of each group)``: rows sorted by their tokens are cut
    where neighbours share fewer than ``min_shared`` tokens; a group's prefix is what all its rows
    share, less one token so every row still feeds its last prompt token (0 for a single row)."""
    order = sorted(range(len(prompts)), key=lambda i: tuple(prompts[i]))
    group_of = [0] * len(prompts)
    lengths: list[int] = []
    members: list[int] = []

    def close() -> None:
        if len(members) < 2:
            lengths.append(0)
            return
        shared = min(common_length(prompts[members[0]], prompts[i]) for i in members[1:])
        lengths.append(min(shared, min(len(prompts[i]) for i in members) - 1))

    for rank, row in enumerate(order):
        if rank and common_length(prompts[order[rank - 1]], prompts[row]) < min_shared:
            close()
            members = []
        members.append(row)
        group_of[row] = len(lengths)
    close()
    return group_of, lengths


def _rebuildable(cache: DynamicCache) -> bool:
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    layers: list[object] = list(getattr(cache, "layers", None) or [])
    return bool(layers) and all(type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers)


def _plain(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, position: torch.Tensor) -> PromptPass:
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    output = model(input_ids=ids, attention_mask=mask, position_ids=position, past_key_values=cache,
                   use_cache=True, logits_to_keep=1)
    return PromptPass(output, cache, mask, position, 0)


def left_padded(prompts: Sequence[Sequence[int]], pad: int,
                device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids, mask, position)`` of ``prompts`` left-padded to the longest."""
    ids, mask = pad_batch(prompts, pad, side="left")
    ids, mask = ids.to(device), mask.to(device)
    return ids, mask, mask_positions(mask)


def _within_window(model: PreTrainedModel, length: int) -> int:
    """``length`` cut to what a sliding-window layer keeps (its window less one), so a cached
    prefix never loses tokens that such a layer would have dropped."""
    window = getattr(model.config, "sliding_window", None)
    return min(length, int(window) - 1) if window else length


def _longest_prefix(model: PreTrainedModel, prompts: Sequence[Sequence[int]]) -> int:
    """The most tokens a prefix may hold: every row still feeds its last prompt token, within the window."""
    return _within_window(model, min(len(p) for p in prompts) - 1)


def prompt_pass(model: PreTrainedModel, prompts: Sequence[Sequence[int]], pad: int, device: torch.device | str,
                min_shared: int = MIN_SHARED_TOKENS, memory: PrefixMemory | None = None) -> PromptPass:
    """Run ``prompts`` (token ids) left-padded through ``model``, computing shared prefixes once
    (once per batch, or once while ``memory`` holds a prefix they share)."""
    ids, mask, position = left_padded(prompts, pad, device)
    width = ids.shape[1]
    pads = [width - len(p) for p in prompts]
    if memory is not None:
        remembered = _from_memory(model, memory, prompts, ids, mask, position, pads, min_shared)
        if remembered is not None:
            return remembered
    group_of, shared = prefix_groups(prompts, min_shared)
    shared = [_within_window(model, s) for s in shared]
    # cached columns: every row's cached part must lie inside its group's prefix
    cached = min(shared[g] + p for g, p in zip(group_of, pads, strict=True))
    if cached < min_shared:
        return _plain(model, ids, mask, position)
    from transformers import DynamicCache

    heads = [next(i for i, g in enumerate(group_of) if g == group) for group in range(len(shared))]
    lengths = [min(shared[g], cached) for g in range(len(shared))]
    used = [g for g in range(len(shared)) if lengths[g] > 0]
    prefix_ids, prefix_mask, prefix_position = left_padded([prompts[heads[g]][: lengths[g]] for g in used], pad, device)
    prefix_cache = DynamicCache(config=model.config)
    if not _rebuildable(prefix_cache):  # the layers exist before the first pass: check before spending it
        return _plain(model, ids, mask, position)
    model(input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=prefix_position,
          past_key_values=prefix_cache, use_cache=True, logits_to_keep=1)
    prefix_width = prefix_ids.shape[1]
    slot = {g: k for k, g in enumerate(used)}
    # where each row's cached tokens sit in the prefix pass: (prefix row, first column, count)
    sources = [(slot.get(group, 0), prefix_width - lengths[group], cached - pad_count)
               for group, pad_count in zip(group_of, pads, strict=True)]
    return _rest_of_prompts(model, prefix_cache, sources, pads, cached, ids, mask, position)


def _from_memory(model: PreTrainedModel, memory: PrefixMemory, prompts: Sequence[Sequence[int]], ids: torch.Tensor,
                 mask: torch.Tensor, position: torch.Tensor, pads: Sequence[int], min_shared: int) -> PromptPass | None:
    """The pass with each row's first tokens taken from ``memory``, or None when the prompts share
    fewer than ``min_shared`` of its tokens (or its cache cannot be rebuilt)."""
    usable = min(_longest_prefix(model, prompts), min(common_length(memory.tokens, p) for p in prompts))
    remembered = _run_once(model, memory, ids.device) if usable >= min_shared else None
    if remembered is None:
        return None
    cached = min(usable + p for p in pads)  # every row's cached tokens lie inside the remembered prefix
    sources = [(0, 0, cached - p) for p in pads]
    return _rest_of_prompts(model, copy.deepcopy(remembered), sources, pads, cached, ids, mask, position)


def _run_once(model: PreTrainedModel, memory: PrefixMemory, device: torch.device | str) -> DynamicCache | None:
    """``memory.cache``, filled on first use (tokens beyond a sliding window are dropped first, as such
    a layer would drop them); None when the model's cache cannot be rebuilt."""
    from transformers import DynamicCache

    if memory.cache is not None:
        return memory.cache
    memory.tokens = memory.tokens[: _within_window(model, len(memory.tokens))]
    cache = DynamicCache(config=model.config)
    if not memory.tokens or not _rebuildable(cache):
        return None
    tokens = torch.tensor([list(memory.tokens)], dtype=torch.long, device=device)
    model(input_ids=tokens, attention_mask=torch.ones_like(tokens),
          position_ids=torch.arange(tokens.shape[1], device=device)[None], past_key_values=cache, use_cache=True,
          logits_to_keep=1)
    memory.cache = cache
    return cache


def _rest_of_prompts(model: PreTrainedModel, prefix_cache: DynamicCache, sources: Sequence[tuple[int, int, int]],
                     pads: Sequence[int], cached: int, ids: torch.Tensor, mask: torch.Tensor,
                     position: torch.Tensor) -> PromptPass:
    """Rebuild ``prefix_cache`` in place as the batch's first ``cached`` columns (each row's tokens
    from ``sources``, see `_spread`) and feed the remaining columns."""
    layer: Any  # written duck-typed: only plain dynamic layers get here (see `_rebuildable`)
    for layer in prefix_cache.layers:
        layer.keys = _spread(layer.keys, sources, pads, cached)
        layer.values = _spread(layer.values, sources, pads, cached)
        if hasattr(layer, "cumulative_length"):
            layer.cumulative_length = cached
    output = model(input_ids=ids[:, cached:], attention_mask=mask, position_ids=position[:, cached:],
                   past_key_values=prefix_cache, use_cache=True, logits_to_keep=1)
    return PromptPass(output, prefix_cache, mask, position, cached * len(pads) - sum(min(p, cached) for p in pads))


def _spread(states: torch.Tensor, sources: Sequence[tuple[int, int, int]], pads: Sequence[int],
            cached: int) -> torch.Tensor:
    """``[rows, heads, cached, dim]``: each row's cached tokens copied from its group's prefix,
    after its own left padding (zeros, masked out)."""
    out = states.new_zeros((len(sources), states.shape[1], cached, states.shape[3]))
    for row, ((source, start, take), pad_count) in enumerate(zip(sources, pads, strict=True)):
        if take > 0:
            out[row, :, pad_count:] = states[source, :, start : start + take]
    return out
