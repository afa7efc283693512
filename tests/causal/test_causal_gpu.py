"""The causal building blocks and a whole ``--causal`` run on a CUDA device (bfloat16 weights)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from causal_planted import LAYER, TARGET, TRIGGER, build_planted

pytestmark = pytest.mark.gpu

PROMPT = [10, 20, 30, 40]


@pytest.fixture(scope="module")
def cuda_planted():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    planted = build_planted()
    cpu = build_planted()
    planted.model.to("cuda")
    return planted, cpu


def test_measures_on_cuda_match_cpu(cuda_planted) -> None:
    from deception_causal.measures import ablation_change, steering_curve

    planted, cpu = cuda_planted
    alphas = [-1.0, 0.0, 1.0]
    on_gpu = steering_curve(planted.model, PROMPT, [TARGET], LAYER, planted.causal, 1.0, alphas)
    on_cpu = steering_curve(cpu.model, PROMPT, [TARGET], LAYER, cpu.causal, 1.0, alphas)
    np.testing.assert_allclose(on_gpu, on_cpu, atol=2e-2)
    assert np.all(np.diff(on_gpu) > 0)
    drop = ablation_change(planted.model, PROMPT[:-1] + [TRIGGER], [TARGET], [LAYER], planted.causal[None])
    assert drop[0] < -4.0


def test_a_causal_run_on_cuda_in_bfloat16(cuda_planted, tmp_path) -> None:
    from deception_causal.options import CAUSAL_TESTS
    from deception_core import InterpretabilityRunner, RunConfig
    from deception_core.plugins import build_plugin_set
    from deception_core.testing.fakes import FakePlugin

    planted, _ = cuda_planted
    model_dir = tmp_path / "model"
    planted.model.to("cpu").save_pretrained(model_dir)
    planted.tokenizer.save_pretrained(model_dir)
    planted.model.to("cuda")
    config = RunConfig(model=str(model_dir), device="cuda", dtype="bfloat16", scenario_names=["echo"],
                       evaluator="echo-judge", trials=5, max_rounds=1, max_tokens=4, causal=True,
                       analyze=False, layers="1,2", output=str(tmp_path / "out"),
                       components={"causal_test": {name: {"samples": 4} for name in CAUSAL_TESTS}})
    results = InterpretabilityRunner(config, plugins=build_plugin_set(extra_plugins={"fake": FakePlugin()})).run()
    for name in ("patching", "ablation", "steering", "faithfulness"):
        data = json.loads((tmp_path / "out" / f"causal_{name}.json").read_text())
        assert data["status"] == "ok", data.get("reason")
        assert results.causal[name]["summary"] == data["summary"]
    assert (tmp_path / "out" / "causal_dose_response.png").is_file()
