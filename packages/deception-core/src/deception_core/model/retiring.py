"""A decoding loop that drops finished rows from the batch (generation's fast path).

HF ``generate`` keeps every row of a batch until the last one ends, so a batch of 16 replies in
which one runs to the token limit computes 16 rows for every step. Here a row leaves the batch
(and the key/value cache) as soon as its reply is complete, so a step costs only the rows still
writing. Each row ends exactly where ``generate`` would end it: at EOS (or padding), one step after
one of its own stop strings appeared (so the token completing it is fed once and recorded), or
after ``max_new_tokens + 1`` tokens (the extra token feeds the last reply token once). Sampling
uses the same per-request seeded generators, so tokens match ``generate`` up to float noise.

`generate_retiring` runs without interventions and records states; `decode_retiring` continues
after a prompt pass made elsewhere and lets row-wise edits follow the batch
(`deception_core.model.conditions`, the causal tests' generation). Both only where the model's
generation config adds no logits processors of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import torch

from deception_core.model.decoding import SeededSampler
from deception_core.model.generation import (
    Generated,
    GenerationRequest,
    LayerRecorder,
    Sampling,
    StopTokens,
    cut_reply,
    reply_text,
)
from deception_core.model.padding import mask_positions, pad_batch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: generation-config settings that would make ``generate`` change the logits; when any is set
#: generation falls back to ``generate``
_PROCESSORS = ("repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "suppress_tokens",
               "begin_suppress_tokens", "min_length", "min_new_tokens", "encoder_repetition_penalty",
               "sequence_bias", "forced_bos_token_id", "forced_eos_token_id")
_NEUTRAL: tuple[object, ...] = (None, 0, 1.0, [], ())


def plain_generation_config(hf_model: PreTrainedModel) -> bool:
    """Whether ``generate`` with ``do_sample=False`` would only pick the highest logit."""
    config = getattr(hf_model, "generation_config", None)
    return config is None or all(getattr(config, name, None) in _NEUTRAL for name in _PROCESSORS)


@torch.inference_mode()
def generate_retiring(hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop: StopTokens,
                      requests: Sequence[GenerationRequest], sampling: Sampling, layers_module: torch.nn.ModuleList,
                      layers: Sequence[int], device: torch.device) -> list[Generated]:
    from transformers import DynamicCache

    ids, mask = pad_batch([r.prompt_ids for r in requests], stop.pad_id, side="left")
    ids, mask = ids.to(device), mask.to(device)
    n = len(requests)
    record = any(r.capture for r in requests) and bool(layers)
    recorder = LayerRecorder(layers_module, layers, record, ())
    cache = DynamicCache(config=hf_model.config)
    position = mask_positions(mask)
    try:
        logits = hf_model(input_ids=ids, attention_mask=mask, position_ids=position, past_key_values=cache,
                          use_cache=True, logits_to_keep=1).logits[:, -1, :]
        tokens, hit_at, step_rows = _decode(hf_model, tokenizer, stop, requests, sampling, logits, cache, mask,
                                            position[:, -1:], device, None)
    finally:
        recorder.remove()
    states = _per_row_states(recorder, step_rows, n) if record else [None] * n
    return _replies(tokenizer, stop, requests, tokens, hit_at, states)


@attrs.frozen
class Admission:
    """Rows joining a decoding batch: their indices among the requests, and their own prompt pass
    (``logits``: ``[rows, vocab]`` after each prompt; ``cache``, ``mask``: ``[rows, width]``, left-padded;
    ``position``: ``[rows, 1]``, each row's last position)."""

    rows: list[int]
    logits: torch.Tensor
    cache: Any
    mask: torch.Tensor
    position: torch.Tensor


def decode_retiring(hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop: StopTokens,
                    requests: Sequence[GenerationRequest], sampling: Sampling, logits: torch.Tensor, cache: Any,
                    mask: torch.Tensor, position: torch.Tensor, device: torch.device,
                    on_rows: Callable[[Sequence[int]], None] | None = None, drop_share: float = 0.0,
                    admit: Callable[[int], Admission | None] | None = None, capacity: int = 0,
                    active: Sequence[int] | None = None) -> list[Generated]:
    """Decode after a prompt pass (``logits``: ``[rows, vocab]``, each row's last, which give its first
    token; ``cache``, ``mask``: ``[rows, width]``, ``position``: ``[rows, 1]``, each row's last
    position), dropping finished rows once they are at least ``drop_share`` of the batch (0: as
    soon as one finishes; each drop copies the cache, so a large batch drops them in groups).

    ``active``: which requests the prompt pass's rows are (default: all, in order). ``admit(free)``,
    called after each drop while fewer than ``capacity`` rows decode, may bring in more requests
    (an `Admission`, or None): they join the batch, so that rows which end early make room for the
    next prompts instead of leaving a few long replies to run alone. ``on_rows(requests)`` is told
    which requests the batch holds whenever that changes (row-wise edits follow the batch through
    it). No states are recorded."""
    tokens, hit_at, _rows = _decode(hf_model, tokenizer, stop, requests, sampling, logits, cache, mask, position,
                                    device, on_rows, drop_share, admit, capacity, active)
    return _replies(tokenizer, stop, requests, tokens, hit_at, [None] * len(requests))


def _replies(tokenizer: PreTrainedTokenizerBase, stop: StopTokens, requests: Sequence[GenerationRequest],
             tokens: list[list[int]], hit_at: list[int], states: Sequence[torch.Tensor | None]) -> list[Generated]:
    results = []
    for row, request in enumerate(requests):
        reply, stopped_by = cut_reply(stop, request, tokens[row], hit_at[row])
        results.append(Generated(tuple(request.prompt_ids), reply, reply_text(tokenizer, reply, request.stop),
                                 stopped_by, states[row]))
    return results


def _decode(hf_model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stop: StopTokens,
            requests: Sequence[GenerationRequest], sampling: Sampling, logits: torch.Tensor, cache: Any,
            mask: torch.Tensor, position: torch.Tensor, device: torch.device, on_rows: Callable[[Sequence[int]], None] | None,
            drop_share: float = 0.0, admit: Callable[[int], Admission | None] | None = None, capacity: int = 0,
            first_rows: Sequence[int] | None = None) -> tuple[list[list[int]], list[int], list[list[int]]]:
    """The decoding loop: each row's tokens, the generated length at which a stop string appeared
    (-1: none), and which request each row of each forward pass belonged to (exact only with
    ``drop_share`` 0, where no finished row stays in the batch; states are recorded only then)."""
    n = len(requests)
    sampler = None
    if not sampling.greedy:
        sampler = SeededSampler([r.seed for r in requests], sampling.temperature, sampling.top_p, device)
    generators = sampler.generators if sampler is not None else []
    stops = [tuple(s for s in r.stop if s) for r in requests]
    window = 2 + max((len(s) for row in stops for s in row), default=0)
    ends = set(stop.eos_ids) | {stop.pad_id}
    tokens: list[list[int]] = [[] for _ in range(n)]
    hit_at = [-1] * n
    done = [False] * n

    def take(rows: Sequence[int], logits: torch.Tensor) -> None:
        """Draw each row's next token from its logits and note whether the row has ended."""
        if sampler is not None:
            sampler.generators = [generators[i] for i in rows]
            chosen = sampler.choose(logits).tolist()
        else:
            chosen = logits.argmax(dim=-1).tolist()
        for row, token in zip(rows, chosen, strict=True):
            if done[row]:
                continue
            tokens[row].append(token)
            if token in ends or hit_at[row] >= 0 or len(tokens[row]) > requests[row].max_new_tokens:
                done[row] = True
                continue
            if stops[row]:
                tail = tokenizer.decode(tokens[row][-window:], skip_special_tokens=False)
                if any(s in tail for s in stops[row]):
                    hit_at[row] = len(tokens[row])

    # the requests in the batch, finished ones included until they are dropped
    active = list(first_rows) if first_rows is not None else list(range(n))
    step_rows: list[list[int]] = []  # which request each row of each forward pass belongs to
    while True:
        step_rows.append(list(active))
        take(active, logits)
        keep = [slot for slot, row in enumerate(active) if not done[row]]
        if len(keep) < len(active) and (not keep or len(active) - len(keep) >= drop_share * len(active)):
            if keep:
                # a list: the cache's layers may sit on several devices (transformers annotates a Tensor,
                # but indexes each layer's tensors with it, which a list of ints serves on any device)
                cache.batch_select_indices(keep)
                index = torch.tensor(keep, device=device)
                mask, position = mask[index], position[index]
            active = [active[k] for k in keep]
            joined = admit(capacity - len(active)) if admit is not None else None
            if joined is not None:
                take(joined.rows, joined.logits)
                if active:
                    cache, mask = join_caches(cache, mask, joined.cache, joined.mask)
                    position = torch.cat([position, joined.position.to(position.device)])
                else:
                    cache, mask, position = joined.cache, joined.mask, joined.position
                active += joined.rows
            if on_rows is not None:
                on_rows(active)
            if not active:
                break
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        position = position + 1
        fed = torch.tensor([[tokens[row][-1]] for row in active], dtype=torch.long, device=device)
        logits = hf_model(input_ids=fed, attention_mask=mask, position_ids=position, past_key_values=cache,
                          use_cache=True, logits_to_keep=1).logits[:, -1, :]
    return tokens, hit_at, step_rows


def join_caches(cache: Any, mask: torch.Tensor, other: Any, other_mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """One left-padded batch from two (plain dynamic cache layers only): the columns that are padding
    in every row of ``cache`` are cut first, then the narrower batch is padded on the left to the
    wider one. Rows keep their own positions, so each row attends to the same tokens as before."""
    used = mask.any(dim=0).nonzero()
    if used.numel():
        cut = int(used[0, 0])
        if cut:
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys[:, :, cut:], layer.values[:, :, cut:]
            mask = mask[:, cut:]
    width = max(mask.shape[1], other_mask.shape[1])
    for mine, theirs in zip(cache.layers, other.layers, strict=True):
        mine.keys = torch.cat([_left_pad(mine.keys, width), _left_pad(theirs.keys.to(mine.keys.device), width)])
        mine.values = torch.cat([_left_pad(mine.values, width), _left_pad(theirs.values.to(mine.values.device), width)])
        if hasattr(mine, "cumulative_length"):
            mine.cumulative_length = width
    masks = [torch.cat([m.new_zeros((m.shape[0], width - m.shape[1])), m], dim=1) for m in (mask, other_mask.to(mask.device))]
    return cache, torch.cat(masks)


def _left_pad(states: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - states.shape[2]
    if not missing:
        return states
    return torch.cat([states.new_zeros((*states.shape[:2], missing, states.shape[3])), states], dim=2)


def _per_row_states(recorder: LayerRecorder, step_rows: list[list[int]], n: int) -> list[torch.Tensor | None]:
    """``[steps, n_layers, d]`` per request, from per-step tensors over the rows still active."""
    per_row: list[list[torch.Tensor]] = [[] for _ in range(n)]
    for step, rows in enumerate(step_rows):
        stacked = torch.stack([recorder.steps[layer][step].float().cpu() for layer in recorder.layers], dim=1)
        for slot, row in enumerate(rows):
            per_row[row].append(stacked[slot])
    return [torch.stack(items) if items else None for items in per_row]
