"""Teacher-forced passes under residual-stream edits: the causal tests' forward pass.

A right-padded pass over ``prompt + reply`` per row, with per-row edits of chosen decoder blocks'
outputs (one batched pass can evaluate many directions at once), returning each reply token's
log-probability, the next-token distribution after the prompt, and the recorded block outputs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

import attrs
import torch

from deception_core.model.hooks import DecoderLayerHooks, decoder_layers
from deception_core.model.intervention import Intervention
from deception_core.model.padding import pad_batch

if TYPE_CHECKING:
    from transformers import PreTrainedModel


class LayerEdit(Protocol):
    """An edit of one decoder layer's output for a batch of rows (a row-wise edit, or an SAE splice)."""

    def rows(self, start: int, stop: int) -> LayerEdit:
        """The edit of rows ``start:stop`` (for running a batch in chunks)."""

    def __call__(self, hidden: torch.Tensor, step: int) -> torch.Tensor:
        """The edited output; ``step`` 0 is the prompt pass."""


def as_interventions(edits: Mapping[int, LayerEdit]) -> list[Intervention]:
    """The layer edits as `Intervention`s, in layer order."""
    return [Intervention(layer, edit) for layer, edit in sorted(edits.items())]


@contextmanager
def hooked(hf_model: torch.nn.Module, interventions: Sequence[Intervention] = (),
           record: Sequence[int] = ()) -> Iterator[dict[int, torch.Tensor]]:
    """Apply ``interventions`` and record the outputs of the ``record`` layers during a forward pass."""
    recorded: dict[int, torch.Tensor] = {}

    def keep(layer: int, hidden: torch.Tensor) -> None:
        recorded[layer] = hidden.detach()

    hooks = DecoderLayerHooks(decoder_layers(hf_model), interventions, record, keep)
    try:
        yield recorded
    finally:
        hooks.remove()


def token_logprobs(logits: torch.Tensor, tokens: Sequence[int]) -> torch.Tensor:
    """``[n]`` float32 on the CPU: log-softmax of each row of ``logits`` ``[n, vocab]`` at its token,
    without writing the whole log-softmax (with a 262k-token vocabulary that costs more than the head)."""
    rows = logits.float()
    index = torch.tensor(list(tokens), dtype=torch.long, device=rows.device)[:, None]
    return (rows.gather(-1, index)[:, 0] - torch.logsumexp(rows, dim=-1)).cpu()


@attrs.frozen
class ForcedPass:
    """A teacher-forced pass over prompt + reply for each row."""

    reply_logprobs: list[torch.Tensor]  # per row: [n_reply] log p(reply token | prefix)
    hidden: dict[int, list[torch.Tensor]]  # layer -> per row: [seq_len, d] (float32, cpu)
    next_logprobs: torch.Tensor  # [batch, vocab] log-probs of the token after the prompt


def teacher_forced(
    hf_model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    replies: Sequence[Sequence[int]],
    edits: Mapping[int, LayerEdit] | None = None,
    record: Sequence[int] = (),
    pad_id: int = 0,
    chunk: int = 8,
    extra: Sequence[Intervention] = (),
) -> ForcedPass:
    """A right-padded forward pass over ``prompt + reply`` per row, under ``edits``, ``chunk`` rows
    at a time (``extra``: interventions applied to every row, before the edits).

    Without edits, rows that repeat a prompt (one prompt's replies under many conditions, re-read
    cleanly) run that prompt once and score its replies from its key/value cache
    (`_shared_prompts`): the same numbers up to float noise, for a fraction of the work.

    Right padding keeps every row's positions identical to an unpadded pass, so a row's scores
    do not depend on what else is in the batch. Only the logits that score the reply (and the
    token after the prompt) are computed and normalised, which keeps large vocabularies cheap.
    Without edits the rows are chunked in order of length (results come back in the given order),
    so that short rows are not padded to the longest one.
    """
    if not edits and not extra and len(set(map(tuple, prompts))) < len(prompts):
        shared = _shared_prompts(hf_model, prompts, replies, record, chunk)
        if shared is not None:
            return shared
    order = list(range(len(prompts)))
    if not edits:
        order.sort(key=lambda i: len(prompts[i]) + len(replies[i]))
    parts = []
    step = max(1, chunk)
    for start in range(0, len(order), step):
        stop = min(len(order), start + step)
        rows = order[start:stop]
        part_edits = {layer: edit.rows(start, stop) for layer, edit in (edits or {}).items()}
        parts.append(_forced_chunk(hf_model, [prompts[i] for i in rows], [replies[i] for i in rows], part_edits,
                                   record, pad_id, extra))
    place = {row: n for n, row in enumerate(order)}
    reply_lp = [lp for part in parts for lp in part.reply_logprobs]
    hidden = {layer: [h for part in parts for h in part.hidden[layer]] for layer in record}
    next_lp = torch.cat([part.next_logprobs for part in parts]) if parts else torch.zeros(0)
    back = [place[i] for i in range(len(prompts))]
    return ForcedPass([reply_lp[n] for n in back], {layer: [hs[n] for n in back] for layer, hs in hidden.items()},
                      next_lp[back] if len(back) else next_lp)


@contextmanager
def _only_scored_positions(hf_model: PreTrainedModel, index: torch.Tensor) -> Iterator[bool]:
    """Feed the output head only the positions ``index`` (``[batch, m]``, relative to the states it
    receives) instead of every kept position: with a 262k-token vocabulary the head costs more than
    the body, and a row needs just its reply's positions. The model's own post-processing of the
    logits (soft-capping, scaling) still applies, since only the head's input changes. Yields
    whether the head was restricted (a model without a separate head module gets every position)."""
    head = hf_model.get_output_embeddings() if hasattr(hf_model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Module):
        yield False
        return

    def pre_hook(_module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        states = args[0]
        gathered = torch.gather(states, 1, index.to(states.device)[:, :, None].expand(-1, -1, states.shape[-1]))
        return (gathered, *args[1:])

    handle = head.register_forward_pre_hook(pre_hook)
    try:
        yield True
    finally:
        handle.remove()


@torch.inference_mode()
def _forced_chunk(hf_model: PreTrainedModel, prompts: Sequence[Sequence[int]], replies: Sequence[Sequence[int]],
                  edits: Mapping[int, LayerEdit], record: Sequence[int], pad_id: int,
                  extra: Sequence[Intervention]) -> ForcedPass:
    sequences = [list(p) + list(r) for p, r in zip(prompts, replies, strict=True)]
    width = max(len(s) for s in sequences)
    ids, mask = pad_batch(sequences, pad_id, side="right")
    first = min(len(p) for p in prompts) - 1  # the earliest position whose logits are needed
    keep = width - first
    scored = max(len(r) for r in replies) + 1  # the prompt end, then each reply token's prefix
    index = torch.full((len(sequences), scored), keep - 1, dtype=torch.long)
    for row, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
        index[row, : len(reply) + 1] = torch.arange(len(prompt) - 1, len(prompt) + len(reply)) - first
    device = next(hf_model.parameters()).device
    with hooked(hf_model, [*extra, *as_interventions(edits)], record) as recorded, \
            _only_scored_positions(hf_model, index) as gathered:
        logits = hf_model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep).logits
    reply_lp, next_lp = [], []
    for row, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
        n_p, n_r = len(prompt), len(reply)
        positions = torch.arange(n_r + 1) if gathered else torch.arange(n_p - 1, n_p + n_r) - first
        rows = logits[row, positions.to(logits.device)]
        next_lp.append(torch.log_softmax(rows[0].float(), dim=-1).cpu())
        reply_lp.append(token_logprobs(rows[:n_r], list(reply)) if n_r else torch.zeros(0))
    hidden = {layer: [recorded[layer][row, : len(seq)].float().cpu() for row, seq in enumerate(sequences)]
              for layer in record}
    return ForcedPass(reply_lp, hidden, torch.stack(next_lp))


def _cache_fits(hf_model: PreTrainedModel, longest: int) -> bool:
    """A cache of the prompt gives the plain pass's numbers: the model's cache layers are plain dynamic
    ones and every row fits inside a sliding window (so no layer drops a cached token)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    window = getattr(hf_model.config, "sliding_window", None)
    if window is not None and longest >= int(window):
        return False
    layers = list(getattr(DynamicCache(config=hf_model.config), "layers", None) or [])
    return bool(layers) and all(type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers)


def _rows_by_prompt(prompts: Sequence[Sequence[int]]) -> dict[tuple[int, ...], list[int]]:
    """The rows of each distinct prompt, in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for row, prompt in enumerate(prompts):
        groups.setdefault(tuple(prompt), []).append(row)
    return groups


@torch.inference_mode()
def _shared_prompts(hf_model: PreTrainedModel, prompts: Sequence[Sequence[int]], replies: Sequence[Sequence[int]],
                    record: Sequence[int], chunk: int) -> ForcedPass | None:
    """`teacher_forced` without edits, each distinct prompt run once: its key/value cache is repeated for
    its replies, which are fed right-padded from the prompt's end (positions and attention as in the
    plain pass), shortest first so that a chunk pads little. None when the cache cannot stand in for
    the plain pass (see `_cache_fits`)."""
    from transformers import DynamicCache

    if not _cache_fits(hf_model, max(len(p) + len(r) for p, r in zip(prompts, replies, strict=True))):
        return None
    device = next(hf_model.parameters()).device
    groups = _rows_by_prompt(prompts)
    reply_lp: list[torch.Tensor] = [torch.zeros(0)] * len(prompts)
    next_lp: list[torch.Tensor] = [torch.zeros(0)] * len(prompts)
    hidden: dict[int, list[torch.Tensor]] = {layer: [torch.zeros(0)] * len(prompts) for layer in record}
    for prompt, rows in groups.items():
        cache = DynamicCache(config=hf_model.config)
        ids = torch.tensor([list(prompt)], dtype=torch.long, device=device)
        with hooked(hf_model, (), record) as recorded:
            logits = hf_model(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=cache,
                              use_cache=True, logits_to_keep=1).logits
        first = torch.log_softmax(logits[0, -1].float(), dim=-1).cpu()
        prompt_states = {layer: recorded[layer][0].float().cpu() for layer in record}
        for row in rows:
            next_lp[row] = first
            reply_lp[row] = first[torch.tensor(list(replies[row][:1]), dtype=torch.long)]
            for layer in record:
                hidden[layer][row] = prompt_states[layer]
        fed = sorted((row for row in rows if len(replies[row]) > 1 or (record and replies[row])),
                     key=lambda row: len(replies[row]))
        for start in range(0, len(fed), max(1, chunk)):
            part = fed[start:start + max(1, chunk)]
            _replies_from_cache(hf_model, cache, len(prompt), [list(replies[row]) for row in part], record, part,
                                reply_lp, hidden, first)
    return ForcedPass(reply_lp, hidden, torch.stack(next_lp))


def _replies_from_cache(hf_model: PreTrainedModel, cache: object, n_prompt: int, part: list[list[int]],
                        record: Sequence[int], rows: list[int], reply_lp: list[torch.Tensor],
                        hidden: dict[int, list[torch.Tensor]], first: torch.Tensor) -> None:
    """Feed one chunk of a prompt's replies after its cached pass; fill their rows of the outputs."""
    device = next(hf_model.parameters()).device
    ids, mask = pad_batch(part, 0, side="right")
    batch = copy.deepcopy(cache)
    batch.batch_repeat_interleave(len(part))  # type: ignore[attr-defined]
    full_mask = torch.cat([torch.ones(len(part), n_prompt, dtype=torch.long), mask], dim=1)
    position = (n_prompt + torch.arange(ids.shape[1]))[None].expand(len(part), -1)
    index = torch.zeros(len(part), max(1, ids.shape[1] - 1), dtype=torch.long)
    for n, reply in enumerate(part):
        index[n, : len(reply) - 1] = torch.arange(len(reply) - 1)
    with hooked(hf_model, (), record) as recorded, _only_scored_positions(hf_model, index):
        logits = hf_model(input_ids=ids.to(device), attention_mask=full_mask.to(device),
                          position_ids=position.to(device), past_key_values=batch, use_cache=True).logits
    for n, (row, reply) in enumerate(zip(rows, part, strict=True)):
        later = token_logprobs(logits[n, : len(reply) - 1], reply[1:])
        reply_lp[row] = torch.cat([first[torch.tensor(reply[:1], dtype=torch.long)], later])
        for layer in record:
            hidden[layer][row] = torch.cat([hidden[layer][row], recorded[layer][n, : len(reply)].float().cpu()])


@torch.inference_mode()
def replies_after_prompts(hf_model: PreTrainedModel, prompts: Sequence[Sequence[int]],
                          replies: Sequence[Sequence[Sequence[int]]], prompt_edits: Mapping[int, LayerEdit] | None = None,
                          pad_id: int = 0, chunk: int = 8) -> list[list[torch.Tensor]] | None:
    """Per prompt ``i`` and each of its replies ``replies[i][j]``: ``[n_reply]`` log p(reply token | prefix),
    with ``prompt_edits`` (row ``i`` of each edit is prompt ``i``'s) applied on the prompt pass only.

    Each prompt (with its edit) runs once, left-padded with the others of its chunk; its replies are
    then fed from its key/value cache, so a prompt patched once serves every reply scored under that
    patch. ``chunk`` bounds the reply rows of a pass. None when a cache cannot stand in for the plain
    pass (see `_cache_fits`): the caller runs `teacher_forced` instead."""
    from transformers import DynamicCache

    if not prompts:
        return []
    longest = max(len(p) for p in prompts) + max((len(r) for rs in replies for r in rs), default=0)
    if not _cache_fits(hf_model, longest):
        return None
    device = next(hf_model.parameters()).device
    per = max(1, max(len(rs) for rs in replies))
    step = max(1, chunk // per)
    out: list[list[torch.Tensor]] = [[torch.zeros(0)] * len(rs) for rs in replies]
    for start in range(0, len(prompts), step):
        stop = min(len(prompts), start + step)
        ids, mask = pad_batch([prompts[i] for i in range(start, stop)], pad_id, side="left")
        position = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=hf_model.config)
        edits = {layer: edit.rows(start, stop) for layer, edit in (prompt_edits or {}).items()}
        with hooked(hf_model, as_interventions(edits)):
            logits = hf_model(input_ids=ids.to(device), attention_mask=mask.to(device),
                              position_ids=position.to(device), past_key_values=cache, use_cache=True,
                              logits_to_keep=1).logits
        first = torch.log_softmax(logits[:, -1].float(), dim=-1).cpu()
        fed = []  # (prompt row, reply index, reply) of the replies longer than one token
        for row in range(start, stop):
            for j, reply in enumerate(replies[row]):
                out[row][j] = first[row - start, torch.tensor(list(reply[:1]), dtype=torch.long)]
                if len(reply) > 1:
                    fed.append((row, j, list(reply)))
        if fed:
            _feed_replies(hf_model, cache, mask, start, [len(p) for p in prompts], fed, first, out, pad_id)
    return out


def _feed_replies(hf_model: PreTrainedModel, cache: object, mask: torch.Tensor, start: int, lengths: list[int],
                  fed: list[tuple[int, int, list[int]]], first: torch.Tensor, out: list[list[torch.Tensor]],
                  pad_id: int) -> None:
    """Score the replies ``fed`` after their prompts' cached (left-padded) pass; fill ``out``."""
    device = next(hf_model.parameters()).device
    reply_ids, reply_mask = pad_batch([reply for *_, reply in fed], pad_id, side="right")
    pick = torch.tensor([row - start for row, *_ in fed])
    batch = copy.deepcopy(cache)
    batch.batch_select_indices(pick.to(device))  # type: ignore[attr-defined]
    full_mask = torch.cat([mask[pick], reply_mask], dim=1)
    reply_position = torch.tensor([lengths[row] for row, *_ in fed])[:, None] + torch.arange(reply_ids.shape[1])[None]
    index = torch.zeros(len(fed), max(1, reply_ids.shape[1] - 1), dtype=torch.long)
    for n, (*_, reply) in enumerate(fed):
        index[n, : len(reply) - 1] = torch.arange(len(reply) - 1)
    with _only_scored_positions(hf_model, index):
        logits = hf_model(input_ids=reply_ids.to(device), attention_mask=full_mask.to(device),
                          position_ids=reply_position.to(device), past_key_values=batch, use_cache=True).logits
    for n, (row, j, reply) in enumerate(fed):
        out[row][j] = torch.cat([first[row - start, reply[:1]], token_logprobs(logits[n, : len(reply) - 1], reply[1:])])


@torch.inference_mode()
def replies_from_last_prompt_token(hf_model: PreTrainedModel, prompts: Sequence[Sequence[int]],
                                   replies: Sequence[Sequence[int]], edits: Mapping[int, LayerEdit],
                                   chunk: int = 8) -> list[torch.Tensor] | None:
    """Per row: ``[n_reply]`` log p(reply token | prefix), with row ``i`` of each edit applied from the
    last prompt token on (the edits' first call sees ``[last prompt token, reply...]``; an edit must
    not leave that first position alone). The rest of each prompt is unedited: it runs once per
    distinct prompt and its key/value cache serves every row with that prompt, so a row costs its
    reply's length, not its prompt's. Each edit must support ``take(rows)``
    (`deception_core.model.conditions.SelectableEdit`). None when a cache cannot stand in for the
    plain pass (see `_cache_fits`): the caller runs `teacher_forced` with the edits starting at
    the last prompt token instead."""
    from transformers import DynamicCache

    if not prompts:
        return []
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    if not _cache_fits(hf_model, max(len(p) + len(r) for p, r in zip(prompts, replies, strict=True))):
        return None
    device = next(hf_model.parameters()).device
    groups = _rows_by_prompt(prompts)
    out: list[torch.Tensor] = [torch.zeros(0)] * len(prompts)
    for prompt, rows in groups.items():
        head = list(prompt[:-1])
        cache = DynamicCache(config=hf_model.config)
        if head:
            ids = torch.tensor([head], dtype=torch.long, device=device)
            hf_model(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=cache, use_cache=True,
                     logits_to_keep=1)
        scored = [row for row in rows if replies[row]]
        for start in range(0, len(scored), max(1, chunk)):
            part = scored[start:start + max(1, chunk)]
            fed = [[prompt[-1], *replies[row][:-1]] for row in part]
            ids, mask = pad_batch(fed, 0, side="right")
            batch = copy.deepcopy(cache)
            if head:
                batch.batch_repeat_interleave(len(part))
            full_mask = torch.cat([torch.ones(len(part), len(head), dtype=torch.long), mask], dim=1)
            position = (len(head) + torch.arange(ids.shape[1]))[None].expand(len(part), -1)
            index = torch.zeros(len(part), ids.shape[1], dtype=torch.long)
            for n, row in enumerate(part):
                index[n, : len(replies[row])] = torch.arange(len(replies[row]))
            taken = {layer: edit.take(part) for layer, edit in edits.items()}  # type: ignore[attr-defined]
            with hooked(hf_model, as_interventions(taken)), _only_scored_positions(hf_model, index):
                logits = hf_model(input_ids=ids.to(device), attention_mask=full_mask.to(device),
                                  position_ids=position.to(device), past_key_values=batch if head else None,
                                  use_cache=bool(head)).logits
            for n, row in enumerate(part):
                out[row] = token_logprobs(logits[n, : len(replies[row])], list(replies[row]))
    return out
