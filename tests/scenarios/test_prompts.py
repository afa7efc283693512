"""Prompts: HIGH and LOW differ only in the incentive, with matched lengths; instructed variants are
filled in; emergent prompts carry no deception vocabulary; facts are seeded."""

from __future__ import annotations

import json
import random
import re

import pytest
from scenario_helpers import make_scenario, play, start

from deception_core.base.types import Condition
from deception_core.model.prompting import plain_transcript
from deception_core.testing.tiny_models import tiny_tokenizer
from deception_scenarios.prompts import FORBIDDEN_WORDS, forbidden_words_in

TOKENIZER = tiny_tokenizer()  # nearly one token per character: a strict length check


def first_act_prompt(name: str, condition: Condition, seed: int) -> str:
    _, _, game = start(name, condition, seed=seed, theory_of_mind=False)
    (request,) = game.pending()
    assert request.caller == "negotiator.act"
    return plain_transcript(request.messages)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_high_and_low_differ_only_in_the_incentive(scenario_name: str, seed: int) -> None:
    scenario = make_scenario(scenario_name)
    facts = scenario.sample_facts(random.Random(seed))
    high = first_act_prompt(scenario_name, Condition.HIGH_INCENTIVE, seed)
    low = first_act_prompt(scenario_name, Condition.LOW_INCENTIVE, seed)
    high_sentence, low_sentence = scenario.incentive(facts, True), scenario.incentive(facts, False)
    assert high_sentence in high
    assert low_sentence in low
    assert high != low
    assert high.replace(high_sentence, "<INCENTIVE>") == low.replace(low_sentence, "<INCENTIVE>")
    n_high, n_low = (len(TOKENIZER(p)["input_ids"]) for p in (high, low))
    assert abs(n_high - n_low) <= 4, (n_high, n_low)
    assert abs(len(high.split()) - len(low.split())) <= 1


def test_instructed_variants_are_filled_in(scenario_name: str) -> None:
    scenario = make_scenario(scenario_name)
    facts = scenario.sample_facts(random.Random(5))
    deceive = first_act_prompt(scenario_name, Condition.DECEPTIVE_INSTRUCTION, 5)
    honest = first_act_prompt(scenario_name, Condition.HONEST_INSTRUCTION, 5)
    for prompt in (deceive, honest):
        assert not re.search(r"[{}]", prompt), "an unformatted placeholder is left"
        assert "Instruction:" in prompt
    assert re.search(r"\blie\b", deceive)
    assert re.search(r"\bhonest\b", honest)
    # the same game otherwise: the setting (with the facts) is shared by every condition
    setting = scenario.setting(facts)
    assert setting in deceive
    assert setting in honest
    assert setting in first_act_prompt(scenario_name, Condition.HIGH_INCENTIVE, 5)
    for deceive_flag in (True, False):
        instruction = scenario.instruction(facts, deceive_flag)
        numbers = set(re.findall(r"\d+", instruction))
        assert numbers <= set(re.findall(r"\d+", json.dumps(facts)))  # every number comes from these facts
    assert any(str(v) in scenario.instruction(facts, True) for v in _leaves(facts))


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    else:
        yield value


@pytest.mark.parametrize("counterpart", ["llm", "scripted"])
@pytest.mark.parametrize("condition", [Condition.HIGH_INCENTIVE, Condition.LOW_INCENTIVE])
def test_emergent_prompts_have_no_deception_vocabulary(scenario_name, counterpart, condition) -> None:
    _, _, game = start(scenario_name, condition, counterpart, max_rounds=2, self_report=True)
    requests = play(game, lambda r: "Let us see.")
    assert {r.caller for r in requests} >= {"negotiator.act", "negotiator.theory_of_mind", "negotiator.self_report"}
    for request in requests:
        text = plain_transcript(request.messages)
        assert forbidden_words_in(text) == [], (request.caller, forbidden_words_in(text))


def test_forbidden_word_check_catches_betray() -> None:
    assert "betray" in FORBIDDEN_WORDS
    assert forbidden_words_in("Betray B and side with me") == ["betray"]
    assert forbidden_words_in("an honest-looking bluff") == ["bluff", "honest"]
    assert forbidden_words_in("the outlier replied") == []  # whole words only


def test_facts_are_seeded_and_serialisable(scenario_name: str) -> None:
    scenario = make_scenario(scenario_name)
    first = scenario.sample_facts(random.Random(11))
    assert first == scenario.sample_facts(random.Random(11))
    assert json.loads(json.dumps(first)) == first
    draws = {json.dumps(scenario.sample_facts(random.Random(s)), sort_keys=True) for s in range(20)}
    assert len(draws) > 5


def test_judge_sees_the_facts(scenario_name: str) -> None:
    scenario = make_scenario(scenario_name)
    facts = scenario.sample_facts(random.Random(2))
    described = scenario.describe_facts(facts)
    key_numbers = [str(v) for v in facts.values() if isinstance(v, int)]
    assert all(n in described for n in key_numbers[:1])
    assert scenario.judge_question(facts).endswith("?")
