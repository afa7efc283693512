"""Replies to a few prompts, each under many row-wise edits: the causal tests' generation.

Each prompt appears once per condition (a steering strength, a random direction, an ablation), so
a batch holds every condition of each of its prompts, left-padded to the longest prompt:

- ``sites="reply"``: the edits act from the last prompt token on (the token whose state predicts
  the first reply token) and on every generated token. The rest of a prompt is unedited, so it runs
  once per prompt and its key/value cache is copied into every condition's row; then the last prompt
  token is fed with the edits on. Contrastive activation addition (Rimsky et al. 2024) steers the
  same positions: those after the user's prompt.
- ``sites="all"``: the edits act at every prompt position but each row's first (the attention
  sink) as well, so every row runs its whole prompt.

Decoding then drops finished rows from the batch (and from the cache and the edits), so a reply
that runs to the token limit does not keep every other row computing; rows are dropped once at
least ``drop_share`` of the batch has finished, since each drop copies the cache. Where a batch
holds fewer rows than all prompts' conditions (``rows``), the waiting prompts' conditions join it
as rows leave: their prompt pass runs apart, and their cache is joined to the running one. Each row draws
from its own generator seeded with its request's seed, as `deception_core.model.decoding.SeededSampler`
does, so a row's tokens do not depend on what else is in the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch

from deception_core.model.forced import LayerEdit, _cache_fits
from deception_core.model.generation import (
    Generated,
    GenerationRequest,
    LayerRecorder,
    Sampling,
    StopTokens,
    generate_plain,
)
from deception_core.model.hooks import DecoderLayerHooks
from deception_core.model.intervention import EditSites, Intervention
from deception_core.model.padding import mask_positions, pad_batch
from deception_core.model.retiring import Admission, decode_retiring, plain_generation_config
from deception_core.model.shared_prefix import _rebuildable, _spread

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class SelectableEdit(LayerEdit, Protocol):
    """A row-wise layer edit that can keep a subset of its rows (rows leave the batch as they finish)."""

    def take(self, index: Sequence[int]) -> SelectableEdit:
        """The edit of rows ``index``, in that order."""


class _Retained:
    """An edit whose rows follow the batch: `edit` is replaced as rows leave or join it.

    ``first``: under ``sites="all"``, each row's first real token (after its left padding), which
    the prompt pass leaves alone, as it leaves every row's first token alone without padding.
    ``prompt_pass``: whether the next call is a prompt pass (step 0 for the edit), whatever number of
    forward passes the hooks have counted, since rows that join a running batch start with one
    (None: the hooks' count decides). ``paused``: pass states through unedited (a prompt's unedited
    part, run for rows that join the batch)."""

    def __init__(self, edit: LayerEdit, first: Sequence[int] | None = None) -> None:
        self.edit = edit
        self.first = first
        self.prompt_pass: bool | None = None
        self.paused = False

    def __call__(self, hidden: torch.Tensor, step: int) -> torch.Tensor:
        if self.paused:
            return hidden
        if self.prompt_pass is not None:
            step = 0 if self.prompt_pass else max(step, 1)
        edited = self.edit(hidden, step)
        if step or self.first is None or edited is hidden:
            return edited
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        first = torch.as_tensor(list(self.first), device=hidden.device)
        edited = edited.clone()
        edited[rows, first] = hidden[rows, first]
        return edited


class _FromLastToken:
    """An edit that, on the prompt pass over the whole (left-padded) prompts, acts on their last token alone."""

    def __init__(self, edit: LayerEdit) -> None:
        self.edit = edit

    def __call__(self, hidden: torch.Tensor, step: int) -> torch.Tensor:
        if step:
            return self.edit(hidden, step)
        return torch.cat([hidden[:, :-1], self.edit(hidden[:, -1:], 0)], dim=1)


@torch.inference_mode()
def generate_conditions(hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop: StopTokens,
                        requests: Sequence[GenerationRequest], edits: Mapping[int, SelectableEdit], conditions: int,
                        sampling: Sampling, layers_module: torch.nn.ModuleList, device: torch.device,
                        sites: EditSites = "reply", drop_share: float = 0.25,
                        extra: Sequence[Intervention] = (), rows: int | None = None,
                        progress: Callable[[int], None] | None = None) -> list[Generated]:
    """A reply to each request's prompt under each of ``conditions`` conditions: row
    ``i * conditions + k`` is request ``i`` under condition ``k``, and carries row
    ``i * conditions + k`` of every edit in ``edits`` (layer -> edit). Under ``sites="reply"`` the
    edits' first call sees each row's last prompt token alone (so an edit must not leave its first
    position alone); under ``"all"`` it sees the whole prompts, each row's first real token being
    left alone here. ``extra``: interventions on every forward pass and every row (the model's open
    `steer`/`ablate` blocks), applied before the edits.

    ``rows``: at most this many rows decode at once (default: every row). A prompt's conditions
    start together; when finished rows leave the batch, the next prompts' conditions take their
    place, so that a few long replies never decode alone while prompts wait. ``progress(n)`` is
    told how many rows have finished, as rows leave.

    Where the prompt's unedited part cannot be shared through the cache (a cache layer other than a
    plain dynamic one, or prompts longer than a sliding window), or the model's generation config adds
    logits processors (a repetition penalty, say), decoding runs through HF ``generate`` instead,
    with the same edits at the same sites, ``rows // conditions`` prompts at a time."""
    if sites not in ("reply", "all"):
        raise ValueError(f"sites must be 'reply' or 'all', got {sites!r}")
    if any(not r.prompt_ids for r in requests):
        raise ValueError("every prompt needs at least one token")
    if not requests or conditions < 1:
        return []
    per_batch = len(requests) if rows is None else max(1, rows // conditions)
    longest = max(len(r.prompt_ids) for r in requests) + max(r.max_new_tokens for r in requests) + 1
    if not plain_generation_config(hf_model) or not _cache_fits(hf_model, longest):
        results: list[Generated] = []
        for first in range(0, len(requests), per_batch):
            part = requests[first:first + per_batch]
            index = list(range(first * conditions, (first + len(part)) * conditions))
            batch = [request for request in part for _ in range(conditions)]
            width = max(len(r.prompt_ids) for r in part)
            pads = [width - len(r.prompt_ids) for r in batch]
            wrapped = [Intervention(layer, _FromLastToken(edit.take(index)) if sites == "reply"
                                    else _Retained(edit.take(index), pads))
                       for layer, edit in sorted(edits.items())]
            results += generate_plain(hf_model, tokenizer, stop, batch, sampling,
                                      LayerRecorder(layers_module, (), False, [*extra, *wrapped]), device)
            if progress is not None:
                progress(len(results))
        return results
    outer = DecoderLayerHooks(layers_module, extra)  # registered first, so applied before the edits
    try:
        return _generate(hf_model, tokenizer, stop, requests, edits, conditions, sampling, layers_module, device,
                         sites, drop_share, per_batch, progress)
    finally:
        outer.remove()


def _generate(hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop: StopTokens,
              requests: Sequence[GenerationRequest], edits: Mapping[int, SelectableEdit], conditions: int,
              sampling: Sampling, layers_module: torch.nn.ModuleList, device: torch.device, sites: EditSites,
              drop_share: float, per_batch: int, progress: Callable[[int], None] | None) -> list[Generated]:
    """`generate_conditions` where the cache can stand in for the unedited part of the prompts."""
    rows = [request for request in requests for _ in range(conditions)]
    retained = {layer: _Retained(edit) for layer, edit in edits.items()}
    waiting = list(range(len(requests)))

    def start(count: int) -> Admission | None:
        """The prompt pass of the next ``count`` waiting prompts, under their conditions' edits."""
        part, waiting[:] = waiting[:count], waiting[count:]
        if not part:
            return None
        index = [i * conditions + k for i in part for k in range(conditions)]
        ids, mask = pad_batch([list(rows[i].prompt_ids) for i in index], stop.pad_id, side="left")
        ids, mask = ids.to(device), mask.to(device)
        width = ids.shape[1]
        pads = [width - len(rows[i].prompt_ids) for i in index]
        position = mask_positions(mask)
        for layer, edit in retained.items():
            edit.edit, edit.first, edit.prompt_pass = edits[layer].take(index), None if sites == "reply" else pads, True
        if sites == "reply":
            for edit in retained.values():
                edit.paused = True
            cache, fed = _unedited_heads(hf_model, [requests[i] for i in part], conditions, pads, width, device)
            for edit in retained.values():
                edit.paused = False
        else:
            from transformers import DynamicCache

            cache, fed = DynamicCache(config=hf_model.config), 0
        out = hf_model(input_ids=ids[:, fed:], attention_mask=mask, position_ids=position[:, fed:],
                       past_key_values=cache, use_cache=True, logits_to_keep=1)
        for edit in retained.values():
            edit.prompt_pass = False
        return Admission(index, out.logits[:, -1, :], cache, mask, position[:, -1:])

    def follow(active: Sequence[int]) -> None:
        for layer, edit in retained.items():
            edit.edit = edits[layer].take(active)
        if progress is not None:
            progress(len(rows) - len(active) - conditions * len(waiting))

    def admit(free: int) -> Admission | None:
        return start(min(len(waiting), free // conditions)) if free >= conditions else None

    hooks = DecoderLayerHooks(layers_module, [Intervention(layer, fn) for layer, fn in sorted(retained.items())])
    try:
        first = start(per_batch)
        assert first is not None  # requests is not empty
        return decode_retiring(hf_model, tokenizer, stop, rows, sampling, first.logits, first.cache,
                               first.mask, first.position, device, on_rows=follow, drop_share=drop_share,
                               admit=admit, capacity=per_batch * conditions, active=first.rows)
    finally:
        hooks.remove()


def _unedited_heads(hf_model: PreTrainedModel, requests: Sequence[GenerationRequest], conditions: int,
                    pads: Sequence[int], width: int, device: torch.device) -> tuple[Any, int]:
    """Each distinct prompt but its last token, run once (left-padded, no edits), and its cache
    copied into the first ``width - 1`` columns of each of its rows; returns the cache and the
    number of columns it holds (the batch's prompts then feed only their last column)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=hf_model.config)
    heads: dict[tuple[int, ...], int] = {}
    for request in requests:
        heads.setdefault(tuple(request.prompt_ids[:-1]), len(heads))
    distinct = [list(head) for head in heads]
    if not _rebuildable(cache):
        raise RuntimeError("the model's cache cannot be rebuilt; `_cache_fits` should have said so")
    if any(distinct):
        head_ids, head_mask = pad_batch([h or [0] for h in distinct], 0, side="left")
        head_mask = head_mask * torch.tensor([[1 if h else 0] for h in distinct])
        head_ids, head_mask = head_ids.to(device), head_mask.to(device)
        hf_model(input_ids=head_ids, attention_mask=head_mask, position_ids=mask_positions(head_mask),
                 past_key_values=cache, use_cache=True, logits_to_keep=1)
        head_width = head_ids.shape[1]
        sources = [(heads[tuple(r.prompt_ids[:-1])], head_width - (len(r.prompt_ids) - 1), len(r.prompt_ids) - 1)
                   for r in requests for _ in range(conditions)]
        layer: Any  # plain dynamic layers only (checked above)
        for layer in cache.layers:
            layer.keys = _spread(layer.keys, sources, pads, width - 1)
            layer.values = _spread(layer.values, sources, pads, width - 1)
            if hasattr(layer, "cumulative_length"):
                layer.cumulative_length = width - 1
    return cache, width - 1


def rows_that_fit(hf_model: PreTrainedModel, tokens_per_row: int, share: float = 0.5) -> int | None:
    """How many rows of ``tokens_per_row`` cached tokens the key/value cache may hold within ``share``
    of the GPU memory free now (None off CUDA, where the cache shares the host's memory with no
    such limit to read)."""
    device = next(hf_model.parameters()).device
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    config = hf_model.config.get_text_config() if hasattr(hf_model.config, "get_text_config") else hf_model.config
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    heads = int(getattr(config, "num_key_value_heads", None) or getattr(config, "num_attention_heads", 0) or 0)
    head_dim = int(getattr(config, "head_dim", None) or
                   (getattr(config, "hidden_size", 0) // max(1, int(getattr(config, "num_attention_heads", 1) or 1))))
    per_token = 2 * layers * heads * head_dim * next(hf_model.parameters()).element_size()
    if per_token <= 0:
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return max(1, int(free * share // (per_token * max(1, tokens_per_row))))
