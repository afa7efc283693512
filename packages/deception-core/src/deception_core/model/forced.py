"""Teacher-forced passes under residual-stream edits: the causal tests' forward pass.

A right-padded pass over ``prompt + reply`` per row, with per-row edits of chosen decoder blocks'
outputs (one batched pass can evaluate many directions at once), returning each reply token's
log-probability, the next-token distribution after the prompt, and the recorded block outputs.
"""

from __future__ import annotations

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

    Right padding keeps every row's positions identical to an unpadded pass, so a row's scores
    do not depend on what else is in the batch. Only the logits that score the reply (and the
    token after the prompt) are computed and normalised, which keeps large vocabularies cheap.
    Without edits the rows are chunked in order of length (results come back in the given order),
    so that short rows are not padded to the longest one.
    """
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
        lp = torch.log_softmax(logits[row, positions.to(logits.device)].float(), dim=-1).cpu()
        next_lp.append(lp[0])
        reply_lp.append(lp[torch.arange(n_r), torch.tensor(list(reply), dtype=torch.long)] if n_r else torch.zeros(0))
    hidden = {layer: [recorded[layer][row, : len(seq)].float().cpu() for row, seq in enumerate(sequences)]
              for layer in record}
    return ForcedPass(reply_lp, hidden, torch.stack(next_lp))
