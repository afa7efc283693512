"""Placing a model over several GPUs (Accelerate's device_map), tested on CPU.

The planner builds the model on the meta device and is given made-up free-memory sizes, so the
split it would make on a multi-GPU pod is checked here without a GPU. Loading through a
device_map (every module placed by name, with Accelerate's hooks) must capture and steer exactly
as the plain model does.
"""

from __future__ import annotations

import pytest
import torch

from deception_core.base.errors import UsageError
from deception_core.capture.hf import HFCaptureBackend
from deception_core.contracts.capture import CaptureSpec, GenerationRequest, Sampling
from deception_core.model.intervention import Intervention
from deception_core.model.placement import WEIGHT_SHARE, plan_device_map, weight_bytes
from deception_core.model.spec import ModelSpec
from deception_core.model.surface import load_model
from deception_core.testing.tiny_models import tiny_hf_model


@pytest.fixture(scope="module")
def config_and_size():
    model = tiny_hf_model("llama", n_layers=8)
    return model.config, weight_bytes(model)


def _free_for(share_of_model: float, size: int) -> int:
    """Free memory such that the weight budget of one GPU is ``share_of_model`` of the weights."""
    return int(share_of_model * size / WEIGHT_SHARE)


def test_device_map_not_used_when_the_model_fits_on_the_first_gpu(config_and_size) -> None:
    config, size = config_and_size
    assert plan_device_map(config, torch.float32, [_free_for(1.5, size), _free_for(1.5, size)]) is None


def test_device_map_splits_decoder_layers_over_two_gpus_in_order(config_and_size) -> None:
    config, size = config_and_size
    plan = plan_device_map(config, torch.float32, [_free_for(0.7, size), _free_for(0.7, size)])
    assert set(plan.values()) == {0, 1}
    layers = [plan[f"model.layers.{i}"] for i in range(8)]
    assert layers == sorted(layers)  # consecutive layers: GPU 0 first, then GPU 1
    assert plan["model.embed_tokens"] == 0


def test_device_map_over_four_gpus_uses_them_all(config_and_size) -> None:
    config, size = config_and_size
    plan = plan_device_map(config, torch.float32, [_free_for(0.4, size)] * 4)
    assert set(plan.values()) == {0, 1, 2, 3}


def test_device_map_refuses_a_model_larger_than_all_gpus(config_and_size) -> None:
    config, size = config_and_size
    with pytest.raises(UsageError, match="do not fit"):
        plan_device_map(config, torch.float32, [_free_for(0.3, size), _free_for(0.3, size)])


def test_device_map_refuses_a_single_gpu_too_small(config_and_size) -> None:
    config, size = config_and_size
    with pytest.raises(UsageError, match="1 GPU"):
        plan_device_map(config, torch.float32, [_free_for(0.5, size)])


def test_device_map_loading_captures_and_steers_like_the_whole_model(tiny_model_dir) -> None:
    spec = ModelSpec.parse(str(tiny_model_dir))
    whole = load_model(spec, device="cpu", dtype="float32")
    names = ["model.embed_tokens", *(f"model.layers.{i}" for i in range(whole.n_layers)), "model.norm",
             "model.rotary_emb", "lm_head"]
    placed = load_model(spec, device="cpu", dtype="float32", device_map=dict.fromkeys(names, "cpu"))
    prompt = tuple(whole.tokenizer("I will not go lower than sixty")["input_ids"])
    requests = [GenerationRequest(prompt, 6, seed=3), GenerationRequest(prompt[:4], 4, seed=5)]
    sampling = Sampling(temperature=0.8, top_p=0.9)
    for steer in ((), (Intervention(2, lambda hidden, step: hidden + 0.5),)):
        want = HFCaptureBackend(whole, CaptureSpec((1, 3))).generate(requests, sampling, steer)
        got = HFCaptureBackend(placed, CaptureSpec((1, 3))).generate(requests, sampling, steer)
        for a, b in zip(got, want, strict=True):
            assert a.reply_ids == b.reply_ids
            for position in b.activations:
                torch.testing.assert_close(a.activations[position], b.activations[position])
