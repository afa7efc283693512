"""A position whose activations never vary (the prompt of bare statements) is reported once, not as a grid of 0.50s."""

from __future__ import annotations

import json

import numpy as np

from deception_probes.informative import constant_cells, describe, is_constant

COLOURS = ("blue", "green", "white", "black", "red", "yellow", "grey", "orange")
THINGS = ("sky", "grass", "sea", "snow", "coal", "blood", "sun", "leaf", "sand", "rose")


def test_a_capture_of_bare_statements_reports_last_prompt_as_not_informative(tmp_path, tiny_model_dir):
    from click.testing import CliRunner

    from deception_core.cli import cli

    statements = tmp_path / "statements.jsonl"
    records = [{"text": f"The {thing} is {colour}.", "label": "honest" if (i + j) % 2 else "deceptive"}
               for i, thing in enumerate(THINGS) for j, colour in enumerate(COLOURS[:4])]
    statements.write_text("".join(json.dumps(r) + "\n" for r in records))
    runner = CliRunner()
    captured = runner.invoke(cli, ["capture", str(statements), "--model", str(tiny_model_dir), "--dtype", "float32",
                                   "--output", str(tmp_path / "captured")])
    assert captured.exit_code == 0, captured.output
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"components": {"analysis": {"probes": {
        "n_permutations": 0, "n_random_directions": 0, "plots": False, "token_scores": False}}}}))
    analysed = runner.invoke(cli, ["analyze", str(tmp_path / "captured"), "--output", str(tmp_path / "analysis"),
                                   "--config", str(config), "--jobs", "1"], catch_exceptions=False)
    assert analysed.exit_code == 0, analysed.output
    results = json.loads((tmp_path / "analysis" / "probe_results.json").read_text())
    assert [(e["position"], e["whole_position"]) for e in results["not_informative"]] == [("last_prompt", True)]
    assert not [c for c in results["cells"] if c["position"] == "last_prompt"]
    assert {c["position"] for c in results["cells"]} == {"reply_mean", "reply_last"}
    assert analysed.output.count("not informative: position last_prompt") == 1
    assert not any(line.split()[1:2] == ["last_prompt"] for line in analysed.output.splitlines())  # no table row
    assert results["best"]["position"] != "last_prompt"


def test_the_lexical_baseline_is_printed_on_a_capture(tmp_path, tiny_model_dir):
    """The same capture's analysis prints the words-alone line (the statements are their own texts)."""
    from click.testing import CliRunner

    from deception_core.cli import cli

    statements = tmp_path / "statements.jsonl"
    records = [{"text": f"The {thing} is {colour}.", "label": "deceptive" if colour in ("red", "grey") else "honest"}
               for thing in THINGS for colour in COLOURS]
    statements.write_text("".join(json.dumps(r) + "\n" for r in records))
    runner = CliRunner()
    assert runner.invoke(cli, ["capture", str(statements), "--model", str(tiny_model_dir), "--dtype", "float32",
                               "--layers", "1", "--output", str(tmp_path / "captured")]).exit_code == 0
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"components": {"analysis": {"probes": {
        "n_permutations": 0, "n_random_directions": 0, "plots": False, "token_scores": False}}}}))
    analysed = runner.invoke(cli, ["analyze", str(tmp_path / "captured"), "--output", str(tmp_path / "analysis"),
                                   "--config", str(config), "--jobs", "1"], catch_exceptions=False)
    assert analysed.exit_code == 0, analysed.output
    results = json.loads((tmp_path / "analysis" / "probe_results.json").read_text())
    assert results["lexical_baseline"]["auroc"]["value"] > 0.95  # the colour word decides the label
    assert "labels separated by the words alone" in analysed.output


def test_constant_columns_within_rounding_count_as_constant():
    rng = np.random.default_rng(0)
    row = rng.standard_normal(16).astype(np.float32) * 30
    assert is_constant(np.tile(row, (5, 1)) + rng.standard_normal((5, 16)).astype(np.float32) * 1e-6)
    assert not is_constant(np.tile(row, (5, 1)) + rng.standard_normal((5, 16)).astype(np.float32) * 1e-2)


def test_a_position_constant_at_some_layers_lists_those_layers(make_dataset):
    dataset, _ = make_dataset([["honest", "deceptive"]] * 6, width=4, layers=(1, 2), positions=("a", "b"))
    dataset.arrays["layer1/b"][:] = 1.5
    rows = np.arange(len(dataset.samples))
    constant = constant_cells(dataset, rows)
    assert constant == {(1, "b")}
    entries = describe(constant, dataset.layers, dataset.positions, len(rows))
    assert [(e["position"], e["layers"], e["whole_position"]) for e in entries] == [("b", [1], False)]
