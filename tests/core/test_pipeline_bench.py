"""`deception bench --pipeline` times real runs and replays their own batches with bare generate."""

from __future__ import annotations

import pytest

from deception_core.capture.pipeline_bench import format_pipeline_table, pipeline_json, run_pipeline_benchmark


@pytest.fixture(scope="module")
def results(tiny_model_dir):
    from deception_core.models.loading import load_model
    from deception_core.models.spec import ModelSpec

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
    rows = pipeline_json(results)
    assert all(row["ratio_to_bare"] == pytest.approx(row["bare_seconds"] / row["seconds"]) for row in rows)


def test_table_rows_start_with_pipeline(results) -> None:
    lines = format_pipeline_table(results).splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["pipeline", "pipeline"]


@pytest.fixture(scope="module")
def repeated(tiny_model_dir):
    from deception_core.models.loading import load_model
    from deception_core.models.spec import ModelSpec

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
