"""Metadata baselines: a label that the run's design alone predicts is flagged; a clean one is not."""

from __future__ import annotations

import numpy as np

from deception_probes.analysis import ProbeAnalysis
from deception_probes.confounds import baseline_scores
from deception_probes.settings import ProbeSettings


def _run(tmp_path, dataset, fast):
    return ProbeAnalysis(ProbeSettings(seed=0, **{**fast, "plots": False, "n_random_directions": 0})).run(dataset, tmp_path, {})


def test_labels_set_by_scenario_are_flagged_even_with_a_perfect_probe(tmp_path, make_dataset, fast) -> None:
    # trials alternate scenarios alpha / beta: every alpha trial deceptive, every beta trial honest
    labels = [["deceptive"] * 2 if t % 2 == 0 else ["honest"] * 2 for t in range(20)]
    dataset, _ = make_dataset(labels, width=12, signal={1: 4.0}, seed=3)
    report = _run(tmp_path, dataset, fast)
    confounds = report.results["confounds"]
    by_field = {e["field"]: e for e in confounds["fields"]}
    assert by_field["scenario"]["auroc"]["value"] == 1.0
    assert by_field["mode"]["status"] == "not computable"
    assert by_field["mode"]["reason"] == "one value only"
    assert confounds["strongest"] in {"scenario", "scenario+condition"}
    assert confounds["warning"]
    assert "alone separates the labels" in confounds["warning"]
    assert "warning: scenario" in report.table or "warning: scenario+condition" in report.table
    assert "labels separated by metadata alone (AUROC): scenario 1.00" in report.table


def test_labels_independent_of_the_design_give_chance_and_no_warning(tmp_path, make_dataset, make_labels,
                                                                     fast) -> None:
    dataset, _ = make_dataset(make_labels(40, 2, seed=5), width=12, signal={1: 4.0}, seed=5,
                              modes=("emergent", "instructed"))
    confounds = _run(tmp_path, dataset, fast).results["confounds"]
    for entry in confounds["fields"]:
        metric = entry["auroc"]
        assert metric["ci_low"] <= 0.5 <= metric["ci_high"], entry
    assert confounds["warning"] is None


def test_baseline_scores_are_each_values_deceptive_fraction() -> None:
    values = np.array(["a", "b", "b", "b", "c"], dtype=object)
    y = np.array([1, 1, 0, 0, 0])
    assert baseline_scores(values, y).tolist() == [1.0, 1 / 3, 1 / 3, 1 / 3, 0.0]
