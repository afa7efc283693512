"""Which layer x position cells can carry a signal at all: a cell whose activations are the same for every
labelled sample cannot separate anything, and is left out of the grid and the best-probe search.

The common case is ``last_prompt`` on bare statements: the prompt of a statement with no dialogue is
the same (often a lone beginning-of-sequence token) for every record, so every layer there holds one
vector repeated. Probes trained on it all score 0.50, and a table of such cells reads as results.
Instead the position is reported once as "not informative", with the reason.

"Constant" allows for the rounding of batched forward passes: every column's spread across samples
within ``RELATIVE_TOLERANCE`` of the matrix's largest magnitude.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from deception_core import JSONObject, JSONValue

if TYPE_CHECKING:
    from deception_core import Dataset

#: a column counts as constant when its spread across samples is at most this share of the matrix's largest |value|
RELATIVE_TOLERANCE = 1e-5


def is_constant(X: np.ndarray) -> bool:
    """Whether every row of ``X`` is the same vector (to ``RELATIVE_TOLERANCE``)."""
    if len(X) < 2:
        return True
    spread = float(np.max(np.ptp(X, axis=0)))
    return bool(spread <= RELATIVE_TOLERANCE * max(float(np.max(np.abs(X))), float(np.finfo(np.float32).tiny)))


def constant_cells(dataset: Dataset, rows: np.ndarray) -> set[tuple[int, str]]:
    """The (layer, position) cells whose activations are the same for every one of ``rows``."""
    return {(layer, position) for layer in dataset.layers for position in dataset.positions
            if is_constant(np.asarray(dataset.matrix(layer, position))[rows])}


def describe(constant: set[tuple[int, str]], layers: Sequence[int], positions: Sequence[str],
             n_samples: int) -> list[JSONObject]:
    """One entry per position with constant cells: the whole position when every layer is constant
    (reported once), otherwise the layers that are."""
    entries: list[JSONObject] = []
    for position in positions:
        flat = [layer for layer in layers if (layer, position) in constant]
        if not flat:
            continue
        whole = len(flat) == len(layers)
        where = f"at every captured layer ({len(layers)})" if whole else f"at layer(s) {', '.join(map(str, flat))}"
        entries.append({
            "position": position,
            "layers": list(flat),
            "whole_position": whole,
            "reason": (f"its activations are the same for all {n_samples} labelled samples {where} (the same "
                       "token in the same context, e.g. the prompt of bare statements): nothing to separate, so "
                       "no probe is trained there and it takes no part in choosing the best probe"),
        })
    return entries


def table_lines(entries: Sequence[Mapping[str, JSONValue]]) -> list[str]:
    """The console lines: one per position."""
    lines = []
    for entry in entries:
        layers = entry["layers"]
        assert isinstance(layers, list)
        where = "" if entry["whole_position"] else f" at layer(s) {', '.join(str(layer) for layer in layers)}"
        lines.append(f"not informative: position {entry['position']}{where}: activations identical across samples; "
                     "left out of the grid and of the best-probe search")
    return lines
