"""Residual-stream interventions on plain HF causal LMs: forward hooks and teacher-forced scoring.

Every function here takes a model and tensors, not a run, so the known-answer tests can call them
directly. An intervention edits the output of decoder block ``layer`` (the residual stream the
capture backends record), exactly as `deception_core.contracts.capture.Intervention` does during
generation. Per-row edits let one batched forward pass evaluate many directions at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import attrs
import torch

from deception_core.model.hooks import DecoderLayerHooks
from deception_core.model.intervention import Intervention
from deception_core.model.loading import decoder_layers


class LayerEdit(Protocol):
    """An edit of one decoder layer's output for a batch of rows (`RowEdit`, or the SAE splice)."""

    def rows(self, start: int, stop: int) -> LayerEdit:
        """The edit of rows ``start:stop`` (for running a batch in chunks)."""

    def __call__(self, hidden: torch.Tensor, step: int) -> torch.Tensor:
        """The edited output; ``step`` 0 is the prompt pass."""


@attrs.frozen
class RowEdit:
    """An edit of one layer's output, row by row: ``x - (x.u) u + v``, plus prompt-position deltas.

    ``project``: ``[batch, d]`` unit vectors to project out (zero rows leave ``x`` alone; the
    residual is never zeroed). ``add``: ``[batch, d]`` added at every position and step.
    ``prompt_delta``: ``[batch, n, d]`` added on the prompt pass only, to the last ``n`` prompt
    positions, which end at ``prompt_end[row]`` (teacher forcing, right padding) or at the end of
    the sequence (generation, left padding). Patching is such a delta: source minus target state,
    whole or along a direction.

    ``project`` and ``add`` leave each row's FIRST token alone on the prompt pass, as patching does:
    it is the attention sink (beginning of sequence), where models such as Gemma keep massive
    activations in a few dimensions; a direction leaning on those dimensions, projected out or
    added there, wrecks every later position and measures damage, not the direction's role.
    ``first[row]`` is that token's index on the prompt pass (left padding: the number of pad
    positions); None means index 0 (right padding or none). ``keep_first=False`` edits it too (only
    to show the damage in tests).
    """

    project: torch.Tensor | None = None
    add: torch.Tensor | None = None
    prompt_delta: torch.Tensor | None = None
    prompt_end: tuple[int, ...] | None = None
    first: tuple[int, ...] | None = None
    keep_first: bool = True

    def rows(self, start: int, stop: int) -> RowEdit:
        """The edit of rows ``start:stop`` (for running a batch in chunks)."""
        def cut(t):
            return None if t is None else t[start:stop]

        return RowEdit(cut(self.project), cut(self.add), cut(self.prompt_delta),
                       None if self.prompt_end is None else self.prompt_end[start:stop],
                       None if self.first is None else self.first[start:stop], self.keep_first)

    def __call__(self, hidden: torch.Tensor, step: int) -> torch.Tensor:
        dtype = hidden.dtype
        x = original = hidden.float()
        if self.project is not None:
            u = self.project.to(x.device)[:, None, :]
            x = x - (x * u).sum(-1, keepdim=True) * u
        if self.add is not None:
            x = x + self.add.to(x.device)[:, None, :]
        if step == 0 and self.keep_first and x is not original:
            rows = torch.arange(x.shape[0], device=x.device)
            first = torch.as_tensor(self.first if self.first is not None else [0] * x.shape[0], device=x.device)
            x = x.clone()
            x[rows, first] = original[rows, first]
        if self.prompt_delta is not None and step == 0:
            delta = self.prompt_delta.to(x.device)
            n = delta.shape[1]
            x = x.clone()
            for row in range(x.shape[0]):
                end = self.prompt_end[row] if self.prompt_end is not None else x.shape[1]
                m = min(n, end)  # rows of a batch share n: shorter prompts' deltas are zero-padded at the front
                x[row, end - m:end] += delta[row, n - m:]
        return x.to(dtype)


def as_interventions(edits: Mapping[int, LayerEdit]) -> list[Intervention]:
    return [Intervention(layer, edit) for layer, edit in sorted(edits.items())]


@contextmanager
def hooked(hf_model: Any, interventions: Sequence[Intervention] = (),
           record: Sequence[int] = ()) -> Iterator[dict[int, torch.Tensor]]:
    """Apply ``interventions`` (step 0) and record the outputs of the ``record`` layers during a forward pass."""
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


def _device(hf_model: Any) -> torch.device:
    device: torch.device = next(hf_model.parameters()).device
    return device


def teacher_forced(
    hf_model: Any,
    prompts: Sequence[Sequence[int]],
    replies: Sequence[Sequence[int]],
    edits: Mapping[int, LayerEdit] | None = None,
    record: Sequence[int] = (),
    pad_id: int = 0,
    chunk: int = 8,
) -> ForcedPass:
    """A right-padded forward pass over ``prompt + reply`` per row, under ``edits``, ``chunk`` rows
    at a time.

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
                                   record, pad_id))
    place = {row: n for n, row in enumerate(order)}
    reply_lp = [lp for part in parts for lp in part.reply_logprobs]
    hidden = {layer: [h for part in parts for h in part.hidden[layer]] for layer in record}
    next_lp = torch.cat([part.next_logprobs for part in parts]) if parts else torch.zeros(0)
    back = [place[i] for i in range(len(prompts))]
    return ForcedPass([reply_lp[n] for n in back], {layer: [hs[n] for n in back] for layer, hs in hidden.items()},
                      next_lp[back] if len(back) else next_lp)


@contextmanager
def _only_scored_positions(hf_model: Any, index: torch.Tensor) -> Iterator[bool]:
    """Feed the output head only the positions ``index`` (``[batch, m]``, relative to the states it
    receives) instead of every kept position: with a 262k-token vocabulary the head costs more than
    the body, and a row needs just its reply's positions. The model's own post-processing of the
    logits (soft-capping, scaling) still applies, since only the head's input changes. Yields
    whether the head was restricted (a model without a separate head module gets every position)."""
    head = hf_model.get_output_embeddings() if hasattr(hf_model, "get_output_embeddings") else None
    if head is None:
        yield False
        return

    def pre_hook(_module, args):
        states = args[0]
        gathered = torch.gather(states, 1, index.to(states.device)[:, :, None].expand(-1, -1, states.shape[-1]))
        return (gathered, *args[1:])

    handle = head.register_forward_pre_hook(pre_hook)
    try:
        yield True
    finally:
        handle.remove()


@torch.inference_mode()
def _forced_chunk(hf_model, prompts, replies, edits, record, pad_id) -> ForcedPass:
    sequences = [list(p) + list(r) for p, r in zip(prompts, replies, strict=True)]
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    first = min(len(p) for p in prompts) - 1  # the earliest position whose logits are needed
    keep = width - first
    scored = max(len(r) for r in replies) + 1  # the prompt end, then each reply token's prefix
    index = torch.full((len(sequences), scored), keep - 1, dtype=torch.long)
    for row, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
        index[row, : len(reply) + 1] = torch.arange(len(prompt) - 1, len(prompt) + len(reply)) - first
    device = _device(hf_model)
    with hooked(hf_model, as_interventions(edits), record) as recorded, \
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


def position_vector(hidden: torch.Tensor, n_prompt: int, position: str) -> torch.Tensor:
    """The state a capture backend records at ``position`` from a teacher-forced ``[seq, d]`` pass.

    Reply token ``k`` is the input at sequence position ``n_prompt + k``; a reply with no tokens
    falls back to the last prompt token, as the ``hf`` backend does.
    """
    reply = hidden[n_prompt:]
    if position == "last_prompt" or reply.shape[0] == 0:
        return hidden[n_prompt - 1]
    if position == "reply_last":
        return reply[-1]
    return reply.mean(dim=0)
