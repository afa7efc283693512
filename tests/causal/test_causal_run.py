"""One small run through the core runner with ``--causal`` on the planted tiny model and the echo game."""

from __future__ import annotations

import json

import attrs
import jsonschema
import pytest

from deception_causal import load_schema
from deception_causal.options import CAUSAL_TESTS
from deception_core import InterpretabilityRunner, RunConfig

TESTS = ("patching", "ablation", "steering", "faithfulness")


@pytest.fixture(scope="module")
def causal_run(planted_model_dir, tmp_path_factory):
    from deception_core.plugins import build_plugin_set
    from deception_core.testing.fakes import FakePlugin

    out = tmp_path_factory.mktemp("causal-run") / "out"
    config = RunConfig(model=str(planted_model_dir), scenario_names=["echo"], evaluator="echo-judge", trials=5,
                       max_rounds=1, max_tokens=4, causal=True, analyze=False, layers="1,2", output=str(out),
                       components={"causal_test": {name: {"samples": 4} for name in CAUSAL_TESTS}})
    results = InterpretabilityRunner(config, plugins=build_plugin_set(extra_plugins={"fake": FakePlugin()})).run()
    return results, out


def test_the_four_results_and_the_plot_are_written_and_schema_valid(causal_run) -> None:
    results, out = causal_run
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    labels = results.dataset.column("label")
    assert {"honest", "deceptive"} <= set(labels)  # the planted model says "3"; secrets vary
    for name in TESTS:
        data = json.loads((out / f"causal_{name}.json").read_text())
        jsonschema.validate(data, schema)
        assert data["test"] == name
        assert data["status"] == "ok", data.get("reason")
        assert results.causal[name]["summary"] == data["summary"]
    assert (out / "causal_dose_response.png").stat().st_size > 5000
    summary = (out / "summary.txt").read_text()
    for name in TESTS:
        assert f"[causal {name}] {name}" in summary
    assert "p_rank=" in summary
    assert "95% CI" in summary


def test_causal_samples_is_honoured_with_distinct_prompts(causal_run) -> None:
    results, out = causal_run
    steering = json.loads((out / "causal_steering.json").read_text())
    prompts = steering["prompts"]
    assert prompts["n_requested"] == 4
    assert prompts["n_used"] == 4
    ids = [tuple(results.dataset.prompt_ids(r)) for r in prompts["rows"]]
    assert len(set(ids)) == 4
    for condition in steering["conditions"]:
        assert len(condition["labels"]) == 4
    patching = json.loads((out / "causal_patching.json").read_text())
    assert 1 <= patching["pairs"]["n"] <= 4
    for pair in patching["per_pair"]:
        source, target = results.dataset.samples[pair["source_row"]], results.dataset.samples[pair["target_row"]]
        assert source.trial_index == target.trial_index
        assert source.scenario == target.scenario


def test_every_effect_has_ten_random_directions_and_an_interval(causal_run) -> None:
    _, out = causal_run
    for name in ("patching", "ablation", "steering"):
        data = json.loads((out / f"causal_{name}.json").read_text())
        assert data["direction"]["source"] == "difference_of_means"  # no probes were trained in this run
        for effect in data["effects"].values():
            if effect["n_prompts"]:
                assert effect["null"]["n_directions"] >= 10
                assert len(effect["per_prompt"]) == effect["n_prompts"]
    steering = json.loads((out / "causal_steering.json").read_text())
    assert [d["alpha"] for d in steering["dose_response"]] == sorted(steering["alphas"])
    behaviour = steering["per_sample_steerability"]["behaviour"]
    assert behaviour["expected"] + behaviour["opposite"] + behaviour["unchanged"] == pytest.approx(1.0)
    baseline = next(c for c in steering["conditions"] if c["name"] == "baseline")
    assert baseline["rates"]["broken_rate"] == 0.0


def test_faithfulness_splices_an_sae_when_one_is_given(causal_run, planted) -> None:
    import numpy as np
    import torch

    from deception_causal.faithfulness import Faithfulness
    from deception_core.contracts.analysis import CausalContext, CausalResult
    from deception_core.model.surface import from_hf
    from deception_core.testing.fakes import EchoScenario

    results, out = causal_run
    config = RunConfig(model="planted", scenario_names=["echo"], causal=True, max_tokens=4, output=str(out),
                       components={"causal_test": {name: {"samples": 4} for name in CAUSAL_TESTS}})
    model = from_hf(planted.model, planted.tokenizer, model_id="planted", source="test")
    upstream = {name: CausalResult(name, results.causal[name]) for name in ("ablation", "steering")}
    context = CausalContext(model, None, results.dataset, None, config, {"echo": EchoScenario()}, None, out, None,
                            upstream)
    steering = json.loads((out / "causal_steering.json").read_text())
    layer = steering["direction"]["layer"]
    shrink = torch.eye(64) * 0.5  # a lossy "SAE": halves every state

    result = Faithfulness(sae=(lambda x: x @ shrink, layer)).run(context)
    jsonschema.validate(result, load_schema())
    assert result["sources"] == {"ablation": "the ablation test of this run", "steering": "the steering test of this run"}
    sae = result["sae_reconstruction"]
    assert sae["status"] == "ok"
    assert sae["layer"] == layer
    assert sae["n_prompts"] >= 1
    assert abs(sae["loss_change_with_error"]["mean"]) < 1e-3
    assert sae["loss_change_without_error"]["null"]["n_directions"] >= 10
    auroc = sae["probe_auroc"]
    # a linear probe's ranking survives halving the state only up to its bias; both AUROCs are computed
    assert auroc is not None
    assert 0.0 <= auroc["original"] <= 1.0
    assert 0.0 <= auroc["reconstructed"] <= 1.0
    assert np.isfinite(sae["clean_loss"])
    assert "SAE splice" in result["summary"]
    assert Faithfulness().run(context)["sae_reconstruction"]["status"] == "not_run"
    # the ablation and steering files of this run lie in ``out``: without results passed in, nothing is read
    alone = Faithfulness().run(attrs.evolve(context, results={}))
    assert alone["status"] == "not_computable"
    assert "ablation and steering" in alone["reason"]


def test_run_log_times_the_play_and_causal_stages(causal_run) -> None:
    results, out = causal_run
    log = (out / "run.log").read_text()
    assert [f"{stage} stage: " in log for stage in ("play", "causal")] == [True, True]


def test_the_stage_times_are_in_the_results(causal_run) -> None:
    results, _ = causal_run
    assert sorted(results.stage_seconds) == ["causal", "play"]


@pytest.mark.parametrize("test", ["ablation", "steering"])
def test_ablation_and_steering_record_their_units_and_random_controls(causal_run, test) -> None:
    results, _ = causal_run
    record = results.causal[test]
    assert (record["units"]["steering_unit"]["name"], record["units"]["ablation"]["name"],
            isinstance(record["random_controls"]["fluent"], bool)) == ("spread", "mean", True)


def test_ablation_reports_its_random_controls_per_scope(causal_run) -> None:
    results, _ = causal_run
    controls = results.causal["ablation"]["random_controls"]
    assert (controls["scope"], sorted(controls["by_scope"])) == ("layer", ["later_layers", "layer"])


def test_the_headlines_give_the_share_of_random_controls_broken(causal_run) -> None:
    results, _ = causal_run
    assert ["random controls broke" in results.causal[t]["summary"] for t in ("ablation", "steering")] == [True, True]
