"""Probe methods (fit / score / save / load without pickle) and the metrics, against independent computations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deception_core.errors import UsageError
from deception_probes import load_probe
from deception_probes.methods import (
    LatMethod,
    LogisticMethod,
    MeanDifferenceMethod,
    SparseLogisticMethod,
    newton_logistic,
)
from deception_probes.metrics import (
    auroc,
    auroc_weighted,
    balanced_accuracy,
    bootstrap_auroc,
    recall_at_fpr,
    widen_interval,
)


def _data(n: int = 200, d: int = 12, seed: int = 0, shift: float = 2.0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(np.int64)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + rng.uniform(-2, 2, d)
    X[:, 0] += shift * y
    return X.astype(np.float32), y


@pytest.mark.parametrize("method", [LogisticMethod(), MeanDifferenceMethod(), LatMethod()], ids=lambda m: m.name)
def test_save_load_round_trip_scores_identically(tmp_path, method):
    X, y = _data(shift=8.0)
    probe = method.fit(X, y, method.default_hyper, seed=3)
    path = probe.save(tmp_path / f"{method.name}.safetensors", layer=4, position="reply_mean")
    assert path.suffix == ".safetensors"
    assert path.with_suffix(".json").is_file()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["method"] == method.name
    assert sidecar["layer"] == 4
    for loaded in (load_probe(path), load_probe(path.with_suffix(".json")), method.load(path)):
        np.testing.assert_array_equal(loaded.direction, probe.direction)
        assert loaded.bias == probe.bias
        np.testing.assert_allclose(loaded.score(X), probe.score(X))
    assert auroc(probe.score(X), y) > 0.8


def test_loading_checks_method_and_files(tmp_path):
    X, y = _data()
    path = MeanDifferenceMethod().fit(X, y, None, 0).save(tmp_path / "mm.safetensors")
    with pytest.raises(UsageError, match="mass_mean"):
        LogisticMethod().load(path)
    with pytest.raises(UsageError, match="missing"):
        load_probe(tmp_path / "absent.safetensors")
    with pytest.raises(UsageError, match="12-dimensional"):
        load_probe(path).score(np.zeros((2, 5)))


def test_logistic_direction_is_in_raw_space_and_matches_sklearn():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data(d=10)
    probe = LogisticMethod().fit(X, y, 0.1, seed=0)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", tol=1e-10,
                                                                   max_iter=10_000)).fit(X.astype(np.float64), y)
    np.testing.assert_allclose(probe.score(X), reference.decision_function(X.astype(np.float64)), atol=1e-5)
    # adding the direction moves the raw score by |direction|^2: it can be used on the residual stream directly
    np.testing.assert_allclose(probe.score(X[:1] + probe.direction) - probe.score(X[:1]), probe.direction @ probe.direction)


def test_newton_and_lbfgs_paths_agree():
    X, y = _data(n=300, d=20)
    Z = (X - X.mean(0)) / X.std(0)
    w, b, _ = newton_logistic(Z.astype(np.float64), y, 0.3)
    fitted = LogisticMethod(lbfgs_tol=1e-8, max_iter=5000)._lbfgs(Z.astype(np.float64), y, 0.3, None, 0)
    np.testing.assert_allclose(w, fitted[0], atol=2e-3)
    assert abs(b - fitted[1]) < 2e-3


def test_sparse_logistic_finds_the_planted_sae_feature(tmp_path):
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n, d = 300, 200
    X = sp.random(n, d, density=0.05, random_state=1, format="lil")
    y = (rng.random(n) < 0.5).astype(np.int64)
    for i in np.flatnonzero(y):
        X[i, 17] = 2.0 + rng.random()
    X = X.tocsr()
    probe = SparseLogisticMethod().fit(X, y, 0.3, seed=0)
    assert int(np.argmax(probe.direction)) == 17
    assert auroc(probe.score(X), y) > 0.95
    loaded = load_probe(probe.save(tmp_path / "sae.safetensors"))
    np.testing.assert_allclose(loaded.score(X), probe.score(X))


def test_auroc_matches_sklearn_with_ties_and_weights():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    y = rng.integers(0, 2, 60)
    assert auroc(scores, y) == pytest.approx(roc_auc_score(y, scores))
    weights = rng.integers(0, 3, 60)
    repeated = np.repeat(np.arange(60), weights)
    assert auroc_weighted(scores, y, weights[None, :])[0] == pytest.approx(roc_auc_score(y[repeated], scores[repeated]))
    assert auroc(scores, np.zeros(60, dtype=int)) is None


def test_bootstrap_resamples_trials_not_samples():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 10)  # 30 trials of 10 near-identical rounds
    y = np.repeat(rng.integers(0, 2, 30), 10)
    scores = np.repeat(rng.standard_normal(30), 10) + 0.01 * rng.standard_normal(300)
    by_trial = bootstrap_auroc(scores, y, groups, 500, 0)
    by_sample = bootstrap_auroc(scores, y, np.arange(300), 500, 0)
    assert by_trial["n_groups"] == 30
    assert by_trial["resampled"] == "trials"
    width = by_trial["ci_high"] - by_trial["ci_low"]
    assert width > 2 * (by_sample["ci_high"] - by_sample["ci_low"])  # clustered data: wider, honest interval


def test_recall_at_fpr_uses_honest_threshold():
    honest = np.arange(200, dtype=float)  # threshold at the 99th percentile = 198
    deceptive = np.array([150.0, 198.5, 199.5, 250.0])
    scores = np.r_[honest, deceptive]
    y = np.r_[np.zeros(200), np.ones(4)].astype(int)
    result = recall_at_fpr(scores, y, 0.01)
    assert result["threshold"] == 198.0
    assert result["value"] == 0.75
    assert result["achieved_fpr"] == 0.005
    assert recall_at_fpr(deceptive, np.ones(4, dtype=int)) is None
    assert balanced_accuracy(np.array([1.0, -1.0, 1.0, 1.0]), np.array([1, 0, 0, 1])) == pytest.approx(0.75)


def test_interval_widening_never_narrows():
    ci = {"value": 0.6, "ci_low": 0.5, "ci_high": 0.7}
    wide = widen_interval(ci, 0.1, 21)
    assert wide["ci_low"] < 0.5 - 0.09
    assert wide["ci_high"] > 0.7 + 0.09
    assert wide["widened_by_null_sd"]
    same = widen_interval(ci, 0.001, 21)
    assert (same["ci_low"], same["ci_high"]) == (0.5, 0.7)
    assert not same["widened_by_null_sd"]


def test_roc_points_match_sklearn():
    from sklearn.metrics import roc_curve

    from deception_probes.plots import roc_points

    rng = np.random.default_rng(1)
    scores, y = rng.integers(0, 8, 80).astype(float), rng.integers(0, 2, 80)
    fpr, tpr = roc_points(scores, y)
    reference_fpr, reference_tpr, _ = roc_curve(y, scores)
    np.testing.assert_allclose(fpr, reference_fpr)
    np.testing.assert_allclose(tpr, reference_tpr)
