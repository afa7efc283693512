"""Resume at a batch size above 1 gives the same dataset, byte for byte, as an uninterrupted run.

Batches are cut from waves of the run's full plan, not from what is left to play, so a resumed
run meets the same batch partners. The run is killed inside the third checkpoint write (the
first wave half saved), then resumed.
"""

from __future__ import annotations

import sys

import pytest
from test_checkpoint_plugin import PLUGIN_REF, base_args, read_exact
from test_crash_resume import _kill_when_paused, _launch, _shards

from deception_core import InterpretabilityRunner
from deception_core.plugins import EXTRA_ENV, build_plugin_set

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and SIGKILL")


def test_resume_at_batch_size_4_equals_uninterrupted(tiny_model_dir, tmp_path, monkeypatch) -> None:
    out, ckpt, marker = tmp_path / "out", tmp_path / "ckpt", tmp_path / "paused"
    # 6 trials per condition = 12 trials: waves of 8 and 4 at batch size 4
    args = base_args(tiny_model_dir, out, **{"--trials": 6, "--checkpoint-dir": ckpt, "--batch-size": 4})
    args.append("--no-analyze")
    proc = _launch(args, "write:3", marker)
    _kill_when_paused(proc, marker)
    assert len(_shards(ckpt)) == 2
    final = _launch(args, None, marker)
    output = final.communicate(timeout=180)[0].decode(errors="replace")
    assert final.returncode == 0, output[-3000:]
    assert "2 trial(s) resumed" in (out / "run.log").read_text()

    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)
    from test_checkpoint_plugin import run_config

    config = run_config(tiny_model_dir, tmp_path / "uninterrupted", trials=6, analyze=False, batch_size=4)
    InterpretabilityRunner(config, plugins=build_plugin_set()).run()
    assert read_exact(out) == read_exact(tmp_path / "uninterrupted")
