"""`deception bench --pipeline` times real runs and replays their own batches with bare generate."""

from __future__ import annotations

import pytest

from deception_core.bench.pipeline import format_pipeline_table, pipeline_json, run_pipeline_benchmark


@pytest.fixture(scope="module")
def results(tiny_model_dir):
    from deception_core.model.spec import ModelSpec
    from deception_core.model.surface import load_model

    loaded = load_model(ModelSpec.parse(str(tiny_model_dir)), device="cpu", dtype="float32")
    return run_pipeline_benchmark(loaded, str(tiny_model_dir), batch_sizes=[1, 4], trials=1, new_tokens=6)


def test_each_batch_size_plays_the_same_trials(results) -> None:
    # 2 ranked scenarios x 2 modes x 2 conditions x 1 trial
    assert [r.trials for r in results] == [8, 8]


def test_the_batch_size_asked_for_is_the_one_timed(results) -> None:
    assert [r.batch_size for r in results] == [1, 4]


def test_both_batch_sizes_count_the_same_generation_calls(results) -> None:
    # theory of mind, the negotiator and the counterpart: at least three calls per trial
    assert results[0].calls == results[1].calls


def test_every_trial_makes_its_generation_calls(results) -> None:
    assert results[0].calls >= 3 * results[0].trials


def test_bare_generate_is_timed_on_the_same_tokens(results) -> None:
    for row in pipeline_json(results):
        assert row["bare_seconds"] > 0
        assert row["tokens"] > 0
        assert row["tok_per_s"] * row["seconds"] == pytest.approx(row["tokens"])
        assert row["bare_tok_per_s"] * row["bare_seconds"] == pytest.approx(row["tokens"])  # the same tokens


def test_the_ratio_is_the_share_of_bare_throughput_kept() -> None:
    """Known answer: 120 tokens in 10 s against bare generate's 2.5 s is 12 against 48 tok/s, a ratio of 0.25."""
    from deception_core.bench.pipeline import PipelineResult

    (row,) = pipeline_json([PipelineResult(4, "4", 8, 24, 120, 10.0, 2.5, 1, ((10.0, 2.5),))])
    assert row["tok_per_s"] == 12.0
    assert row["bare_tok_per_s"] == 48.0
    assert row["ratio_to_bare"] == 0.25
    assert row["trials_per_minute"] == 48.0
    assert row["stage"] == "pipeline"


def test_table_rows_start_with_pipeline(results) -> None:
    lines = format_pipeline_table(results).splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["pipeline", "pipeline"]


@pytest.fixture(scope="module")
def repeated(tiny_model_dir):
    from deception_core.model.spec import ModelSpec
    from deception_core.model.surface import load_model

    loaded = load_model(ModelSpec.parse(str(tiny_model_dir)), device="cpu", dtype="float32")
    return run_pipeline_benchmark(loaded, str(tiny_model_dir), batch_sizes=[2], trials=1, new_tokens=4, repeats=3)


def test_every_repeat_is_timed(repeated) -> None:
    assert len(repeated[0].rounds) == 3


def test_the_reported_seconds_are_the_median_repeat(repeated) -> None:
    assert repeated[0].seconds == sorted(seconds for seconds, _ in repeated[0].rounds)[1]


def test_the_reported_bare_seconds_are_the_median_replay(repeated) -> None:
    assert repeated[0].bare_seconds == sorted(bare for _, bare in repeated[0].rounds)[1]


def test_the_json_lists_each_repeat(repeated) -> None:
    assert len(pipeline_json(repeated)[0]["repeats"]) == 3
