"""Null distributions: shuffled labels (a permutation p-value) and norm-matched random directions."""

from __future__ import annotations

import math
from collections.abc import Hashable

import attrs
import numpy as np

from deception_core import JSONObject
from deception_probes.crossval import FoldPlan
from deception_probes.methods import ProbeMethod
from deception_probes.metrics import auroc, auroc_columns, auroc_influence, cluster_variance, group_codes

#: a permutation scheme is used only if it can reach p <= 0.05: at least this many distinct labellings
MIN_DISTINCT_LABELLINGS = 20

LEVELS = {
    "trials": ("whole trials' label sequences swapped between trials of the same length in the same outer fold "
               "(assumes trials are exchangeable)"),
    "rounds within trials": ("labels shuffled among the rounds of each trial (assumes the rounds of a trial are "
                             "exchangeable: true for paired or contrast data, not where the round order carries meaning)"),
    "trials and rounds within trials": "both of the above (assumes both)",
}


@attrs.frozen
class PermutationScheme:
    """The labellings a permutation test compares the real one with, or why there is no valid test.

    Labels are permuted only where they are exchangeable under the null and every outer fold keeps
    its class counts, so the folds of the real analysis serve every labelling (their standardisation,
    Gram matrices and pairings are computed once). Trials are the units: whole trials' label
    sequences are swapped between trials of the same length in the same fold. When every trial has
    the same label pattern (paired data: one honest and one deceptive utterance per trial), swapping
    trials changes nothing; then the labels are shuffled within trials, where they do vary. When
    neither reaches ``MIN_DISTINCT_LABELLINGS`` distinct labellings, the scheme says so:
    "not testable", with the reason, instead of a p-value.
    """

    level: str | None
    labellings: np.ndarray  # [n_samples, n_permutations] of 0/1
    log10_distinct: float  # log10 of the number of distinct labellings the scheme can reach
    reason: str | None = None

    @property
    def testable(self) -> bool:
        return self.level is not None and self.labellings.shape[1] > 0

    def describe(self) -> JSONObject:
        return {"level": self.level, "assumption": LEVELS.get(self.level or ""),
                "log10_distinct_labellings": round(self.log10_distinct, 3), "reason": self.reason}


def _trial_rows(groups: np.ndarray, plans: list[FoldPlan]) -> list[tuple[int, np.ndarray]]:
    """(outer fold, rows in order) of every trial."""
    fold = np.full(len(groups), -1)
    for number, plan in enumerate(plans):
        fold[plan.test] = number
    names, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    return [(int(fold[rows[0]]), rows) for rows in (np.flatnonzero(codes == g) for g in range(len(names)))]


def _log_multinomial(keys: list[Hashable]) -> float:
    from collections import Counter

    counts = Counter(keys)
    return math.lgamma(len(keys) + 1) - sum(math.lgamma(c + 1) for c in counts.values())


def _log_distinct(y: np.ndarray, trials: list[tuple[int, np.ndarray]], level: str) -> float:
    """Natural log of the number of distinct labellings reachable at ``level``."""
    strata: dict[tuple[int, int], list[Hashable]] = {}
    within = 0.0
    for fold, rows in trials:
        labels = y[rows]
        if level == "trials":
            key: Hashable = tuple(labels.tolist())
        else:
            key = int(labels.sum())
            within += math.lgamma(len(rows) + 1) - math.lgamma(key + 1) - math.lgamma(len(rows) - key + 1)
        strata.setdefault((fold, len(rows)), []).append(key)
    between = sum(_log_multinomial(keys) for keys in strata.values())
    return within if level == "rounds within trials" else (between if level == "trials" else between + within)


def permutation_scheme(y: np.ndarray, groups: np.ndarray, plans: list[FoldPlan], n: int, seed: int) -> PermutationScheme:
    """Choose the level (see `PermutationScheme`) and draw ``n`` labellings from it."""
    trials = _trial_rows(groups, plans)
    empty = np.empty((len(y), 0), dtype=np.int64)
    if n <= 0:
        return PermutationScheme(None, empty, 0.0, "no permutations asked for (n_permutations = 0)")
    logs = {level: _log_distinct(y, trials, level) for level in LEVELS}
    for level in ("trials", "rounds within trials", "trials and rounds within trials"):
        if logs[level] >= math.log(MIN_DISTINCT_LABELLINGS):
            return PermutationScheme(level, _draw(y, trials, level, n, seed), logs[level] / math.log(10))
    best = max(logs.values())
    return PermutationScheme(None, empty, best / math.log(10), (
        f"not testable: the labels can be permuted in only {math.exp(best):.0f} distinct way(s) that keep them "
        f"exchangeable (whole trials of the same length within a fold, or rounds within a trial), fewer than the "
        f"{MIN_DISTINCT_LABELLINGS} needed to reach p = 0.05; more trials with differing label patterns are needed"))


def _draw(y: np.ndarray, trials: list[tuple[int, np.ndarray]], level: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    strata: dict[tuple[int, int], list[np.ndarray]] = {}
    for fold, rows in trials:
        strata.setdefault((fold, len(rows)), []).append(rows)
    blocks = [np.stack(rows) for _, rows in sorted(strata.items())]  # [trials, rounds] per stratum
    out = np.empty((len(y), n), dtype=np.int64)
    for k in range(n):
        permuted = y.copy()
        for rows in blocks:
            labels = y[rows]
            if level != "rounds within trials":
                labels = labels[rng.permutation(len(rows))]
            if level != "trials":
                labels = rng.permuted(labels, axis=1)
            permuted[rows] = labels
        out[:, k] = permuted
    return out


def permutation_test(method: ProbeMethod, X: np.ndarray, scheme: PermutationScheme, plans: list[FoldPlan], groups: np.ndarray,
                     hyper: float | None, observed: float | None, seed: int) -> JSONObject | None:
    """Rerun the outer cross-validation on each permuted labelling; p = (1 + #null >= observed) / (1 + n).

    The folds are the real analysis' folds (every labelling keeps each fold's class counts); the
    hyper-parameter is held at the value chosen on the real labels. ``p_floor`` = 1 / (1 + n) is the
    smallest p-value n permutations can give: a p-value at the floor means "at most this".
    """
    if observed is None:
        return None
    if not scheme.testable:
        return {"status": "not testable", "reason": scheme.reason, "p_value": None, "n_permutations": 0,
                "p_floor": None, "scheme": scheme.describe(), "hyper": hyper}
    Y = scheme.labellings
    scores = method.held_out_batch(X, Y, plans, hyper, seed)
    null = np.array([_column_auroc(scores[:, j], Y[:, j]) for j in range(Y.shape[1])])
    null = null[~np.isnan(null)]
    if not len(null):
        return {"status": "not testable", "reason": "no permuted labelling could be scored", "p_value": None,
                "n_permutations": 0, "p_floor": None, "scheme": scheme.describe(), "hyper": hyper}
    n = len(null)
    return {
        "status": "ok",
        "reason": None,
        "p_value": float((1 + (null >= observed).sum()) / (1 + n)),
        "n_permutations": int(n),
        "p_floor": 1 / (1 + n),
        "at_floor": bool((null >= observed).sum() == 0),
        "null_mean": float(null.mean()),
        "null_sd": float(null.std(ddof=1)) if n > 1 else None,
        "null_q95": float(np.quantile(null, 0.95)),
        "refit_logit_variance": refit_logit_variance(scores, Y, groups, null),
        "hyper": hyper,
        "scheme": scheme.describe(),
    }


def _column_auroc(scores: np.ndarray, y: np.ndarray) -> float:
    mask = ~np.isnan(scores)
    value = auroc(scores[mask], y[mask])
    return np.nan if value is None else value


def refit_logit_variance(scores: np.ndarray, Y: np.ndarray, groups: np.ndarray, null: np.ndarray) -> float:
    """The variance that refitting adds to a cross-validated AUROC, on the logit scale, measured under the null.

    A fixed-score interval (`auroc_ci`) sees only the sampling of trials; a cross-validated AUROC also
    varies because each fold's probe is refitted on correlated data. Under the null, the spread of the
    permuted AUROCs is the total; the mean fixed-score (clustered DeLong) variance of those same
    permuted scores is the sampling part; the excess is the refitting part. It is put on the logit
    scale at AUROC 0.5 (slope 4, so variance x 16) and added there to the intervals of the cell: the
    interval keeps its coverage at 0.5 and costs little width near 1, where the logit scale compresses
    it (instead of widening every interval to the null's spread).
    """
    if len(null) < 3:
        return 0.0
    codes, n_groups = group_codes(groups)
    sampling = []
    for j in range(Y.shape[1]):
        mask = ~np.isnan(scores[:, j])
        y = Y[mask, j]
        if len(y) and y.min() != y.max():
            sub_codes, n_sub = group_codes(codes[mask])
            sampling.append(cluster_variance(auroc_influence(scores[mask, j], y, sub_codes, n_sub)[1]))
    if not sampling:
        return 0.0
    excess = float(np.var(null, ddof=1)) - float(np.nanmean(sampling))
    return 16.0 * max(excess, 0.0)


def random_direction_null(X: np.ndarray, y: np.ndarray, norm: float, n: int, seed: int,
                          observed: dict[str, float | None]) -> JSONObject | None:
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
