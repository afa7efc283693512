"""Probe methods: each fits a linear read-out ``score(x) = x . direction + bias`` (higher = more deceptive).

Every method returns a `LinearProbe` whose ``direction`` lives in the RAW activation space: any
standardisation is folded in (``w / scale`` and a shifted bias), so the direction can be added to or
projected out of the residual stream directly. The scaler is stored beside it for reference.
Probes are saved as safetensors (arrays) plus a JSON sidecar (everything else); nothing is pickled.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Union

import numpy as np
import numpy.typing as npt

from deception_core import JSONObject, JSONValue, UsageError, atomic_write_text

if TYPE_CHECKING:
    import scipy.sparse as sp

    from deception_probes.splits import FoldPlan

#: a feature matrix: dense activations, or SAE codes as a scipy CSR matrix
Features = Union[np.ndarray, "sp.csr_matrix"]

PROBE_FORMAT_VERSION = 1
_EPS = 1e-8


def _is_sparse(X: Features) -> bool:
    return hasattr(X, "tocsr") and not isinstance(X, np.ndarray)


#: rows per block when computing column statistics (bounds the float64 temporaries to a few MB)
_STATS_BLOCK = 512


def _column_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (float64), computed in row blocks.

    The same two-pass formula as ``X.std(axis=0, dtype=np.float64)`` but without its full-size
    float64 copy of ``X``, whose allocation dominated the cost on wide float32 activations.
    """
    mean = X.mean(axis=0, dtype=np.float64)
    squares = np.zeros(X.shape[1])
    for start in range(0, X.shape[0], _STATS_BLOCK):
        block = X[start:start + _STATS_BLOCK].astype(np.float64)
        block -= mean
        squares += np.einsum("ij,ij->j", block, block)
    scale = np.sqrt(squares / max(X.shape[0], 1))
    scale[scale < _EPS] = 1.0
    return mean, scale


def _standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(X - mean) / scale``: float64 for narrow inputs (Newton), float32 for wide ones (memory-bound L-BFGS)."""
    if X.shape[1] <= NEWTON_MAX_DIM:
        return np.asarray((np.asarray(X, dtype=np.float64) - mean) / scale)
    Z = np.asarray(X, dtype=np.float32) - mean.astype(np.float32)
    Z /= scale.astype(np.float32)
    return Z


class LinearProbe:
    """A fitted linear probe: ``score(X) = X @ direction + bias`` in raw activation space."""

    def __init__(
        self,
        method: str,
        direction: np.ndarray,
        bias: float,
        *,
        scaler_mean: np.ndarray | None = None,
        scaler_scale: np.ndarray | None = None,
        hyper: float | None = None,
        info: JSONObject | None = None,
    ) -> None:
        self.method = method
        self.direction = np.asarray(direction, dtype=np.float64).ravel()
        self.bias = float(bias)
        self.scaler_mean = None if scaler_mean is None else np.asarray(scaler_mean, dtype=np.float64)
        self.scaler_scale = None if scaler_scale is None else np.asarray(scaler_scale, dtype=np.float64)
        self.hyper = hyper
        self.info = dict(info or {})

    @property
    def dim(self) -> int:
        return int(self.direction.shape[0])

    @property
    def unit_direction(self) -> np.ndarray:
        norm = float(np.linalg.norm(self.direction))
        return self.direction / norm if norm > 0 else self.direction

    def score(self, X: Features) -> np.ndarray:
        """Scores of the rows of ``X`` (dense array or scipy.sparse matrix); higher = more deceptive."""
        if X.shape[1] != self.dim:
            raise UsageError(f"this probe reads {self.dim}-dimensional inputs but got {X.shape[1]} columns; "
                             "score activations of the layer and position it was trained on")
        if _is_sparse(X):
            return np.asarray(X @ self.direction).ravel() + self.bias
        return np.asarray(X, dtype=np.float64) @ self.direction + self.bias

    def save(self, path: str | Path, **extra: JSONValue) -> Path:
        """Write ``path`` (``.safetensors``) and its ``.json`` sidecar; returns the safetensors path."""
        from safetensors.numpy import save_file

        path = Path(path).with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"direction": self.direction, "bias": np.array([self.bias])}
        if self.scaler_mean is not None:
            arrays["scaler_mean"] = self.scaler_mean
        if self.scaler_scale is not None:
            arrays["scaler_scale"] = self.scaler_scale
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}, str(tmp))
        tmp.replace(path)
        sidecar = {
            "format_version": PROBE_FORMAT_VERSION,
            "method": self.method,
            "dim": self.dim,
            "bias": self.bias,
            "hyper": self.hyper,
            "direction_norm": float(np.linalg.norm(self.direction)),
            "space": "raw activations (scaler folded into direction and bias)",
            "score": "x . direction + bias; higher = more deceptive",
            "info": self.info,
            **extra,
        }
        atomic_write_text(path.with_suffix(".json"), json.dumps(sidecar, indent=2, sort_keys=True, default=_jsonable))
        return path


def _jsonable(value: object) -> JSONValue:
    plain: JSONValue = str(value)
    if isinstance(value, np.generic):
        plain = value.item()
    elif isinstance(value, np.ndarray):
        plain = value.tolist()
    return plain


def load_probe(path: str | Path) -> LinearProbe:
    """Load a probe written by `LinearProbe.save` (give the ``.safetensors`` or the ``.json`` path)."""
    from safetensors.numpy import load_file

    path = Path(path)
    tensors, sidecar_path = path.with_suffix(".safetensors"), path.with_suffix(".json")
    for needed in (tensors, sidecar_path):
        if not needed.is_file():
            raise UsageError(f"probe file {needed} is missing; pass the path of a probe saved by deception-probes")
    sidecar = json.loads(sidecar_path.read_text())
    if sidecar.get("format_version") != PROBE_FORMAT_VERSION:
        raise UsageError(f"{sidecar_path} has probe format {sidecar.get('format_version')}; "
                         f"this version reads format {PROBE_FORMAT_VERSION}")
    arrays = load_file(str(tensors))
    return LinearProbe(
        sidecar["method"],
        arrays["direction"],
        float(arrays["bias"][0]),
        scaler_mean=arrays.get("scaler_mean"),
        scaler_scale=arrays.get("scaler_scale"),
        hyper=sidecar.get("hyper"),
        info=sidecar.get("info", {}),
    )


class ProbeMethod(abc.ABC):
    """How to fit one kind of probe. ``hyper_grid`` lists the values tried on validation folds."""

    name: ClassVar[str]
    hyper_name: ClassVar[str | None] = None
    hyper_grid: tuple[float, ...] = ()
    default_hyper: float | None = None
    accepts_sparse: ClassVar[bool] = False

    @abc.abstractmethod
    def fit(self, X: Features, y: np.ndarray, hyper: float | None, seed: int) -> LinearProbe:
        """Fit on rows ``X`` with labels ``y`` (1 = deceptive, 0 = honest)."""

    def fit_path(self, X: Features, y: np.ndarray, seed: int) -> list[LinearProbe]:
        """One probe per value of ``hyper_grid`` (or one probe when there is no hyper-parameter)."""
        grid = self.hyper_grid or (self.default_hyper,)
        return [self.fit(X, y, h, seed) for h in grid]

    def held_out_batch(self, X: Features, Y: np.ndarray, plans: list[FoldPlan], hyper: float | None, seed: int) -> np.ndarray:
        """Held-out scores ``[n, B]`` for ``B`` labellings (columns of ``Y``) over the same outer folds.

        Used by the permutation null: the folds, and so everything computed from the features alone,
        are shared by every labelling. This generic version refits per labelling and fold; methods
        override it to reuse what the labels do not change. NaN where no fold scored a sample (or
        where a fold's training side lacks a class for that labelling).
        """
        scores = np.full(Y.shape, np.nan)
        for plan in plans:
            for j in range(Y.shape[1]):
                ytr = Y[plan.train, j]
                if ytr.min() == ytr.max():
                    continue
                scores[plan.test, j] = self.fit(X[plan.train], ytr, hyper, seed).score(X[plan.test])
        return scores

    def load(self, path: str | Path) -> LinearProbe:
        probe = load_probe(path)
        if probe.method != self.name:
            raise UsageError(f"{path} holds a {probe.method!r} probe, not {self.name!r}")
        return probe


class LogisticMethod(ProbeMethod):
    """L2 logistic regression on standardised activations, classes balanced; C chosen on validation folds."""

    name = "logistic"
    hyper_name = "C"

    def __init__(self, grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0), default: float = 0.01,
                 tol: float = 1e-4, max_iter: int = 300) -> None:
        self.hyper_grid = tuple(grid)
        self.default_hyper = default
        self.tol, self.max_iter = tol, max_iter

    def fit(self, X: np.ndarray, y: np.ndarray, hyper: float | None, seed: int) -> LinearProbe:
        chosen = self.default_hyper if hyper is None else hyper
        if chosen is None:
            raise ValueError(f"{self.name} needs a hyperparameter (none given and no default)")
        return self._path(X, y, (chosen,), seed)[0]

    def fit_path(self, X: np.ndarray, y: np.ndarray, seed: int) -> list[LinearProbe]:
        return self._path(X, y, self.hyper_grid, seed)

    def _path(self, X: np.ndarray, y: np.ndarray, grid: tuple[float, ...], seed: int) -> list[LinearProbe]:
        mean, scale = _column_stats(X)
        Z = _standardise(X, mean, scale)
        gram = None if Z.shape[1] <= NEWTON_MAX_DIM else _gram(Z)
        fitted = {}
        warm = None
        for C in sorted(grid):  # increasing C: each fit starts from the more regularised solution
            W, b, n_iter = self._solve(Z, y[:, None], C, gram, warm)
            warm = (W, b)
            direction = W[:, 0].astype(np.float64) / scale
            fitted[C] = LinearProbe(self.name, direction, float(b[0]) - float(mean @ direction), scaler_mean=mean,
                                    scaler_scale=scale, hyper=C, info={"n_iter": int(n_iter[0])})
        return [fitted[C] for C in grid]

    def _solve(self, Z: np.ndarray, Y: np.ndarray, C: float, gram: np.ndarray | None,
               warm: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weights ``[d, B]``, intercepts ``[B]`` and iteration counts for the labellings in ``Y``'s columns."""
        if gram is None:  # narrow: exact Newton per labelling
            out = [newton_logistic(Z, Y[:, j].astype(np.int64), C,
                                   None if warm is None else (warm[0][:, j].astype(np.float64), float(warm[1][j])),
                                   self.tol) for j in range(Y.shape[1])]
            return (np.stack([o[0] for o in out], axis=1), np.array([o[1] for o in out]),
                    np.array([o[2] for o in out]))
        return mm_logistic(Z, Y, C, gram, warm, self.tol, self.max_iter)

    def held_out_batch(self, X: Features, Y: np.ndarray, plans: list[FoldPlan], hyper: float | None, seed: int) -> np.ndarray:
        """Each fold is standardised (and its Gram matrix formed) once for all labellings, which are then
        solved together, as one matrix of right-hand sides."""
        C = self.default_hyper if hyper is None else hyper
        if C is None:
            raise ValueError(f"{self.name} needs a hyperparameter (none given and no default)")
        scores = np.full(Y.shape, np.nan)
        for plan, usable, Ytr in _trainable_folds(Y, plans):
            Xtr = X[plan.train]
            mean, scale = _column_stats(Xtr)
            Z = _standardise(Xtr, mean, scale)
            gram = None if Z.shape[1] <= NEWTON_MAX_DIM else _gram(Z)
            W, b, _ = self._solve(Z, Ytr, C, gram)
            Zte = _standardise(X[plan.test], mean, scale)
            scores[np.ix_(plan.test, usable)] = Zte @ W.astype(Zte.dtype) + b.astype(Zte.dtype)
        return scores


def _trainable_folds(Y: np.ndarray, plans: list[FoldPlan],
                     dtype: npt.DTypeLike | None = None) -> Iterator[tuple[FoldPlan, np.ndarray, np.ndarray]]:
    """Per fold: the plan, the labellings (columns of ``Y``) with both classes in its training rows, and
    those training labels; a fold where no labelling has both classes is skipped."""
    for plan in plans:
        Ytr = Y[plan.train] if dtype is None else Y[plan.train].astype(dtype)
        usable = np.flatnonzero((Ytr.min(axis=0) == 0) & (Ytr.max(axis=0) == 1))
        if len(usable):
            yield plan, usable, Ytr[:, usable]


def _gram(Z: np.ndarray) -> np.ndarray:
    """``Z.T @ Z`` in float64 (the label-free part of the logistic curvature bound)."""
    return np.asarray(Z.T @ Z, dtype=np.float64)


def mm_logistic(Z: np.ndarray, Y: np.ndarray, C: float, gram: np.ndarray,
                warm: tuple[np.ndarray, np.ndarray] | None = None, tol: float = 1e-4,
                max_iter: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Balanced L2 logistic regression for every column of ``Y`` at once (``Z`` centred, as standardised).

    The objective of `newton_logistic`, minimised by majorise-minimise steps with a FIXED quadratic
    bound: the loss curvature ``C Z' diag(s p (1-p)) Z`` never exceeds ``C max(s) / 4 Z'Z``, a matrix
    that does not depend on the labels, so one Cholesky factor serves every labelling and every
    iteration (each step is two matrix products over all labellings). Nesterov momentum with
    gradient restarts makes the convergence fast; a column stops when its gradient meets the
    tolerance, so a column's answer does not depend on the others. Columns still unconverged after
    ``max_iter`` steps are finished by exact Newton from where they stand.
    """
    n, d = Z.shape
    Yf = Y.astype(Z.dtype)
    n_pos = Yf.sum(axis=0)
    S = np.where(Yf == 1, n / (2 * n_pos), n / (2 * (n - n_pos))).astype(Z.dtype)
    bound = C * float(S.max()) / 4
    solve = _bound_solver(bound * gram + np.eye(d), Z.dtype, many=Y.shape[1] >= 8)
    intercept_bound = bound * n + 1e-10
    B = Y.shape[1]
    W = np.zeros((d, B), Z.dtype) if warm is None else warm[0].astype(Z.dtype).copy()
    b = np.zeros(B, Z.dtype) if warm is None else warm[1].astype(Z.dtype).copy()
    Vw, Vb, t = W.copy(), b.copy(), np.ones(B)
    iterations = np.zeros(B, dtype=np.int64)
    active = np.arange(B)
    threshold = tol * (1.0 + C * n)
    for _ in range(max_iter):
        if not len(active):
            break
        vw, vb = Vw[:, active], Vb[active]
        R = C * S[:, active] * (0.5 * (1 + np.tanh(0.5 * (Z @ vw + vb))) - Yf[:, active])
        gw, gb = Z.T @ R + vw, R.sum(axis=0)
        converged = np.maximum(np.abs(gw).max(axis=0), np.abs(gb)) <= threshold
        done = active[converged]
        W[:, done], b[done] = vw[:, converged], vb[converged]
        keep = ~converged
        active, vw, vb, gw, gb = active[keep], vw[:, keep], vb[keep], gw[:, keep], gb[keep]
        if not len(active):
            break
        iterations[active] += 1
        new_w = vw - solve(gw)
        new_b = vb - gb / intercept_bound
        old_w, old_b = W[:, active], b[active]
        restart = (np.einsum("ij,ij->j", gw, new_w - old_w) + gb * (new_b - old_b)) > 0
        t_old = np.where(restart, 1.0, t[active])
        t_new = (1 + np.sqrt(1 + 4 * t_old ** 2)) / 2
        momentum = ((t_old - 1) / t_new).astype(Z.dtype)
        Vw[:, active] = new_w + momentum * (new_w - old_w)
        Vb[active] = new_b + momentum * (new_b - old_b)
        W[:, active], b[active], t[active] = new_w, new_b, t_new
    for j in active:  # not converged: finish exactly
        w, bj, extra = newton_logistic(Z.astype(np.float64), Y[:, j].astype(np.int64), C,
                                       (W[:, j].astype(np.float64), float(b[j])), tol)
        W[:, j], b[j], iterations[j] = w, bj, iterations[j] + extra
    return W, b, iterations


def _bound_solver(matrix: np.ndarray, dtype: npt.DTypeLike, *, many: bool) -> Callable[[np.ndarray], np.ndarray]:
    """``g -> matrix^-1 g`` for the fixed bound of `mm_logistic`, from one Cholesky factor: with ``many``
    labellings the inverse is formed once (d^3) and each step is one product; with few, two triangular
    solves per step are cheaper than the inverse."""
    from scipy.linalg import cho_factor, cho_solve

    d = matrix.shape[0]
    factor = cho_factor(np.asfortranarray(matrix), check_finite=False)
    if many:
        inverse = cho_solve(factor, np.eye(d), check_finite=False).astype(dtype)

        def solve(g: np.ndarray) -> np.ndarray:
            return np.asarray(inverse @ g)
        return solve

    def solve_few(g: np.ndarray) -> np.ndarray:
        return np.asarray(cho_solve(factor, g.astype(np.float64), check_finite=False), dtype=dtype)
    return solve_few


#: up to this width the logistic probe is solved by Newton's method (exact, fast); above it by `mm_logistic`
NEWTON_MAX_DIM = 384


def newton_logistic(Z: np.ndarray, y: np.ndarray, C: float, warm: tuple[np.ndarray, float] | None = None,
                    tol: float = 1e-4, max_iter: int = 100) -> tuple[np.ndarray, float, int]:
    """Minimise ``C * sum_i s_i logloss_i + |w|^2 / 2`` (intercept unpenalised, classes balanced by ``s``).

    The same objective as scikit-learn's ``LogisticRegression(class_weight="balanced")``, solved by
    damped Newton steps; far cheaper than L-BFGS on narrow inputs.
    """
    n, d = Z.shape
    counts = np.bincount(y, minlength=2).astype(np.float64)
    s = n / (2 * counts[y])
    A = np.hstack([Z, np.ones((n, 1))])
    theta = np.zeros(d + 1) if warm is None else np.r_[warm[0], warm[1]]
    reg = np.r_[np.ones(d), 0.0]

    def objective(t: np.ndarray) -> float:
        z = A @ t
        return float(C * (s * (np.logaddexp(0, z) - y * z)).sum() + 0.5 * (reg * t * t).sum())

    value = objective(theta)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007
        z = A @ theta
        p = 0.5 * (1 + np.tanh(0.5 * z))
        grad = C * (A.T @ (s * (p - y))) + reg * theta
        if np.abs(grad).max() <= tol * 1e-3 * (1.0 + C * n):
            break
        hess = (A * (C * s * p * (1 - p))[:, None]).T @ A + np.diag(reg + 1e-10)
        step = np.linalg.solve(hess, grad)
        t, decrease = 1.0, float(grad @ step)
        while t > 1e-8:
            candidate = theta - t * step
            new_value = objective(candidate)
            if new_value <= value - 1e-4 * t * decrease:
                break
            t *= 0.5
        theta, improvement, value = candidate, value - new_value, new_value
        if improvement <= 1e-12 * max(1.0, abs(value)):
            break
    return theta[:d].copy(), float(theta[d]), n_iter


class MeanDifferenceMethod(ProbeMethod):
    """Mass-mean probe: mean(deceptive) - mean(honest), threshold at the midpoint of the class means."""

    name = "mass_mean"

    def fit(self, X: np.ndarray, y: np.ndarray, hyper: float | None, seed: int) -> LinearProbe:
        mu1 = X[y == 1].mean(axis=0, dtype=np.float64)
        mu0 = X[y == 0].mean(axis=0, dtype=np.float64)
        direction = mu1 - mu0
        return LinearProbe(self.name, direction, -float(direction @ (mu1 + mu0) / 2))

    def held_out_batch(self, X: Features, Y: np.ndarray, plans: list[FoldPlan], hyper: float | None, seed: int) -> np.ndarray:
        """Class means of every labelling at once: two matrix products per fold."""
        scores = np.full(Y.shape, np.nan)
        for plan, usable, Ytr in _trainable_folds(Y, plans, np.float64):
            Xtr = np.asarray(X[plan.train], dtype=np.float64)
            mu1, mu0 = (Xtr.T @ Ytr) / Ytr.sum(axis=0), (Xtr.T @ (1 - Ytr)) / (1 - Ytr).sum(axis=0)
            directions = mu1 - mu0
            biases = -(directions * (mu1 + mu0)).sum(axis=0) / 2
            scores[np.ix_(plan.test, usable)] = np.asarray(X[plan.test], dtype=np.float64) @ directions + biases
        return scores


class LatMethod(ProbeMethod):
    """A RepE/LAT-style reader: first principal component of sign-flipped deceptive-honest differences.

    There are no natural pairs in negotiation data, so each deceptive sample is paired with a random
    honest one (the smaller class is resampled). Differences are taken on standardised activations,
    given random signs (so the component is the axis, not the mean), and the sign of the component is
    fixed afterwards so that deceptive samples score higher.
    """

    name = "lat"

    def __init__(self, max_pairs: int = 2048) -> None:
        self.max_pairs = max_pairs

    def fit(self, X: np.ndarray, y: np.ndarray, hyper: float | None, seed: int) -> LinearProbe:
        mean, scale = _column_stats(X)
        directions, biases, pairs = self._fit_columns(X, y[:, None], mean, scale, seed)
        return LinearProbe(self.name, directions[:, 0], float(biases[0]), scaler_mean=mean, scaler_scale=scale,
                           info={"pairs": int(pairs[0])})

    def held_out_batch(self, X: Features, Y: np.ndarray, plans: list[FoldPlan], hyper: float | None, seed: int) -> np.ndarray:
        """Each fold's scaling is computed once for all labellings; wide power iterations run on all at once."""
        scores = np.full(Y.shape, np.nan)
        for plan, usable, Ytr in _trainable_folds(Y, plans):
            Xtr = X[plan.train]
            mean, scale = _column_stats(Xtr)
            directions, biases, _ = self._fit_columns(Xtr, Ytr, mean, scale, seed)
            scores[np.ix_(plan.test, usable)] = np.asarray(X[plan.test], dtype=np.float64) @ directions + biases
        return scores

    def _pairs(self, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Deceptive rows, honest rows and random signs of the pairs (the same draws for the same labels)."""
        rng = np.random.default_rng(seed)
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        m = min(max(len(pos), len(neg)), self.max_pairs)
        a = rng.choice(pos, m, replace=len(pos) < m)
        b = rng.choice(neg, m, replace=len(neg) < m)
        return a, b, rng.choice([-1.0, 1.0], size=m)

    def _fit_columns(self, X: np.ndarray, Y: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                     seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Directions ``[d, B]`` (raw space), biases ``[B]`` and pair counts, one per labelling in ``Y``."""
        B, d = Y.shape[1], X.shape[1]
        Xf = np.asarray(X, dtype=np.float64)
        pairs = [self._pairs(Y[:, j], seed) for j in range(B)]
        Yf = Y.astype(np.float64)
        mu1 = (Xf.T @ Yf) / Yf.sum(axis=0)
        mu0 = (Xf.T @ (1 - Yf)) / (1 - Yf).sum(axis=0)
        starts = (mu1 - mu0) / scale[:, None]
        components = np.empty((d, B))
        wide = [j for j in range(B) if min(len(pairs[j][0]), d) > NEWTON_MAX_DIM]
        narrow = [j for j in range(B) if j not in set(wide)]
        if narrow:
            Zs = (Xf - mean) / scale
            kernel = Zs @ Zs.T if any(len(pairs[j][0]) <= d for j in narrow) else None
            for j in narrow:
                components[:, j] = _top_pair_component(Zs, kernel, pairs[j])
        if wide:
            Z = ((np.asarray(X, dtype=np.float32) - mean.astype(np.float32)) / scale.astype(np.float32))
            components[:, wide] = _power_iteration_pairs(Z, [pairs[j] for j in wide], starts[:, wide])
        directions = components / scale[:, None]
        proj1, proj0 = (mu1 * directions).sum(axis=0), (mu0 * directions).sum(axis=0)
        flip = np.where(proj1 < proj0, -1.0, 1.0)
        directions, proj1, proj0 = directions * flip, proj1 * flip, proj0 * flip
        return directions, -(proj1 + proj0) / 2, np.array([len(p[0]) for p in pairs])


def _top_pair_component(Zs: np.ndarray, kernel: np.ndarray | None,
                        pair: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """First right singular vector of the centred, sign-flipped pair differences ``D`` (rows
    ``s_k (z_{a_k} - z_{b_k})`` of the standardised rows ``Zs``, centred), exactly (to rounding).

    With fewer pairs than columns it is ``D' u`` for the top eigenvector ``u`` of the small matrix
    ``D D'``, read off ``kernel`` (``Zs Zs'``, computed once per fold for every labelling) by
    gathering rows and columns: the permutation null's hundreds of labellings then cost one small
    symmetric eigenproblem each instead of a thin SVD of ``D`` (measured 2-3 ms against 25-30 ms
    at 300 pairs x 640). With more pairs than columns, the top eigenvector of ``D' D``.
    """
    from scipy.linalg import eigh

    a, b, signs = pair
    m = len(a)
    if m < 2:  # one pair: its difference is the only axis there is
        return np.asarray(Zs[a[0]] - Zs[b[0]])
    if kernel is not None and m <= Zs.shape[1]:
        across = kernel[:, a] - kernel[:, b]  # [n, m]: each row's kernel with each pair's difference
        gram = across[a] - across[b]
        gram *= signs[:, None] * signs[None, :]
        gram -= gram.mean(axis=0)  # D D' of the centred differences: C (D D') C
        gram -= gram.mean(axis=1, keepdims=True)
        top = eigh(gram, subset_by_index=[m - 1, m - 1], check_finite=False)
        if top[0][0] <= 1e-12 * m * float(np.diag(kernel).max()):  # identical pairs: no spread at all
            return np.asarray(Zs[a[0]] - Zs[b[0]])
        weights = signs * top[1][:, 0]
        rows = np.bincount(a, weights=weights, minlength=len(Zs)) - np.bincount(b, weights=weights, minlength=len(Zs))
        component = Zs.T @ rows
        return np.asarray(component / np.linalg.norm(component))
    diffs = (Zs[a] - Zs[b]) * signs[:, None]
    diffs -= diffs.mean(axis=0)
    if not np.any(diffs):
        return np.asarray(Zs[a[0]] - Zs[b[0]])
    return np.asarray(np.linalg.svd(diffs, full_matrices=False)[2][0])


def _power_iteration_pairs(Z: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], starts: np.ndarray,
                           iterations: int = 20) -> np.ndarray:
    """Top right singular vector of each labelling's centred, sign-flipped pair differences, by power iteration
    on ``D' D`` from ``starts`` (the class-mean differences), WITHOUT forming ``D``.

    ``D v`` is read off ``Z v`` (one product for every labelling at once) by gathering the paired rows,
    and ``D' u`` is ``Z'`` times the pair weights scattered back onto rows, so the cost per iteration is
    two matrix products over all labellings instead of one per labelling.
    """
    n = Z.shape[0]
    B = len(pairs)
    V = (starts / np.where(np.linalg.norm(starts, axis=0) > 0, np.linalg.norm(starts, axis=0), 1.0)).astype(np.float32)
    if len({len(p[0]) for p in pairs}) > 1:  # differing pair counts: one labelling at a time
        return np.concatenate([_power_iteration_pairs(Z, [p], starts[:, [j]], iterations)
                               for j, p in enumerate(pairs)], axis=1)
    m = len(pairs[0][0])
    offsets = (np.arange(B) * n)[None, :]
    A = np.stack([p[0] for p in pairs], axis=1) + offsets  # [m, B] row indices into the flattened [B, n]
    Bn = np.stack([p[1] for p in pairs], axis=1) + offsets
    S = np.stack([p[2] for p in pairs], axis=1).astype(np.float32)

    def scatter(coeff: np.ndarray) -> np.ndarray:
        """``sum_k coeff_k (e_{a_k} - e_{b_k})`` for every labelling: an [n, B] matrix."""
        flat = (np.bincount(A.ravel(), weights=coeff.ravel(), minlength=n * B)
                - np.bincount(Bn.ravel(), weights=coeff.ravel(), minlength=n * B))
        return np.asarray(flat.reshape(B, n).T, dtype=np.float32)

    weights = scatter(S / m)  # D0' 1 / m = Z' weights: the mean pair difference (the centring of D)
    centre = Z.T @ weights
    for _ in range(iterations):
        ZV = (Z @ V).T.ravel()  # flattened [B, n]
        u = S * (ZV[A] - ZV[Bn]) - (centre * V).sum(axis=0)
        U = scatter(S * u) - weights * u.sum(axis=0)
        W = Z.T @ U
        norms = np.linalg.norm(W, axis=0)
        moving = norms > 0
        V[:, moving] = W[:, moving] / norms[moving]
    return V.astype(np.float64)


def _top_component(matrix: np.ndarray, start: np.ndarray, iterations: int = 20) -> np.ndarray:
    """First right singular vector: exact for narrow matrices; for wide ones, power iteration on
    ``matrix.T @ matrix`` started from ``start`` (the class-mean difference, close to the answer
    whenever there is a signal to find)."""
    if min(matrix.shape) <= NEWTON_MAX_DIM:
        return np.asarray(np.linalg.svd(matrix, full_matrices=False)[2][0])
    v = start / (np.linalg.norm(start) or 1.0)
    for _ in range(iterations):
        w = matrix.T @ (matrix @ v.astype(matrix.dtype))
        norm = float(np.linalg.norm(w))
        if norm == 0:
            break
        v = w.astype(np.float64) / norm
    return v


class SparseLogisticMethod(ProbeMethod):
    """L1 logistic regression on SAE codes (sparse inputs), columns scaled by their max |value|."""

    name = "sae_logistic"
    hyper_name = "C"
    accepts_sparse = True

    def __init__(self, grid: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0), default: float = 0.1) -> None:
        self.hyper_grid = tuple(grid)
        self.default_hyper = default

    def fit(self, X: Features, y: np.ndarray, hyper: float | None, seed: int) -> LinearProbe:
        import scipy.sparse as sp
        from sklearn.linear_model import LogisticRegression

        X = sp.csr_matrix(X)
        scale = np.asarray(abs(X).max(axis=0).todense(), dtype=np.float64).ravel()
        scale[scale < _EPS] = 1.0
        Z = X @ sp.diags(1.0 / scale)
        C = self.default_hyper if hyper is None else hyper
        clf = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=C, class_weight="balanced",
                                 random_state=seed, max_iter=500)
        clf.fit(Z, y)
        w = clf.coef_.ravel().astype(np.float64)
        return LinearProbe(self.name, w / scale, float(clf.intercept_[0]), scaler_scale=scale, hyper=C,
                           info={"nonzero_weights": int(np.count_nonzero(w))})


def dense_methods(c_grid: tuple[float, ...] | None = None) -> list[ProbeMethod]:
    """The methods run on activations, in report order."""
    logistic = LogisticMethod(grid=c_grid) if c_grid else LogisticMethod()
    return [logistic, MeanDifferenceMethod(), LatMethod()]


METHOD_NAMES = ("logistic", "mass_mean", "lat")
