"""The multi-layer probe: an ensemble over layers, selected on validation folds like every cell."""

from __future__ import annotations

from deception_probes.analysis import ProbeAnalysis
from deception_probes.multilayer import ALL_LAYERS, METHOD
from deception_probes.settings import ProbeSettings


def test_ensemble_over_layers_with_independent_noise_beats_the_layers(tmp_path, make_dataset, make_labels, fast):
    """The same weak direction at three layers, independent noise at each: averaging the layers' log-odds
    averages the noise away, so the ensemble separates better than the layers do."""
    dataset, _ = make_dataset(make_labels(60, 3, seed=8), width=8, layers=(1, 2, 3),
                              signal={1: 0.9, 2: 0.9, 3: 0.9}, seed=8)
    settings = ProbeSettings(seed=0, **{**fast, "plots": False, "n_permutations": 0})
    results = ProbeAnalysis(settings).run(dataset, tmp_path, {}).results
    [entry] = results["multi_layer"]
    assert entry["layer"] == ALL_LAYERS
    assert entry["layers"] == [1, 2, 3]
    assert entry["method"] == METHOD
    singles = [c["auroc"]["value"] for c in results["cells"] if c["method"] == "logistic"]
    assert entry["auroc"]["value"] > sum(singles) / len(singles) + 0.03
    assert entry["auroc"]["value"] >= max(singles)
    assert entry["mean_validation_auroc"] is not None
    chosen = [c for c in results["nested"]["choices"] if "method" in c]
    assert any(c["method"] == METHOD for c in chosen)  # it competes in the nested selection, and wins here
    assert results["best"]["layer"] in (1, 2, 3)  # the saved probe stays a single-layer direction
    report = ProbeAnalysis(settings).run(dataset, tmp_path / "again", {})
    assert "multi-layer probe at reply_mean" in report.table
