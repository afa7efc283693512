"""Nested, trial-grouped cross-validation of one probe method on one activation matrix.

Outer folds give the held-out scores every reported figure comes from. Inside each outer training
set, grouped validation folds choose the hyper-parameter and yield the validation AUROC used to
choose layer, position and method; the outer test fold is never looked at while choosing.
"""

from __future__ import annotations

from collections import Counter

import attrs
import numpy as np

from deception_core import JSONObject
from deception_probes.methods import ProbeMethod
from deception_probes.metrics import auroc
from deception_probes.splits import Fold, FoldPlan, both_classes


@attrs.define
class CrossValResult:
    """What `cross_validate` returns for one method: the held-out score of every labelled sample and the per-fold choices."""
    method: str
    scores: np.ndarray  # held-out score per labelled sample (NaN where no fold scored it)
    hypers: list[float | None]  # chosen per outer fold (None for skipped folds or methods without one)
    validation_auroc: list[float | None]  # best mean validation AUROC per outer fold
    validation_table: list[JSONObject]  # per outer fold: hyper -> mean validation AUROC
    direction_norms: list[float] = attrs.field(factory=list)  # raw-space norm of each fold's probe
    #: per outer fold: validation scores of its training rows at the chosen hyper-parameter (NaN where none)
    validation_scores: list[np.ndarray | None] = attrs.field(factory=list)

    @property
    def scored(self) -> np.ndarray:
        return np.asarray(~np.isnan(self.scores))

    def chosen_hyper(self) -> float | None:
        """The hyper-parameter chosen most often across folds (for refits on all data)."""
        values = [h for h in self.hypers if h is not None]
        return Counter(values).most_common(1)[0][0] if values else None


def _validation_scores(method: ProbeMethod, X: np.ndarray, y: np.ndarray, inner: list[Fold],
                       seed: int) -> tuple[dict[float | None, float], dict[float | None, np.ndarray]]:
    """Mean validation AUROC per hyper-parameter value (folds whose validation part lacks a class are
    skipped), and per value the validation score of every training row (NaN where no fold scored it)."""
    grid = method.hyper_grid or (method.default_hyper,)
    per_hyper: dict[float | None, list[float]] = {h: [] for h in grid}
    scores = {h: np.full(len(y), np.nan) for h in grid}
    for itr, iva in inner:
        if not both_classes(y[itr]) or not both_classes(y[iva]):
            continue
        probes = method.fit_path(X[itr], y[itr], seed)
        for h, probe in zip(grid, probes, strict=True):
            scores[h][iva] = probe.score(X[iva])
            value = auroc(scores[h][iva], y[iva])
            if value is not None:
                per_hyper[h].append(value)
    return {h: float(np.mean(v)) for h, v in per_hyper.items() if v}, scores


def cross_validate(method: ProbeMethod, X: np.ndarray, y: np.ndarray, plans: list[FoldPlan], seed: int) -> CrossValResult:
    """Held-out scores of ``method`` over the fold ``plans``: each fold is fitted on its training rows
    and scores its test rows."""
    scores = np.full(len(y), np.nan)
    hypers: list[float | None] = []
    validation: list[float | None] = []
    tables: list[JSONObject] = []
    norms: list[float] = []
    fold_validation_scores: list[np.ndarray | None] = []
    for plan in plans:
        if not plan.usable:
            hypers.append(None)
            validation.append(None)
            tables.append({})
            fold_validation_scores.append(None)
            continue
        Xtr, ytr = X[plan.train], y[plan.train]
        table, inner_scores = _validation_scores(method, Xtr, ytr, plan.inner, seed) if plan.inner else ({}, {})
        if table:
            hyper = max(table, key=lambda h: table[h])  # grid order breaks ties: most regularised first
            validation.append(table[hyper])
            fold_validation_scores.append(inner_scores[hyper])
        else:
            hyper = method.default_hyper
            validation.append(None)
            fold_validation_scores.append(None)
        probe = method.fit(Xtr, ytr, hyper, seed)
        scores[plan.test] = probe.score(X[plan.test])
        norms.append(float(np.linalg.norm(probe.direction)))
        hypers.append(hyper)
        tables.append({str(h): v for h, v in table.items()})
    return CrossValResult(method.name, scores, hypers, validation, tables, norms, fold_validation_scores)


def held_out_scores_fixed(method: ProbeMethod, X: np.ndarray, y: np.ndarray, plans: list[FoldPlan],
                          hyper: float | None, seed: int) -> np.ndarray:
    """Held-out scores with a fixed hyper-parameter (used by the permutation null and transfer diagonals)."""
    scores = np.full(len(y), np.nan)
    for plan in plans:
        if not both_classes(y[plan.train]):
            continue
        probe = method.fit(X[plan.train], y[plan.train], hyper, seed)
        scores[plan.test] = probe.score(X[plan.test])
    return scores

