"""Known answer: a direction aligned with a massive-activation dimension, at a layer whose residual norm that
dimension dominates. Norm-matched random directions at that scale break the model, so a large "effect" there
is damage; the causal tests move to the next ranked read-out, or say "not testable", instead of reporting it."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
import torch
from causal_planted import LAYER, build_planted
from test_causal_planted_pipeline import SETTINGS as PIPELINE_SETTINGS
from test_causal_planted_pipeline import make_context

from deception_causal.ablation import DirectionalAblation
from deception_causal.steering import Steering
from deception_causal.usable import broken_fraction
from deception_core.base.records import ProbeDirection

MASSIVE, DIM = 400.0, 7
# the selection's mechanics under the units that break such a layer: multiples of the residual norm and ablation
# about zero (under the spread and mean ablation the massive layer is usable, see test_causal_units)
SETTINGS = attrs.evolve(PIPELINE_SETTINGS, steering_unit="residual_norm", ablation="zero", scale_factors=(1.0, 0.5, 0.25))
EARLY = LAYER - 1  # the block that writes the massive activation; block LAYER removes it again


@pytest.fixture(scope="module")
def massive():
    """The planted model, plus a massive activation (400) in dimension ``DIM`` at every position of the
    residual stream after block ``EARLY``, which block ``LAYER`` writes away again (as real models carry
    and then drop their massive activations). Between the two, the residual norm is about 400."""
    planted = build_planted(seed=0)
    blocks = planted.model.model.layers
    boost = torch.zeros(planted.model.config.hidden_size)
    boost[DIM] = MASSIVE

    def add(_module, _args, output):
        return (output[0] + boost, *output[1:]) if isinstance(output, tuple) else output + boost

    def remove(_module, _args, output):
        return (output[0] - boost, *output[1:]) if isinstance(output, tuple) else output - boost

    blocks[EARLY].register_forward_hook(add)
    blocks[LAYER].register_forward_hook(remove)
    return planted


def _context(massive, tmp_path, alternatives):
    context = make_context(massive, massive.causal, tmp_path, layers=(EARLY, LAYER))
    sink = np.zeros(massive.causal.shape[0])
    sink[DIM] = 1.0
    chosen = ProbeDirection(EARLY, "last_prompt", sink, 0.0, "probe", {"method": "mass_mean", "rank": 0})
    return attrs.evolve(context, direction=chosen, alternatives=alternatives)


def _planted_alternative(massive):
    return (ProbeDirection(LAYER, "last_prompt", massive.causal, 0.0, "probe", {"method": "mass_mean", "rank": 1}),)


def _broken(massive, layer: int, factor: float) -> dict[str, float]:
    """Broken fractions under 10 random directions at ``factor`` x the steering strength (max alpha x norm)."""
    from deception_causal.common import stored_reply
    from deception_causal.stats import random_unit_directions

    dataset = make_context(massive, massive.causal, None, layers=(EARLY, LAYER)).dataset
    norm = float(np.median(np.linalg.norm(dataset.matrix(layer, "last_prompt"), axis=1)))
    checks = [(dataset.prompt_ids(r), stored_reply(dataset, r, massive.tokenizer)) for r in range(len(dataset))]
    strength = max(SETTINGS.alphas) * norm * factor
    return broken_fraction(massive.model, checks, layer, random_unit_directions(64, 10, seed=0), strength, 4.0)


def test_random_directions_added_at_the_massive_layer_break_the_model(massive):
    assert _broken(massive, EARLY, min(SETTINGS.scale_factors))["steering"] == 1.0


def test_random_directions_projected_out_at_the_massive_layer_break_the_model(massive):
    assert _broken(massive, EARLY, 1.0)["ablation"] == 1.0


def test_random_directions_at_the_next_layer_at_half_scale_leave_it_fluent(massive):
    assert max(_broken(massive, LAYER, 0.5).values()) <= SETTINGS.max_random_broken


@pytest.fixture(scope="module")
def moved(massive, tmp_path_factory):
    context = _context(massive, tmp_path_factory.mktemp("moved"), _planted_alternative(massive))
    return Steering(SETTINGS).run(context)


def test_steering_moves_off_the_massive_direction(moved):
    assert moved["direction"]["layer"] == LAYER


def test_the_move_and_its_reason_are_recorded(moved):
    selection = moved["direction_selection"]
    assert selection["status"] == "moved off the chosen direction"
    assert [t["steering_usable"] for t in selection["tried"] if t["layer"] == EARLY] == [False]


def test_the_move_takes_the_largest_scale_whose_controls_stay_fluent(moved):
    assert moved["scale"]["factor"] == 0.5  # at full scale (+-2 x norm) random directions broke 91% of replies


def test_the_planted_effect_is_still_found_after_the_move(moved):
    effect = moved["effects"]["deception_rate_difference"]
    assert effect["value"] > 0


@pytest.fixture(scope="module", params=[Steering, DirectionalAblation])
def alone(request, massive, tmp_path_factory):
    return request.param(SETTINGS).run(_context(massive, tmp_path_factory.mktemp("alone"), ()))


def test_without_an_alternative_the_tests_say_not_testable(alone):
    assert alone["reason"].startswith("not testable")


def test_without_an_alternative_no_effect_is_reported(alone):
    assert "effects" not in alone


def test_not_testable_records_every_rejected_candidate(alone):
    test = alone["test"]
    assert [(t["layer"], t[f"{test}_usable"]) for t in alone["direction_selection"]["tried"]] == [(EARLY, False)]


def test_the_selection_records_are_schema_valid(moved, alone):
    import jsonschema

    from deception_causal import load_schema

    validator = jsonschema.Draft202012Validator(load_schema())
    assert [e.message for r in (moved, alone) for e in validator.iter_errors(r)] == []


@pytest.fixture(scope="module")
def split(massive, tmp_path_factory):
    """Steering in units of the spread, ablation about zero, at the massive layer with no alternative: the
    steering controls stay fluent at some scale, the ablation controls break. Counts the selections run."""
    import deception_causal.usable as usable

    settings = attrs.evolve(PIPELINE_SETTINGS, ablation="zero")
    context = _context(massive, tmp_path_factory.mktemp("split"), ())
    calls = []
    original = usable.choose_direction

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    usable.choose_direction = counted
    try:
        results = {"ablation": DirectionalAblation(settings).run(context), "steering": Steering(settings).run(context)}
    finally:
        usable.choose_direction = original
    return results, len(calls)


def test_one_selection_serves_ablation_and_steering(split):
    assert split[1] == 1


def test_steering_answers_where_random_ablation_breaks_the_model(split):
    assert split[0]["steering"]["status"] == "ok"


def test_ablation_alone_is_not_testable(split):
    assert split[0]["ablation"]["reason"].startswith("not testable")


def test_each_test_records_whether_its_random_controls_were_fluent(split):
    results = split[0]
    assert [results[t]["direction_selection"]["random_controls_fluent"] for t in ("steering", "ablation")] == [True, False]
