"""Where the causal tests' direction came from is said in every headline, result and plot title: with no
labelled sample the tests fall back to a difference of means between conditions, which is not the probe."""

from __future__ import annotations

import attrs
import pytest
from test_causal_planted_pipeline import SETTINGS, make_context

from deception_causal.ablation import DirectionalAblation
from deception_causal.steering import Steering, plot_title


@pytest.fixture(scope="module")
def unlabelled(planted, tmp_path_factory):
    """The planted context with every reply ambiguous, HIGH and LOW incentive alternating, and no probe direction."""
    context = make_context(planted, planted.causal, tmp_path_factory.mktemp("unlabelled"))
    conditions = ["high_incentive", "low_incentive"]
    samples = [attrs.evolve(s, label="ambiguous", condition=conditions[i % 2])
               for i, s in enumerate(context.dataset.samples)]
    return attrs.evolve(context, direction=None, dataset=attrs.evolve(context.dataset, samples=samples))


@pytest.fixture(scope="module")
def results(unlabelled):
    return {"steering": Steering(SETTINGS).run(unlabelled), "ablation": DirectionalAblation(SETTINGS).run(unlabelled)}


@pytest.mark.parametrize("test", ["steering", "ablation"])
def test_the_result_records_the_condition_difference_of_means(results, test):
    assert results[test]["direction"]["source"] == "condition_difference_of_means"


@pytest.mark.parametrize("test", ["steering", "ablation"])
def test_the_result_says_where_the_direction_came_from(results, test):
    assert results[test]["direction_origin"].startswith("condition difference of means (no labelled samples)")


@pytest.mark.parametrize("test", ["steering", "ablation"])
def test_the_headline_names_the_condition_difference_of_means(results, test):
    assert "condition difference of means" in results[test]["summary"]


@pytest.mark.parametrize("test", ["steering", "ablation"])
def test_the_headline_does_not_say_probe_direction(results, test):
    assert "probe direction" not in results[test]["summary"]


def test_the_plot_title_names_the_condition_difference_of_means(results):
    assert plot_title(results["steering"]).startswith("steering along the condition difference of means")


def test_a_probe_direction_is_called_one():
    result = {"direction_origin_short": "probe direction", "direction": {"layer": 1}, "prompts": {"n_used": 4}}
    assert plot_title(result) == "steering along the probe direction at layer 1 (4 prompts)"
