"""`--train-from` on a run without labels: the run is scored by the other datasets' probes, not refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deception_core.base.errors import UsageError
from deception_probes.settings import ProbeSettings
from deception_probes.transfer import run_transfer
from deception_probes.transfer_scores import TRANSFER_SCORES_FILE, write_transfer_scores

SETTINGS = ProbeSettings(n_permutations=0, n_random_directions=0, c_grid=(0.01, 0.1))


@pytest.fixture()
def datasets(make_dataset):
    """A contrast set with a planted direction, a run whose 40 samples are ambiguous (half of them shifted
    along the direction), and a benign control set."""
    contrast, u = make_dataset([["honest", "deceptive"]] * 40, width=12, seed=1, signal={1: 5.0})
    run, _ = make_dataset([["ambiguous"] * 2] * 20, width=12, seed=2)
    run.arrays["layer1/reply_mean"][:20] += (5.0 * u).astype(np.float32)
    control, _ = make_dataset([["honest"] * 4] * 100, width=12, seed=9)
    return contrast, run, control


def test_an_unlabelled_run_is_scored_and_not_trained_on(datasets):
    contrast, run, control = datasets
    outcome = run_transfer(run, {"contrast": contrast}, control, SETTINGS)
    rows = {r["train"]: r for r in outcome.result["rows"]}
    assert rows["this run"]["status"] == "not trained"
    cell = next(c for c in rows["contrast"]["cells"] if c["test"] == "this run")
    assert cell["status"] == "scored without labels"
    assert cell["auroc"] is None
    assert cell["all_samples"]["n_samples"] == 40
    assert 18 <= cell["all_samples"]["flagged"] <= 22  # the 20 shifted samples, give or take the 1% control rate


def test_the_score_files_hold_every_sample_and_the_flags(datasets, tmp_path):
    contrast, run, control = datasets
    outcome = run_transfer(run, {"contrast": contrast}, control, SETTINGS)
    written = write_transfer_scores(run, outcome, {"contrast": contrast}, control, SETTINGS.fpr, tmp_path,
                                    as_run_scores=True)
    assert written is not None
    scores = pd.read_parquet(tmp_path / "probe_scores.parquet")
    assert len(scores) == 40
    assert set(scores["score_source"]) == {"transfer"}
    assert scores["flagged_at_control_fpr"][:20].mean() > 0.9  # shifted along the contrast direction
    assert scores["flagged_at_control_fpr"][20:].mean() < 0.1  # like the control set
    long = pd.read_parquet(tmp_path / TRANSFER_SCORES_FILE)
    assert list(long["train"].unique()) == ["contrast"]
    assert written["run_scores"]["flagged"] == int(scores["flagged_at_control_fpr"].sum())


def test_an_unlabelled_training_set_is_refused_by_name(datasets):
    contrast, run, _ = datasets
    with pytest.raises(UsageError, match="cannot train on --train-from unlabelled: 0 honest and 0 deceptive"):
        run_transfer(contrast, {"unlabelled": run}, None, SETTINGS)
