"""A whole run on a tiny model: artefacts, labels, logging, and the weights-only export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.store import read_dataset


@pytest.fixture()
def run_config(tiny_model_dir, tmp_path):
    def make(**changes):
        base = dict(model=str(tiny_model_dir), scenario_names=["echo"], trials=2, max_rounds=2, max_tokens=6,
                    evaluator="echo-judge", output=str(tmp_path / "out"), analyze=False)
        return RunConfig(**{**base, **changes})

    return make


def test_run_writes_every_artefact(run_config, fake_plugin_set, tmp_path) -> None:
    config = run_config(mode="both", positions="last_prompt,reply_mean,reply_last,reply_all")
    results = InterpretabilityRunner(config, plugins=fake_plugin_set).run()
    out = tmp_path / "out"
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "plugins.json", "run.log", "dataset", "activations_both.pt", "summary.txt"} <= names
    # 2 modes x 2 conditions x 2 trials x 2 rounds
    assert len(results.dataset) == 16
    dataset = read_dataset(out)
    assert dataset.layers == [1, 2, 3]
    assert dataset.meta["model"]["n_layers"] == 4
    assert {s.condition for s in dataset.samples} == {
        "high_incentive", "low_incentive", "deceptive_instruction", "honest_instruction"}
    for sample in dataset.samples:
        assert sample.caller == "agent.act"
        assert sample.tag == f"r{sample.round}"
        assert len(sample.reply_ids) == sample.n_reply_tokens
        assert sample.label in {"honest", "deceptive", "ambiguous"}
        assert sample.judge_raw.startswith("rule-echo")
        assert sample.agreement is True
        assert len(dataset.prompt_ids(sample.row)) == sample.n_prompt_tokens
        tokens = dataset.reply_tokens(2, sample.row)
        assert tokens.shape == (sample.n_reply_tokens, 64)
        if sample.n_reply_tokens:
            np.testing.assert_allclose(tokens.mean(axis=0), dataset.matrix(2, "reply_mean")[sample.row], rtol=1e-5, atol=1e-6)
    export = torch.load(out / "activations_both.pt", weights_only=True)
    assert export["activations"][2]["reply_last"].shape == (16, 64)
    assert export["labels"]["label"] == dataset.column("label")
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["config"]["trials"] == 2
    assert resolved["resolved"]["layers"] == [1, 2, 3]
    assert resolved["resolved"]["dtype"] == "float32"
    assert resolved["config"]["batch_size"] == "auto"  # the user's value: nothing is written back into the config
    assert resolved["resolved"]["batch_size"] == 16  # --batch-size auto on CPU, as the run resolved it
    assert len(resolved["resolved"]["identity_sha256"]) == 64
    # the SAE's settings keep their old names among the result fields merge compares
    assert (dataset.meta["result_config"]["sae"], dataset.meta["result_config"]["sae_layer"]) == (False, 12)
    assert any(p["name"] == "core" and p["version"] for p in json.loads((out / "plugins.json").read_text()))


def test_same_seed_same_dataset_and_different_seed_differs(run_config, fake_plugin_set, tmp_path) -> None:
    first = InterpretabilityRunner(run_config(output=str(tmp_path / "a")), plugins=fake_plugin_set).run().dataset
    second = InterpretabilityRunner(run_config(output=str(tmp_path / "b"), batch_size=3), plugins=fake_plugin_set).run().dataset
    other = InterpretabilityRunner(run_config(output=str(tmp_path / "c"), seed=1), plugins=fake_plugin_set).run().dataset
    assert first.column("reply_text") == second.column("reply_text")
    np.testing.assert_allclose(first.matrix(1, "reply_mean"), second.matrix(1, "reply_mean"), rtol=1e-4, atol=1e-5)
    assert first.column("reply_text") != other.column("reply_text")


def test_verbose_really_changes_the_log_level(run_config, fake_plugin_set, tmp_path) -> None:
    InterpretabilityRunner(run_config(output=str(tmp_path / "q")), plugins=fake_plugin_set).run()
    InterpretabilityRunner(run_config(output=str(tmp_path / "v"), verbose=True), plugins=fake_plugin_set).run()
    quiet = (tmp_path / "q" / "run.log").read_text()
    verbose = (tmp_path / "v" / "run.log").read_text()
    assert " INFO " in quiet
    assert "dataset:" in quiet
    assert " DEBUG " not in quiet
    assert " DEBUG " in verbose
    assert "trial echo/emergent/high_incentive/00000 done" in verbose


def test_judge_flags_for_a_judge_without_settings_are_refused_before_anything_exists(run_config, fake_plugin_set,
                                                                                     tmp_path) -> None:
    """The judge's settings are structured in one place; a judge that takes none refuses them.
    (A judge with settings recording them: `tests/scenarios/test_evaluators_run.py`.)"""
    from deception_core.base.errors import ConfigError

    config = run_config(components={"evaluator": {"echo-judge": {"model": "judge-7b", "base_url": "http://judge.example"}}},
                        trials=1, max_rounds=1)
    with pytest.raises(ConfigError, match=r"evaluator 'echo-judge' takes no settings; got \['base_url', 'model'\]"):
        InterpretabilityRunner(config, plugins=fake_plugin_set).run()
    assert not (tmp_path / "out").exists()
