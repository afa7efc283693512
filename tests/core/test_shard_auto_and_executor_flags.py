"""`--shard auto` (Slurm job arrays) and the executor flags' bad-input paths (no Ray started here)."""

from __future__ import annotations

import sys

import pytest
from reliability_plugin import base_args

from deception_core.base.errors import ConfigError
from deception_core.cli import cli
from deception_core.config.run import RunConfig
from deception_core.config.slurm import array_shard
from deception_core.plan.plan import plan_trials
from deception_core.store.dataset import read_dataset

SLURM = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP")


@pytest.fixture()
def slurm(monkeypatch):
    for name in SLURM:
        monkeypatch.delenv(name, raising=False)

    def set_task(task: int, count: int, first: int | None = None, step: int | None = None) -> None:
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(task))
        monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", str(count))
        if first is not None:
            monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", str(first))
        if step is not None:
            monkeypatch.setenv("SLURM_ARRAY_TASK_STEP", str(step))

    return set_task


def _keys(**config) -> list[str]:
    base = dict(scenario_names=("ultimatum_bluff", "hidden_value"), mode="both", trials=5)
    return [s.key for s in plan_trials(RunConfig(**base, **config), list(base["scenario_names"]))]


@pytest.mark.parametrize("task, count, first, step, shard", [
    (0, 3, None, None, "0/3"),
    (2, 3, None, None, "2/3"),
    (1, 4, 1, None, "0/4"),  # --array=1-4: the first task is shard 0
    (4, 4, 1, None, "3/4"),
    (10, 3, 0, 5, "2/3"),  # --array=0-10:5
])
def test_shard_auto_plans_the_trials_of_the_matching_shard(slurm, task, count, first, step, shard) -> None:
    slurm(task, count, first, step)
    assert _keys(shard="auto") == _keys(shard=shard)


def test_shard_auto_over_the_whole_array_covers_every_trial_once(slurm) -> None:
    keys = []
    for task in range(1, 5):  # --array=1-4
        slurm(task, 4, first=1)
        keys += _keys(shard="auto")
    assert sorted(keys) == sorted(_keys())


@pytest.mark.parametrize("env, named", [
    ({}, "SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set"),
    ({"SLURM_ARRAY_TASK_ID": "3"}, "SLURM_ARRAY_TASK_COUNT is not set"),
    ({"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}, "are not all integers"),
    ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0"}, "outside 0..2"),
    ({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_STEP": "2"}, "not on the array's grid"),
])
def test_shard_auto_names_what_is_missing_or_wrong(env, named) -> None:
    with pytest.raises(ConfigError, match=named):
        array_shard(env)


def test_shard_auto_run_plays_the_same_trials_as_shard_i_of_n(slurm, cli_with_plugin, tiny_model_dir, tmp_path) -> None:
    slurm(2, 3, first=1)  # --array=1-3, second task: shard 1/3
    auto = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, tmp_path / "auto", **{"--trials": 4}),
                                        "--shard", "auto", "--no-analyze"])
    assert auto.exit_code == 0, auto.output
    explicit = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, tmp_path / "explicit", **{"--trials": 4}),
                                            "--shard", "1/3", "--no-analyze"])
    assert explicit.exit_code == 0, explicit.output
    auto_trials = [t.trial_key for t in read_dataset(tmp_path / "auto").trials]
    assert auto_trials == [t.trial_key for t in read_dataset(tmp_path / "explicit").trials]
    assert len(auto_trials) > 0
    assert read_dataset(tmp_path / "auto").samples == read_dataset(tmp_path / "explicit").samples


def test_shard_auto_outside_slurm_exits_2_naming_the_variables(slurm, cli_with_plugin, tiny_model_dir,
                                                               tmp_path) -> None:
    out = tmp_path / "out"
    result = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, out), "--shard", "auto"])
    assert result.exit_code == 2, result.output
    assert "SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set" in result.output
    assert not out.exists()


def test_executor_ray_without_ray_exits_2_with_the_install_command(cli_with_plugin, tiny_model_dir, tmp_path,
                                                                   monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    out = tmp_path / "out"
    result = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, out), "--executor", "ray"])
    assert result.exit_code == 2, result.output
    assert "pip install 'deception-core[ray]'" in result.output
    assert not out.exists()


@pytest.mark.parametrize("flags", [["--workers", "2"], ["--ray-address", "auto"]])
def test_ray_flags_without_executor_ray_exit_2(cli_with_plugin, tiny_model_dir, tmp_path, flags) -> None:
    out = tmp_path / "out"
    result = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, out), *flags])
    assert result.exit_code == 2, result.output
    assert "take effect only with --executor ray" in result.output
    assert not out.exists()


def test_workers_must_be_positive(cli_with_plugin, tiny_model_dir, tmp_path) -> None:
    result = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, tmp_path / "out"), "--executor", "ray",
                                          "--workers", "0"])
    assert result.exit_code == 2, result.output
    assert "workers must be at least 1, got 0" in result.output


def test_progress_over_workers_gives_counts_rates_and_eta(monkeypatch) -> None:
    from deception_core.executors import executors

    clock = {"now": 100.0}
    monkeypatch.setattr(executors.time, "monotonic", lambda: clock["now"])
    progress = executors.WorkerProgress(total=10, initial=2)  # 2 trials resumed from a checkpoint
    fast = executors._Worker("w0", handle=None, started=90.0, ready_at=100.0)
    slow = executors._Worker("w1", handle=None, started=90.0, ready_at=100.0)
    loading = executors._Worker("w2", handle=None, started=95.0)
    workers = [fast, slow, loading]
    clock["now"] = 160.0
    fast.trials, slow.trials = 3, 1
    progress.update(workers, 4)
    progress.close()
    assert progress.rates(workers) == {"w0": 3.0, "w1": 1.0}  # trials per minute since ready; w2 not ready
    assert progress.eta_seconds() == 60.0  # 4 trials in 60 s, 4 to go
    assert progress.line(workers) == "6/10 trials; w0 3.0/min w1 1.0/min; ETA 60 s"
