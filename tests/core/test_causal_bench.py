"""`deception bench --causal` times the play and causal stages of one quick-start-shaped run."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from deception_core.bench.causal import causal_json, format_causal_row, run_causal_benchmark
from deception_core.cli import cli


@pytest.fixture(scope="module")
def result(tiny_model_dir):
    from deception_core.model.spec import ModelSpec
    from deception_core.model.surface import load_model

    loaded = load_model(ModelSpec.parse(str(tiny_model_dir)), device="cpu", dtype="float32")
    return run_causal_benchmark(loaded, str(tiny_model_dir), trials=1, max_rounds=1, causal_samples=2, max_tokens=6)


def test_the_quick_start_shape_plays_its_trials(result) -> None:
    assert result.trials == 8  # 2 scenarios x 2 modes x 2 conditions x 1 trial


def test_both_stages_are_timed(result) -> None:
    assert min(result.play_seconds, result.causal_seconds) > 0


def test_every_causal_test_reports_a_status(result) -> None:
    assert sorted(result.statuses) == ["ablation", "faithfulness", "patching", "steering"]


def test_the_ratio_is_causal_over_play(result) -> None:
    assert causal_json(result)["causal_over_play"] == pytest.approx(result.causal_seconds / result.play_seconds)


def test_the_row_names_the_causal_stage(result) -> None:
    assert format_causal_row(result).splitlines()[1].startswith("causal (quick start)")


def test_causal_and_pipeline_together_are_refused_before_loading(tiny_model_dir) -> None:
    outcome = CliRunner().invoke(cli, ["bench", "--causal", "--pipeline", "--model", str(tiny_model_dir)])
    assert outcome.exit_code == 2
    assert "--causal and --pipeline" in outcome.output
