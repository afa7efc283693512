"""Known answer: a direction aligned with a massive activation of the first token (the attention sink)
is damage when edited there; ablation and steering leave that position alone, so they do not report it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deception_causal.interventions import RowEdit, teacher_forced
from deception_causal.measures import ablation_change, reply_logprob_rows
from deception_causal.stats import compare_with_null, random_unit_directions

SINK, LAYER, DIM = 7, 1, 5
PROMPTS = [[SINK, 10, 20, 30, 40], [SINK, 11, 21, 31, 41, 51], [SINK, 12, 22, 32], [SINK, 13, 23, 33, 43, 53]]
REPLY = [60, 61, 62]


@pytest.fixture(scope="module")
def sink_model():
    """A tiny random Llama whose first token carries a massive activation (400x) in dimension ``DIM``,
    which the attention of the blocks after ``LAYER`` reads through their values (as real models lean
    on their sink): removing it there changes every later position."""
    from deception_core.testing.tiny_models import tiny_hf_model

    model = tiny_hf_model("llama", n_layers=3, d_model=64, seed=3)
    with torch.no_grad():
        model.model.embed_tokens.weight[SINK, DIM] = 400.0
        for block in model.model.layers[LAYER + 1:]:
            block.self_attn.v_proj.weight[:, DIM] += 3.0
    return model.eval()


def _units(n: int) -> np.ndarray:
    sink = np.zeros(64)
    sink[DIM] = 1.0
    return np.vstack([sink, random_unit_directions(64, n, seed=1, avoid=sink)])


def test_projecting_out_the_sink_dimension_everywhere_is_damage(sink_model):
    """The counterfactual: editing the first position too makes the sink direction's 'effect' huge."""
    units = _units(10)
    project = torch.as_tensor(np.vstack([np.zeros(64), units]), dtype=torch.float32)
    edit = RowEdit(project=project, keep_first=False)
    changes = []
    for prompt in PROMPTS:
        out = teacher_forced(sink_model, [prompt] * len(project), [REPLY] * len(project), {LAYER: edit})
        values = np.array([float(lp.mean()) for lp in out.reply_logprobs])
        changes.append(values[1:] - values[0])
    changes = np.array(changes).T  # [unit, prompt]
    result = compare_with_null(np.abs(changes[0]), np.abs(changes[1:]), name="damage", unit="nats")
    assert result["value"] > 3 * result["null"]["abs_max"]


def test_ablation_leaves_the_sink_alone_and_reports_no_effect(sink_model):
    units = _units(10)
    changes = np.array([ablation_change(sink_model, prompt, REPLY, [LAYER], units) for prompt in PROMPTS]).T
    result = compare_with_null(changes[0], changes[1:], name="ablation", unit="nats")
    assert result["p_value_rank"] > 0.05
    assert abs(result["value"]) <= result["null"]["abs_max"] * 1.5


def test_steering_leaves_the_sink_alone_and_reports_no_effect(sink_model):
    units = _units(10) * 4.0  # a norm-matched push along each direction
    base = np.array([reply_logprob_rows(sink_model, prompt, REPLY, [LAYER], add=np.zeros((1, 64)))[0]
                     for prompt in PROMPTS])
    moved = np.array([reply_logprob_rows(sink_model, prompt, REPLY, [LAYER], add=units) for prompt in PROMPTS]).T
    changes = moved - base
    result = compare_with_null(changes[0], changes[1:], name="steering", unit="nats")
    assert result["p_value_rank"] > 0.05
    assert abs(result["value"]) <= result["null"]["abs_max"] * 1.5
