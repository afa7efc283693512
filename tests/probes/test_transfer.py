"""Train here, evaluate there: known answers with planted contrast sets, and the control-set threshold."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from deception_core.base.errors import UsageError
from deception_probes.settings import ProbeSettings
from deception_probes.transfer import transfer_analysis

SETTINGS = ProbeSettings(n_permutations=0, n_random_directions=0, c_grid=(0.01, 0.1))


def _planted(build_dataset, labels, u, strength, seed, width=12):
    """A dataset whose deceptive samples are shifted by ``strength * u`` (``u`` shared across datasets)."""
    dataset, _ = build_dataset(labels, width=width, seed=seed)
    X = dataset.arrays["layer1/reply_mean"]
    deceptive = np.array([s.label == "deceptive" for s in dataset.samples])
    X[deceptive] += (strength * u).astype(np.float32)
    return dataset


def _labels(n, seed):
    rng = np.random.default_rng(seed)
    return [["deceptive" if rng.random() < 0.5 else "honest" for _ in range(2)] for _ in range(n)]


@pytest.fixture()
def direction():
    rng = np.random.default_rng(42)
    u = rng.standard_normal(12)
    return u / np.linalg.norm(u)


def test_a_shared_direction_transfers_and_an_absent_one_does_not(direction, make_dataset):
    contrast = _planted(make_dataset, [["honest", "deceptive"]] * 40, direction, 5.0, seed=1)  # paired, like instructed pairs
    sharing = _planted(make_dataset, _labels(40, 2), direction, 5.0, seed=2)
    without = _planted(make_dataset, _labels(40, 3), direction, 0.0, seed=3)
    result = transfer_analysis(sharing, {"contrast": contrast, "without": without}, None, SETTINGS, "games")
    row = next(r for r in result["rows"] if r["train"] == "contrast")
    cells = {c["test"]: c for c in row["cells"]}
    assert cells["games"]["auroc"]["value"] > 0.97
    assert cells["without"]["auroc"]["ci_low"] < 0.5 < cells["without"]["auroc"]["ci_high"]
    assert cells["contrast"]["note"].startswith("within the dataset")


def test_control_threshold_sets_recall_and_honest_flagged(direction, make_dataset):
    contrast = _planted(make_dataset, [["honest", "deceptive"]] * 40, direction, 5.0, seed=1)
    games = _planted(make_dataset, _labels(40, 2), direction, 5.0, seed=2)
    control, _ = make_dataset([["honest"] * 4] * 100, width=12, seed=9)  # 400 benign samples, no direction
    result = transfer_analysis(games, {"contrast": contrast}, control, SETTINGS, "games")
    row = next(r for r in result["rows"] if r["train"] == "contrast")
    threshold = row["control_threshold"]
    assert threshold["n_control"] == 400
    assert threshold["achieved_control_fpr"] <= 0.01
    cell = next(c for c in row["cells"] if c["test"] == "games")
    assert cell["recall_at_control_fpr"] > 0.9  # deceptive samples sit 5 noise sd along the direction
    assert cell["honest_flagged"] < 0.05  # honest game samples look like the control set


def test_datasets_of_different_models_are_refused(direction, make_dataset):
    a = _planted(make_dataset, _labels(10, 1), direction, 1.0, seed=1)
    b = _planted(make_dataset, _labels(10, 2), direction, 1.0, seed=2)
    b.meta = attrs.evolve(b.meta, model={"id": "another-model"})
    with pytest.raises(UsageError, match="different models"):
        transfer_analysis(a, {"b": b}, None, SETTINGS)


def test_analyze_train_from_and_control_on_the_command_line(tmp_path, direction, make_dataset):
    import json

    from click.testing import CliRunner

    from deception_core.cli import cli
    from deception_core.store.dataset import write_dataset

    paths = {}
    for name, data in {"games": _planted(make_dataset, _labels(30, 2), direction, 5.0, seed=2),
                       "contrast": _planted(make_dataset, [["honest", "deceptive"]] * 30, direction, 5.0, seed=1),
                       "control": make_dataset([["honest"] * 4] * 30, width=12, seed=9)[0]}.items():
        paths[name] = tmp_path / name
        write_dataset(paths[name], data)
    out = tmp_path / "out"
    runner = CliRunner()
    missing = runner.invoke(cli, ["analyze", str(paths["games"]), "--train-from", str(tmp_path / "absent"),
                                  "--output", str(out)])
    assert missing.exit_code == 2
    assert "holds no dataset" in missing.output
    assert not out.exists()
    done = runner.invoke(cli, ["analyze", str(paths["games"]), "--train-from", str(paths["contrast"]), "--control",
                               str(paths["control"]), "--output", str(out), "--jobs", "1"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    result = json.loads((out / "probe_transfer.json").read_text())
    assert result["datasets"] == ["this run", str(paths["contrast"])]
    assert f"{paths['contrast']} (" in done.output
    assert "honest flagged" in done.output
