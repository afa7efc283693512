"""Nothing lost, nothing trusted blindly: output folders, whole datasets, integrity, disk full."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import attrs
import numpy as np
import pytest
from reliability_plugin import (
    Killed,
    base_args,
    dying_store,
    load_tiny,
    only_area,
    plugin_set,
    read_exact,
    run_config,
)

from deception_core import InterpretabilityRunner
from deception_core.base.records import Sample, Trial
from deception_core.checkpoints.checkpoint import CheckpointStore, decode_trial, encode_trial, shard_name
from deception_core.checkpoints.shard_key import load_or_create_key
from deception_core.cli import cli
from deception_core.pipeline import runner as runner_module
from deception_core.pipeline.merge import MERGE_STAGING, merge_runs
from deception_core.store.dataset import Dataset, DatasetError, read_dataset, write_dataset

HERE = Path(__file__).resolve().parent


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the output-folder policy -----------------------------------------------------------------------


def test_a_rerun_into_a_finished_output_is_refused_and_the_earlier_run_is_intact(
        tiny_model_dir, tmp_path, cli_with_plugin) -> None:
    out = tmp_path / "out"
    first = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, out), "--no-analyze"])
    assert first.exit_code == 0, first.output
    (out / "probe_results.json").write_text('{"from": "the earlier run"}')
    earlier = _files(out)
    again = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, out, **{"--seed": 1}), "--no-analyze"])
    assert again.exit_code == 2
    assert "never replaces an earlier one" in again.output
    assert _files(out) == earlier

    replaced = cli_with_plugin.invoke(cli, [*base_args(tiny_model_dir, out, **{"--seed": 1}), "--no-analyze",
                                            "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert not (out / "probe_results.json").exists()  # nothing of the earlier run is left beside the new one
    assert read_dataset(out).meta.result_config["seed"] == 1
    assert not (out / "checkpoint").exists()  # the default checkpoint goes once the dataset is complete


def test_a_crashed_run_keeps_its_trials_in_its_output_and_resumes_there(
        tiny_model_dir, tmp_path, plugins, model, reference, monkeypatch) -> None:
    out = tmp_path / "out"
    config = run_config(tiny_model_dir, out, analyze=False)
    monkeypatch.setattr(runner_module, "CheckpointStore", dying_store(4))
    with pytest.raises(Killed):
        InterpretabilityRunner(config, plugins=plugins, model=model).run()
    assert len(list((only_area(out / "checkpoint") / "trials").glob("*.safetensors"))) == 4
    assert not (out / "dataset").exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = out / f".dataset.staging-{dead.pid}-beef"  # what a kill while writing the dataset leaves
    leftover.mkdir()
    (leftover / "samples.jsonl").write_text("{}\n")

    monkeypatch.setattr(runner_module, "CheckpointStore", CheckpointStore)
    runner = InterpretabilityRunner(config, plugins=plugins, model=model)
    assert runner.validate().output_state == "resume"
    runner.run()
    assert (runner.trial_sink.resumed, runner.trial_sink.saved) == (4, 2)
    assert read_exact(out) == reference[1]
    assert not (out / "checkpoint").exists()
    assert not leftover.exists()


def test_a_run_that_fails_before_any_trial_leaves_no_folder(tiny_model_dir, tmp_path, plugins) -> None:
    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("the model broke")

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="the model broke"):
        InterpretabilityRunner(run_config(tiny_model_dir, out), plugins=plugins, model=Broken()).run()
    assert not out.exists()


# --- datasets are written whole ----------------------------------------------------------------------


def _small_dataset(value: float, n: int = 3) -> Dataset:
    meta = {"model": {"id": "m"}, "layers": [0], "positions": ["reply_last"]}
    samples = [Sample(sample_id=f"s{i}", trial_key=f"t{i}", label="honest", row=i) for i in range(n)]
    trials = [Trial(trial_key=f"t{i}") for i in range(n)]
    return Dataset(meta, samples, trials, {"layer0/reply_last": np.full((n, 4), value, np.float32)})


@pytest.mark.parametrize("failing_write", [1, 2, 3, 4])
def test_a_failure_between_dataset_file_writes_leaves_the_old_dataset(tmp_path, monkeypatch, failing_write) -> None:
    from deception_core.store import dataset as store

    target = tmp_path / "dataset"
    write_dataset(target, _small_dataset(1.0))
    old = _files(target)
    real, calls = store.atomic_write_bytes, []

    def failing(path, data):
        calls.append(path.name)
        if len(calls) == failing_write:
            raise OSError(28, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(store, "atomic_write_bytes", failing)
    with pytest.raises(OSError):
        write_dataset(target, _small_dataset(2.0, n=5))
    assert _files(target) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]  # no staging folder left behind
    monkeypatch.setattr(store, "atomic_write_bytes", real)
    write_dataset(target, _small_dataset(2.0, n=5))
    assert len(read_dataset(target)) == 5


_KILL_SCRIPT = """
import os, sys, time
import numpy as np
sys.path.insert(0, {here!r})
from test_nothing_lost import _small_dataset
from deception_core.store.dataset import write_dataset
real, count = os.fsync, [0]
def fsync(fd):
    count[0] += 1
    if count[0] == {pause}:
        open({marker!r}, "w").write("paused")
        time.sleep(60)
    real(fd)
os.fsync = fsync
write_dataset({target!r}, _small_dataset(2.0, n=5))
"""


@pytest.mark.parametrize("pause", [1, 2, 3, 4])
def test_a_kill_between_dataset_file_writes_leaves_the_old_dataset(tmp_path, pause) -> None:
    target, marker = tmp_path / "dataset", tmp_path / "paused"
    write_dataset(target, _small_dataset(1.0))
    old = _files(target)
    script = _KILL_SCRIPT.format(here=str(HERE), pause=pause, marker=str(marker), target=str(target))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _files(target) == old
    assert len(read_dataset(target)) == 3
    # what the kill left is a hidden staging folder beside it, never a mixed dataset
    assert all(p.name.startswith(".dataset.staging-") for p in tmp_path.iterdir() if p.name not in ("dataset", "paused"))


def test_files_honour_the_umask(tmp_path) -> None:
    previous = os.umask(0o022)
    try:
        write_dataset(tmp_path / "dataset", _small_dataset(1.0))
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "dataset").iterdir()}
    assert set(modes.values()) == {0o644}
    assert stat.S_IMODE((tmp_path / "dataset").stat().st_mode) == 0o755


def test_non_finite_activations_are_refused_at_write(tmp_path) -> None:
    with pytest.raises(DatasetError, match="not finite"):
        write_dataset(tmp_path / "dataset", _small_dataset(float("inf")))
    assert not any(tmp_path.iterdir())


def test_an_activation_set_to_1e30_is_detected(tmp_path) -> None:
    from safetensors.numpy import load_file, save_file

    target = write_dataset(tmp_path / "dataset", _small_dataset(1.0))
    arrays = load_file(str(target / "activations.safetensors"))
    arrays["layer0/reply_last"][1, 2] = 1e30
    save_file(arrays, str(target / "activations.safetensors"))
    with pytest.raises(DatasetError, match="activations.safetensors does not match the sha256"):
        read_dataset(target)


# --- merge -------------------------------------------------------------------------------------------


def test_a_failed_merge_leaves_nothing_and_a_killed_one_does_not_block_the_next(
        reference, tmp_path, monkeypatch) -> None:
    from deception_core.outputs import files as outputs

    source, _ = reference
    out = tmp_path / "merged"

    def broken(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_torch_export", broken)
    with pytest.raises(OSError):
        merge_runs(out, [source])
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.undo()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    leftover = tmp_path / f".merged.{MERGE_STAGING}-{dead.pid}-0000"
    (leftover / "dataset").mkdir(parents=True)
    merge_runs(out, [source])
    assert len(read_dataset(out)) == len(read_dataset(source))
    assert not leftover.exists()


# --- checkpoint shards are bound to their checkpoint ----------------------------------------------------


def test_an_edited_shard_with_a_recomputed_hash_is_replayed(tiny_model_dir, tmp_path, plugins, model, reference) -> None:
    ckpt = tmp_path / "ckpt"
    config = run_config(tiny_model_dir, tmp_path / "a", analyze=False, checkpoint_dir=str(ckpt))
    InterpretabilityRunner(config, plugins=plugins, model=model).run()
    key = "echo/emergent/high_incentive/00000"
    path = only_area(ckpt) / "trials" / shard_name(key)
    output = decode_trial(path.read_bytes(), key, load_or_create_key(ckpt))
    output.samples = [attrs.evolve(s, label="honest" if s.label == "deceptive" else "deceptive") for s in output.samples]
    path.write_bytes(encode_trial(output))  # the edit carries a correct plain sha256
    other = only_area(ckpt) / "trials" / shard_name("echo/emergent/low_incentive/00000")
    other_out = decode_trial(other.read_bytes(), "echo/emergent/low_incentive/00000", load_or_create_key(ckpt))
    other.write_bytes(encode_trial(other_out, b"k" * 32))  # signed, but with another checkpoint's key

    store = CheckpointStore(ckpt)
    config_b = run_config(tiny_model_dir, tmp_path / "b", analyze=False, checkpoint_dir=str(ckpt))
    InterpretabilityRunner(config_b, plugins=plugins, model=model, trial_sink=store).run()
    assert sorted(store.redone) == sorted([key, "echo/emergent/low_incentive/00000"])
    assert (store.resumed, store.saved) == (4, 2)
    assert read_exact(tmp_path / "b") == reference[1]


# --- disk full ---------------------------------------------------------------------------------------


@pytest.fixture()
def small_tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 1 MB tmpfs here (needs root): {done.stderr.decode().strip()[:200]}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_stops_with_a_clear_message_keeps_the_trials_and_resumes(
        tiny_model_dir, small_tmpfs, tmp_path, reference, cli_with_plugin) -> None:
    ckpt = tmp_path / "sizes"
    # batch size 1: each trial is written as soon as it is played, so the disk fills between trials
    config = run_config(tiny_model_dir, tmp_path / "sizes-run", analyze=False, report=False,
                        checkpoint_dir=str(ckpt), batch_size=1)
    InterpretabilityRunner(config, plugins=plugin_set(), model=load_tiny(tiny_model_dir)).run()
    page = os.statvfs(small_tmpfs).f_frsize

    def pages(n: int) -> int:
        return -(-n // page) * page

    shard = max(p.stat().st_size for p in (only_area(ckpt) / "trials").glob("*.safetensors"))
    header = sum(pages(p.stat().st_size) for p in (tmp_path / "sizes-run").iterdir() if p.is_file())
    room = header + 2 * page + 2 * pages(shard)  # the manifest, the key and two trials fit; six do not
    stats = os.statvfs(small_tmpfs)
    filler = stats.f_bavail * stats.f_frsize - room
    assert filler > 0
    (small_tmpfs / "filler").write_bytes(b"\0" * filler)

    out = small_tmpfs / "out"
    args = [*base_args(tiny_model_dir, out), "--no-analyze", "--batch-size", "1"]
    full = cli_with_plugin.invoke(cli, args)
    assert full.exit_code == 1, full.output
    assert "No space left on device" in full.output
    assert f"writing {out}" in full.output  # names the file
    assert "finished trial(s) are kept in" in full.output
    assert "re-run the same command to resume" in full.output
    assert "Traceback" not in full.output
    kept = len(list((only_area(out / "checkpoint") / "trials").glob("*.safetensors")))
    assert 1 <= kept < 6
    assert not (out / "dataset").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing half-written

    (small_tmpfs / "filler").unlink()
    resumed = cli_with_plugin.invoke(cli, args)
    assert resumed.exit_code == 0, resumed.output
    assert f"{kept} trial(s) resumed" in (out / "run.log").read_text()
    assert _without_plugins(read_exact(out)) == _without_plugins(read_exact(tmp_path / "sizes-run"))


def _without_plugins(content: dict) -> dict:
    """The plugin list names the test plugin differently in and out of process; the rest must be equal."""
    return {**content, "meta": {k: v for k, v in content["meta"].items() if k != "plugins"}}


def test_a_full_disk_during_merge_exits_1_with_the_file_named_and_leaves_nothing(
        reference, tmp_path, monkeypatch, cli_with_plugin) -> None:
    from deception_core.outputs import files as outputs

    source, _ = reference

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "merged" / "activations_emergent.pt"))

    monkeypatch.setattr(outputs, "write_torch_export", full)
    result = cli_with_plugin.invoke(cli, ["merge", str(tmp_path / "merged"), str(source)])
    assert result.exit_code == 1
    assert "No space left on device" in result.output
    assert "activations_emergent.pt" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_failing_analysis_leaves_no_new_analyze_output(reference, tmp_path, monkeypatch, cli_with_plugin) -> None:
    from deception_core.analyse import analyse

    source, _ = reference

    def broken(registry, dataset, out_dir, options, components=None):
        (Path(out_dir) / "half.json").write_text("{")
        raise OSError(28, "No space left on device", str(Path(out_dir) / "half.json"))

    monkeypatch.setattr(analyse, "run_analyses", broken)
    result = cli_with_plugin.invoke(cli, ["analyze", str(source), "--output", str(tmp_path / "analysis")])
    assert result.exit_code == 1
    assert list(tmp_path.iterdir()) == []
