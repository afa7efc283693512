"""The score scale: 0 at the probe's decision threshold, +-1 at the threshold flagging 1 % of honest samples.

Known answers: the anchors on hand-made reference scores, and on a planted direction the honest and
deceptive medians on either side of the threshold, for each of the three methods.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deception_core.capture.reply_states import REPLY_STATES_OPTION, ReplyTokenStates
from deception_probes import engine
from deception_probes.analysis import ProbeAnalysis
from deception_probes.scores import THRESHOLD, ScoreScale
from deception_probes.settings import ProbeSettings


def test_one_unit_is_the_threshold_that_flags_one_percent_of_the_reference() -> None:
    reference = np.arange(1.0, 201.0) - 150.0  # 200 scores, -149 .. 50
    scale = ScoreScale.fit(reference, 0.01, "honest samples")
    q = float(np.quantile(reference, 0.99, method="higher"))
    assert q == 49.0
    assert scale.unit == 49.0
    assert scale.apply(np.array([q]))[0] == 1.0
    assert scale.fpr_threshold == 1.0
    assert float((scale.apply(reference) > 1.0).mean()) <= 0.01
    assert scale.apply(np.array([0.0]))[0] == THRESHOLD


def test_a_probe_that_already_flags_under_one_percent_puts_that_threshold_at_minus_one() -> None:
    reference = -np.linspace(10.0, 30.0, 101)  # every honest score below the decision threshold
    scale = ScoreScale.fit(reference, 0.01, "honest samples")
    assert scale.fpr_threshold == -1.0
    assert scale.unit == pytest.approx(10.2)  # the 100th of 101 sorted scores: 1 % of them lie above it


def test_a_reference_threshold_at_zero_falls_back_to_the_spread() -> None:
    reference = np.array([-2.0, -1.0, 0.0, 0.0, 0.0])
    scale = ScoreScale.fit(reference, 0.01, "honest samples")
    assert scale.unit == pytest.approx(float(reference.std()))
    assert "standard deviation" in scale.basis


@pytest.mark.parametrize("method", ["logistic", "mass_mean", "lat"])
def test_planted_direction_puts_the_medians_on_either_side_of_the_threshold(method, tmp_path, monkeypatch,
                                                                            make_dataset, make_labels, fast) -> None:
    dataset, _ = make_dataset(make_labels(30, 3, seed=11), width=12, signal={1: 2.5}, seed=11)
    real_select = engine._select_best

    def select(cvs, cells):  # the analysis picks the best method; here each method in turn
        (layer, position, _), why = real_select(cvs, cells)
        return (layer, position, method), why

    monkeypatch.setattr(engine, "_select_best", select)
    results = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {}).results
    scores = pd.read_parquet(tmp_path / "probe_scores.parquet")
    assert (scores["method"] == method).all()
    honest = scores.loc[scores["label"] == "honest", "score"]
    deceptive = scores.loc[scores["label"] == "deceptive", "score"]
    assert float(honest.median()) < THRESHOLD
    assert float(deceptive.median()) > THRESHOLD
    scale = results["scores"]["scale"]
    np.testing.assert_allclose(scores["score"].to_numpy(), scores["score_raw"].to_numpy() / scale["unit_raw"])
    assert results["best"]["threshold"] == 0.0
    raw_honest = scores.loc[scores["label"] == "honest", "score_raw"].to_numpy()
    q = float(np.quantile(raw_honest, 0.99, method="higher"))
    assert abs(q) / scale["unit_raw"] == 1.0  # the 1 % honest threshold sits at +-1 on the scale
    on_disk = json.loads((tmp_path / "probe_results.json").read_text())
    assert on_disk["best"]["scale"] == scale


def test_a_control_set_anchors_the_scale(tmp_path, make_dataset, make_labels, fast) -> None:
    dataset, _ = make_dataset(make_labels(20, 3, seed=12), width=8, signal={1: 3.0}, seed=12)
    control, _ = make_dataset([["honest"] * 5 for _ in range(40)], width=8, seed=13)
    from deception_core.store.dataset import write_dataset

    write_dataset(tmp_path / "control" / "dataset", control)
    out = tmp_path / "out"
    results = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(
        dataset, out, {"control": str(tmp_path / "control")}).results
    scale = results["scores"]["scale"]
    assert scale["reference"] == "control samples"
    assert scale["n_reference"] == 200
    from deception_probes.methods import load_probe

    probe = load_probe(out / results["best"]["file"])
    control_raw = probe.score(control.matrix(1, "reply_mean"))
    assert abs(float(np.quantile(control_raw, 0.99, method="higher"))) / scale["unit_raw"] == pytest.approx(1.0)


class PlantedTokens(ReplyTokenStates):
    """Reply tokens around each sample's reply_mean vector, as a teacher-forced pass would give them."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[int]]] = []

    def states(self, dataset, layer, rows):
        self.calls.append((layer, list(rows)))
        base = dataset.matrix(layer, "reply_mean")
        for row in rows:
            yield row, np.repeat(base[row][None, :], 2, axis=0)


def test_without_stored_tokens_the_reply_states_give_the_token_scores(tmp_path, make_dataset, make_labels,
                                                                      fast) -> None:
    import attrs

    dataset, _ = make_dataset(make_labels(20, 2, seed=14), width=6, signal={1: 3.0}, seed=14)
    for i, sample in enumerate(dataset.samples):
        dataset.samples[i] = attrs.evolve(sample, reply_ids=(7, 8) if i else ())
    tokens = PlantedTokens()
    results = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(
        dataset, tmp_path, {REPLY_STATES_OPTION: tokens}).results
    assert tokens.calls == [(results["best"]["layer"], list(range(1, len(dataset.samples))))]
    assert results["scores"]["token_source"] == "teacher-forced pass over the stored prompt and reply ids"
    frame = pd.read_parquet(tmp_path / "probe_token_scores.parquet")
    assert len(frame) == 2 * (len(dataset.samples) - 1)
    scores = pd.read_parquet(tmp_path / "probe_scores.parquet").set_index("row")
    # each token equals its reply's mean vector, so its score is the sample's score (same probe, same scale)
    np.testing.assert_allclose(scores["token_score_mean"].to_numpy(dtype=float)[1:],
                               scores["score"].to_numpy()[1:])
    assert pd.isna(scores.loc[0, "token_score_mean"])


def test_token_scores_off_writes_no_token_file(tmp_path, make_dataset, make_labels, fast) -> None:
    dataset, _ = make_dataset(make_labels(20, 2, seed=15), width=6, seed=15)
    tokens = PlantedTokens()
    ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False, token_scores=False)).run(
        dataset, tmp_path, {REPLY_STATES_OPTION: tokens})
    assert tokens.calls == []
    assert not (tmp_path / "probe_token_scores.parquet").exists()
