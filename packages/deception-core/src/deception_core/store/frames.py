"""A dataset as a table: one row per sample, nested fields flattened as ``parent.child``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from deception_core.store.fields import as_dict
from deception_core.ui.progress import progress_bar


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        elif isinstance(value, dict):
            out[name] = None
        else:
            out[name] = value
    return out


def _one_type(values: list[Any]) -> list[Any]:
    """JSON text for a column that mixes types or holds lists; the values unchanged otherwise."""
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int, float} and kinds != {int, float}:
        return values
    if kinds == {int, float}:
        return [None if v is None else float(v) for v in values]
    if len(kinds) <= 1 and not kinds & {list, tuple, dict}:
        return values
    return [None if v is None else json.dumps(v, sort_keys=True, default=str) for v in values]


def dataset_frame(dataset: Any, activations: bool | Iterable[tuple[int, str]] = False):
    """The samples of ``dataset`` as a `pandas.DataFrame` (see the module docstring for the columns)."""
    import pandas as pd

    flat = [_flatten(as_dict(s)) for s in dataset.samples]
    names: dict[str, None] = {}
    for record in flat:
        names.update(dict.fromkeys(record))
    columns = {name: _one_type([record.get(name) for record in flat]) for name in names}
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(flat)))
    if activations:
        pairs = ([(layer, p) for layer in dataset.layers for p in dataset.positions] if activations is True
                 else list(activations))
        bar = progress_bar(len(pairs), "activation columns", "column")
        for layer, position in pairs:
            matrix = dataset.matrix(int(layer), str(position))
            frame[f"act.layer{int(layer)}.{position}"] = list(matrix)
            bar.update(1)
        bar.close()
    return frame
