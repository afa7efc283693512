"""Known answers: a planted direction is recovered, null labels give chance, near-duplicate rounds do not leak."""

from __future__ import annotations

import numpy as np
import pytest

from deception_probes import load_probe
from deception_probes.analysis import ProbeAnalysis
from deception_probes.crossval import FoldPlan, cross_validate
from deception_probes.methods import LogisticMethod
from deception_probes.metrics import auroc_ci
from deception_probes.settings import ProbeSettings
from deception_probes.splits import grouped_folds


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_every_method_recovers_a_planted_direction(tmp_path, make_dataset, make_labels, fast):
    labels = make_labels(60, 3, seed=1)
    dataset, u = make_dataset(labels, width=24, layers=(2, 5), signal={5: 5.0}, seed=1)
    report = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {})
    results = report.results
    assert results["status"] == "ok"
    at_signal = {c["method"]: c for c in results["cells"] if c["layer"] == 5}
    assert set(at_signal) == {"logistic", "mass_mean", "lat"}
    for method, cell in at_signal.items():
        assert cell["auroc"]["value"] >= 0.99, (method, cell["auroc"])
        assert cell["permutation"]["p_value"] <= 1 / 21 + 1e-9
    for cell in (c for c in results["cells"] if c["layer"] == 2):  # the layer without signal stays near chance
        assert cell["auroc"]["ci_low"] < 0.5 < cell["auroc"]["ci_high"] or abs(cell["auroc"]["value"] - 0.5) < 0.15
    best = results["best"]
    assert best["layer"] == 5
    assert best["auroc"] >= 0.99
    assert results["nested"]["auroc"]["value"] >= 0.99
    for method, rel in best["per_method_files"].items():
        probe = load_probe(tmp_path / rel)
        assert _cos(probe.direction, u) >= 0.9, method
    probe = load_probe(tmp_path / best["file"])
    assert _cos(probe.direction, u) >= 0.9
    X = dataset.matrix(5, "reply_mean")
    y = np.array([s.label == "deceptive" for s in dataset.samples])
    scores = probe.score(X)
    assert scores[y].mean() > scores[~y].mean()


def test_null_labels_give_chance_with_honest_intervals(tmp_path, make_dataset, make_labels, fast):
    covered = {"logistic": 0, "mass_mean": 0, "lat": 0}
    not_significant = dict.fromkeys(covered, 0)
    seeds = range(20)
    for seed in seeds:
        dataset, _ = make_dataset(make_labels(24, 2, seed=100 + seed), width=8, seed=200 + seed)
        settings = ProbeSettings(seed=seed, **{**fast, "plots": False, "inner_folds": 2, "n_random_directions": 0})
        report = ProbeAnalysis(settings).run(dataset, tmp_path / str(seed), {})
        for cell in report.results["cells"]:
            ci = cell["auroc"]
            covered[cell["method"]] += ci["ci_low"] <= 0.5 <= ci["ci_high"]
            not_significant[cell["method"]] += cell["permutation"]["p_value"] > 0.05
    for method in covered:
        assert covered[method] >= 18, (method, covered)
        assert not_significant[method] >= 18, (method, not_significant)


@pytest.mark.parametrize("seed", [0, 1])
def test_near_duplicate_rounds_do_not_leak_through_grouped_folds(make_dataset, seed):
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    labels = [["deceptive" if rng.random() < 0.5 else "honest"] * 5 for _ in range(40)]
    dataset, _ = make_dataset(labels, width=60, trial_spread=3.0, round_noise=0.05, seed=seed)
    X = dataset.matrix(1, "reply_mean")
    y = np.array([s.label == "deceptive" for s in dataset.samples], dtype=np.int64)
    groups = np.array([s.trial_key for s in dataset.samples])
    method = LogisticMethod(grid=(1.0,), default=1.0)

    grouped = [FoldPlan(tr, te, [], True) for tr, te in grouped_folds(y, groups, 5, seed)]
    for plan in grouped:
        assert not set(groups[plan.train]) & set(groups[plan.test])
    honest = cross_validate(method, X, y, grouped, seed)
    ci = auroc_ci(honest.scores, y, groups)
    assert ci["ci_low"] <= 0.5 <= ci["ci_high"]
    assert abs(ci["value"] - 0.5) < 0.2

    per_sample = [FoldPlan(tr, te, [], True)
                  for tr, te in StratifiedKFold(5, shuffle=True, random_state=seed).split(X, y)]
    leaky = cross_validate(method, X, y, per_sample, seed)
    leaky_ci = auroc_ci(leaky.scores, y, groups)
    assert leaky_ci["value"] > 0.9
    assert leaky_ci["ci_low"] > 0.6


@pytest.mark.parametrize("method_name", ["logistic", "mass_mean", "lat"])
def test_wide_solvers_recover_a_planted_direction(make_dataset, make_labels, method_name):
    """Above the Newton width the logistic probe uses L-BFGS and LAT a power iteration: same answers."""
    from deception_probes.methods import NEWTON_MAX_DIM, dense_methods

    width = NEWTON_MAX_DIM + 16
    dataset, u = make_dataset(make_labels(100, 4, seed=3), width=width, signal={1: 8.0}, seed=3)
    X = dataset.matrix(1, "reply_mean")
    y = np.array([s.label == "deceptive" for s in dataset.samples], dtype=np.int64)
    groups = np.array([s.trial_key for s in dataset.samples])
    method = next(m for m in dense_methods() if m.name == method_name)
    plans = [FoldPlan(tr, te, [], True) for tr, te in grouped_folds(y, groups, 5, 0)]
    cv = cross_validate(method, X, y, plans, 0)
    assert auroc_ci(cv.scores, y, groups)["value"] >= 0.99
    assert _cos(method.fit(X, y, method.default_hyper, 0).direction, u) >= 0.9
