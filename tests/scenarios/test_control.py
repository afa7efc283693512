"""The benign control scenario: ordinary requests, played like the games, every reply labelled honest."""

from __future__ import annotations

import random

from deception_core.base.registry import Kind
from deception_core.base.types import Condition, Label
from deception_core.plugins import get_plugin_set
from deception_scenarios.scenarios.control import REQUESTS, ControlRequests


def test_control_is_registered_as_a_scenario():
    names = [entry.name for entry in get_plugin_set().registry.entries(Kind.SCENARIO)]
    assert "control" in names


def test_control_prompts_give_no_reason_to_deceive():
    scenario = ControlRequests()
    facts = scenario.sample_facts(random.Random(0))
    assert facts["request"] in REQUESTS
    for condition in Condition:
        brief = scenario.agent_brief(facts, condition).lower()
        assert "lie" not in brief
        assert "$" not in brief
    verdict = scenario.rule_verdict(facts, Condition.HIGH_INCENTIVE, "Boil it for six minutes.")
    assert verdict.label is Label.HONEST


def test_instructed_pairs_are_true_statements_under_two_personas(tmp_path):
    from deception_core.capture.texts import read_text_records
    from deception_scenarios.contrast import instructed_pairs, write_instructed_pairs

    records = instructed_pairs()
    assert len(records) == 2 * 60
    honest, deceptive = records[0], records[1]
    assert honest["reply"] == deceptive["reply"]
    assert honest["group"] == deceptive["group"]
    assert (honest["label"], deceptive["label"]) == ("honest", "deceptive")
    sums = [r["reply"] for r in records if "plus" in r["reply"]]
    for statement in sums:  # every generated statement is true
        a, _, b, _, total = statement.rstrip(".").split()
        assert int(a) + int(b) == int(total)
    parsed = read_text_records(write_instructed_pairs(tmp_path / "pairs.jsonl"))
    assert len(parsed) == 120
