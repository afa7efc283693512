"""Probes on SAE codes: sparse (L1) logistic regression and the features most associated with deception."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deception_core import JSONObject
from deception_probes.crossval import FoldPlan, cross_validate
from deception_probes.methods import SparseLogisticMethod
from deception_probes.metrics import auroc_ci, balanced_accuracy, recall_at_fpr

if TYPE_CHECKING:
    import scipy.sparse as sp

    from deception_core import Dataset
    from deception_probes.settings import ProbeSettings


def sae_positions(dataset: Dataset) -> list[str]:
    return sorted({k.split("/")[1] for k in dataset.arrays if k.startswith("sae/") and k.endswith("/indices")})


def sae_matrix(dataset: Dataset, position: str) -> sp.csr_matrix:
    """The CSR matrix [n_samples, d_sae] of the SAE codes stored for ``position``."""
    import scipy.sparse as sp

    indices = dataset.arrays[f"sae/{position}/indices"].astype(np.int64)
    values = dataset.arrays[f"sae/{position}/values"].astype(np.float64)
    offsets = dataset.arrays[f"sae/{position}/offsets"].astype(np.int64)
    recorded = (dataset.meta.sae or {}).get("d_sae")
    d_sae = int(recorded) if isinstance(recorded, (int, float)) and recorded else int(indices.max() + 1 if len(indices) else 1)
    return sp.csr_matrix((values, indices, offsets), shape=(len(offsets) - 1, d_sae))


def top_features(weights: np.ndarray, X: np.ndarray, y: np.ndarray, k: int) -> list[JSONObject]:
    """The ``k`` features with the largest positive weights (pointing to deception), with firing rates."""
    active = X.copy()
    active.data = (active.data != 0).astype(np.float64)
    freq_d = np.asarray(active[y == 1].mean(axis=0)).ravel() if (y == 1).any() else np.zeros(X.shape[1])
    freq_h = np.asarray(active[y == 0].mean(axis=0)).ravel() if (y == 0).any() else np.zeros(X.shape[1])
    order = [int(i) for i in np.argsort(-weights) if weights[i] > 0][:k]
    return [{"index": i, "weight": float(weights[i]), "freq_deceptive": float(freq_d[i]),
             "freq_honest": float(freq_h[i])} for i in order]


def analyse_sae(dataset: Dataset, rows: np.ndarray, y: np.ndarray, groups: np.ndarray, plans: list[FoldPlan],
                settings: ProbeSettings, out_dir: Path) -> JSONObject:
    positions = sae_positions(dataset)
    if not positions:
        return {"status": "absent", "reason": "this dataset has no SAE codes (run with --sae)", "positions": []}
    meta = dataset.meta.sae or {}
    method = SparseLogisticMethod()
    results = []
    for position in positions:
        X = sae_matrix(dataset, position)[rows]
        cv = cross_validate(method, X, y, plans, settings.seed)
        mask = cv.scored
        entry: JSONObject = {"position": position, "d_sae": int(X.shape[1]), "layer": meta.get("layer"),
                           "method": method.name, "hypers": cv.hypers}
        ci = auroc_ci(cv.scores[mask], y[mask], groups[mask])
        entry["auroc"] = ci
        entry["balanced_accuracy"] = balanced_accuracy(cv.scores[mask], y[mask])
        entry["recall_at_fpr"] = recall_at_fpr(cv.scores[mask], y[mask], settings.fpr)
        hyper = cv.chosen_hyper()
        probe = method.fit(X, y, hyper, settings.seed)
        features = top_features(probe.direction, X, y, settings.top_features)
        entry["top_features"] = features
        if meta.get("neuronpedia_id"):  # sae-lens names the SAE's Neuronpedia page: link each feature's dashboard
            for feature in features:
                feature["neuronpedia"] = f"https://www.neuronpedia.org/{meta['neuronpedia_id']}/{feature['index']}"
        entry["nonzero_weights"] = int(np.count_nonzero(probe.direction))
        path = probe.save(out_dir / "probes" / f"sae_{position}.safetensors", position=position, layer=meta.get("layer"))
        entry["file"] = str(path.relative_to(out_dir))
        entry["status"] = "ok" if ci is not None else "not computable"
        results.append(entry)
    return {"status": "ok", "reason": None, "layer": meta.get("layer"), "positions": results}
