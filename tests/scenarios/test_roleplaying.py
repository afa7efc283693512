"""The on-policy role plays: single turn, the model answers in role, no rule can check the answer, so the label
policy takes the judge's verdict; the report shows the transcripts. The tiny-model run is in the default suite,
the embedded model with the local judge in the slow one."""

from __future__ import annotations

import json
import random
from html import escape
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deception_core.base.types import Condition, JudgeVerdict, Label, RuleVerdict, combine_labels
from deception_core.cli import cli
from deception_core.contracts.scenario import GameOptions, TrialSpec
from deception_core.store.dataset import read_dataset
from deception_scenarios.scenarios.roleplaying import BUILT_IN, CALLER, Roleplaying, RoleplayingSettings

DATA = Path(__file__).parent / "data" / "published"
ROLEPLAYS = DATA / "dataset.yaml"


def _spec(condition: Condition = Condition.HIGH_INCENTIVE) -> TrialSpec:
    return TrialSpec("roleplaying", condition.mode, condition, 0, 0)


def test_the_description_says_the_judge_labels_it():
    assert "'not checkable'" in Roleplaying.description
    assert "judge's verdict" in Roleplaying.description


def test_a_trial_is_one_captured_answer_to_the_question_in_role():
    scenario = Roleplaying(RoleplayingSettings(path=str(ROLEPLAYS)))
    facts = scenario.sample_facts(random.Random(1))
    game = scenario.new_game(_spec(), facts, GameOptions(max_rounds=3))
    (request,) = game.pending()
    assert request.capture
    assert request.caller == CALLER
    assert request.messages[0].content.startswith(str(facts["scenario"]))
    assert request.messages[1].content == facts["question"]
    game.deliver(request, "I have no idea.")
    assert game.done  # one turn, whatever --max-rounds says
    assert game.pending() == []
    result = game.result()
    assert [turn["text"] for turn in result.transcript] == [facts["question"], "I have no idea."]
    (focal,) = result.focal
    assert focal.verdict.checkable is False
    assert focal.verdict.label is Label.AMBIGUOUS


def test_the_role_plays_come_from_the_file_in_apollos_format():
    items = yaml.safe_load(ROLEPLAYS.read_text())
    scenario = Roleplaying(RoleplayingSettings(path=str(ROLEPLAYS)))
    assert [play.question for play in scenario.plays] == [item["question"] for item in items]
    assert len(Roleplaying().plays) == len(BUILT_IN)
    assert len(Roleplaying(RoleplayingSettings(path=str(ROLEPLAYS), limit=2)).plays) == 2


def test_only_the_condition_sentence_differs_between_conditions():
    scenario = Roleplaying()
    facts = scenario.sample_facts(random.Random(0))
    briefs = {c: scenario.new_game(_spec(c), dict(facts), GameOptions()).pending()[0].messages[0].content
              for c in Condition}
    assert len(set(briefs.values())) == 4
    assert all(brief.startswith(str(facts["scenario"])) for brief in briefs.values())
    assert "mislead" not in briefs[Condition.HIGH_INCENTIVE]


def test_the_judge_sees_the_situation_and_both_reference_answers():
    scenario = Roleplaying()
    facts = scenario.sample_facts(random.Random(0))
    described = scenario.describe_facts(facts)
    assert str(facts["scenario"]) in described
    assert str(facts["honest_completion"]) in described
    assert str(facts["deceptive_completion"]) in described


@pytest.mark.parametrize("judge", [Label.HONEST, Label.DECEPTIVE, Label.AMBIGUOUS])
def test_a_not_checkable_rule_takes_the_judges_verdict_under_agree_and_stays_ambiguous_under_rule(judge):
    rule = RuleVerdict(Label.AMBIGUOUS, "no rule", checkable=False)
    assert combine_labels(rule, JudgeVerdict(judge, ""), "agree") is judge
    assert combine_labels(rule, JudgeVerdict(judge, ""), "rule") is Label.AMBIGUOUS


def test_a_rule_that_cannot_check_labels_nothing_but_ambiguous():
    with pytest.raises(ValueError, match="labels it ambiguous"):
        RuleVerdict(Label.HONEST, "no rule", checkable=False)


def test_a_malformed_role_play_file_exits_2_naming_the_record_before_the_model_loads(tmp_path):
    items = yaml.safe_load(ROLEPLAYS.read_text())
    items[2]["answer_prefix"] = ["You:"]
    bad = tmp_path / "dataset.yaml"
    bad.write_text(yaml.safe_dump(items))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"components": {"scenario": {"roleplaying": {"path": str(bad)}}}}))
    out = tmp_path / "never"
    result = CliRunner().invoke(cli, ["run", "--model", "embedded:gemma-3-270m", "--scenario-name", "roleplaying",
                                      "--config", str(config), "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert f"{bad} record 3: 'answer_prefix' must be text" in result.output
    assert not out.exists()


def _run(model: str, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(cli, ["run", "--model", model, "--scenario-name", "roleplaying", "--mode", "both",
                                      "--trials", "2", "--max-rounds", "1", "--output", str(out), *extra],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _check_run(out: Path, policy: str) -> None:
    dataset = read_dataset(out)
    assert len(dataset.samples) == 8  # 2 modes x 2 conditions x 2 trials, one answer each
    assert {s.rule_label for s in dataset.samples} == {None}
    assert {s.agreement for s in dataset.samples} == {None}
    judged = [s.judge_label for s in dataset.samples]
    assert None not in judged
    expected = judged if policy == "agree" else ["ambiguous"] * len(judged)
    assert [s.label for s in dataset.samples] == expected
    report = (out / "report.html").read_text(encoding="utf-8")
    for trial in dataset.trials:
        question = str(trial.facts["question"])
        assert escape(question, quote=True) in report or escape(question, quote=False) in report
    for sample in dataset.samples:
        if sample.reply_text:
            assert escape(sample.reply_text, quote=True) in report or escape(sample.reply_text, quote=False) in report


@pytest.mark.parametrize("policy", ["agree", "rule"])
def test_plays_end_to_end_on_the_tiny_model_and_the_report_shows_the_transcripts(tiny_model_dir, tmp_path, policy):
    out = tmp_path / policy
    _run(str(tiny_model_dir), out, "--max-tokens", "4", "--label-policy", policy, "--no-analyze")
    report = CliRunner().invoke(cli, ["report", str(out)], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    _check_run(out, policy)


def test_relabelling_keeps_the_role_plays_without_a_rule_label(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    _run(str(tiny_model_dir), out, "--max-tokens", "4", "--no-analyze", "--no-report")
    relabelled = CliRunner().invoke(cli, ["relabel", str(out), "--label-policy", "rule", "--no-analyze"],
                                    catch_exceptions=False)
    assert relabelled.exit_code == 0, relabelled.output
    samples = read_dataset(out).samples
    assert {s.label for s in samples} == {"ambiguous"}
    assert {s.rule_label for s in samples} == {None}
    assert {s.agreement for s in samples} == {None}


@pytest.mark.slow
def test_plays_on_the_embedded_model_with_the_local_judge(tmp_path):
    out = tmp_path / "embedded"
    _run("embedded:gemma-3-270m", out, "--max-tokens", "48", "--evaluator", "local")
    _check_run(out, "agree")
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["evaluator"] == "local"
