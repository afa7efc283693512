"""A multi-layer probe: the mean of the per-layer logistic probes' log-odds over every captured layer.

An ensemble, not a concatenation: each layer's probe is the one cross-validation already fitted (its
``C`` chosen on that layer's validation folds), so the ensemble costs no refits. Its validation AUROC
per outer fold is the AUROC of the averaged validation scores, so it competes in the nested selection
(`deception_probes.engine._nested`) on the same footing as every single cell, and its held-out AUROC
is reported beside the best single cell. It has no single direction, so it is never the saved "best
probe" handed to the causal tests.
"""

from __future__ import annotations

import numpy as np

from deception_core import JSONObject
from deception_probes.crossval import CrossValResult, FoldPlan
from deception_probes.metrics import auroc, auroc_ci, balanced_accuracy, recall_at_fpr

ALL_LAYERS = -1  # the layer field of a multi-layer entry
METHOD = "multi_layer_logistic"
BASE_METHOD = "logistic"


def _mean(columns: list[np.ndarray]) -> np.ndarray:
    stacked = np.stack(columns)
    with np.errstate(invalid="ignore"):
        out: np.ndarray = stacked.mean(axis=0)
    out[np.isnan(stacked).any(axis=0)] = np.nan
    return out


def multi_layer_probes(cvs: dict[tuple[int, str, str], CrossValResult], layers: list[int], positions: list[str],
                       y: np.ndarray, groups: np.ndarray, plans: list[FoldPlan], fpr: float
                       ) -> tuple[list[JSONObject], dict[tuple[int, str, str], CrossValResult]]:
    """One ensemble per position (when at least two layers were captured): entries and their CV results."""
    entries: list[JSONObject] = []
    ensembles: dict[tuple[int, str, str], CrossValResult] = {}
    for position in positions:
        members = [cvs[(layer, position, BASE_METHOD)] for layer in layers if (layer, position, BASE_METHOD) in cvs]
        if len(members) < 2:
            continue
        held = _mean([m.scores for m in members])
        validation: list[float | None] = []
        for number, plan in enumerate(plans):
            parts = [m.validation_scores[number] if number < len(m.validation_scores) else None for m in members]
            present = [p for p in parts if p is not None]
            if len(present) != len(parts):
                validation.append(None)
                continue
            scores = _mean(present)
            mask = ~np.isnan(scores)
            validation.append(auroc(scores[mask], y[plan.train][mask]))
        cv = CrossValResult(METHOD, held, [None] * len(plans), validation, [{} for _ in plans])
        ensembles[(ALL_LAYERS, position, METHOD)] = cv
        mask = cv.scored
        values = [v for v in validation if v is not None]
        entries.append({
            "layer": ALL_LAYERS, "layers": list(layers), "position": position, "method": METHOD,
            "combines": f"mean of the {BASE_METHOD} probes' log-odds over {len(members)} layers",
            "n_scored": int(mask.sum()),
            "auroc": auroc_ci(held[mask], y[mask], groups[mask]),
            "balanced_accuracy": balanced_accuracy(held[mask], y[mask]),
            "recall_at_fpr": recall_at_fpr(held[mask], y[mask], fpr),
            "fold_aurocs": [auroc(held[p.test], y[p.test]) if p.usable else None for p in plans],
            "validation_auroc": validation,
            "mean_validation_auroc": float(np.mean(values)) if values else None,
        })
    return entries, ensembles
