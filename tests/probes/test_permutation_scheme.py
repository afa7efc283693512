"""The permutation test stays valid when every trial has the same label pattern, or says it cannot test."""

from __future__ import annotations

import numpy as np

from deception_probes.analysis import ProbeAnalysis
from deception_probes.crossval import FoldPlan
from deception_probes.nulls import permutation_scheme
from deception_probes.settings import ProbeSettings
from deception_probes.splits import grouped_folds

PAIR = ["honest", "deceptive"]


def _plans(y: np.ndarray, groups: np.ndarray, k: int = 5) -> list[FoldPlan]:
    return [FoldPlan(tr, te, [], True) for tr, te in grouped_folds(y, groups, k, 0)]


def test_paired_trials_are_permuted_within_trials_and_keep_fold_counts():
    groups = np.repeat(np.arange(30), 2)
    y = np.tile([0, 1], 30)
    plans = _plans(y, groups)
    scheme = permutation_scheme(y, groups, plans, 50, seed=0)
    assert scheme.level == "rounds within trials"
    Y = scheme.labellings
    assert Y.shape == (60, 50)
    assert len({tuple(col) for col in Y.T}) > 40  # the labellings really differ (the old scheme gave 1)
    per_trial = Y.reshape(30, 2, 50).sum(axis=1)
    assert (per_trial == 1).all()  # each pair keeps one honest and one deceptive
    for plan in plans:
        assert (Y[plan.test].sum(axis=0) == y[plan.test].sum()).all()


def test_differing_trial_patterns_are_swapped_between_trials():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 3)
    y = rng.integers(0, 2, 120)
    plans = _plans(y, groups)
    scheme = permutation_scheme(y, groups, plans, 30, seed=1)
    assert scheme.level == "trials"
    patterns = {tuple(y[groups == g]) for g in range(40)}
    for col in scheme.labellings.T:  # every trial carries some real trial's whole pattern
        assert {tuple(col[groups == g]) for g in range(40)} <= patterns


def test_too_few_pairs_is_not_testable_with_the_reason():
    groups = np.repeat(np.arange(4), 2)
    y = np.tile([0, 1], 4)
    scheme = permutation_scheme(y, groups, _plans(y, groups, 2), 50, seed=0)
    assert not scheme.testable
    assert "not testable" in scheme.reason
    assert "16 distinct" in scheme.reason


def test_paired_signal_gets_a_small_p_value_and_the_floor_beside_it(tmp_path, make_dataset, fast):
    dataset, _ = make_dataset([PAIR] * 30, width=12, signal={1: 4.0}, seed=2)
    results = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {}).results
    assert results["permutation_scheme"]["level"] == "rounds within trials"
    for cell in results["cells"]:
        perm = cell["permutation"]
        assert perm["status"] == "ok"
        assert perm["n_permutations"] == 20
        assert perm["p_floor"] == 1 / 21
        assert perm["p_value"] == perm["p_floor"]
        assert perm["at_floor"]


def test_paired_null_p_values_are_not_stuck_at_one(tmp_path, make_dataset, fast):
    p_values = []
    for seed in range(6):
        dataset, _ = make_dataset([PAIR] * 24, width=6, seed=40 + seed)
        settings = ProbeSettings(seed=seed, **{**fast, "plots": False, "n_random_directions": 0})
        results = ProbeAnalysis(settings).run(dataset, tmp_path / str(seed), {}).results
        p_values += [c["permutation"]["p_value"] for c in results["cells"]]
    assert np.mean(p_values) > 0.2
    assert np.mean(p_values) < 0.8  # under the null, p is spread over (0, 1], not 1.000 every time


def test_table_prints_the_floor_and_count_beside_each_p_value(tmp_path, make_dataset, fast):
    dataset, _ = make_dataset([PAIR] * 30, width=12, signal={1: 4.0}, seed=2)
    table = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {}).table
    assert "0.048 (n=20, floor 0.048)" in table
    assert "permutations: rounds within trials" in table


def test_a_not_testable_analysis_is_schema_valid_and_says_why(tmp_path, make_dataset, fast):
    import json

    import jsonschema

    from deception_probes.analysis import RESULTS_FILE, load_schema

    dataset, _ = make_dataset([PAIR] * 4, width=4, seed=1)
    report = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {})
    document = json.loads((tmp_path / RESULTS_FILE).read_text())
    jsonschema.Draft202012Validator(load_schema()).validate(document)
    for cell in document["cells"]:
        assert cell["permutation"]["status"] == "not testable"
        assert cell["permutation"]["p_value"] is None
    assert "not testable" in report.table
