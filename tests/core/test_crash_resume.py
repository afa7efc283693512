"""A real `deception run` in a subprocess, SIGKILLed at random points and resumed each time.

Four kill points, two of each kind in random order, each at a random step (the seed is printed;
set DECEPTION_CRASH_SEED to replay one): right after a reply was generated (a trial in flight),
and inside a checkpoint shard write (bytes in the temporary file, not yet fsynced or renamed). After every
kill the checkpoint must hold exactly the trials finished before it; after the last resume the
dataset must equal, byte for byte, an uninterrupted run with the same seed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reliability_plugin import HERE, MARKER_ENV, PAUSE_ENV, PLUGIN_REF, base_args, only_area, read_exact

from deception_core import InterpretabilityRunner
from deception_core.plugins import EXTRA_ENV, build_plugin_set

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and SIGKILL")


TRIALS = 4  # per condition: 8 trials, 2 replies each


def _env(pause: str | None, marker: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env[EXTRA_ENV] = PLUGIN_REF
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"  # see tests/conftest.py
    env.pop(PAUSE_ENV, None)
    if pause:
        env[PAUSE_ENV], env[MARKER_ENV] = pause, str(marker)
    return env


def _launch(args: list[str], pause: str | None, marker: Path) -> subprocess.Popen:
    marker.unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-m", "deception_core.cli", *args], env=_env(pause, marker),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _kill_when_paused(proc: subprocess.Popen, marker: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (rc {proc.returncode}) before its kill point:\n"
                                 f"{proc.stdout.read().decode(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the run never reached its kill point")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _shards(ckpt: Path) -> list[Path]:
    trials = only_area(ckpt) / "trials"
    return sorted(trials.glob("*.safetensors")) if trials.is_dir() else []


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tiny_model_dir, tmp_path, monkeypatch) -> None:
    seed = int(os.environ.get("DECEPTION_CRASH_SEED", random.randrange(2**31)))
    rng = random.Random(seed)
    total = 2 * TRIALS
    out, ckpt, marker = tmp_path / "out", tmp_path / "ckpt", tmp_path / "paused"
    # batch size 1: one trial in flight at a time, so each kill loses at most that trial
    args = base_args(tiny_model_dir, out, **{"--trials": TRIALS, "--checkpoint-dir": ckpt, "--batch-size": 1})
    args.append("--no-analyze")

    plan = ["gen", "write", "gen", "write"]
    rng.shuffle(plan)
    kills: list[str] = []
    for number, kind in enumerate(plan):
        done = len(_shards(ckpt))
        most = (total - done - 1) // (len(plan) - number)  # trials a kill may let finish, so all kills fit
        k = rng.randint(1, 2 * most + 1) if kind == "gen" else rng.randint(1, most + 1)
        proc = _launch(args, f"{kind}:{k}", marker)
        _kill_when_paused(proc, marker)
        kills.append(f"{kind}:{k}")
        finished = (k - 1) // 2 if kind == "gen" else k - 1
        # at most the trial in flight is lost; everything finished before the kill is on disk
        assert len(_shards(ckpt)) == done + finished, (seed, kills)
        if kind == "write":
            assert list((only_area(ckpt) / "trials").glob(".*")), "the kill should have left a half-done temporary file"
    assert len(kills) == 4, (seed, kills)

    before_final = len(_shards(ckpt))
    final = _launch(args, None, marker)
    output = final.communicate(timeout=120)[0].decode(errors="replace")
    assert final.returncode == 0, output[-3000:]
    assert before_final > 0
    assert f"{before_final} trial(s) resumed" in (out / "run.log").read_text()
    assert len(_shards(ckpt)) == total
    assert not list((only_area(ckpt) / "trials").glob(".*"))

    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)  # same plugin names as the subprocess, so meta matches
    from reliability_plugin import run_config

    config = run_config(tiny_model_dir, tmp_path / "uninterrupted", trials=TRIALS, analyze=False, batch_size=1)
    InterpretabilityRunner(config, plugins=build_plugin_set()).run()
    resumed, reference = read_exact(out), read_exact(tmp_path / "uninterrupted")
    keys = [line.split('"trial_key": "')[1].split('"')[0] for line in resumed["trials"].splitlines()]
    assert len(keys) == len(set(keys)) == total, "a trial was lost or duplicated"
    differing = {part: sorted(k for k in set(resumed[part]) | set(reference[part])
                              if resumed[part].get(k) != reference[part].get(k))
                 for part in ("meta", "arrays")}
    assert resumed == reference, f"resumed dataset differs (seed {seed}, kills {kills}): {differing}, " \
        f"meta {[(k, resumed['meta'].get(k), reference['meta'].get(k)) for k in differing['meta']]}"
    print(f"crash test: seed {seed}, {len(kills)} kill points: {', '.join(kills)}")
