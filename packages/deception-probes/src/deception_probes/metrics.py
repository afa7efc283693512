"""Metrics: AUROC (weighted, vectorised), trial-clustered AUROC intervals, balanced accuracy, recall at FPR.

Labels are 1 = deceptive (positive), 0 = honest. A metric that cannot be computed (one class
present) is returned as None, never as a number.
"""

from __future__ import annotations

import numpy as np

from deception_core import JSONObject


def auroc_weighted(scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` for each row of ``weights`` ([B, n]); ties count one half; NaN without both classes.

    Each row is a weighting of the samples (a bootstrap resample is a weighting by counts), so B
    resamples cost one sort plus O(B n).
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    order = np.argsort(scores, kind="mergesort")
    s, labels, w = np.asarray(scores)[order], np.asarray(y)[order], weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = labels == 1
    hon = np.add.reduceat(np.where(pos, 0.0, w), starts, axis=1)
    dec = np.add.reduceat(np.where(pos, w, 0.0), starts, axis=1)
    below = np.cumsum(hon, axis=1) - hon
    numerator = (dec * (below + 0.5 * hon)).sum(axis=1)
    denominator = hon.sum(axis=1) * dec.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def auroc(scores: np.ndarray, y: np.ndarray) -> float | None:
    """AUROC, or None when ``y`` lacks a class."""
    y = np.asarray(y)
    if len(y) == 0 or y.min() == y.max():
        return None
    return float(auroc_weighted(scores, y, np.ones((1, len(y))))[0])


def auroc_columns(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """AUROC of every column of ``scores`` ([n, k]); ``y`` must hold both classes."""
    ones = np.ones((1, len(y)))
    return np.array([auroc_weighted(scores[:, j], y, ones)[0] for j in range(scores.shape[1])])


def group_codes(groups: np.ndarray) -> tuple[np.ndarray, int]:
    _, codes = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), int(codes.max() + 1) if len(codes) else 0


def _placements(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Placement values: for each deceptive sample the fraction of honest scores below it, for each honest
    sample the fraction of deceptive scores above it (ties count one half)."""
    pos, neg = np.sort(scores[y == 1]), np.sort(scores[y == 0])
    below = np.searchsorted(neg, scores[y == 1], "left") + np.searchsorted(neg, scores[y == 1], "right")
    above = 2 * len(pos) - np.searchsorted(pos, scores[y == 0], "left") - np.searchsorted(pos, scores[y == 0], "right")
    return below / (2.0 * len(neg)), above / (2.0 * len(pos))


def auroc_influence(scores: np.ndarray, y: np.ndarray, codes: np.ndarray, n_groups: int) -> tuple[float, np.ndarray]:
    """AUROC and each trial's (cluster's) influence on it, from placement values (DeLong; Obuchowski 1997).

    The AUROC is a two-sample U-statistic; its first-order expansion is a sum over samples of their
    centred placement values, which summed per trial gives one influence value per trial. Trials are
    independent (rounds of one trial are not), so the variance of the AUROC is estimated by the
    between-trial variance of these sums.
    """
    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y)
    v10, v01 = _placements(scores, y)
    value = float(v10.mean())
    influence = (np.bincount(codes[y == 1], weights=v10 - value, minlength=n_groups) / len(v10)
                 + np.bincount(codes[y == 0], weights=v01 - value, minlength=n_groups) / len(v01))
    return value, influence


def _quantile(level: float, n_groups: int) -> float:
    """Two-sided Student-t quantile with (trials - 1) degrees of freedom: the variance is estimated from
    the trials, and with few of them the normal quantile under-covers."""
    from scipy.special import stdtrit

    return float(stdtrit(max(n_groups - 1, 1), 1 - (1 - level) / 2))


def cluster_variance(influence: np.ndarray) -> float:
    n = len(influence)
    return float(n / (n - 1) * (influence ** 2).sum()) if n > 1 else float("nan")


def _logit_interval(value: float, variance: float, z: float, extra_logit_variance: float = 0.0) -> tuple[float, float]:
    """A Wald interval on the logit scale, mapped back: it stays inside (0, 1) and is asymmetric near 1."""
    from scipy.special import expit, logit

    se = np.sqrt(variance) / (value * (1 - value))
    half = z * np.sqrt(se ** 2 + extra_logit_variance)
    centre = float(logit(value))
    return float(expit(centre - half)), float(expit(centre + half))


def _separated_interval(value: float, n_pos_trials: int, n_neg_trials: int, alpha: float) -> tuple[float, float]:
    """Interval for a perfectly separating (or perfectly inverted) score: the variance estimate is 0 there.

    A one-sided Clopper-Pearson bound on the chance that a random deceptive sample outscores a random
    honest one, taking the smaller number of trials of a class as the number of independent comparisons
    (conservative: rounds of a trial are correlated, comparisons between trials share samples).
    """
    m = max(min(n_pos_trials, n_neg_trials), 1)
    bound = float((alpha / 2) ** (1 / m))
    return (bound, 1.0) if value >= 1.0 else (0.0, 1 - bound)


INTERVAL_METHOD = "trial-clustered DeLong (Obuchowski 1997) variance, Wald interval on the logit scale"


def auroc_ci(scores: np.ndarray, y: np.ndarray, groups: np.ndarray, level: float = 0.95,
             extra_logit_variance: float = 0.0) -> JSONObject | None:
    """AUROC with an interval that treats TRIALS (``groups``) as the independent units.

    Why this interval: rounds of one trial are correlated, so the variance must be clustered by trial
    (a per-sample DeLong interval is too narrow). The clustered DeLong variance is exact to first order,
    needs no resampling (no seed, no Monte Carlo noise, cheap enough to compute for every cell and
    permutation), and on the logit scale the Wald interval keeps nominal coverage near AUROC 1, where
    trial-bootstrap percentile intervals under-cover (the resampled AUROC piles up against 1); the
    coverage at AUROC 0.5, 0.8 and 0.95 is checked by a simulation with known truth in the tests.
    ``extra_logit_variance`` adds a variance component on the logit scale (the probe analysis passes
    the refitting variance of cross-validation measured under the permutation null; see
    `deception_probes.nulls.refit_logit_variance`). A perfectly separating score gets the
    `_separated_interval` bound. The interval conditions on the fitted scores.
    """
    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y)
    point = auroc(scores, y)
    if point is None:
        return None
    codes, n_groups = group_codes(groups)
    value, influence = auroc_influence(scores, y, codes, n_groups)
    z = _quantile(level, n_groups)
    variance = cluster_variance(influence)
    if n_groups < 2 or not np.isfinite(variance):
        low = high = None
    elif value in (0.0, 1.0):
        pos_trials, neg_trials = len(set(codes[y == 1].tolist())), len(set(codes[y == 0].tolist()))
        low, high = _separated_interval(value, pos_trials, neg_trials, 1 - level)
    elif variance <= 0:  # e.g. a constant score: no spread to estimate an interval from
        low = high = None
    else:
        low, high = _logit_interval(value, variance, z, extra_logit_variance)
    return {"value": point, "ci_low": low, "ci_high": high, "level": level, "n_groups": n_groups,
            "clustered_by": "trials", "interval": INTERVAL_METHOD,
            "se": float(np.sqrt(variance)) if np.isfinite(variance) else None,
            "extra_logit_variance": float(extra_logit_variance)}


def auroc_difference_ci(scores_a: np.ndarray, scores_b: np.ndarray, y: np.ndarray, groups: np.ndarray,
                        level: float = 0.95) -> JSONObject | None:
    """AUROC(a) - AUROC(b) on the SAME samples, with a paired trial-clustered DeLong interval.

    The two AUROCs are correlated (same samples, same trials); the difference of their per-trial
    influence values carries that correlation, so its between-trial variance is the paired variance.
    """
    y = np.asarray(y)
    if auroc(scores_a, y) is None:
        return None
    codes, n_groups = group_codes(groups)
    a, infl_a = auroc_influence(scores_a, y, codes, n_groups)
    b, infl_b = auroc_influence(scores_b, y, codes, n_groups)
    variance = cluster_variance(infl_a - infl_b)
    z = _quantile(level, n_groups)
    diff = a - b
    if not np.isfinite(variance):
        low = high = None
    else:
        half = z * np.sqrt(variance)
        low, high = max(-1.0, diff - half), min(1.0, diff + half)
    return {"value": float(diff), "ci_low": low, "ci_high": high, "level": level, "n_groups": n_groups,
            "interval": "paired trial-clustered DeLong variance of the difference, Wald interval"}


def balanced_accuracy(scores: np.ndarray, y: np.ndarray, threshold: float = 0.0) -> float | None:
    """Mean of recall on deceptive and on honest samples, calling ``score > threshold`` deceptive."""
    y = np.asarray(y)
    if len(y) == 0 or y.min() == y.max():
        return None
    predicted = np.asarray(scores) > threshold
    return float((predicted[y == 1].mean() + (~predicted[y == 0]).mean()) / 2)


def recall_at_fpr(scores: np.ndarray, y: np.ndarray, fpr: float = 0.01) -> JSONObject | None:
    """Recall on deceptive samples at the threshold that lets ``fpr`` of the HONEST samples through.

    The threshold is the (1 - fpr) quantile of honest scores (the highest honest score when there are
    fewer than 1/fpr honest samples); the FPR achieved on those honest samples is reported with it.
    """
    y, scores = np.asarray(y), np.asarray(scores)
    honest, deceptive = scores[y == 0], scores[y == 1]
    if len(honest) == 0 or len(deceptive) == 0:
        return None
    threshold = float(np.quantile(honest, 1 - fpr, method="higher"))
    return {
        "value": float((deceptive > threshold).mean()),
        "target_fpr": fpr,
        "threshold": threshold,
        "achieved_fpr": float((honest > threshold).mean()),
        "n_honest": int(len(honest)),
        "threshold_from": "held-out honest samples",
        "resolution_limited": bool(len(honest) < 1 / fpr),
    }


def class_counts(y: np.ndarray, groups: np.ndarray | None = None) -> dict[str, int]:
    """How many honest (0) and deceptive (1) samples ``y`` holds, and with ``groups`` in how many trials."""
    y = np.asarray(y)
    counts = {"honest": int((y == 0).sum()), "deceptive": int((y == 1).sum())}
    if groups is not None:
        groups = np.asarray(groups)
        counts["trials"] = int(len(set(groups.tolist())))
    return counts
