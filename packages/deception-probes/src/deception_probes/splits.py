"""Folds grouped by trial: the rounds of one trial never straddle train and test.

Rounds of a trial share a prompt prefix and a game state, so their activations are near-duplicates;
a per-sample split would let a probe recognise the trial instead of the deception.
"""

from __future__ import annotations

import attrs
import numpy as np

Fold = tuple[np.ndarray, np.ndarray]


@attrs.define
class FoldPlan:
    """An outer fold and the validation folds inside its training set (indices into the training set)."""

    train: np.ndarray
    test: np.ndarray
    inner: list[Fold]
    usable: bool  # the training set holds both classes


def trials_per_class(y: np.ndarray, groups: np.ndarray) -> tuple[int, int]:
    """Number of trials holding at least one honest sample, and one deceptive sample."""
    groups = np.asarray(groups)
    return len(set(groups[y == 0].tolist())), len(set(groups[y == 1].tolist()))


def feasible_folds(y: np.ndarray, groups: np.ndarray, wanted: int) -> int:
    """How many grouped folds the data support (at most ``wanted``): bounded by trials of each class."""
    honest_trials, deceptive_trials = trials_per_class(y, groups)
    return int(min(wanted, honest_trials, deceptive_trials, len(set(np.asarray(groups).tolist()))))


def grouped_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> list[Fold]:
    """k folds of whole trials, class proportions balanced greedily; ``n_folds`` must be feasible (>= 2).

    Trials are visited largest first (ties in random order) and each goes to the fold where it
    brings the per-class counts closest to an even share, preferring the emptier fold on ties.
    (The same idea as scikit-learn's StratifiedGroupKFold, vectorised over folds: it runs once
    per shuffled-label rerun, so it must be cheap.)
    """
    rng = np.random.default_rng(seed)
    _, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    n_groups = int(codes.max()) + 1
    counts = np.zeros((n_groups, 2))
    np.add.at(counts, (codes, np.asarray(y, dtype=np.int64)), 1.0)
    target = counts.sum(axis=0) / n_folds
    order = rng.permutation(n_groups)
    order = order[np.argsort(-counts[order].sum(axis=1), kind="stable")]
    fold_counts = np.zeros((n_folds, 2))
    assignment = np.empty(n_groups, dtype=np.int64)
    for g in order:
        after = fold_counts + counts[g]
        cost = ((after - target) ** 2 - (fold_counts - target) ** 2).sum(axis=1)
        best = np.flatnonzero(np.isclose(cost, cost.min()))
        fold = best[np.argmin(fold_counts[best].sum(axis=1))]
        assignment[g] = fold
        fold_counts[fold] += counts[g]
    sample_fold = assignment[codes]
    index = np.arange(len(y))
    return [(index[sample_fold != f], index[sample_fold == f]) for f in range(n_folds) if (sample_fold == f).any()]


def inner_folds(y: np.ndarray, groups: np.ndarray, wanted: int, seed: int) -> list[Fold]:
    """Validation folds inside a training set (indices relative to it); empty when too few trials."""
    k = feasible_folds(y, groups, wanted)
    return grouped_folds(y, groups, k, seed) if k >= 2 else []


def both_classes(y: np.ndarray) -> bool:
    return len(y) > 0 and bool((y == 1).any()) and bool((y == 0).any())
