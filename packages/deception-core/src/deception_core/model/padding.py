"""The one padding routine: token-id rows to a rectangular batch with an attention mask.

Left padding (generation, the judge's prompt pass) keeps every row's last token in the last
column, where the next token is read; right padding (teacher-forced passes) keeps every row's
positions those of an unpadded pass. Either way a row's states equal its unpadded pass up to float
noise, because the mask hides the pad columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

Side = Literal["left", "right"]


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, side: Side = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)``, both ``[len(rows), longest]`` long tensors on the CPU; ``mask`` is 0 on padding."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for n, row in enumerate(rows):
        if not len(row):
            continue
        tokens = torch.tensor(list(row), dtype=torch.long)
        if side == "left":
            ids[n, width - len(row):] = tokens
            mask[n, width - len(row):] = 1
        else:
            ids[n, :len(row)] = tokens
            mask[n, :len(row)] = 1
    return ids, mask


def mask_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch: 0 at each row's first real token (pad columns get 0)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)
