"""Known answer: a model whose residual stream carries a planted constant channel ten times larger than
everything else, as real models carry outlier ("massive") channels.

Under the toolkit's units (steering in multiples of the activations' spread, ablation about the dataset
mean) the norm-matched random controls leave that model fluent, and the planted behavioural direction
steers and ablates the behaviour beyond every random direction. Under the old units (multiples of the
residual norm, projection about zero) the same test collapses: the random controls break the model at
every scale tried, so no effect can be read. The second half keeps the first from passing by accident.
"""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from causal_planted import LAYER, TRIGGER, build_planted
from test_causal_planted_pipeline import make_context

from deception_causal.ablation import DirectionalAblation
from deception_causal.common import CausalSettings
from deception_causal.steering import Steering
from deception_causal.usable import spread, typical_norm

DIM = 5
NEUTRAL = [[10, 20, 30, 40], [11, 21, 31, 41, 51], [12, 22, 32], [13, 23, 33, 43], [14, 24, 34, 44, 54],
           [15, 25, 35, 45]]
PROMPTS = [*NEUTRAL, [16, 26, 36, TRIGGER], [17, 27, 37, 47, TRIGGER]]  # deception is rare, as in real games
NEW = CausalSettings(alphas=(-4.0, 0.0, 4.0), n_random=20, n_random_forward=20, batch_size=32, ablate_all_layers=False,
                     samples=4)
OLD = attrs.evolve(NEW, steering_unit="residual_norm", ablation="zero")


@pytest.fixture(scope="module")
def outlier():
    """The planted model with a constant channel in dimension ``DIM`` of the residual stream after block
    ``LAYER`` (the steered layer), ten times the norm of the rest; the next block writes it away again, as the
    model's own later computation would depend on it."""
    planted = build_planted(seed=0)
    blocks = planted.model.model.layers
    rest = float(np.median([np.linalg.norm(make_context(planted, planted.causal, None, prompts=PROMPTS)
                                           .dataset.matrix(LAYER, "last_prompt"), axis=1)]))
    channel = torch.zeros(planted.model.config.hidden_size)
    channel[DIM] = 10.0 * rest

    def add(_module, _args, output):
        return (output[0] + channel, *output[1:]) if isinstance(output, tuple) else output + channel

    def remove(_module, _args, output):
        return (output[0] - channel, *output[1:]) if isinstance(output, tuple) else output - channel

    blocks[LAYER].register_forward_hook(add)
    blocks[LAYER + 1].register_forward_hook(remove)
    return planted


@pytest.fixture(scope="module")
def context(outlier, tmp_path_factory):
    return make_context(outlier, outlier.causal, tmp_path_factory.mktemp("outlier"), prompts=PROMPTS)


def test_the_constant_channel_dominates_the_norm_but_not_the_spread(context):
    direction = context.direction
    assert typical_norm(context.dataset, direction) > 8 * spread(context.dataset, direction)


@pytest.fixture(scope="module")
def new_units(context):
    return {"steering": Steering(NEW).run(context), "ablation": DirectionalAblation(NEW).run(context)}


@pytest.fixture(scope="module")
def old_units(context):
    return {"steering": Steering(OLD).run(context), "ablation": DirectionalAblation(OLD).run(context)}


@pytest.mark.parametrize("test", ["steering", "ablation"])
def test_new_units_random_controls_stay_fluent(new_units, test):
    assert new_units[test]["random_controls"]["broken_share"] <= NEW.max_random_broken


@pytest.mark.parametrize("test", ["steering", "ablation"])
def test_new_units_the_selection_finds_the_random_controls_fluent(new_units, test):
    assert new_units[test]["direction_selection"]["random_controls_fluent"] is True


def test_new_units_the_planted_direction_steers_beyond_every_random_direction(new_units):
    effect = new_units["steering"]["effects"]["deception_rate_difference"]
    assert effect["value"] > 0.5
    assert effect["value"] > effect["null"]["abs_max"]
    assert effect["p_value_rank"] < 0.05


def test_new_units_ablating_the_planted_direction_lowers_deceptive_replies_beyond_every_random_direction(new_units):
    """Mean ablation sets every prompt's component along the direction to the dataset's mean; the two trigger
    prompts' deceptive replies lose probability (the planted model still says the token at that mean, so
    the teacher-forced log-probability, not the generated label, is the measure that moves)."""
    effect = new_units["ablation"]["effects"]["reply_logprob_change_layer"]
    assert effect["value"] < -0.2
    assert abs(effect["value"]) > effect["null"]["abs_max"]
    assert effect["p_value_rank"] < 0.05


def test_new_units_are_recorded(new_units):
    units = new_units["steering"]["units"]
    assert (units["steering_unit"]["name"], units["ablation"]["name"]) == ("spread", "mean")


def test_the_ablation_record_says_mean_ablation(new_units):
    assert new_units["ablation"]["method"].startswith("x - ((x - mu).u)u")


@pytest.mark.parametrize("test", ["steering", "ablation"])
def test_old_units_collapse_every_random_control_breaks_the_model(old_units, test):
    assert old_units[test]["reason"].startswith("not testable")


@pytest.mark.parametrize("test", ["steering", "ablation"])
def test_old_units_report_no_effect(old_units, test):
    assert "effects" not in old_units[test]


@pytest.fixture(scope="module")
def all_sites(context):
    return Steering(attrs.evolve(NEW, edit_sites="all")).run(context)


def test_the_edit_sites_are_recorded(new_units, all_sites):
    assert (new_units["steering"]["units"]["edit_sites"]["name"], all_sites["units"]["edit_sites"]["name"]) == \
        ("reply", "all")


def test_editing_every_site_also_steers_beyond_every_random_direction(all_sites):
    effect = all_sites["effects"]["deception_rate_difference"]
    assert effect["value"] > effect["null"]["abs_max"]
    assert effect["p_value_rank"] < 0.05
