"""Statistics shared by the causal tests: random directions, bootstrap intervals, nulls.

The unit of resampling is the prompt: every effect is a mean over prompts of a per-prompt
difference, its interval is a percentile bootstrap over prompts, and its null is the same
statistic for random directions applied to the same prompts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np


def random_unit_directions(d_model: int, n: int, seed: int, avoid: np.ndarray | None = None) -> np.ndarray:
    """``[n, d_model]`` Gaussian random unit vectors (seeded), orthogonalised against ``avoid``.

    Removing the probe direction's component keeps a random control from partly *being* the probe
    direction (which in small models can happen by chance).
    """
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d_model))
    if avoid is not None:
        unit = avoid / np.linalg.norm(avoid)
        vectors -= np.outer(vectors @ unit, unit)
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                 statistic: Callable[[np.ndarray], float | None] | None = None) -> tuple[float | None, float | None]:
    """Percentile interval of ``statistic`` (default: the mean) over rows resampled with replacement."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] < 2:
        return None, None
    rng = np.random.default_rng(seed)
    stat = statistic or (lambda v: float(np.mean(v, axis=0)))
    draws = []
    for _ in range(n_boot):
        index = rng.integers(0, values.shape[0], values.shape[0])
        value = stat(values[index])
        if value is not None and np.isfinite(value):
            draws.append(value)
    if len(draws) < n_boot // 2:
        return None, None
    tail = (1 - level) / 2
    return float(np.quantile(draws, tail)), float(np.quantile(draws, 1 - tail))


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def compare_with_null(per_prompt: np.ndarray, null_per_prompt: np.ndarray, *, name: str, unit: str,
                      seed: int = 0, expected_sign: int = 0) -> dict[str, Any]:
    """The effect (mean over prompts), its bootstrap interval, and where it falls in the random null.

    ``per_prompt``: ``[n_prompts]``; ``null_per_prompt``: ``[n_random, n_prompts]`` for the same
    prompts. ``p_value_rank`` is the two-sided permutation-style p-value
    ``(1 + #{|null| >= |effect|}) / (n_random + 1)`` (so its floor is ``1 / (n_random + 1)``);
    ``p_value_z`` is the two-sided normal p-value of the effect's z-score in the null.
    ``expected_sign`` (+1/-1) only records which way a real effect should go.
    """
    per_prompt = np.asarray(per_prompt, dtype=np.float64).ravel()
    null_per_prompt = np.asarray(null_per_prompt, dtype=np.float64)
    if per_prompt.size == 0:
        null_per_prompt = np.zeros((0, 0))
    else:
        null_per_prompt = null_per_prompt.reshape(-1, per_prompt.shape[0])
    value = float(np.mean(per_prompt)) if per_prompt.size else float("nan")
    low, high = bootstrap_ci(per_prompt, seed=seed)
    null = np.mean(null_per_prompt, axis=1) if null_per_prompt.size else np.zeros(0)
    out: dict[str, Any] = {
        "name": name,
        "unit": unit,
        "value": _finite(value),
        "ci_low": low,
        "ci_high": high,
        "n_prompts": int(per_prompt.shape[0]),
        "per_prompt": [_finite(v) for v in per_prompt.tolist()],
        "expected_sign": expected_sign,
        "null": {
            "n_directions": int(null.shape[0]),
            "values": [_finite(v) for v in null.tolist()],
            "mean": _finite(float(np.mean(null))) if null.size else None,
            "std": _finite(float(np.std(null, ddof=1))) if null.size > 1 else None,
            "abs_max": _finite(float(np.max(np.abs(null)))) if null.size else None,
        },
        "p_value_rank": None,
        "p_value_z": None,
        "z": None,
        "ratio_to_null_abs_mean": None,
    }
    if null.size and np.isfinite(value):
        out["p_value_rank"] = float((1 + np.sum(np.abs(null) >= abs(value))) / (null.size + 1))
        spread = float(np.std(null, ddof=1)) if null.size > 1 else 0.0
        if spread > 0:
            z = (value - float(np.mean(null))) / spread
            out["z"] = float(z)
            out["p_value_z"] = float(math.erfc(abs(z) / math.sqrt(2)))
        scale = float(np.mean(np.abs(null)))
        if scale > 0:
            out["ratio_to_null_abs_mean"] = float(abs(value) / scale)
    return out


def describe_effect(effect: dict[str, Any]) -> str:
    """One line: value, interval and p-values against the random directions."""
    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:+.3g}"

    ci = f"[{fmt(effect['ci_low'])}, {fmt(effect['ci_high'])}]"
    p_rank = "n/a" if effect["p_value_rank"] is None else f"{effect['p_value_rank']:.3g}"
    p_z = "n/a" if effect["p_value_z"] is None else f"{effect['p_value_z']:.2g}"
    return (f"{effect['name']} {fmt(effect['value'])} {effect['unit']} (95% CI {ci}, {effect['n_prompts']} prompts); "
            f"vs {effect['null']['n_directions']} random directions: p_rank={p_rank}, p_z={p_z}")


def correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation, or None when either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def binary_auroc(y: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC of ``scores`` for ``y`` (1 = deceptive) by ranks; None with one class."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
