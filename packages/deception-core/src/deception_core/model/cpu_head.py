"""A faster vocabulary projection for decoding on CPU.

Decoding multiplies a few hidden states (one per row of the batch) by the vocabulary matrix, which
for modern tokenizers is by far the largest matrix of a small model (Gemma 3's 262k x 640 holds
most of the 270M parameters). ``nn.Linear`` computes ``x @ W.T``; on CPU, MKL runs that shape
(a few rows against a very wide matrix) much more slowly than the same product written as
``(W @ x.T).T``: on a 2-core machine with a 262k x 640 float32 matrix, 2.7x faster at 4 rows and
1.3x at 16, the same at 1 row (`deception bench` shows the effect on whole batches). The product
is the same up to float rounding; only the order of the summation may differ.

Its output is the transpose of a contiguous matrix. A reduction over one row's vocabulary then
reads across the grain: on a teacher-forced pass of 46 replies (874 scored positions), the
log-softmax of each reply took 39 ms instead of under 1 ms, a quarter of the pass. From
`ROW_MAJOR_FROM` rows on, the plain layout is as fast, so those products run as ``nn.Linear``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import PreTrainedModel

log = logging.getLogger("deception.models")

#: at this many rows and more, the plain layout is as fast, and its row-major output is what the
#: callers' per-row reductions (log-softmax, top-k) read fastest
ROW_MAJOR_FROM = 64

#: projections narrower than this are left alone: the two layouts run at the same speed there
MIN_VOCABULARY = 32_768


class ColumnMajorHead(nn.Linear):
    """An ``nn.Linear`` that computes ``(W @ x.T).T``; same parameters, same state dict."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        rows = input.reshape(-1, input.shape[-1])
        if rows.shape[0] > ROW_MAJOR_FROM:
            return super().forward(input)
        out = torch.mm(self.weight, rows.T).T
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*input.shape[:-1], self.out_features)


def use_column_major_head(hf_model: PreTrainedModel) -> bool:
    """Swap the output projection of a CPU model for `ColumnMajorHead` when it is a wide ``nn.Linear``.

    The module keeps its identity and its (possibly tied) weight; only its class changes, so
    hooks, ``state_dict`` and TransformerLens conversion see the same layer. Returns whether it
    was swapped.
    """
    head = hf_model.get_output_embeddings()
    if type(head) is not nn.Linear or head.weight.device.type != "cpu":
        return False
    if head.out_features < MIN_VOCABULARY or head.out_features < 8 * head.in_features:
        return False
    head.__class__ = ColumnMajorHead
    log.debug("output projection %d x %d computed column-major on CPU", head.out_features, head.in_features)
    return True
