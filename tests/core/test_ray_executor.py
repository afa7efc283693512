"""`--executor ray` on a local Ray instance (127.0.0.1, two CPU slots): same dataset as one process,
and a worker killed mid-run costs nothing.

One Ray instance serves the whole module (starting Ray takes seconds). The workers are separate
processes: they find the echo test plugin through ``PYTHONPATH`` and ``DECEPTION_EXTRA_PLUGINS``,
set before Ray starts so every worker inherits them.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from reliability_plugin import HERE, PLUGIN_REF, load_tiny, only_area, plugin_set, run_config

from deception_core import InterpretabilityRunner
from deception_core.base.records import to_json
from deception_core.checkpoints.checkpoint import CheckpointStore
from deception_core.executors.executors import RayExecutor
from deception_core.plugins import EXTRA_ENV
from deception_core.store.dataset import read_dataset

ray = pytest.importorskip("ray")

TRIALS = 4  # per condition: 8 trials of 2 rounds
#: activations of a trial played by a worker match the single-process run within this (see the README)
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def ray_instance():
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", EXTRA_ENV, "OMP_NUM_THREADS")}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), saved["PYTHONPATH"]) if p)
    os.environ[EXTRA_ENV] = PLUGIN_REF
    os.environ["OMP_NUM_THREADS"] = "1"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", object_store_memory=80 * 1024**2,
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def single(tiny_model_dir, tmp_path_factory):
    """The reference: the same experiment in one process, at a given batch size."""
    made: dict = {}

    def make(batch_size: int):
        if batch_size not in made:
            out = tmp_path_factory.mktemp("single") / "out"
            config = run_config(tiny_model_dir, out, trials=TRIALS, analyze=False, batch_size=batch_size)
            InterpretabilityRunner(config, plugins=plugin_set(), model=load_tiny(tiny_model_dir)).run()
            made[batch_size] = read_dataset(out)
        return made[batch_size]

    return make


def _assert_same_dataset(got, want) -> None:
    assert [t.trial_key for t in got.trials] == [t.trial_key for t in want.trials]
    assert [s.reply_text for s in got.samples] == [s.reply_text for s in want.samples]
    assert [s.prompt_text for s in got.samples] == [s.prompt_text for s in want.samples]
    assert [s.label for s in got.samples] == [s.label for s in want.samples]
    assert [json.dumps(to_json(t), sort_keys=True) for t in got.trials] == [json.dumps(to_json(t), sort_keys=True)
                                                                            for t in want.trials]
    assert sorted(got.arrays) == sorted(want.arrays)
    for key, array in want.arrays.items():
        np.testing.assert_allclose(got.arrays[key], array, rtol=RTOL, atol=ATOL, err_msg=key)


def test_two_ray_workers_give_the_single_process_dataset(ray_instance, single, tiny_model_dir, tmp_path) -> None:
    out = tmp_path / "out"
    config = run_config(tiny_model_dir, out, trials=TRIALS, analyze=False, executor="ray", workers=2, batch_size=2)
    results = InterpretabilityRunner(config, plugins=plugin_set()).run()
    got = read_dataset(out)
    _assert_same_dataset(got, single(2))
    assert len(results.dataset.trials) == 2 * TRIALS
    # two workers start; which of them plays how much depends on which loads the model first
    assert "starting 2 Ray worker(s) on one CPU each" in (out / "run.log").read_text()


class KillingStore(CheckpointStore):
    """A checkpoint store that kills Ray worker w0 as soon as the first trial is saved."""

    def __init__(self, directory, handles: dict) -> None:
        super().__init__(directory)
        self.handles = handles

    def add(self, output) -> None:
        super().add(output)
        if self.saved == 1:
            ray.kill(self.handles["w0"], no_restart=True)


def test_a_killed_worker_loses_no_trial_and_writes_none_twice(ray_instance, single, tiny_model_dir, tmp_path,
                                                              monkeypatch) -> None:
    handles: dict = {}
    launch = RayExecutor._launch

    def recording_launch(self) -> None:
        launch(self)
        handles[f"w{self._count - 1}"] = self._workers[f"w{self._count - 1}"].handle

    monkeypatch.setattr(RayExecutor, "_launch", recording_launch)
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    config = run_config(tiny_model_dir, out, trials=TRIALS, analyze=False, executor="ray", workers=2,
                        checkpoint_dir=str(ckpt), batch_size=1)  # one trial per unit: a kill lands mid-run
    store = KillingStore(ckpt, handles)
    InterpretabilityRunner(config, plugins=plugin_set(), trial_sink=store).run()
    got = read_dataset(out)
    keys = [t.trial_key for t in got.trials]
    assert sorted(keys) == sorted(t.trial_key for t in single(1).trials)
    assert len(keys) == len(set(keys))
    assert store.saved == 2 * TRIALS  # every trial written once
    assert len(list((only_area(ckpt) / "trials").glob("*.safetensors"))) == 2 * TRIALS
    log = (out / "run.log").read_text()
    assert "Ray worker w0 died" in log
    assert "started replacement worker w2" in log
    _assert_same_dataset(got, single(1))


class InterruptingStore(CheckpointStore):
    """A checkpoint store that stops the driver (as Ctrl-C would) after three saved trials."""

    def add(self, output) -> None:
        super().add(output)
        if self.saved == 3:
            raise KeyboardInterrupt


@pytest.mark.slow  # four more worker start-ups; the checkpoint store it relies on is tested in the default suite
def test_interrupted_driver_resumes_from_the_checkpoint(ray_instance, single, tiny_model_dir, tmp_path) -> None:
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    config = run_config(tiny_model_dir, out, trials=TRIALS, analyze=False, executor="ray", workers=2,
                        checkpoint_dir=str(ckpt), batch_size=1)  # one trial per unit: a kill lands mid-run
    with pytest.raises(KeyboardInterrupt):
        InterpretabilityRunner(config, plugins=plugin_set(), trial_sink=InterruptingStore(ckpt)).run()
    assert len(list((only_area(ckpt) / "trials").glob("*.safetensors"))) == 3
    resumed = CheckpointStore(ckpt)
    InterpretabilityRunner(config, plugins=plugin_set(), trial_sink=resumed).run()
    assert resumed.resumed == 3
    assert resumed.saved == 2 * TRIALS - 3
    _assert_same_dataset(read_dataset(out), single(1))
