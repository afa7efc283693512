"""The bad-input catalogue: every case exits 2 before expensive work, names the fix, writes nothing."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_checkpoint_plugin import PLUGIN_REF, base_args, load_tiny, only_area, plugin_set, run_config

from deception_core import InterpretabilityRunner
from deception_core.cli import cli
from deception_core.plugins import EXTRA_ENV, reset_plugin_set


@pytest.fixture(scope="module")
def good_run(tiny_model_dir, tmp_path_factory):
    """A finished run with a checkpoint (max_tokens 6) to corrupt and to resume with another config."""
    root = tmp_path_factory.mktemp("good")
    config = run_config(tiny_model_dir, root / "run", analyze=False, checkpoint_dir=str(root / "ckpt"))
    InterpretabilityRunner(config, plugins=plugin_set(), model=load_tiny(tiny_model_dir)).run()
    return root


def _corrupt_copy(good_run: Path, tmp: Path, damage: str) -> Path:
    target = tmp / f"corrupt-{damage}"
    shutil.copytree(good_run / "run", target)
    dataset = target / "dataset"
    if damage == "activations":
        data = (dataset / "activations.safetensors").read_bytes()
        (dataset / "activations.safetensors").write_bytes(data[: len(data) // 3])
    elif damage == "samples":
        (dataset / "samples.jsonl").write_text('{"sample_id": "x", "trial_key":\n')
    elif damage == "rows":
        lines = (dataset / "samples.jsonl").read_text().splitlines(keepends=True)
        (dataset / "samples.jsonl").write_text("".join(lines[:-1]))
    return target


def _remote_evaluator_available(name: str) -> bool:
    try:
        importlib.import_module(f"deception_scenarios.evaluators.{name}")
    except ImportError:
        return False
    return True


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# id -> (how to build the arguments, environment to drop, what the message must say, skip reason or None)
CASES = {
    "unknown-scenario": (lambda c: c["run"](**{"--scenario-name": "nope"}), (),
                         ["unknown scenario 'nope'", "Valid names:", "echo", "deception scenarios"]),
    "scenarios-0": (lambda c: c["run"](**{"--scenario-name": None, "--scenarios": 0}), (),
                    ["--scenarios must be between 1 and", "--scenario-name"]),
    "scenarios-7": (lambda c: c["run"](**{"--scenario-name": None, "--scenarios": 7}), (),
                    ["--scenarios must be between 1 and", "got 7", "--scenario-name"]),
    "layer-beyond-depth": (lambda c: c["run"](**{"--layers": "1,9"}), (),
                           ["layer(s) [9] do not exist", "has 4 layers", "valid: 0 to 3"]),
    "unknown-dtype": (lambda c: c["run"](**{"--dtype": "float8"}), (), ["Invalid value for '--dtype'", "float32"]),
    "unknown-device": (lambda c: c["run"](**{"--device": "tpu"}), (), ["Invalid value for '--device'", "cpu"]),
    "cuda-without-cuda": (lambda c: c["run"](**{"--device": "cuda"}), (),
                          ["CUDA is not available", "--device cpu"]),
    "missing-key-together": (lambda c: c["run"](**{"--evaluator": "together"}), ("TOGETHER_API_KEY",),
                             ["--evaluator together needs the environment variable TOGETHER_API_KEY", "export it"]),
    "missing-key-test-judge": (lambda c: c["run"](**{"--evaluator": "keyed-judge"}), ("TOGETHER_API_KEY",),
                               ["needs the environment variable TOGETHER_API_KEY", "--evaluator local"]),
    "unknown-evaluator": (lambda c: c["run"](**{"--evaluator": "oracle"}), (), ["unknown evaluator 'oracle'", "echo-judge"]),
    "unwritable-output": (lambda c: c["run"](**{"--output": c["file"] / "out"}), (),
                          ["is a file, not a directory"]),
    "bad-shard": (lambda c: c["run"](**{"--shard": "2/2"}), (), ["--shard needs 0 <= I < N", "2/2"]),
    "checkpoint-damaged-manifest": (lambda c: c["run"](**{"--checkpoint-dir": c["bad_ckpt"]}), (),
                                    ["manifest.json is not valid JSON", "Delete"]),
    "analyze-corrupt-activations": (lambda c: ["analyze", str(c["corrupt"]("activations"))], (),
                                    ["activations.safetensors cannot be read", "corrupt"]),
    "analyze-corrupt-samples": (lambda c: ["analyze", str(c["corrupt"]("samples"))], (),
                                ["samples.jsonl line 1 is not valid JSON", "corrupt"]),
    "analyze-missing-rows": (lambda c: ["analyze", str(c["corrupt"]("rows"))], (), ["does not match the 11 samples", "corrupt"]),
    "analyze-not-a-dataset": (lambda c: ["analyze", str(c["tmp"])], (), ["holds no dataset", "deception run"]),
    "merge-corrupt-dataset": (lambda c: ["merge", str(c["out"]), str(c["good"] / "run"), str(c["corrupt"]("activations"))],
                              (), ["cannot be read", "corrupt"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_the_fix_and_writes_nothing(case, good_run, tiny_model_dir, tmp_path, monkeypatch) -> None:
    build, drop_env, expected = CASES[case]
    if case == "missing-key-together" and not _remote_evaluator_available("together"):
        pytest.skip("the together evaluator is not installed in this checkout")
    if case == "cuda-without-cuda" and _cuda():
        pytest.skip("CUDA is available here")
    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)
    for name in drop_env:
        monkeypatch.delenv(name, raising=False)
    reset_plugin_set()

    def no_model(*_args, **_kwargs):
        raise AssertionError("a model was loaded for bad input")

    monkeypatch.setattr("deception_core.models.loading.load_model", no_model)
    out = tmp_path / "out"
    (tmp_path / "a-file").write_text("not a directory")
    bad_ckpt = tmp_path / "bad-ckpt"
    bad_ckpt.mkdir()
    (bad_ckpt / "manifest.json").write_text("{ torn")
    context = {
        "run": lambda **flags: base_args(tiny_model_dir, out, **flags),
        "file": tmp_path / "a-file", "good": good_run, "bad_ckpt": bad_ckpt, "tmp": tmp_path, "out": out,
        "corrupt": lambda damage: _corrupt_copy(good_run, tmp_path, damage),
    }
    args = build(context)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    ckpt_before = sorted(p.name for p in (only_area(good_run / "ckpt") / "trials").iterdir())
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        reset_plugin_set()
    assert result.exit_code == 2, (result.output, result.exception)
    for text in expected:
        assert text in result.output, result.output
    assert not out.exists(), "an output directory was created for bad input"
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert after == before, "bad input changed or created files"
    assert sorted(p.name for p in (only_area(good_run / "ckpt") / "trials").iterdir()) == ckpt_before
    assert json.loads((only_area(good_run / "ckpt") / "manifest.json").read_text())["identity"]["max_tokens"] == 6
