"""The read-outs the probes analysis hands to the causal tests in memory: the selected probe as a
`ProbeDirection`, and the next-best cells' probes, ranked, for the causal tests to fall back on when
norm-matched random directions at the selected cell already break the model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from deception_core import JSONValue, ProbeDirection, json_number

if TYPE_CHECKING:
    from deception_core import Dataset
    from deception_probes.crossval import CrossValResult
    from deception_probes.methods import LinearProbe, ProbeMethod

#: other (layer, position) cells handed over beside the selected one
N_ALTERNATIVES = 3


def probe_direction(probe: LinearProbe, best: Mapping[str, JSONValue]) -> ProbeDirection:
    """The selected probe (fitted on every labelled sample) as a `ProbeDirection`; ``best`` is the
    results document's ``best`` entry, whose file holds the same vector and bias."""
    provenance = {"analysis": "probes", "method": best.get("method"), "file": best.get("file"),
                  "probe_auroc": best.get("auroc"), "probe_nested_auroc": best.get("nested_auroc"),
                  "selected_on": best.get("selected_on"), "rank": 0}
    return ProbeDirection(int(json_number(best["layer"])), str(best["position"]), probe.direction, float(probe.bias), "probe",
                          provenance)


def cell_ranking(cvs: dict[tuple[int, str, str], CrossValResult]) -> list[tuple[tuple[int, str, str], float]]:
    """Every (layer, position)'s best method by mean validation AUROC (the selection's own criterion),
    best first; cells without a validation figure are left out."""
    best: dict[tuple[int, str], tuple[tuple[int, str, str], float]] = {}
    for key, cv in cvs.items():
        values = [v for v in cv.validation_auroc if v is not None]
        if not values:
            continue
        score = float(np.mean(values))
        cell = (key[0], key[1])
        if cell not in best or score > best[cell][1]:
            best[cell] = (key, score)
    return sorted(best.values(), key=lambda item: -item[1])


def alternatives(dataset: Dataset, rows: np.ndarray, y: np.ndarray, cvs: dict[tuple[int, str, str], CrossValResult],
                 methods: list[ProbeMethod], selected: tuple[int, str, str], seed: int,
                 n: int = N_ALTERNATIVES) -> tuple[ProbeDirection, ...]:
    """The probes of the ``n`` best other cells (each cell's best method at its chosen ``C``, fitted
    on every labelled sample), ranked by mean validation AUROC."""
    by_name = {m.name: m for m in methods}
    out: list[ProbeDirection] = []
    for key, score in cell_ranking(cvs):
        if (key[0], key[1]) == (selected[0], selected[1]) or key[2] not in by_name:
            continue
        X = np.asarray(dataset.matrix(key[0], key[1]))[rows]
        probe = by_name[key[2]].fit(X, y, cvs[key].chosen_hyper(), seed)
        if not np.linalg.norm(probe.direction) > 0:
            continue
        out.append(ProbeDirection(key[0], key[1], probe.direction, float(probe.bias), "probe",
                                  {"analysis": "probes", "method": key[2], "validation_auroc": score,
                                   "selected_on": "validation folds (mean validation AUROC)", "rank": len(out) + 1,
                                   "note": "a lower-ranked cell, handed over for the causal tests' fallback"}))
        if len(out) == n:
            break
    return tuple(out)
