"""Probe methods (fit / score / save / load without pickle) and the metrics, against independent computations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deception_core.base.errors import UsageError
from deception_probes import load_probe
from deception_probes.crossval import FoldPlan
from deception_probes.methods import (
    LatMethod,
    LogisticMethod,
    MeanDifferenceMethod,
    SparseLogisticMethod,
    mm_logistic,
    newton_logistic,
)
from deception_probes.metrics import (
    auroc,
    auroc_ci,
    auroc_difference_ci,
    auroc_weighted,
    balanced_accuracy,
    recall_at_fpr,
)
from deception_probes.splits import grouped_folds


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


def test_newton_and_batched_bound_solver_agree():
    X, y = _data(n=300, d=20)
    Z = (X - X.mean(0)) / X.std(0)
    w, b, _ = newton_logistic(Z.astype(np.float64), y, 0.3, tol=1e-8)
    W, B, _ = mm_logistic(Z.astype(np.float64), np.stack([y, 1 - y], axis=1), 0.3, Z.T.astype(np.float64) @ Z,
                          tol=1e-8, max_iter=5000)
    np.testing.assert_allclose(W[:, 0], w, atol=1e-5)
    assert abs(B[0] - b) < 1e-5
    np.testing.assert_allclose(W[:, 1], -w, atol=1e-5)  # the flipped labelling, solved in the same batch


@pytest.mark.parametrize("method", [LogisticMethod(), MeanDifferenceMethod(), LatMethod()], ids=lambda m: m.name)
@pytest.mark.parametrize("width", [12, 400])
def test_batched_held_out_scores_equal_one_fit_per_labelling(method, width):
    """The permutation null's shared-fold shortcut scores every labelling as a separate refit would."""
    X, y = _data(n=1000, d=width, shift=1.0)  # 1000: enough pairs for the wide LAT power iteration
    groups = np.arange(len(y)) // 2
    plans = [FoldPlan(tr, te, [], True) for tr, te in grouped_folds(y, groups, 4, 0)]
    rng = np.random.default_rng(1)
    Y = np.stack([y] + [rng.permutation(y) for _ in range(3)], axis=1)
    batched = method.held_out_batch(X, Y, plans, method.default_hyper, 0)
    one_by_one = super(type(method), method).held_out_batch(X, Y, plans, method.default_hyper, 0)
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-3, atol=1e-3 * np.abs(one_by_one).max())


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


def test_interval_clusters_by_trial_not_sample():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 10)  # 30 trials of 10 near-identical rounds
    y = np.repeat(rng.integers(0, 2, 30), 10)
    scores = np.repeat(rng.standard_normal(30), 10) + 0.01 * rng.standard_normal(300)
    by_trial = auroc_ci(scores, y, groups)
    by_sample = auroc_ci(scores, y, np.arange(300))
    assert by_trial["n_groups"] == 30
    assert by_trial["clustered_by"] == "trials"
    width = by_trial["ci_high"] - by_trial["ci_low"]
    assert width > 2 * (by_sample["ci_high"] - by_sample["ci_low"])  # clustered data: wider, honest interval


def _simulated_coverage(target: float, n_trials: int, rounds: int, replicates: int, seed: int) -> tuple[float, float]:
    """Coverage and mean width of `auroc_ci` on trial-clustered scores whose population AUROC is ``target``.

    Scores are ``delta * deceptive + trial effect + round noise`` (both unit-variance Gaussians scaled by
    0.7) and labels vary within trials, so the population AUROC (a deceptive and an honest sample from
    independent trials) is ``Phi(delta / sqrt(2 * (0.7^2 + 0.7^2)))``.
    """
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    spread = 0.7
    delta = norm.ppf(target) * np.sqrt(2 * (2 * spread ** 2))
    groups = np.repeat(np.arange(n_trials), rounds)
    y = (rng.random((replicates, len(groups))) < 0.5).astype(np.int64)
    scores = (spread * rng.standard_normal((replicates, n_trials))[:, groups]
              + spread * rng.standard_normal((replicates, len(groups))) + delta * y)
    covered, widths = 0, []
    for r in range(replicates):
        ci = auroc_ci(scores[r], y[r], groups)
        covered += ci["ci_low"] <= target <= ci["ci_high"]
        widths.append(ci["ci_high"] - ci["ci_low"])
    return covered / replicates, float(np.mean(widths))


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_interval_coverage_is_nominal_at_known_aurocs(target):
    """95% intervals cover the known AUROC 95% of the time (600 replicates: +/- 0.018 is two standard errors)."""
    coverage, width = _simulated_coverage(target, n_trials=30, rounds=4, replicates=600, seed=int(target * 100))
    assert coverage >= 0.925
    assert coverage <= 0.975
    assert width < {0.5: 0.25, 0.8: 0.2, 0.95: 0.1}[target]  # no needless width


def test_perfect_separation_gets_a_bound_not_a_point():
    groups = np.repeat(np.arange(20), 2)
    y = np.tile([0, 1], 20)
    ci = auroc_ci(y + 0.0, y, groups)
    assert ci["value"] == 1.0
    assert ci["ci_high"] == 1.0
    assert 0.8 < ci["ci_low"] < 0.9  # 0.025 ** (1 / 20)


def test_paired_difference_interval_is_narrower_than_unpaired():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(40), 3)
    y = rng.integers(0, 2, 120)
    shared = rng.standard_normal(120) + 1.2 * y
    a, b = shared + 0.2 * rng.standard_normal(120), shared + 0.2 * rng.standard_normal(120) + 0.3 * y
    diff = auroc_difference_ci(b, a, y, groups)
    assert diff["value"] == pytest.approx(auroc(b, y) - auroc(a, y))
    ci_a, ci_b = auroc_ci(a, y, groups), auroc_ci(b, y, groups)
    unpaired_half = 1.96 * np.hypot(ci_a["se"], ci_b["se"])
    assert (diff["ci_high"] - diff["ci_low"]) / 2 < unpaired_half


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


def test_roc_points_match_sklearn():
    from sklearn.metrics import roc_curve

    from deception_probes.plots import roc_points

    rng = np.random.default_rng(1)
    scores, y = rng.integers(0, 8, 80).astype(float), rng.integers(0, 2, 80)
    fpr, tpr = roc_points(scores, y)
    reference_fpr, reference_tpr, _ = roc_curve(y, scores)
    np.testing.assert_allclose(fpr, reference_fpr)
    np.testing.assert_allclose(tpr, reference_tpr)


def test_a_constant_score_has_no_interval():
    groups = np.repeat(np.arange(10), 2)
    y = np.tile([0, 1], 10)
    ci = auroc_ci(np.full(20, 0.5), y, groups)
    assert ci["value"] == 0.5
    assert ci["ci_low"] is None


@pytest.mark.parametrize(("n", "width"), [(120, 200), (80, 30)], ids=["fewer pairs than columns", "more pairs"])
def test_lat_component_equals_the_svd_of_the_pair_differences(n, width):
    """LAT reads its component off the small pair Gram matrix when pairs are fewer than columns:
    the same axis as the thin SVD of the explicit centred, sign-flipped differences."""
    from deception_probes.methods import _top_pair_component

    X, y = _data(n=n, d=width, shift=1.5)
    Zs = (X - X.mean(0)) / X.std(0)
    a, b, signs = LatMethod()._pairs(y, 0)
    diffs = (Zs[a] - Zs[b]) * signs[:, None]
    expected = np.linalg.svd(diffs - diffs.mean(axis=0), full_matrices=False)[2][0]
    got = _top_pair_component(Zs.astype(np.float64), Zs.astype(np.float64) @ Zs.T.astype(np.float64), (a, b, signs))
    assert abs(float(got @ expected)) == pytest.approx(1.0, abs=1e-9)
