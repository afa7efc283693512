"""The score files (probe_scores.parquet, probe_token_scores.parquet): readable with pandas, held-out where labelled."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pandas as pd

from deception_probes.analysis import ProbeAnalysis
from deception_probes.settings import ProbeSettings


def _with_reply_tokens(dataset, seed: int = 0):
    """Add ``reply_all`` tokens to every layer: 1-4 tokens per sample around its reply_mean vector."""
    rng = np.random.default_rng(seed)
    offset = 0
    for layer in dataset.layers:
        base = dataset.matrix(layer, dataset.positions[0])
        chunks, offset = [], 0
        for i, sample in enumerate(dataset.samples):
            length = 1 + i % 4
            chunks.append(base[i] + 0.1 * rng.standard_normal((length, base.shape[1])).astype(np.float32))
            dataset.samples[i] = attrs.evolve(sample, reply_all_offset=offset, reply_all_length=length,
                                              reply_ids=tuple(range(100 + i, 100 + i + length)))
            offset += length
        dataset.arrays[f"layer{layer}/reply_all"] = np.concatenate(chunks)
    dataset.meta = attrs.evolve(dataset.meta, positions=[*dataset.meta.positions, "reply_all"])
    return dataset


def test_score_files_follow_the_contract(tmp_path, make_dataset, make_labels, fast):
    labels = make_labels(30, 3, seed=4)
    labels[0][0] = "ambiguous"
    dataset, _ = make_dataset(labels, width=10, signal={1: 3.0}, seed=4)
    for i, sample in enumerate(dataset.samples):
        dataset.samples[i] = attrs.evolve(sample, sample_id=f"s{i}")
    dataset = _with_reply_tokens(dataset)
    report = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {})
    results = report.results
    assert "probe_scores.parquet" in results["files"]
    scores = pd.read_parquet(tmp_path / "probe_scores.parquet")
    assert list(scores.columns) == ["row", "sample_id", "label", "score", "score_raw", "score_source", "method",
                                    "layer", "position", "token_score_mean", "token_score_max", "token_score_last"]
    assert len(scores) == len(dataset.samples)
    assert str(scores["score"].dtype) == "float64"
    assert scores.loc[0, "score_source"] == "final"  # the ambiguous sample
    assert set(scores.loc[1:, "score_source"]) == {"heldout"}
    best = results["best"]
    assert (scores["method"] == best["method"]).all()
    assert (scores["layer"] == best["layer"]).all()
    labelled = scores[scores["score_source"] == "heldout"]
    y = (labelled["label"] == "deceptive").to_numpy()
    from deception_probes.metrics import auroc

    cell = next(c for c in results["cells"] if (c["layer"], c["position"], c["method"]) ==
                (best["layer"], best["position"], best["method"]))
    assert auroc(labelled["score_raw"].to_numpy(), y) == cell["auroc"]["value"]
    assert auroc(labelled["score"].to_numpy(), y) == cell["auroc"]["value"]  # the scale keeps the order

    tokens = pd.read_parquet(tmp_path / "probe_token_scores.parquet")
    assert list(tokens.columns) == ["row", "token_index", "token_id", "score", "score_raw"]
    unit = results["scores"]["scale"]["unit_raw"]
    np.testing.assert_allclose(tokens["score"].to_numpy(), tokens["score_raw"].to_numpy() / unit)
    assert len(tokens) == sum(s.reply_all_length for s in dataset.samples)
    per_row = tokens.groupby("row")["score"]
    np.testing.assert_allclose(scores["token_score_mean"].to_numpy(dtype=float), per_row.mean().to_numpy())
    np.testing.assert_allclose(scores["token_score_max"].to_numpy(dtype=float), per_row.max().to_numpy())
    np.testing.assert_allclose(scores["token_score_last"].to_numpy(dtype=float), per_row.last().to_numpy())
    assert tokens.loc[0, "token_id"] == 100
    summary = json.loads((tmp_path / "probe_results.json").read_text())["scores"]
    assert summary["token_scores"] is True
    assert summary["token_source"] == "stored reply_all activations"


def test_without_reply_tokens_the_token_columns_are_null(tmp_path, make_dataset, make_labels, fast):
    dataset, _ = make_dataset(make_labels(20, 2, seed=5), width=6, seed=5)
    ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {})
    scores = pd.read_parquet(tmp_path / "probe_scores.parquet")
    assert scores["token_score_mean"].isna().all()
    assert not (tmp_path / "probe_token_scores.parquet").exists()


def test_judge_baseline_sits_beside_the_best_probe(tmp_path, make_dataset, make_labels, fast):
    """A judge that flips 30% of verdicts at random is beaten by a probe reading a strong planted direction."""
    dataset, _ = make_dataset(make_labels(40, 3, seed=6), width=10, signal={1: 4.0}, seed=6)
    rng = np.random.default_rng(0)
    for i, sample in enumerate(dataset.samples):
        flip = rng.random() < 0.3
        judge = {"honest": "deceptive", "deceptive": "honest"}[sample.label] if flip else sample.label
        dataset.samples[i] = attrs.evolve(sample, judge_label=judge)
    dataset.meta = dataset.meta.with_extra(config={"label_policy": "rule"})
    results = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {}).results
    judge = results["judge_baseline"]
    assert judge["status"] == "ok"
    assert judge["n_samples"] == 120
    assert 0.6 < judge["judge_auroc"]["value"] < 0.8  # 70% right on both classes: AUROC 0.7
    assert judge["probe_auroc"]["value"] > 0.95
    assert judge["difference"]["ci_low"] > 0
    assert judge["difference"]["value"] == judge["probe_auroc"]["value"] - judge["judge_auroc"]["value"]


def test_judge_baseline_under_the_agree_policy_is_flagged_circular(tmp_path, make_dataset, make_labels, fast):
    dataset, _ = make_dataset(make_labels(20, 2, seed=7), width=6, seed=7)
    dataset.meta = dataset.meta.with_extra(config={"label_policy": "agree"})
    report = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {})
    assert report.results["judge_baseline"]["status"] == "circular"
    assert "circular" in report.table
