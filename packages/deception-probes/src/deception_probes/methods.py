"""Probe methods: each fits a linear read-out ``score(x) = x . direction + bias`` (higher = more deceptive).

Every method returns a `LinearProbe` whose ``direction`` lives in the RAW activation space: any
standardisation is folded in (``w / scale`` and a shifted bias), so the direction can be added to or
projected out of the residual stream directly. The scaler is stored beside it for reference.
Probes are saved as safetensors (arrays) plus a JSON sidecar (everything else); nothing is pickled.
"""

from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from deception_core.errors import UsageError

PROBE_FORMAT_VERSION = 1
_EPS = 1e-8


def _is_sparse(X: Any) -> bool:
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
        info: dict[str, Any] | None = None,
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

    def score(self, X: Any) -> np.ndarray:
        """Scores of the rows of ``X`` (dense array or scipy.sparse matrix); higher = more deceptive."""
        if X.shape[1] != self.dim:
            raise UsageError(f"this probe reads {self.dim}-dimensional inputs but got {X.shape[1]} columns; "
                             "score activations of the layer and position it was trained on")
        if _is_sparse(X):
            return np.asarray(X @ self.direction).ravel() + self.bias
        return np.asarray(X, dtype=np.float64) @ self.direction + self.bias

    def save(self, path: str | Path, **extra: Any) -> Path:
        """Write ``path`` (``.safetensors``) and its ``.json`` sidecar; returns the safetensors path."""
        from safetensors.numpy import save_file

        from deception_core.dataset.store import atomic_write_text

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


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


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
    def fit(self, X: Any, y: np.ndarray, hyper: float | None, seed: int) -> LinearProbe:
        """Fit on rows ``X`` with labels ``y`` (1 = deceptive, 0 = honest)."""

    def fit_path(self, X: Any, y: np.ndarray, seed: int) -> list[LinearProbe]:
        """One probe per value of ``hyper_grid`` (or one probe when there is no hyper-parameter)."""
        grid = self.hyper_grid or (self.default_hyper,)
        return [self.fit(X, y, h, seed) for h in grid]

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
                 tol: float = 1e-4, max_iter: int = 300, lbfgs_tol: float = 1e-3) -> None:
        self.hyper_grid = tuple(grid)
        self.default_hyper = default
        self.tol, self.max_iter, self.lbfgs_tol = tol, max_iter, lbfgs_tol

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
        fitted = {}
        warm = None
        for C in sorted(grid):  # increasing C: each fit starts from the more regularised solution
            if Z.shape[1] <= NEWTON_MAX_DIM:
                w, b, n_iter = newton_logistic(Z, y, C, warm, self.tol)
            else:
                w, b, n_iter = self._lbfgs(Z, y, C, warm, seed)
            warm = (w, b)
            direction = w / scale
            fitted[C] = LinearProbe(self.name, direction, b - float(mean @ direction), scaler_mean=mean,
                                    scaler_scale=scale, hyper=C, info={"n_iter": n_iter})
        return [fitted[C] for C in grid]

    def _lbfgs(self, Z: np.ndarray, y: np.ndarray, C: float, warm: tuple[np.ndarray, float] | None,
               seed: int) -> tuple[np.ndarray, float, int]:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C, class_weight="balanced", tol=self.lbfgs_tol, max_iter=self.max_iter,
                                 warm_start=warm is not None, random_state=seed)
        if warm is not None:
            clf.coef_, clf.intercept_ = warm[0][None, :].copy(), np.array([warm[1]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(Z, y)
        return clf.coef_.ravel().astype(np.float64), float(clf.intercept_[0]), int(np.max(clf.n_iter_))


#: up to this width the logistic probe is solved by Newton's method (exact, fast); above it by L-BFGS
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
        rng = np.random.default_rng(seed)
        mean, scale = _column_stats(X)
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        m = min(max(len(pos), len(neg)), self.max_pairs)
        a = rng.choice(pos, m, replace=len(pos) < m)
        b = rng.choice(neg, m, replace=len(neg) < m)
        dtype = np.float64 if X.shape[1] <= NEWTON_MAX_DIM else np.float32
        diffs = (X[a].astype(dtype) - X[b]) / scale.astype(dtype)
        mu1, mu0 = X[pos].mean(axis=0, dtype=np.float64), X[neg].mean(axis=0, dtype=np.float64)
        start = (mu1 - mu0) / scale
        diffs *= rng.choice([-1.0, 1.0], size=(m, 1)).astype(dtype)
        diffs -= diffs.mean(axis=0)
        if m >= 2 and np.any(diffs):
            component = _top_component(diffs, start)
        else:  # one pair (or identical pairs): its difference is the only axis there is
            component = (X[a[0]].astype(np.float64) - X[b[0]]) / scale
        direction = component / scale
        proj1, proj0 = float(mu1 @ direction), float(mu0 @ direction)
        if proj1 < proj0:
            direction, proj1, proj0 = -direction, -proj1, -proj0
        return LinearProbe(self.name, direction, -(proj1 + proj0) / 2, scaler_mean=mean, scaler_scale=scale,
                           info={"pairs": int(m)})


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

    def fit(self, X: Any, y: np.ndarray, hyper: float | None, seed: int) -> LinearProbe:
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
