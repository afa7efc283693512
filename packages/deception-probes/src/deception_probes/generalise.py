"""Generalisation: leave-one-scenario-out and transfer between condition groups.

A split whose training or test side lacks a class is reported as "not computable" with the counts,
never as a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deception_core import Sample
from deception_probes.crossval import FoldPlan, held_out_scores_fixed
from deception_probes.methods import ProbeMethod
from deception_probes.metrics import auroc_ci, class_counts
from deception_probes.splits import both_classes, feasible_folds, grouped_folds

#: condition groups compared by the transfer matrices: name -> (sample field, accepted values)
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "emergent": ("mode", ("emergent",)),
    "instructed": ("mode", ("instructed",)),
    "HIGH": ("condition", ("high_incentive",)),
    "LOW": ("condition", ("low_incentive",)),
}
MATRICES: dict[str, tuple[str, str]] = {"mode": ("emergent", "instructed"), "incentive": ("HIGH", "LOW")}


def _missing(y: np.ndarray) -> str:
    counts = class_counts(y)
    if len(y) == 0:
        return "no labelled samples"
    return f"one class only ({counts['honest']} honest, {counts['deceptive']} deceptive)"


def train_test(method: ProbeMethod, X: Any, y: np.ndarray, groups: np.ndarray, train: np.ndarray, test: np.ndarray,
               hyper: float | None, settings: Any) -> dict[str, Any]:
    """Fit on ``train`` rows, evaluate on ``test`` rows; AUROC with a trial-bootstrap interval."""
    entry: dict[str, Any] = {"train_counts": class_counts(y[train], groups[train]),
                             "test_counts": class_counts(y[test], groups[test])}
    if not both_classes(y[train]):
        return {**entry, "status": "not computable", "reason": f"training side: {_missing(y[train])}", "auroc": None}
    if not both_classes(y[test]):
        return {**entry, "status": "not computable", "reason": f"test side: {_missing(y[test])}", "auroc": None}
    probe = method.fit(X[train], y[train], hyper, settings.seed)
    scores = probe.score(X[test])
    ci = auroc_ci(scores, y[test], groups[test])
    return {**entry, "status": "ok", "reason": None, "auroc": ci}


def within_group(method: ProbeMethod, X: Any, y: np.ndarray, groups: np.ndarray, rows: np.ndarray,
                 hyper: float | None, settings: Any) -> dict[str, Any]:
    """The diagonal of a transfer matrix: grouped cross-validation inside one condition group."""
    yy, gg = y[rows], groups[rows]
    entry: dict[str, Any] = {"train_counts": class_counts(yy, gg), "test_counts": class_counts(yy, gg)}
    if not both_classes(yy):
        return {**entry, "status": "not computable", "reason": _missing(yy), "auroc": None}
    k = feasible_folds(yy, gg, settings.n_folds)
    if k < 2:
        return {**entry, "status": "not computable", "auroc": None,
                "reason": "too few trials for grouped CV (need at least 2 trials with each class)"}
    plans = [FoldPlan(tr, te, [], both_classes(yy[tr])) for tr, te in grouped_folds(yy, gg, k, settings.seed)]
    scores = held_out_scores_fixed(method, X[rows], yy, plans, hyper, settings.seed)
    mask = ~np.isnan(scores)
    ci = auroc_ci(scores[mask], yy[mask], gg[mask])
    if ci is None:
        return {**entry, "status": "not computable", "reason": "held-out folds lack a class", "auroc": None}
    return {**entry, "status": "ok", "reason": f"grouped {k}-fold CV within the group", "auroc": ci}


def group_rows(samples: Sequence[Sample], name: str) -> np.ndarray:
    field, values = GROUPS[name]
    return np.array([i for i, s in enumerate(samples) if getattr(s, field) in values], dtype=np.int64)


def transfer_matrices(method: ProbeMethod, X: Any, y: np.ndarray, groups: np.ndarray, samples: Sequence[Sample],
                      hyper: float | None, settings: Any) -> dict[str, Any]:
    """For each matrix (mode, incentive): a 2x2 grid train-group x test-group; off-diagonals are transfers."""
    out: dict[str, Any] = {}
    for matrix, (a, b) in MATRICES.items():
        rows = {name: group_rows(samples, name) for name in (a, b)}
        cells = []
        for train_name in (a, b):
            for test_name in (a, b):
                if train_name == test_name:
                    result = within_group(method, X, y, groups, rows[train_name], hyper, settings)
                else:
                    result = train_test(method, X, y, groups, rows[train_name], rows[test_name], hyper, settings)
                cells.append({"train": train_name, "test": test_name, **result})
        out[matrix] = {"groups": [a, b], "cells": cells}
    return out


def leave_one_scenario_out(method: ProbeMethod, X: Any, y: np.ndarray, groups: np.ndarray,
                           scenarios: np.ndarray, hyper: float | None, settings: Any) -> dict[str, Any]:
    names = sorted(set(scenarios.tolist()))
    if len(names) < 2:
        return {"status": "not computable", "reason": f"one scenario only ({', '.join(names) or 'none'})", "held_out": []}
    held_out = []
    for name in names:
        test = np.flatnonzero(scenarios == name)
        train = np.flatnonzero(scenarios != name)
        held_out.append({"scenario": name, **train_test(method, X, y, groups, train, test, hyper, settings)})
    values = [h["auroc"]["value"] for h in held_out if h["auroc"] is not None]
    return {"status": "ok" if values else "not computable",
            "reason": None if values else "no held-out scenario had both classes with a trainable remainder",
            "held_out": held_out,
            "mean_auroc": float(np.mean(values)) if values else None}
