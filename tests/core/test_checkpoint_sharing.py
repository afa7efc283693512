"""One checkpoint folder, several processes: claims, expiry of a dead process's claims, safe clean-up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import attrs
import pytest
from reliability_plugin import DELAY_ENV, HERE, PLUGIN_REF, base_args, only_area, read_exact

from deception_core.checkpoints.checkpoint import CLAIM_SUFFIX, CheckpointStore, _host, list_areas
from deception_core.plugins import EXTRA_ENV

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses process ids and /proc")


@attrs.frozen
class _Spec:
    key: str


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _store(tmp_path: Path, **kw) -> CheckpointStore:
    store = CheckpointStore(tmp_path / "ckpt", **kw)
    store.trials_dir.mkdir(parents=True)
    return store


def _claim_file(store: CheckpointStore, key: str) -> Path:
    return store.trials_dir / (key.replace("/", "--") + CLAIM_SUFFIX)


def test_two_processes_on_one_checkpoint_play_each_trial_once(tiny_model_dir, tmp_path) -> None:
    ckpt = tmp_path / "ckpt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.update({EXTRA_ENV: PLUGIN_REF, DELAY_ENV: "0.4", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    procs = []
    for name in ("a", "b"):
        # batch size 1: one trial per wave, so the two processes can share the plan (a wave is claimed whole)
        args = base_args(tiny_model_dir, tmp_path / name, **{"--trials": 4, "--checkpoint-dir": ckpt,
                                                             "--batch-size": 1})
        procs.append(subprocess.Popen([sys.executable, "-m", "deception_core.cli", *args, "--no-analyze"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for proc in procs:
        output = proc.communicate(timeout=300)[0].decode(errors="replace")
        assert proc.returncode == 0, output[-3000:]
    resumed, saved, others = [], [], []
    for name in ("a", "b"):
        line = re.search(r"(\d+) trial\(s\) resumed, (\d+) saved this run, (\d+) played by other processes",
                         (tmp_path / name / "run.log").read_text())
        resumed.append(int(line.group(1)))
        saved.append(int(line.group(2)))
        others.append(int(line.group(3)))
    assert sum(saved) == 8  # 4 trials x 2 conditions, each played exactly once
    assert min(saved) > 0  # both processes played some
    # each read the other's trials from the folder, at its start (resumed) or while it ran
    assert [r + o for r, o in zip(resumed, others, strict=True)] == [saved[1], saved[0]]
    assert len(list((only_area(ckpt) / "trials").glob("*.safetensors"))) == 8
    assert not list((only_area(ckpt) / "trials").glob("*" + CLAIM_SUFFIX))
    assert read_exact(tmp_path / "a") == read_exact(tmp_path / "b")


def test_a_claim_keeps_other_processes_off_until_its_owner_dies(tmp_path) -> None:
    store = _store(tmp_path)
    spec = _Spec("echo/emergent/high_incentive/00000")
    path = _claim_file(store, spec.key)
    path.write_text(json.dumps({"host": _host(), "pid": os.getppid(), "token": "someone-else"}))  # a live process
    assert store.claim([spec]) == []
    path.write_text(json.dumps({"host": _host(), "pid": _dead_pid(), "token": "crashed"}))
    assert store.claim([spec]) == [spec]  # a dead owner's claim is taken over at once
    assert json.loads(path.read_text())["token"] == store.token
    store.close()
    assert not path.exists()  # given back


def test_a_claim_from_another_host_expires_after_the_ttl(tmp_path) -> None:
    store = _store(tmp_path, claim_ttl=30)
    spec = _Spec("echo/emergent/low_incentive/00003")
    path = _claim_file(store, spec.key)
    path.write_text(json.dumps({"host": "other-pod", "pid": 1, "token": "remote"}))
    assert store.claim([spec]) == []  # fresh: its owner is playing it
    old = time.time() - 31
    os.utime(path, (old, old))
    assert store.claim([spec]) == [spec]
    assert not list(store.trials_dir.glob("*.stale-*"))
    store.close()


def test_waiting_ends_when_the_other_claim_expires(tmp_path) -> None:
    store = _store(tmp_path, claim_ttl=0.5, poll_seconds=0.05)
    spec = _Spec("echo/emergent/low_incentive/00001")
    _claim_file(store, spec.key).write_text(json.dumps({"host": "other-pod", "pid": 1, "token": "remote"}))
    started = time.monotonic()
    assert store.wait_for([spec]) == {}
    assert 0.4 < time.monotonic() - started < 10
    assert store.claim([spec]) == [spec]
    store.close()


def test_heartbeat_keeps_a_held_claim_fresh(tmp_path) -> None:
    import threading

    store = _store(tmp_path, claim_ttl=0.4)
    spec = _Spec("echo/emergent/high_incentive/00002")
    assert store.claim([spec]) == [spec]
    path = _claim_file(store, spec.key)
    beat = threading.Thread(target=store._heartbeat, daemon=True)
    beat.start()
    time.sleep(1.0)
    other = CheckpointStore(tmp_path / "ckpt", claim_ttl=0.4)
    other.trials_dir = store.trials_dir
    record = json.loads(path.read_text())
    record["host"] = "other-pod"  # judged by age alone, as a process on another host would
    assert not other._stale(path, record)
    store.close()
    beat.join(timeout=2)


def test_clean_up_spares_dotfiles_symlinks_and_live_writers(tmp_path) -> None:
    store = _store(tmp_path, claim_ttl=60)
    trials = store.trials_dir
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / ".secret").write_text("keep")
    (outside / "target.tmp").write_text("keep")
    keep = {
        ".gitkeep": "", ".notes.tmp": "mine",
        f".x.safetensors.{_host()}.{os.getpid()}.0123abcd.tmp": "a live writer (this process)",
        ".y.safetensors.other-pod.77.0123abcd.tmp": "a writer on another host, recent",
    }
    for name, text in keep.items():
        (trials / name).write_text(text)
    (trials / ".linked-dir").symlink_to(outside, target_is_directory=True)
    dead = _dead_pid()
    link_name = f".z.safetensors.{_host()}.{dead}.0123abcd.tmp"
    (trials / link_name).symlink_to(outside / "target.tmp")  # the right name, but a link: never followed or removed
    gone = trials / f".w.safetensors.{_host()}.{dead}.0123abcd.tmp"
    gone.write_text("a dead writer's half file")
    removed = store.clean_up()
    assert removed == [gone]
    for name in keep:
        assert (trials / name).exists(), name
    assert (trials / link_name).is_symlink()
    assert (outside / ".secret").read_text() == "keep"
    assert (outside / "target.tmp").read_text() == "keep"


def test_clean_up_does_nothing_through_a_symlinked_trials_folder(tmp_path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    stale = outside / f".w.safetensors.{_host()}.{_dead_pid()}.0123abcd.tmp"
    stale.write_text("not ours to judge")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "trials").symlink_to(outside, target_is_directory=True)
    store = CheckpointStore(tmp_path / "ckpt")
    assert store.clean_up() == []
    assert stale.exists()


def test_listing_an_empty_folder_says_so(tmp_path) -> None:
    assert list_areas(tmp_path) == []
