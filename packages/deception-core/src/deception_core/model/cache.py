"""Teacher-forced passes that record the residual stream: `run_with_cache` and its result.

Layer ``L`` is the output of decoder block ``L`` (0-based), the residual stream the capture
backends record during generation. Rows are right-padded with an attention mask, so a row's states
equal those of an unpadded pass; the pass stops once the deepest recorded block has run (the blocks
above it and the output head cannot change what was recorded).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import attrs
import torch

from deception_core.model.hooks import DecoderLayerHooks, decoder_layers
from deception_core.model.intervention import Intervention
from deception_core.model.padding import pad_batch

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@attrs.frozen
class ActivationCache:
    """Recorded states: per row ``[n_positions, len(layers), d_model]`` float32 on the CPU.

    ``positions`` is None when every token of a row was kept (row ``i`` then has ``lengths[i]``
    positions), else the token indices kept, the same for every row."""

    layers: tuple[int, ...]
    states: tuple[torch.Tensor, ...]
    lengths: tuple[int, ...]
    positions: tuple[int, ...] | None = None

    def rows(self, layer: int) -> list[torch.Tensor]:
        """Per row, ``[n_positions, d_model]`` at ``layer``."""
        column = self._column(layer)
        return [row[:, column] for row in self.states]

    def __getitem__(self, layer: int) -> torch.Tensor:
        """``[rows, n_positions, d_model]`` at ``layer`` (rows of unequal length: use `rows`)."""
        rows = self.rows(layer)
        if len({row.shape[0] for row in rows}) > 1:
            raise ValueError("the rows have different lengths; use cache.rows(layer), or pass positions=[-1] "
                             "(or other token indices) to run_with_cache")
        return torch.stack(rows)

    def _column(self, layer: int) -> int:
        if layer not in self.layers:
            raise KeyError(f"layer {layer} was not recorded; recorded: {list(self.layers)}")
        return self.layers.index(layer)


class Counter(Protocol):
    """A progress bar (`deception_core.ui.progress.progress_bar`) counting rows."""

    def update(self, n: int) -> object: ...


class _Done(Exception):
    """Raised from the recording hook to end a forward pass once the deepest wanted block has run."""


def _pick(states: torch.Tensor, length: int, positions: Sequence[int] | None) -> torch.Tensor:
    """A row's ``[length, L, d]`` states, or those at ``positions`` (negative: from the row's end)."""
    row = states[:length]
    if positions is None:
        return row
    bad = [p for p in positions if not -length <= p < length]
    if bad:
        raise IndexError(f"positions {bad} lie outside a row of {length} tokens")
    return row[torch.tensor([p % length for p in positions], dtype=torch.long)]


@torch.inference_mode()
def forward_cache(hf_model: PreTrainedModel, sequences: Sequence[Sequence[int]], layers: Sequence[int], pad_id: int,
                  *, positions: Sequence[int] | None = None, batch_size: int = 8, final_norm: bool = False,
                  interventions: Sequence[Intervention] = (), bar: Counter | None = None) -> ActivationCache:
    """Record the outputs of decoder blocks ``layers`` over right-padded ``sequences``, ``batch_size``
    rows at a time in the given order.

    ``final_norm``: read the states from HF's ``output_hidden_states`` (``hidden_states[L + 1]``),
    which for the LAST block is the output after the model's final norm (earlier blocks are the same
    either way); `deception capture` records that, and keeps doing so that its datasets stay as they were.
    """
    layers = [int(layer) for layer in layers]
    if not layers:
        raise ValueError("run_with_cache needs at least one layer")
    device = next(hf_model.parameters()).device
    blocks = decoder_layers(hf_model)
    out: list[torch.Tensor] = []
    for start in range(0, len(sequences), max(1, batch_size)):
        chunk = sequences[start:start + max(1, batch_size)]
        ids, mask = pad_batch(chunk, pad_id, side="right")
        if final_norm:
            hooks = DecoderLayerHooks(blocks, interventions)
            try:
                result = hf_model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True,
                                  logits_to_keep=1)
            finally:
                hooks.remove()
            stacked = torch.stack([result.hidden_states[layer + 1] for layer in layers], dim=2).float().cpu()
        else:
            stacked = _hooked_pass(hf_model, blocks, ids.to(device), mask.to(device), layers, interventions)
        out += [_pick(stacked[row], len(seq), positions) for row, seq in enumerate(chunk)]
        if bar is not None:
            bar.update(len(chunk))
    return ActivationCache(tuple(layers), tuple(out), tuple(len(s) for s in sequences),
                           None if positions is None else tuple(int(p) for p in positions))


def _hooked_pass(hf_model: PreTrainedModel, blocks: torch.nn.ModuleList, ids: torch.Tensor, mask: torch.Tensor,
                 layers: Sequence[int], interventions: Sequence[Intervention]) -> torch.Tensor:
    """``[rows, width, len(layers), d]`` float32 on the CPU, stopping after the deepest block."""
    seen: dict[int, torch.Tensor] = {}
    wanted = set(layers)

    def record(layer: int, hidden: torch.Tensor) -> None:
        seen[layer] = hidden.float().cpu()
        if wanted <= set(seen):
            raise _Done

    hooks = DecoderLayerHooks(blocks, interventions, layers, record)
    try:
        hf_model(input_ids=ids, attention_mask=mask, logits_to_keep=1, use_cache=False)
    except _Done:
        pass
    finally:
        hooks.remove()
    return torch.stack([seen[layer] for layer in layers], dim=2)
