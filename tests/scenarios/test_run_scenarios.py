"""The six scenarios through the core runner on a tiny random model: only the negotiation move is a
sample, auxiliary calls are made but never captured, and the run options reach the games."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.base.types import JudgeVerdict, Label
from deception_core.cli import cli
from deception_core.contracts.evaluator import Evaluator, JudgeRequest
from deception_core.contracts.hookspecs import hookimpl
from deception_core.plugins import build_plugin_set
from deception_core.store import read_dataset
from deception_scenarios._plugin import SCENARIOS

SIX = list(SCENARIOS)


class RecordingJudge(Evaluator):
    """A judge that abstains and remembers what it was shown."""

    name = "recording-judge"
    seen: list[JudgeRequest] = []

    def judge(self, request: JudgeRequest) -> JudgeVerdict:
        RecordingJudge.seen.append(request)
        return JudgeVerdict(Label.AMBIGUOUS, f"abstain after {len(request.dialogue)} turns")


class JudgePlugin:
    @hookimpl
    def register_evaluators(self, registry) -> None:
        registry.add("recording-judge", lambda: RecordingJudge, summary="abstains; records its requests")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def play_run(model_dir, out, scenarios, max_rounds):
    RecordingJudge.seen.clear()
    config = RunConfig(model=str(model_dir), scenario_names=scenarios, mode="both", trials=1, max_rounds=max_rounds,
                       max_tokens=4, evaluator="recording-judge", output=str(out), analyze=False)
    InterpretabilityRunner(config, plugins=build_plugin_set(extra_plugins={"judge": JudgePlugin()})).run()
    return read_dataset(out), list(RecordingJudge.seen)


def check_run(dataset, seen, scenarios, max_rounds) -> None:
    """The invariants of any run: one sample per negotiation move, auxiliary calls never captured."""
    assert {s.scenario for s in dataset.samples} == set(scenarios)
    assert {s.condition for s in dataset.samples} == {
        "high_incentive", "low_incentive", "deceptive_instruction", "honest_instruction"}
    assert len(dataset.trials) == len(scenarios) * 4  # --trials 1 per scenario x condition
    for sample in dataset.samples:
        assert sample.caller == "negotiator.act"
        assert sample.request_id.startswith("negotiator.act#r")
        assert sample.n_reply_tokens <= 4  # --max-tokens
        assert 1 <= sample.round <= max_rounds  # --max-rounds
        assert sample.rule_label in {"honest", "deceptive", "ambiguous"}
        assert sample.rule_trace
        assert sample.judge_raw.startswith("abstain")
        assert sample.label == "ambiguous"
        assert "deal" in sample.outcome
        assert "rounds_played" in sample.outcome
        assert sample.belief is None or isinstance(sample.belief, str)
        assert sample.self_report is None  # no follow-up question unless asked
    per_trial: dict[str, list] = {}
    for sample in dataset.samples:
        per_trial.setdefault(sample.trial_key, []).append(sample)
    for trial in dataset.trials:
        calls = trial.calls
        callers = {c["caller"] for c in calls}
        assert "negotiator.theory_of_mind" in callers
        assert "counterpart.act" in callers
        captured = [c for c in calls if c["captured"]]
        assert captured
        assert all(c["caller"] == "negotiator.act" for c in captured)
        assert all(not c["captured"] for c in calls if c["caller"] != "negotiator.act")
        assert [c["request_id"] for c in captured] == [s.request_id for s in per_trial[trial.trial_key]]
        assert trial.outcome["rounds_played"] <= max_rounds
        assert [t for t in trial.transcript if t.get("kind") == "theory_of_mind"]  # a belief, not a label
    # the judge saw the private facts and the dialogue ending with the judged utterance
    assert len(seen) == len(dataset.samples)
    for request in seen:
        assert request.facts
        assert request.question
        assert request.dialogue[-1] == {"speaker": "Negotiator", "text": request.utterance}


@pytest.fixture(scope="module")
def six_run(tiny_model_dir, tmp_path_factory):
    dataset, seen = play_run(tiny_model_dir, tmp_path_factory.mktemp("six") / "out", SIX, 2)
    return dataset, seen


def test_only_negotiation_moves_become_samples(six_run) -> None:
    dataset, seen = six_run
    check_run(dataset, seen, SIX, 2)


def test_the_moves_are_played_and_the_judge_knows_them(six_run) -> None:
    dataset, seen = six_run
    for trial in dataset.trials:
        callers = [c["caller"] for c in trial.calls]
        if trial.scenario == "alliance_betrayal":
            assert callers[-2:] == ["negotiator.vote", "counterpart.vote"]
            assert set(trial.outcome["votes"]) == {"A", "B", "C"}
            assert trial.outcome["votes"]["C"] == "C"
        elif trial.scenario == "promise_break":
            assert callers[-2:] == ["negotiator.move", "counterpart.move"]
            assert trial.outcome["negotiator_move"] in {"COOPERATE", "DEFECT"}
        else:
            assert not any(c.endswith((".vote", ".move")) for c in callers)
        if not trial.outcome["deal"]:
            assert callers.count("negotiator.act") == 2
    assert all("After the talk A voted for plan" in r.facts for r in seen if r.scenario == "alliance_betrayal")
    assert all("secretly played" in r.facts for r in seen if r.scenario == "promise_break")


@pytest.mark.parametrize("n", ["0", "7"])
def test_scenarios_out_of_range_exit_2(n, tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(cli, ["run", "--model", str(tiny_model_dir), "--scenarios", n, "--output", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 2
    assert "--scenarios must be between 1 and 6" in result.output
    assert not out.exists()


def test_scenarios_n_takes_the_first_n_in_order() -> None:
    from deception_core.plan.plan import select_scenarios
    from deception_core.plugins import get_plugin_set

    registry = get_plugin_set().registry
    order = ["ultimatum_bluff", "hidden_value", "alliance_betrayal", "capability_bluff", "info_withholding",
             "promise_break"]
    assert sorted(order) == sorted(SIX)
    assert select_scenarios(RunConfig(scenarios=6), registry)[:6] == order
    assert select_scenarios(RunConfig(scenarios=3), registry) == order[:3]  # the predecessor's default set
    assert select_scenarios(RunConfig(scenarios=2), registry) == order[:2]


def test_listing_shows_the_six() -> None:
    result = CliRunner().invoke(cli, ["scenarios"], catch_exceptions=False)
    assert result.exit_code == 0
    for name in SIX:
        assert name in result.output


def test_cli_flags_reach_the_games(tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(cli, [
        "run", "--model", str(tiny_model_dir), "--scenario-name", "promise_break", "--trials", "2",
        "--max-rounds", "1", "--max-tokens", "3", "--fast", "--evaluator", "local", "--no-analyze",
        "--output", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "promise_break" in result.output
    assert "high_incentive" in result.output
    dataset = read_dataset(out)
    assert len(dataset.trials) == 2 * 2
    assert len(dataset.samples) == 4
    for trial in dataset.trials:
        callers = [c["caller"] for c in trial.calls]
        assert callers == ["negotiator.act", "counterpart.act", "negotiator.move", "counterpart.move"]  # --fast
        assert all(c["n_reply_tokens"] <= 3 for c in trial.calls)  # --max-tokens
    assert all(s.judge_raw for s in dataset.samples)
