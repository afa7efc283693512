"""Null distributions: shuffled labels (a permutation p-value) and norm-matched random directions."""

from __future__ import annotations

from typing import Any

import numpy as np

from deception_probes.crossval import FoldPlan, held_out_scores_fixed
from deception_probes.methods import ProbeMethod
from deception_probes.metrics import auroc, auroc_columns
from deception_probes.splits import feasible_folds, grouped_folds


def permutations(y: np.ndarray, groups: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """``n`` label shufflings that move whole trials' label runs, not single samples.

    Trials are put in a random order, their label sequences concatenated, and the result laid back
    onto the samples ordered by trial. Runs of one trial's labels stay (mostly) together, so the
    within-trial correlation of labels survives the shuffle, while the link to activations is broken.
    """
    rng = np.random.default_rng(seed)
    groups = np.asarray(groups).astype(str)
    names, codes = np.unique(groups, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    members = [np.flatnonzero(codes == g) for g in range(len(names))]
    out = []
    for _ in range(n):
        sequence = np.concatenate([y[members[g]] for g in rng.permutation(len(names))])
        permuted = np.empty_like(y)
        permuted[order] = sequence
        out.append(permuted)
    return out


def shuffled_plans(shuffled: list[np.ndarray], groups: np.ndarray, n_folds: int, seed: int) -> list[list[FoldPlan] | None]:
    """Grouped folds rebuilt for each shuffled labelling (stratification is part of the procedure)."""
    out: list[list[FoldPlan] | None] = []
    for y_perm in shuffled:
        k = feasible_folds(y_perm, groups, n_folds)
        out.append([FoldPlan(tr, te, [], True) for tr, te in grouped_folds(y_perm, groups, k, seed)] if k >= 2 else None)
    return out


def permutation_test(method: ProbeMethod, X: Any, shuffled: list[np.ndarray], plans: list[list[FoldPlan] | None],
                     hyper: float | None, observed: float | None, seed: int) -> dict[str, Any] | None:
    """Rerun the grouped cross-validation on shuffled labels; p = (1 + #null >= observed) / (1 + n).

    ``plans`` are the folds rebuilt for each shuffle (`shuffled_plans`); the hyper-parameter is
    held at the value chosen on the real labels.
    """
    if observed is None or not shuffled:
        return None
    null = []
    for y_perm, perm_plans in zip(shuffled, plans, strict=True):
        if perm_plans is None:
            continue
        scores = held_out_scores_fixed(method, X, y_perm, perm_plans, hyper, seed)
        mask = ~np.isnan(scores)
        value = auroc(scores[mask], y_perm[mask])
        if value is not None:
            null.append(value)
    if not null:
        return None
    null_arr = np.asarray(null)
    return {
        "p_value": float((1 + (null_arr >= observed).sum()) / (1 + len(null_arr))),
        "n_permutations": int(len(null_arr)),
        "null_mean": float(null_arr.mean()),
        "null_sd": float(null_arr.std(ddof=1)) if len(null_arr) > 1 else None,
        "null_q95": float(np.quantile(null_arr, 0.95)),
        "hyper": hyper,
        "shuffle": "trial label runs in random trial order; folds rebuilt per shuffle",
    }


def random_direction_null(X: np.ndarray, y: np.ndarray, norm: float, n: int, seed: int,
                          observed: dict[str, float | None]) -> dict[str, Any] | None:
    """AUROC of ``n`` random Gaussian directions with the probe's norm (AUROC itself is scale-free).

    ``observed`` maps method -> held-out AUROC; each gets the fraction of random directions that match
    or beat it.
    """
    if n <= 0 or len(y) == 0 or y.min() == y.max():
        return None
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((X.shape[1], n))
    directions *= norm / np.linalg.norm(directions, axis=0, keepdims=True)
    values = auroc_columns(np.asarray(X, dtype=np.float64) @ directions, y)
    return {
        "n_directions": int(n),
        "norm": float(norm),
        "auroc_mean": float(values.mean()),
        "auroc_q025": float(np.quantile(values, 0.025)),
        "auroc_q975": float(np.quantile(values, 0.975)),
        "auroc_max": float(values.max()),
        "fraction_at_least_observed": {
            m: (None if v is None else float((values >= v).mean())) for m, v in observed.items()
        },
    }
