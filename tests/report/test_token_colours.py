"""Every reply token is scored and coloured by default, without ``--positions ...,reply_all``.

A tiny-model run whose labels follow the condition (so the probe analysis trains a probe) scores
every reply token by one teacher-forced pass with the model it already holds; ``deception analyze
--score-tokens`` does the same on a stored dataset; the teacher-forced activations equal what a
run stores with ``reply_all``; and the report, opened in headless Chromium, colours tokens of
focal replies of each label.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from report_helpers import COLOURED_BY_LABEL

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.base.types import Label, RuleVerdict
from deception_core.capture.reply_states import TeacherForcedReplyStates
from deception_core.cli import cli
from deception_core.contracts.hookspecs import hookimpl
from deception_core.contracts.scenario import FocalUtterance
from deception_core.model.spec import ModelSpec
from deception_core.model.surface import load_model
from deception_core.report.inputs import analysis_output
from deception_core.store import read_dataset
from deception_core.testing.browser import Browser, find_chromium
from deception_core.testing.fakes import EchoGame, EchoScenario, RuleEchoEvaluator

TEACHER_FORCED = "teacher-forced pass over the stored prompt and reply ids"

class ConditionGame(EchoGame):
    """The echo game, labelled by its condition: deceptive under high incentive, honest under low."""

    def deliver(self, request, text: str) -> None:
        self.round += 1
        self.transcript.append({"speaker": "Agent", "text": text, "request_id": request.request_id,
                                "round": self.round})
        label = Label.DECEPTIVE if self.spec.condition.value == "high_incentive" else Label.HONEST
        self.focal.append(FocalUtterance(request.request_id, self.round, text, RuleVerdict(label, "by condition")))


class ConditionScenario(EchoScenario):
    name = "condition-echo"
    description = "The echo game labelled by its condition."

    def new_game(self, spec, facts, options):
        return ConditionGame(spec, facts, options)


class ConditionPlugin:
    @hookimpl
    def register_scenarios(self, registry) -> None:
        registry.add("condition-echo", lambda: ConditionScenario, summary=ConditionScenario.description)

    @hookimpl
    def register_evaluators(self, registry) -> None:
        registry.add("echo-judge", lambda: RuleEchoEvaluator, summary="agrees with the echo rule")


def _config(model_dir: Path, out: Path, **changes) -> RunConfig:
    values = dict(model=str(model_dir), scenario_names=["condition-echo"], mode="emergent", trials=4, max_rounds=2,
                  max_tokens=6, evaluator="echo-judge", label_policy="rule", device="cpu", dtype="float32",
                  output=str(out))
    return RunConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def plugins():
    from deception_core.plugins import build_plugin_set

    return build_plugin_set(extra_plugins={"condition-echo": ConditionPlugin()})


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(ModelSpec.parse(str(tiny_model_dir)), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def scored_run(tiny_model_dir, tmp_path_factory, plugins, model) -> Path:
    """A default run (no reply_all): 8 trials, 16 labelled replies, probes, report."""
    out = tmp_path_factory.mktemp("token-colours") / "run"
    InterpretabilityRunner(_config(tiny_model_dir, out), plugins=plugins, model=model).run()
    return out


def test_a_default_run_scores_every_reply_token_without_storing_them(scored_run) -> None:
    dataset = read_dataset(scored_run)
    assert "reply_all" not in dataset.positions
    results = json.loads((scored_run / "probe_results.json").read_text())
    assert results["scores"]["token_source"] == TEACHER_FORCED
    tokens = pd.read_parquet(analysis_output(scored_run, "token_scores"))
    assert len(tokens) == sum(len(s.reply_ids or ()) for s in dataset.samples)
    scores = pd.read_parquet(analysis_output(scored_run, "scores")).set_index("row")
    with_tokens = [s.row for s in dataset.samples if s.reply_ids]
    assert scores.loc[with_tokens, "token_score_mean"].notna().all()
    np.testing.assert_allclose(tokens["score"].to_numpy(),
                               tokens["score_raw"].to_numpy() / results["scores"]["scale"]["unit_raw"])


def test_teacher_forced_states_equal_the_stored_reply_tokens(tiny_model_dir, tmp_path, plugins, model) -> None:
    out = tmp_path / "stored"
    InterpretabilityRunner(_config(tiny_model_dir, out, analyze=False, report=False,
                                   positions="last_prompt,reply_mean,reply_last,reply_all"),
                           plugins=plugins, model=model).run()
    dataset = read_dataset(out)
    layer = dataset.layers[-1]
    rows = [s.row for s in dataset.samples]
    forced = dict(TeacherForcedReplyStates(model, batch_size=3).states(dataset, layer, rows))
    assert sorted(forced) == [s.row for s in dataset.samples if s.reply_ids]
    for row, states in forced.items():
        stored = dataset.reply_tokens(layer, row)
        assert states.shape == stored.shape
        np.testing.assert_allclose(states, stored, rtol=1e-4, atol=1e-4)


def test_analyze_score_tokens_loads_the_model_for_a_stored_dataset(scored_run, tmp_path) -> None:
    out = tmp_path / "analysed"
    plain = CliRunner().invoke(cli, ["analyze", str(scored_run), "--output", str(tmp_path / "plain")])
    assert plain.exit_code == 0, plain.output
    assert not (tmp_path / "plain" / "probe_token_scores.parquet").exists()
    result = CliRunner().invoke(cli, ["analyze", str(scored_run), "--output", str(out), "--score-tokens"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "probe_results.json").read_text())["scores"]["token_source"] == TEACHER_FORCED
    again = pd.read_parquet(out / "probe_token_scores.parquet")
    first = pd.read_parquet(scored_run / "probe_token_scores.parquet")
    # the same scores up to float noise (the run's batches held other rows than the analysis's)
    np.testing.assert_allclose(again["score_raw"].to_numpy(), first["score_raw"].to_numpy(), atol=1e-6)


def test_analyze_score_tokens_without_a_recorded_model_is_refused(scored_run, tmp_path) -> None:
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(scored_run, run)
    config = json.loads((run / "config.json").read_text())
    config["config"]["model"] = None
    (run / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(cli, ["analyze", str(run), "--output", str(tmp_path / "o"), "--score-tokens"])
    assert result.exit_code == 2
    assert "records no model" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(find_chromium() is None,
                    reason="no Chromium on this machine (apt-get install chromium, or set CHROMIUM)")
def test_the_report_colours_tokens_of_replies_of_each_label(scored_run) -> None:
    report = scored_run / "report.html"
    with Browser() as page:
        page.open(report.as_uri())
        coloured = json.loads(page.evaluate(COLOURED_BY_LABEL))
        legend = page.evaluate("document.getElementById('legend').textContent")
    assert coloured["honest"] >= 1
    assert coloured["deceptive"] >= 1
    assert "0 = threshold" in legend
    assert "the score that flags 1% of the honest samples" in legend
