"""The generalisation matrix: a known answer (a direction shared by two datasets, not the third), the
control-set rates, unlabelled columns, and `deception analyze --matrix` on the command line."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest
from click.testing import CliRunner

from deception_core.base.errors import UsageError
from deception_core.cli import cli
from deception_core.store.dataset import write_dataset
from deception_probes.matrix import (
    MATRIX_JSON,
    MATRIX_PLOT,
    MATRIX_TABLE,
    MatrixChoice,
    auroc_grid,
    generalisation_matrix,
    matrix_table,
)
from deception_probes.settings import ProbeSettings

SETTINGS = ProbeSettings(n_permutations=0, n_random_directions=0, c_grid=(0.01, 0.1))
WIDTH = 12


@pytest.fixture(scope="module")
def directions() -> tuple[np.ndarray, np.ndarray]:
    """Two orthogonal unit directions: ``u`` shared by datasets A and B, ``v`` planted in C only."""
    rng = np.random.default_rng(42)
    u = rng.standard_normal(WIDTH)
    u /= np.linalg.norm(u)
    v = rng.standard_normal(WIDTH)
    v -= (v @ u) * u
    return u, v / np.linalg.norm(v)


def _labels(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [["deceptive" if rng.random() < 0.5 else "honest" for _ in range(2)] for _ in range(n)]


def _planted(build, labels, direction, strength, seed):
    """A dataset (layer 1, reply_mean) whose deceptive samples are shifted by ``strength * direction``."""
    dataset, _ = build(labels, width=WIDTH, seed=seed)
    X = dataset.arrays["layer1/reply_mean"]
    deceptive = np.array([s.label == "deceptive" for s in dataset.samples])
    X[deceptive] += (strength * direction).astype(np.float32)
    return dataset


@pytest.fixture()
def three(directions, make_dataset):
    build_dataset = make_dataset
    u, v = directions
    return {"A": _planted(build_dataset, _labels(40, 1), u, 5.0, seed=1),
            "B": _planted(build_dataset, [["honest", "deceptive"]] * 40, u, 5.0, seed=2),
            "C": _planted(build_dataset, _labels(40, 3), v, 5.0, seed=3)}


@pytest.fixture()
def control(make_dataset):
    return make_dataset([["honest"] * 4] * 100, width=WIDTH, seed=9)[0]  # 400 benign samples, no direction


@pytest.fixture()
def result(three, control):
    return generalisation_matrix(three, control, SETTINGS)


def test_the_matrix_recovers_the_shared_direction_and_nothing_else(result):
    grid = auroc_grid(result)
    assert result["datasets"] == ["A", "B", "C"]
    transfers = np.array([[True, True, False], [True, True, False], [False, False, True]])
    assert np.array_equal(grid > 0.9, transfers)  # the diagonal and A <-> B
    assert np.all(np.abs(grid[~transfers] - 0.5) < 0.15)  # A, B <-> C: chance


def test_chance_cells_have_intervals_around_one_half(result):
    for row in result["rows"]:
        for cell in row["cells"]:
            if {row["train"], cell["test"]} in ({"A", "C"}, {"B", "C"}):
                assert cell["auroc"]["ci_low"] < 0.5 < cell["auroc"]["ci_high"], (row["train"], cell["test"])


def test_diagonal_cells_are_grouped_cross_validation(result):
    for row in result["rows"]:
        cell = next(c for c in row["cells"] if c["test"] == row["train"])
        assert cell["note"].startswith("within the dataset: grouped")


def test_rates_at_the_control_threshold(result):
    cells = {(row["train"], c["test"]): c for row in result["rows"] for c in row["cells"]}
    assert cells[("A", "B")]["recall_at_control_fpr"] > 0.9  # deceptive B samples sit 5 sd along u
    assert cells[("A", "B")]["honest_flagged"] < 0.05  # honest B samples look like the control set
    assert cells[("A", "C")]["recall_at_control_fpr"] < 0.2  # C's deception lies along v, which A's probe ignores
    assert cells[("A", "A")]["recall_at_control_fpr"] > 0.9  # the diagonal: each fold's own threshold
    assert all(row["control_threshold"]["achieved_control_fpr"] <= 0.01 for row in result["rows"])


def test_each_probe_reads_the_only_layer_and_position(result):
    assert {(row["layer"], row["position"]) for row in result["rows"]} == {(1, "reply_mean")}


def test_an_unlabelled_dataset_is_scored_not_trained(three, control, directions, make_dataset):
    unlabelled = _planted(make_dataset, [["ambiguous"] * 2] * 20, directions[0], 0.0, seed=5)
    result = generalisation_matrix({"A": three["A"], "U": unlabelled}, control, SETTINGS)
    rows = {row["train"]: row for row in result["rows"]}
    assert rows["U"]["status"] == "not trained"
    assert rows["U"]["cells"] == []
    cell = next(c for c in rows["A"]["cells"] if c["test"] == "U")
    assert cell["status"] == "scored without labels"
    assert cell["auroc"] is None
    assert cell["all_samples"]["n_samples"] == 40
    assert cell["all_samples"]["flagged_share"] < 0.1  # no direction planted: like the control set


def test_a_fixed_layer_outside_the_datasets_is_refused(three):
    with pytest.raises(UsageError, match="--layer 7 is not stored in every dataset"):
        generalisation_matrix(three, None, SETTINGS, MatrixChoice(layer=7))


def test_datasets_of_different_models_are_refused(three):
    other = attrs.evolve(three["C"], meta=attrs.evolve(three["C"].meta, model={"id": "another-model"}))
    with pytest.raises(UsageError, match="different models"):
        generalisation_matrix({"A": three["A"], "C": other}, None, SETTINGS)


@pytest.fixture()
def on_disk(three, control, tmp_path):
    root = tmp_path
    paths = {}
    for name, dataset in {**three, "control": control}.items():
        paths[name] = root / name
        write_dataset(paths[name], dataset)
    return root, paths


def test_analyze_matrix_writes_the_table_the_json_and_the_plot(on_disk):
    root, paths = on_disk
    out = root / "matrix-out"
    done = CliRunner().invoke(cli, ["analyze", "--matrix", str(paths["A"]), str(paths["B"]), str(paths["C"]),
                                    "--control", str(paths["control"]), "--output", str(out)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    written = json.loads((out / MATRIX_JSON).read_text())
    assert written["datasets"] == [str(paths[n]) for n in "ABC"]
    assert np.array_equal(auroc_grid(written) > 0.9, np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool))
    assert (out / MATRIX_PLOT).read_bytes().startswith(b"\x89PNG")
    table = (out / MATRIX_TABLE).read_text()
    assert table.strip() in done.output
    assert "recall on deceptive samples at the threshold flagging 1% of the control set" in table
    manifest = json.loads((out / "analyses.json").read_text())
    assert manifest["analyses"]["probes"]["outputs"] == {"matrix": MATRIX_JSON}


def test_analyze_matrix_at_a_fixed_layer_and_position(on_disk):
    root, paths = on_disk
    out = root / "fixed"
    done = CliRunner().invoke(cli, ["analyze", "--matrix", str(paths["A"]), str(paths["C"]), "--layer", "1",
                                    "--position", "reply_mean", "--output", str(out)], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    written = json.loads((out / MATRIX_JSON).read_text())
    assert written["selected_on"].startswith("layer 1 and position reply_mean fixed")


@pytest.mark.parametrize(("extra", "message"), [
    (["--matrix", "A"], "--matrix needs two datasets or more"),
    (["A", "B"], "pass one RUN_DIR (got 2)"),
    (["A", "--layer", "1"], "--layer takes effect only with --matrix"),
    (["--matrix", "A", "B"], "--matrix writes into a new folder: pass --output"),
    (["--matrix", "A", "A", "-o", "OUT"], "are the same dataset"),
    (["--matrix", "A", "B", "-o", "OUT", "--train-from", "C"], "pass the --train-from datasets as DS arguments"),
])
def test_bad_matrix_requests_exit_2_with_nothing_written(on_disk, extra, message):
    root, paths = on_disk
    out = root / "refused"
    argv = [str(paths[a]) if a in paths else str(out) if a == "OUT" else a for a in extra]
    result = CliRunner().invoke(cli, ["analyze", *argv])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not out.exists()


def test_datasets_of_different_models_exit_2_before_any_work(on_disk, three, tmp_path):
    root, paths = on_disk
    other = attrs.evolve(three["C"], meta=attrs.evolve(three["C"].meta, model={"id": "another-model"}))
    write_dataset(tmp_path / "other", other)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["analyze", "--matrix", str(paths["A"]), str(paths["B"]), str(tmp_path / "other"),
                                      "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert "different models" in result.output
    assert not out.exists()


def _worded(dataset, word: str, seed: int):
    """``dataset`` with reply texts of random filler words, plus ``word`` in every deceptive reply."""
    rng = np.random.default_rng(seed)
    filler = ["market", "price", "offer", "today", "truck", "window", "garden", "river", "paper", "signal"]
    samples = [attrs.evolve(s, reply_text=" ".join([*rng.choice(filler, 6),
                                                    *([word] if s.label == "deceptive" else [])]))
               for s in dataset.samples]
    return attrs.evolve(dataset, samples=samples)


def test_the_words_alone_row_recovers_a_shared_telling_word(three):
    worded = {"A": _worded(three["A"], "grandmother", 1), "B": _worded(three["B"], "grandmother", 2),
              "C": _worded(three["C"], "emergency", 3)}
    result = generalisation_matrix(worded, None, SETTINGS)
    lexical = {row["train"]: {c["test"]: c["auroc"]["value"] for c in row["lexical"]["cells"]}
               for row in result["rows"]}
    grid = np.array([[lexical[a][b] for b in "ABC"] for a in "ABC"])
    transfers = np.array([[True, True, False], [True, True, False], [False, False, True]])
    assert np.array_equal(grid > 0.9, transfers)  # the same word decides A and B; C's word is another


def test_the_table_prints_the_words_alone_row(three):
    result = generalisation_matrix({name: _worded(d, "grandmother", i) for i, (name, d) in enumerate(three.items())},
                                   None, SETTINGS)
    assert "the words alone (bag of words + logistic regression" in matrix_table(result)


def test_datasets_without_texts_get_no_lexical_cells(result):
    assert {row["lexical"]["status"] for row in result["rows"]} == {"not computable"}
