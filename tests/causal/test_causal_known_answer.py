"""Known-answer tests on a model with a planted causal direction and a readable but inert decoy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from causal_planted import DECOY, LAYER, TARGET, TRIGGER

from deception_causal.interventions import RowEdit
from deception_causal.measures import (
    ablation_change,
    patch_deltas,
    patched_reply_logprob,
    prompt_states,
    reply_logprob_rows,
    steering_curve,
)
from deception_causal.stats import compare_with_null, random_unit_directions

ALPHAS = [-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0]
NEUTRAL = [[10, 20, 30, 40], [11, 21, 31, 41, 51], [12, 22, 32], [13, 23, 33, 43, 53, 63], [14, 24, 34, 44]]


def two_point_slopes(planted, units, scale):
    """``[n_units, n_prompts]``: (log p(TARGET) at alpha=+1 minus at alpha=-1) / 2, one batched pass per prompt."""
    units = np.atleast_2d(units)
    adds = np.concatenate([units * scale, -units * scale])
    per_prompt = [reply_logprob_rows(planted.model, p, [TARGET], [LAYER], add=adds) for p in NEUTRAL]
    values = np.stack(per_prompt, axis=1)  # [2 * n_units, n_prompts]
    return (values[: len(units)] - values[len(units):]) / 2


@pytest.fixture(scope="module")
def scale(planted):
    return float(prompt_states(planted.model, NEUTRAL[0], LAYER).norm(dim=-1).median())


def test_steering_along_the_planted_direction_is_monotonic(planted, scale) -> None:
    curve = steering_curve(planted.model, NEUTRAL[0], [TARGET], LAYER, planted.causal, scale, ALPHAS)
    assert np.all(np.diff(curve) > 0.3)
    assert curve[-1] - curve[0] > 8.0  # from ~e^-12 to ~e^-1


def test_random_and_decoy_directions_do_not_steer(planted, scale) -> None:
    randoms = random_unit_directions(64, 10, seed=3, avoid=planted.causal)
    slopes = two_point_slopes(planted, np.vstack([planted.causal, planted.decoy, randoms]), scale)
    effect, decoy_effect, null = slopes[0], slopes[1], slopes[2:]
    result = compare_with_null(effect, null, name="slope", unit="nats", expected_sign=1)
    assert result["value"] > 4.0
    assert result["ci_low"] > 3.0
    assert result["p_value_rank"] == pytest.approx(1 / 11)  # beyond every random direction
    assert result["p_value_z"] < 1e-6
    assert result["null"]["abs_max"] < 0.5
    decoy = compare_with_null(decoy_effect, null, name="decoy", unit="nats")
    assert abs(decoy["value"]) < 0.5
    assert decoy["p_value_rank"] > 0.2
    assert abs(decoy["z"]) < 3


def test_ablation_removes_the_planted_effect_and_only_it(planted) -> None:
    prompts = [p[:-1] + [TRIGGER] for p in NEUTRAL]
    randoms = random_unit_directions(64, 10, seed=4, avoid=planted.causal)
    changes = np.stack([ablation_change(planted.model, p, [TARGET], [LAYER], np.vstack([planted.causal, planted.decoy,
                                                                                       randoms])) for p in prompts])
    assert np.all(changes[:, 0] < -4.0)  # ablating u removes the trigger's effect
    assert np.all(np.abs(changes[:, 1:]) < 0.05)  # decoy and random ablations do nothing
    result = compare_with_null(changes[:, 0], changes[:, 2:].T, name="ablation", unit="nats", expected_sign=-1)
    assert result["p_value_rank"] == pytest.approx(1 / 11)
    assert result["p_value_z"] < 1e-6
    # nothing to remove where the direction is off
    off = ablation_change(planted.model, NEUTRAL[0], [TARGET], [LAYER], planted.causal[None])
    assert abs(off[0]) < 0.05


def test_patching_transfers_the_planted_effect(planted) -> None:
    randoms = random_unit_directions(64, 10, seed=5, avoid=planted.causal)
    gains, nulls, gaps, decoy_gains, decoy_nulls = [], [], [], [], []
    for target in NEUTRAL:
        source = target[:-1] + [TRIGGER]
        h_s, h_t = prompt_states(planted.model, source, LAYER), prompt_states(planted.model, target, LAYER)
        deltas = patch_deltas(h_s, h_t, planted.causal, randoms)
        values = patched_reply_logprob(planted.model, target, [TARGET], LAYER,
                                       torch.cat([deltas["direction"][None], deltas["full"][None], deltas["random"]]))
        clean_source = reply_logprob_rows(planted.model, source, [TARGET], [LAYER], add=np.zeros((1, 64)))[0]
        gains.append(values[1] - values[0])
        nulls.append(values[3:] - values[0])
        gaps.append(clean_source - values[0])
        assert values[2] == pytest.approx(clean_source, abs=1e-4)  # a full patch reproduces the source run
        decoy_source = target[:-1] + [DECOY]
        h_d = prompt_states(planted.model, decoy_source, LAYER)
        decoy = patch_deltas(h_d, h_t, planted.decoy, randoms)
        decoy_values = patched_reply_logprob(planted.model, target, [TARGET], LAYER,
                                             torch.cat([decoy["direction"][None], decoy["random"]]))
        decoy_gains.append(decoy_values[1] - decoy_values[0])
        decoy_nulls.append(decoy_values[2:] - decoy_values[0])
    gains, gaps = np.array(gains), np.array(gaps)
    assert gains.mean() / gaps.mean() > 0.8  # the direction carries most of the effect (NIE)
    result = compare_with_null(gains, np.array(nulls).T, name="patch", unit="nats", expected_sign=1)
    assert result["p_value_rank"] == pytest.approx(1 / 11)
    assert result["value"] > 3 * result["null"]["abs_max"]
    # a readable but unused direction moves the token no more than a random change of the same norm
    decoy = compare_with_null(np.array(decoy_gains), np.array(decoy_nulls).T, name="decoy", unit="nats")
    assert decoy["p_value_rank"] > 0.2
    assert abs(decoy["z"]) < 3
    assert decoy["value"] < 0.3 * result["value"]


def test_projection_removes_only_the_component_and_never_zeroes() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 8)
    u = torch.zeros(2, 8)
    u[0, 3] = 1.0  # row 1 has no direction: untouched
    out = RowEdit(project=u)(hidden, 0)
    assert torch.allclose(out[0, 1:, 3], torch.zeros(4))
    assert torch.equal(out[0, 0], hidden[0, 0])  # the first position (attention sink) is left alone
    keep = [i for i in range(8) if i != 3]
    assert torch.allclose(out[0][:, keep], hidden[0][:, keep])
    assert torch.equal(out[1], hidden[1])
    added = RowEdit(add=torch.ones(2, 8))(hidden, 7)  # a decoding step: no first position in it
    assert torch.allclose(added - hidden, torch.ones_like(hidden))
    left_padded = RowEdit(add=torch.ones(2, 8), first=(2, 0))(hidden, 0)
    assert torch.equal(left_padded[0, 2], hidden[0, 2])
    assert torch.allclose(left_padded[0, 3] - hidden[0, 3], torch.ones(8))


def test_steering_during_generation_changes_the_generated_token(planted) -> None:
    from deception_core.capture.hf import HFCaptureBackend
    from deception_core.contracts.capture import CaptureSpec, GenerationRequest, Sampling
    from deception_core.model.intervention import Intervention
    from deception_core.model.surface import from_hf

    loaded = from_hf(planted.model, planted.tokenizer, model_id="planted", source="test")
    backend = HFCaptureBackend(loaded, CaptureSpec(layers=(LAYER,)))
    requests = [GenerationRequest(tuple(p), 3, seed=i, capture=False) for i, p in enumerate(NEUTRAL)]
    scale = 1.0

    def steer(vector):
        v = torch.as_tensor(vector, dtype=torch.float32)
        return [Intervention(LAYER, lambda h, step: h + 3.0 * scale * v)]

    plain = backend.generate(requests, Sampling(temperature=0.0))
    toward = backend.generate(requests, Sampling(temperature=0.0), steer(planted.causal))
    away = backend.generate(requests, Sampling(temperature=0.0), steer(-planted.causal))
    randoms = random_unit_directions(64, 10, seed=6, avoid=planted.causal)
    assert all(r.reply_ids[0] == planted.three for r in plain)
    assert all(r.reply_ids[0] == TARGET for r in toward)
    assert all(r.reply_ids[0] != TARGET for r in away)
    for r in randoms:
        assert all(res.reply_ids[:1] != (TARGET,) for res in backend.generate(requests, Sampling(temperature=0.0), steer(r)))


def test_sae_splice_known_answer(planted) -> None:
    """An "SAE" that reconstructs everything but the planted direction: without the error term it
    loses the planted effect (loss up on trigger prompts, beyond norm-matched random changes); with
    the error term the clean loss comes back exactly."""
    from deception_causal.sae_splice import splice_losses

    u = torch.as_tensor(planted.causal, dtype=torch.float32)

    def reconstruct(x):
        return x - (x @ u)[..., None] * u

    randoms = random_unit_directions(64, 10, seed=8, avoid=planted.causal)
    effect, null = [], []
    for prompt in NEUTRAL:
        losses = splice_losses(planted.model, prompt[:-1] + [TRIGGER], [TARGET], LAYER, reconstruct, randoms)
        assert losses["with_error"] == pytest.approx(losses["clean"], abs=1e-4)
        effect.append(losses["without_error"] - losses["clean"])
        null.append(losses["random"] - losses["clean"])
    result = compare_with_null(np.array(effect), np.array(null).T, name="sae", unit="nats", expected_sign=1)
    assert result["value"] > 4.0
    assert result["p_value_rank"] == pytest.approx(1 / 11)


def test_patching_never_moves_the_first_position_of_either_prompt() -> None:
    """The beginning-of-sequence state is an attention sink: end alignment of prompts of different
    lengths must not pair it with an ordinary token, so it is left out of every patch."""
    torch.manual_seed(1)
    source, target = torch.randn(7, 8), torch.randn(4, 8)
    source[0] = target[0] = 1000.0  # a massive activation at the sink, as in Gemma
    unit = np.eye(8)[0]
    randoms = random_unit_directions(8, 3, seed=0, avoid=unit)
    for longer, shorter in ((source, target), (target, source)):
        deltas = patch_deltas(longer, shorter, unit, randoms)
        assert deltas["full"].shape == (3, 8)  # the last three positions, not four
        assert torch.allclose(deltas["full"], (longer[-3:] - shorter[-3:]).float())
        assert deltas["direction"].abs().max() < 10
        assert deltas["random"].abs().max() < 10
    empty = patch_deltas(torch.randn(1, 8), torch.randn(5, 8), unit, randoms)
    assert empty["full"].shape == (0, 8)
    assert empty["random"].shape == (3, 0, 8)
