"""The `probes` analysis end to end: schema-valid results, honest reports on degenerate data, plots, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs
import jsonschema
import numpy as np
import pytest

from deception_probes.analysis import PLOT_FILES, RESULTS_FILE, ProbeAnalysis, load_schema
from deception_probes.settings import ProbeSettings


def _validate(path) -> dict:
    document = json.loads(path.read_text())
    jsonschema.Draft202012Validator(load_schema()).validate(document)
    return document


def test_schema_itself_is_valid():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)  # raises on an invalid schema
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"  # the draft it is checked against


def test_full_results_are_schema_valid_with_transfer_and_plots(tmp_path, make_dataset, make_labels, fast):
    labels = make_labels(48, 3, seed=4) + [["ambiguous", "honest"], ["ambiguous"]]
    dataset, _ = make_dataset(labels, width=12, layers=(1, 3), positions=("last_prompt", "reply_mean"),
                              signal={1: 1.0, 3: 3.0}, modes=("emergent", "instructed"), scenarios=("a", "b", "c"))
    report = ProbeAnalysis(ProbeSettings(seed=1, **fast)).run(dataset, tmp_path, {})
    document = _validate(tmp_path / RESULTS_FILE)
    assert document["labelled"]["ambiguous_excluded"] == 2
    assert document["dataset"]["label_counts"]["ambiguous"] == 2
    assert document["ambiguous"]["best_probe_scores"] is not None
    assert len(document["cells"]) == 2 * 2 * 3
    assert document["best"]["layer"] == 3
    for name in PLOT_FILES.values():
        assert (tmp_path / name).stat().st_size > 1000
    transfer = document["generalisation"]["transfer"]
    cross = {(c["train"], c["test"]): c for c in transfer["mode"]["cells"]}
    assert cross[("emergent", "instructed")]["status"] == "ok"
    assert cross[("emergent", "instructed")]["auroc"]["value"] > 0.8
    incentive = {(c["train"], c["test"]): c for c in transfer["incentive"]["cells"]}
    assert incentive[("HIGH", "LOW")]["status"] == "ok"
    loso = document["generalisation"]["leave_one_scenario_out"]
    assert {h["scenario"] for h in loso["held_out"]} == {"a", "b", "c"}
    for fold in document["splits"]["folds"]:
        assert fold["train"]["trials"] + fold["test"]["trials"] == 50 - 1  # the all-ambiguous trial has no labelled row
    assert "best probe" in report.table
    assert "AUROC" in report.table
    direction = report.direction  # the chosen read-out, as a value the causal tests receive
    assert (direction.layer, direction.position) == (document["best"]["layer"], document["best"]["position"])
    assert direction.provenance["method"] == document["best"]["method"]
    assert np.linalg.norm(direction.vector) == pytest.approx(document["best"]["direction_norm"])


def test_transfer_without_both_classes_is_not_computable(tmp_path, make_dataset, fast):
    # instructed trials are all honest: any split testing or training on them lacks a class
    labels = [["deceptive", "honest"] if t % 2 == 0 else ["honest", "honest"] for t in range(24)]
    dataset, _ = make_dataset(labels, width=8, signal={1: 4.0}, modes=("emergent", "instructed"))
    report = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {})
    cells = {(c["train"], c["test"]): c for c in report.results["generalisation"]["transfer"]["mode"]["cells"]}
    for key in (("emergent", "instructed"), ("instructed", "emergent"), ("instructed", "instructed")):
        assert cells[key]["status"] == "not computable"
        assert cells[key]["auroc"] is None
        assert "one class only" in cells[key]["reason"]
    assert cells[("emergent", "emergent")]["status"] == "ok"
    _validate(tmp_path / RESULTS_FILE)
    assert "not computable" in report.table


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ([["ambiguous"] * 2] * 6, "all 12 samples are ambiguous"),
        ([["honest", "honest"], ["honest", "ambiguous"], ["honest"]], "one class only (4 honest, 0 deceptive)"),
        ([["deceptive", "honest"], ["honest", "honest"], ["ambiguous"]], "too few trials for grouped CV"),
        ([], "no samples"),
    ],
    ids=["all-ambiguous", "one-class", "too-few-trials", "empty"],
)
def test_degenerate_data_get_an_honest_report(tmp_path, make_dataset, labels, reason):
    dataset, _ = make_dataset(labels, width=6)
    report = ProbeAnalysis(ProbeSettings(seed=0)).run(dataset, tmp_path, {})
    document = _validate(tmp_path / RESULTS_FILE)
    assert document["status"] == "no_probe"
    assert document["best"] is None
    assert document["cells"] == []
    assert any(reason in r for r in document["reasons"])
    assert reason in report.table
    assert not any((tmp_path / name).exists() for name in PLOT_FILES.values())
    assert not (tmp_path / "probes").exists()
    assert report.direction is None


def test_sae_codes_get_a_sparse_probe_and_feature_list(tmp_path, make_dataset, make_labels, fast):
    labels = make_labels(30, 2, seed=9)
    dataset, _ = make_dataset(labels, width=8)
    rng = np.random.default_rng(0)
    indices, values, offsets = [], [], [0]
    for sample in dataset.samples:
        active = set(rng.choice(64, 4, replace=False).tolist()) - {42}
        if sample.label == "deceptive":
            active.add(42)
        indices += sorted(active)
        values += [float(rng.uniform(1, 3)) for _ in active]
        offsets.append(len(indices))
    dataset.arrays.update({"sae/reply_mean/indices": np.array(indices, dtype=np.int32),
                           "sae/reply_mean/values": np.array(values, dtype=np.float32),
                           "sae/reply_mean/offsets": np.array(offsets, dtype=np.int64)})
    dataset.meta = attrs.evolve(dataset.meta, sae={"d_sae": 64, "layer": 1, "neuronpedia_id": "gemma-2b-it/12-res-jb"})
    ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {})
    document = _validate(tmp_path / RESULTS_FILE)
    entry = document["sae"]["positions"][0]
    assert entry["auroc"]["value"] > 0.95
    top = entry["top_features"][0]
    assert top["index"] == 42
    assert top["freq_deceptive"] == pytest.approx(1.0)
    assert top["freq_honest"] == 0.0
    assert top["neuronpedia"] == "https://www.neuronpedia.org/gemma-2b-it/12-res-jb/42"
    assert (tmp_path / entry["file"]).is_file()


def test_deception_analyze_cli_writes_results_and_plots(tmp_path, make_dataset, make_labels):
    from click.testing import CliRunner

    from deception_core.cli import cli
    from deception_core.store import write_dataset

    dataset, _ = make_dataset(make_labels(20, 2, seed=5), width=8, layers=(1, 2), signal={2: 3.0})
    run_dir = tmp_path / "run"
    write_dataset(run_dir / "dataset", dataset)
    result = CliRunner().invoke(cli, ["analyze", str(run_dir), "--seed", "3"])
    assert result.exit_code == 0, result.output
    document = _validate(run_dir / RESULTS_FILE)
    assert document["settings"]["seed"] == 3
    assert document["status"] == "ok"
    for name in PLOT_FILES.values():
        assert (run_dir / name).is_file()
    assert (run_dir / document["best"]["file"]).is_file()
    assert "[probes]" in result.output
    assert "best probe" in result.output


def test_analyze_config_settings_reach_the_probe_analysis_and_misspelt_ones_exit_2(tmp_path, make_dataset,
                                                                                   make_labels):
    from click.testing import CliRunner

    from deception_core.cli import cli
    from deception_core.store import write_dataset

    dataset, _ = make_dataset(make_labels(20, 2, seed=5), width=8, layers=(1, 2), signal={2: 3.0})
    run_dir = tmp_path / "run"
    write_dataset(run_dir / "dataset", dataset)
    probes = {"n_folds": 3, "plots": False, "n_permutations": 0, "n_random_directions": 0}
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"components": {"analysis": {"probes": probes}}}))
    result = CliRunner().invoke(cli, ["analyze", str(run_dir), "--config", str(config), "--seed", "4"])
    assert result.exit_code == 0, result.output
    document = _validate(run_dir / RESULTS_FILE)
    assert document["settings"]["n_folds"] == 3
    assert document["settings"]["n_permutations"] == 0
    assert document["settings"]["seed"] == 4  # the run-wide seed still reaches a setting not given
    assert not any((run_dir / name).exists() for name in PLOT_FILES.values())

    (run_dir / RESULTS_FILE).unlink()
    config.write_text(json.dumps({"components": {"analysis": {"probes": {"n_fold": 3}}}}))
    result = CliRunner().invoke(cli, ["analyze", str(run_dir), "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert "analysis 'probes'" in result.output
    assert "n_fold" in result.output
    assert "Valid keys: c_grid, fpr, inner_folds, jobs, n_folds" in result.output
    assert not (run_dir / RESULTS_FILE).exists()


def test_plugin_registers_probes_without_heavy_imports():
    code = (
        "import sys\n"
        "from deception_core.plugins import build_plugin_set\n"
        "from deception_core.base.registry import Kind\n"
        "entry = build_plugin_set().registry.get(Kind.ANALYSIS, 'probes')\n"
        "assert entry.provider.distribution == 'deception-probes', entry.provider\n"
        "heavy = [m for m in ('sklearn', 'scipy', 'matplotlib', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert entry.load().__name__ == 'ProbeAnalysis'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
