"""The bad-input catalogue: every case exits 2 before expensive work, names the fix, writes nothing."""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from click.testing import CliRunner
from reliability_plugin import PLUGIN_REF, base_args, load_tiny, only_area, plugin_set, run_config

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


def _write(c, name: str, content) -> str:
    """A file of the case's own, under the test's tmp folder (before the snapshot is taken)."""
    path = c["tmp"] / "inputs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def _config(c, name: str, content, **flags) -> list[str]:
    return [*c["run"](**flags), "--config", _write(c, name, content)]


def _model_copy(c, damage: str) -> str:
    """A copy of the tiny model folder with one thing wrong."""
    target = c["tmp"] / "inputs" / f"model-{damage}"
    shutil.copytree(c["model"], target)
    config = json.loads((target / "config.json").read_text())
    if damage == "config-torn":
        (target / "config.json").write_text('{"num_hidden_layers": ')
    elif damage == "config-list":
        (target / "config.json").write_text("[1, 2]")
    elif damage == "config-binary":
        (target / "config.json").write_bytes(b"\xff\xfe\x00\x01binary")
    elif damage == "zero-layers":
        (target / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 0}))
    elif damage == "layers-string":
        (target / "config.json").write_text(json.dumps({**config, "num_hidden_layers": "4"}))
    elif damage == "no-tokenizer":
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (target / name).unlink(missing_ok=True)
    elif damage == "no-weights":
        (target / "model.safetensors").unlink()
    elif damage == "truncated-weights":
        data = (target / "model.safetensors").read_bytes()
        (target / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "garbage-weights":
        (target / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header....")
    return str(target)


def _dataset_copy(c, damage: str) -> str:
    """A copy of the good run whose dataset was changed after it was written."""
    import hashlib

    import numpy as np
    from safetensors.numpy import load_file, save_file

    target = c["tmp"] / "inputs" / f"run-{damage}"
    shutil.copytree(c["good"] / "run", target)
    dataset = target / "dataset"
    meta_path = dataset / "meta.json"
    meta = json.loads(meta_path.read_text())
    if damage == "flipped-label":
        lines = (dataset / "samples.jsonl").read_text().splitlines(keepends=True)
        record = json.loads(lines[0])
        record["label"] = "honest" if record["label"] == "deceptive" else "deceptive"
        lines[0] = json.dumps(record, sort_keys=True) + "\n"
        (dataset / "samples.jsonl").write_text("".join(lines))
    elif damage in ("huge-activation", "nan-rehashed"):
        arrays = load_file(str(dataset / "activations.safetensors"))
        key = sorted(k for k in arrays if k.startswith("layer"))[0]
        arrays[key] = arrays[key].copy()
        arrays[key][0, 0] = 1e30 if damage == "huge-activation" else np.nan
        save_file(arrays, str(dataset / "activations.safetensors"))
        if damage == "nan-rehashed":  # the sums recomputed too: the NaN itself must be caught
            digest = hashlib.sha256((dataset / "activations.safetensors").read_bytes()).hexdigest()
            meta["files"]["activations.safetensors"] = digest
            meta_path.write_text(json.dumps(meta))
    elif damage == "meta-list":
        meta_path.write_text("[]")
    elif damage == "meta-layers-string":
        meta_path.write_text(json.dumps({**meta, "layers": "1,2"}))
    elif damage == "meta-torn":
        meta_path.write_text(meta_path.read_text()[:40])
    elif damage == "meta-no-sum":
        del meta["files"]["samples.jsonl"]
        meta_path.write_text(json.dumps(meta))
    return str(target)


def _unfinished_run(c, **config_changes) -> str:
    """An output folder as a crashed run leaves it: config.json and run.log, no dataset."""
    folder = c["tmp"] / "inputs" / "unfinished"
    folder.mkdir(parents=True)
    config = json.loads((c["good"] / "run" / "config.json").read_text())
    config["config"].update(config_changes)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "run.log").write_text("started\n")
    return str(folder)


def _folder_with(c, name: str, files: dict[str, str]) -> str:
    folder = c["tmp"] / "inputs" / name
    folder.mkdir(parents=True)
    for file, text in files.items():
        (folder / file).write_text(text)
    return str(folder)


@attrs.frozen
class Case:
    build: Callable[[dict[str, Any]], list[str]]
    expected: tuple[str, ...]
    env: dict[str, str | None] = attrs.field(factory=dict)  # None removes the variable
    needs: str | None = None  # "together": the evaluator must be installed; "no-cuda", "no-mps", "no-nan"
    secret: str | None = None  # a value that must not appear in the output


KEY_WITH_NEWLINE = "sk-planted-Secret-4c1d\nX-Injected: 1"
KEY_WITH_TAB = "sk-planted-Secret-9e2f\t"
STATEMENTS = '{"text": "I paid 30 coins.", "label": "honest"}\n{"text": "I paid 50 coins.", "label": "deceptive"}\n'

CASES: dict[str, Case] = {
    # --- names the registry or the model decides ---------------------------------------------------
    "unknown-scenario": Case(lambda c: c["run"](**{"--scenario-name": "nope"}),
                             ("unknown scenario 'nope'", "Valid names:", "echo", "deception scenarios")),
    "scenarios-0": Case(lambda c: c["run"](**{"--scenario-name": None, "--scenarios": 0}),
                        ("--scenarios must be between 1 and", "--scenario-name")),
    "scenarios-7": Case(lambda c: c["run"](**{"--scenario-name": None, "--scenarios": 7}),
                        ("--scenarios must be between 1 and", "got 7", "--scenario-name")),
    "layer-beyond-depth": Case(lambda c: c["run"](**{"--layers": "1,9"}),
                               ("layer(s) [9] do not exist", "has 4 layers", "valid: 0 to 3")),
    "sae-layer-beyond-depth": Case(lambda c: [*c["run"](**{"--sae-layer": 9}), "--sae"],
                                   ("--sae-layer", "do not exist")),
    "unknown-evaluator": Case(lambda c: c["run"](**{"--evaluator": "oracle"}), ("unknown evaluator 'oracle'", "echo-judge")),
    # --- values of the wrong type or out of range (command line) ----------------------------------
    "unknown-dtype": Case(lambda c: c["run"](**{"--dtype": "float8"}), ("Invalid value for '--dtype'", "float32")),
    "unknown-device": Case(lambda c: c["run"](**{"--device": "tpu"}), ("Invalid value for '--device'", "cpu")),
    "cuda-without-cuda": Case(lambda c: c["run"](**{"--device": "cuda"}), ("CUDA is not available", "--device cpu"),
                              needs="no-cuda"),
    "mps-without-mps": Case(lambda c: c["run"](**{"--device": "mps"}), ("MPS", "is not available", "--device cpu"),
                            needs="no-mps"),
    "temperature-nan": Case(lambda c: c["run"](**{"--temperature": "nan"}), ("temperature must be a finite number",)),
    "temperature-inf": Case(lambda c: c["run"](**{"--temperature": "inf"}), ("temperature must be a finite number",)),
    "temperature-negative": Case(lambda c: c["run"](**{"--temperature": "-1"}), ("temperature must be 0 (greedy) or more",)),
    "top-p-above-1": Case(lambda c: c["run"](**{"--top-p": "1.5"}), ("top_p must be in (0, 1]",)),
    "trials-huge": Case(lambda c: c["run"](**{"--trials": 100000000}),
                        ("trials must be between 1 and 10000", "100000000")),
    "trials-not-a-number": Case(lambda c: c["run"](**{"--trials": "many"}), ("Invalid value for '--trials'",)),
    "batch-size-0": Case(lambda c: c["run"](**{"--batch-size": 0}), ("batch_size must be between 1 and",)),
    "max-tokens-0": Case(lambda c: c["run"](**{"--max-tokens": 0}), ("max_tokens must be between 1 and",)),
    "seed-negative": Case(lambda c: c["run"](**{"--seed": -1}), ("seed must be between 0 and",)),
    "positions-empty": Case(lambda c: c["run"](**{"--positions": ""}), ("positions is empty", "name at least one")),
    "positions-unknown": Case(lambda c: c["run"](**{"--positions": "middle"}), ("positions must be among", "reply_mean")),
    "layers-empty": Case(lambda c: c["run"](**{"--layers": ","}), ("--layers is empty",)),
    "layers-negative": Case(lambda c: c["run"](**{"--layers": "-1"}), ("0 or more",)),
    "bad-shard": Case(lambda c: c["run"](**{"--shard": "2/2"}), ("--shard needs 0 <= I < N", "2/2")),
    "shard-garbage": Case(lambda c: c["run"](**{"--shard": "half"}), ("--shard takes I/N",)),
    "sae-layer-without-sae": Case(lambda c: c["run"](**{"--sae-layer": 3}),
                                  ("--sae-layer takes effect only with --sae", "add --sae")),
    "sae-path-without-sae": Case(lambda c: c["run"](**{"--sae-path": c["tmp"]}), ("--sae-path takes effect only with --sae",)),
    "causal-samples-without-causal": Case(lambda c: c["run"](**{"--causal-samples": 3}),
                                          ("--causal-samples takes effect only with --causal",)),
    "hybrid-and-other-backend": Case(lambda c: [*c["run"](**{"--capture-backend": "hf"}), "--hybrid"],
                                     ("drop one of the two",)),
    # --- empty strings ----------------------------------------------------------------------------
    "output-empty": Case(lambda c: c["run"](**{"--output": ""}), ("output must not be empty",)),
    "checkpoint-dir-empty": Case(lambda c: c["run"](**{"--checkpoint-dir": ""}), ("checkpoint_dir must not be empty",)),
    "model-empty": Case(lambda c: c["run"](**{"--model": ""}), ("model must not be empty",)),
    "evaluator-empty": Case(lambda c: c["run"](**{"--evaluator": " "}), ("evaluator must not be empty",)),
    "config-path-empty": Case(lambda c: [*c["run"](), "--config", ""], ("--config is empty",)),
    "config-scenario-setting-misspelt": Case(
        lambda c: _config(c, "scenario.json", {"components": {"scenario": {"ultimatum_bluff": {"counterpat": "scripted"}}}}),
        ("scenario 'ultimatum_bluff'", "counterpat", "Valid keys: counterpart")),
    "config-judge-setting-unknown": Case(
        lambda c: _config(c, "judge.json", {"components": {"evaluator": {"local": {"temperature": 0}}}}),
        ("evaluator 'local'", "temperature", "Valid keys: max_dialogue_chars, max_new_tokens, mode")),
    "config-probe-setting-unknown": Case(
        lambda c: _config(c, "probes.json", {"components": {"analysis": {"probes": {"n_fold": 3}}}}),
        ("analysis 'probes'", "n_fold", "Valid keys: c_grid")),
    # --- config files -----------------------------------------------------------------------------
    "config-missing": Case(lambda c: [*c["run"](), "--config", str(c["tmp"] / "nope.json")], ("no such file",)),
    "config-is-a-folder": Case(lambda c: [*c["run"](), "--config", str(c["tmp"])], ("is not a file",)),
    "config-empty-file": Case(lambda c: _config(c, "empty.json", ""), ("is empty",)),
    "config-invalid-json": Case(lambda c: _config(c, "torn.json", '{"trials": 2,'), ("is not valid JSON", "fix the file")),
    "config-yaml-without-suffix": Case(lambda c: _config(c, "run.cfg", "trials: 2\n"),
                                       ("is not valid JSON", ".yaml or .yml suffix")),
    "config-invalid-yaml": Case(lambda c: _config(c, "torn.yaml", "trials: [2\n"), ("is not valid YAML",)),
    "config-a-list": Case(lambda c: _config(c, "list.json", [1, 2]), ("must hold a mapping", "it holds a list")),
    "config-yaml-a-string": Case(lambda c: _config(c, "str.yaml", "just words\n"), ("must hold a mapping", "a str")),
    "config-binary": Case(lambda c: _config(c, "binary.json", b"\x89PNG\r\n\x1a\n\xff\xfe\x00"), ("is not a text file",)),
    "config-unknown-key": Case(lambda c: _config(c, "typo.json", {"tirals": 2}),
                               ("unknown RunConfig key(s)", "tirals", "Valid keys:")),
    "config-fast-string": Case(lambda c: _config(c, "fast.json", {"fast": "no"}), ("fast must be true or false", "'no'")),
    "config-seed-string": Case(lambda c: _config(c, "seed.json", {"seed": "abc"}), ("seed must be an integer", "'abc'")),
    "config-trials-bool": Case(lambda c: _config(c, "trials-bool.json", {"trials": True}),
                               ("trials must be an integer", "true (a boolean)")),
    "config-trials-string": Case(lambda c: _config(c, "trials-str.json", {"trials": "2"}),
                                 ("trials must be an integer", "write 2 without quotes")),
    "config-trials-list-yaml": Case(lambda c: _config(c, "trials.yaml", "trials: [1]\n"), ("trials must be an integer",)),
    "config-temperature-nan": Case(lambda c: _config(c, "nan.json", '{"temperature": NaN}'),
                                   ("NaN is not a number a config may hold",)),
    "config-positions-number": Case(lambda c: _config(c, "positions.json", {"positions": 3}), ("positions must be a list",)),
    "config-layers-strings": Case(lambda c: _config(c, "layers.json", {"layers": ["a"]}), ("layers must be a list of integers",)),
    "config-output-empty": Case(lambda c: _config(c, "out.json", {"output": ""}), ("output must not be empty",)),
    "config-sae-layer-without-sae": Case(lambda c: _config(c, "sae.yaml", "sae_layer: 2\n"),
                                         ("--sae-layer takes effect only with --sae",)),
    # --- model folders, checked before anything loads ---------------------------------------------
    "model-is-a-file": Case(lambda c: c["run"](**{"--model": c["file"]}), ("is a file, not a model folder",)),
    "model-missing-path": Case(lambda c: c["run"](**{"--model": c["tmp"] / "no-model"}), ("no such directory",)),
    "model-config-torn": Case(lambda c: c["run"](**{"--model": _model_copy(c, "config-torn")}),
                              ("config.json is not valid JSON", "restore")),
    "model-config-list": Case(lambda c: c["run"](**{"--model": _model_copy(c, "config-list")}), ("not a JSON object",)),
    "model-config-binary": Case(lambda c: c["run"](**{"--model": _model_copy(c, "config-binary")}),
                                ("config.json is not a text file",)),
    "model-zero-layers": Case(lambda c: c["run"](**{"--model": _model_copy(c, "zero-layers")}),
                              ("num_hidden_layers = 0", "positive integer")),
    "model-layers-a-string": Case(lambda c: c["run"](**{"--model": _model_copy(c, "layers-string")}),
                                  ("num_hidden_layers = '4'",)),
    "model-no-tokenizer": Case(lambda c: c["run"](**{"--model": _model_copy(c, "no-tokenizer")}),
                               ("holds no tokenizer", "tokenizer.save_pretrained")),
    "model-no-weights": Case(lambda c: c["run"](**{"--model": _model_copy(c, "no-weights")}), ("holds no weights",)),
    "model-truncated-weights": Case(lambda c: c["run"](**{"--model": _model_copy(c, "truncated-weights")}),
                                    ("model.safetensors is truncated", "download the weights again")),
    "model-garbage-weights": Case(lambda c: c["run"](**{"--model": _model_copy(c, "garbage-weights")}),
                                  ("not a readable safetensors file",)),
    "unknown-embedded-model": Case(lambda c: c["run"](**{"--model": "embedded:nope"}), ("unknown embedded model",)),
    # --- output folders: a run never destroys an earlier run ---------------------------------------
    "unwritable-output": Case(lambda c: c["run"](**{"--output": c["file"] / "out"}), ("is a file, not a directory",)),
    "output-is-a-file": Case(lambda c: c["run"](**{"--output": c["file"]}), ("is a file",)),
    "output-holds-a-finished-run": Case(lambda c: c["run"](**{"--output": c["good"] / "run"}),
                                        ("is not empty", "never replaces an earlier one", "--overwrite")),
    "output-holds-other-files": Case(lambda c: c["run"](**{"--output": _folder_with(c, "mine", {"notes.txt": "x"})}),
                                     ("is not empty", "notes.txt", "new --output")),
    "overwrite-a-folder-that-is-no-run": Case(
        lambda c: [*c["run"](**{"--output": _folder_with(c, "mine2", {"notes.txt": "x"})}), "--overwrite"],
        ("not a deception run folder", "--overwrite only replaces")),
    "output-unfinished-run-other-settings": Case(
        lambda c: c["run"](**{"--output": _unfinished_run(c, max_tokens=9)}),
        ("unfinished run with different settings", "max_tokens", "resume")),
    # --- checkpoints ------------------------------------------------------------------------------
    "checkpoint-damaged-manifest": Case(lambda c: c["run"](**{"--checkpoint-dir": c["bad_ckpt"]}),
                                        ("manifest.json is not valid JSON", "Delete")),
    "checkpoint-manifest-wrong-shape": Case(
        lambda c: c["run"](**{"--checkpoint-dir": _folder_with(c, "ckpt-shape",
                                                                {"manifest.json": '{"format": 1, "identity": [1]}'})}),
        ("is not a deception checkpoint manifest",)),
    "checkpoint-dir-is-a-file": Case(lambda c: c["run"](**{"--checkpoint-dir": c["file"]}), ("is a file",)),
    # --- API keys and judge URLs ------------------------------------------------------------------
    "missing-key-together": Case(lambda c: c["run"](**{"--evaluator": "together"}),
                                 ("--evaluator together needs the environment variable TOGETHER_API_KEY", "export it"),
                                 env={"TOGETHER_API_KEY": None}, needs="together"),
    "missing-key-test-judge": Case(lambda c: c["run"](**{"--evaluator": "keyed-judge"}),
                                   ("needs the environment variable TOGETHER_API_KEY", "--evaluator local"),
                                   env={"TOGETHER_API_KEY": None}),
    "key-empty": Case(lambda c: c["run"](**{"--evaluator": "keyed-judge"}), ("TOGETHER_API_KEY is empty",),
                      env={"TOGETHER_API_KEY": "   "}),
    "key-with-newline": Case(lambda c: c["run"](**{"--evaluator": "keyed-judge"}),
                             ("TOGETHER_API_KEY contains control characters", "export the key again"),
                             env={"TOGETHER_API_KEY": KEY_WITH_NEWLINE}, secret="sk-planted-Secret-4c1d"),
    "key-with-tab-together": Case(lambda c: c["run"](**{"--evaluator": "together"}),
                                  ("TOGETHER_API_KEY contains control characters",),
                                  env={"TOGETHER_API_KEY": "sk-a\tb" + KEY_WITH_TAB}, needs="together",
                                  secret="sk-planted-Secret-9e2f"),
    "key-with-newline-google": Case(lambda c: c["run"](**{"--evaluator": "google"}),
                                    ("GOOGLE_API_KEY contains control characters",),
                                    env={"GOOGLE_API_KEY": KEY_WITH_NEWLINE}, needs="google",
                                    secret="sk-planted-Secret-4c1d"),
    "judge-url-plain-http": Case(lambda c: c["run"](**{"--evaluator": "together"}),
                                 ("plain http", "DECEPTION_ALLOW_HTTP=1"),
                                 env={"TOGETHER_API_KEY": "sk-planted-Secret-77aa",
                                      "DECEPTION_TOGETHER_BASE_URL": "http://judge.example.com",
                                      "DECEPTION_ALLOW_HTTP": None},
                                 needs="together", secret="sk-planted-Secret-77aa"),
    "judge-url-not-a-url": Case(lambda c: c["run"](**{"--evaluator": "google"}), ("is not an http(s) URL",),
                                env={"GOOGLE_API_KEY": "sk-planted-Secret-88bb",
                                     "DECEPTION_GOOGLE_BASE_URL": "ftp://judge.example.com"},
                                needs="google", secret="sk-planted-Secret-88bb"),
    # --- environment variables (typed like config values) ---------------------------------------
    "env-judge-timeout-not-a-number": Case(lambda c: c["run"](**{"--evaluator": "together"}),
                                           ("timeout must be a number", "'soon'", "DECEPTION_* environment"),
                                           env={"TOGETHER_API_KEY": "sk-planted-Secret-1", "DECEPTION_JUDGE_TIMEOUT": "soon"},
                                           needs="together", secret="sk-planted-Secret-1"),
    "env-judge-max-tries-0": Case(lambda c: c["run"](**{"--evaluator": "google"}), ("max_tries=0 must be positive",),
                                  env={"GOOGLE_API_KEY": "sk-planted-Secret-2", "DECEPTION_JUDGE_MAX_TRIES": "0"},
                                  needs="google"),
    "env-judge-concurrency-huge": Case(lambda c: c["run"](**{"--evaluator": "together"}), ("must be at most 256",),
                                       env={"TOGETHER_API_KEY": "sk-planted-Secret-3",
                                            "DECEPTION_JUDGE_CONCURRENCY": "100000"}, needs="together"),
    # --- analyze ----------------------------------------------------------------------------------
    "analyze-corrupt-activations": Case(lambda c: ["analyze", str(c["corrupt"]("activations"))],
                                        ("activations.safetensors does not match the sha256", "Restore the original")),
    "analyze-corrupt-samples": Case(lambda c: ["analyze", str(c["corrupt"]("samples"))],
                                    ("samples.jsonl does not match the sha256", "re-create the dataset")),
    "analyze-missing-rows": Case(lambda c: ["analyze", str(c["corrupt"]("rows"))],
                                 ("samples.jsonl does not match the sha256", "re-create")),
    "analyze-flipped-label": Case(lambda c: ["analyze", _dataset_copy(c, "flipped-label")],
                                  ("samples.jsonl does not match the sha256",)),
    "analyze-activation-1e30": Case(lambda c: ["analyze", _dataset_copy(c, "huge-activation")],
                                    ("activations.safetensors does not match the sha256",)),
    "analyze-nan-with-rehashed-meta": Case(lambda c: ["analyze", _dataset_copy(c, "nan-rehashed")],
                                           ("not finite (NaN or infinity)", "layer")),
    "analyze-meta-a-list": Case(lambda c: ["analyze", _dataset_copy(c, "meta-list")], ("meta.json is malformed", "a list")),
    "analyze-meta-layers-string": Case(lambda c: ["analyze", _dataset_copy(c, "meta-layers-string")],
                                       ("meta.json is malformed", "'layers'")),
    "analyze-meta-torn": Case(lambda c: ["analyze", _dataset_copy(c, "meta-torn")], ("meta.json is not valid JSON",)),
    "analyze-meta-missing-a-sum": Case(lambda c: ["analyze", _dataset_copy(c, "meta-no-sum")],
                                       ("lists no checksum for samples.jsonl",)),
    "analyze-not-a-dataset": Case(lambda c: ["analyze", str(c["tmp"])], ("holds no dataset", "deception run")),
    "analyze-output-is-a-file": Case(lambda c: ["analyze", str(c["good"] / "run"), "--output", str(c["file"])],
                                     ("--output", "is a file")),
    "analyze-output-not-empty": Case(
        lambda c: ["analyze", str(c["good"] / "run"), "--output", _folder_with(c, "full", {"notes.txt": "x"})],
        ("is not empty", "--overwrite")),
    "analyze-output-empty-string": Case(lambda c: ["analyze", str(c["good"] / "run"), "--output", ""], ("--output is empty",)),
    # --- merge ------------------------------------------------------------------------------------
    "merge-corrupt-dataset": Case(lambda c: ["merge", str(c["out"]), str(c["good"] / "run"), str(c["corrupt"]("activations"))],
                                  ("activations.safetensors does not match the sha256", "Restore")),
    "merge-flipped-label": Case(lambda c: ["merge", str(c["out"]), _dataset_copy(c, "flipped-label")],
                                ("samples.jsonl does not match the sha256",)),
    "merge-allow-difference-nonsense": Case(
        lambda c: ["merge", str(c["out"]), str(c["good"] / "run"), "--allow-difference", "nonsense"],
        ("--allow-difference 'nonsense'", "valid:", "seed")),
    "merge-output-not-empty": Case(
        lambda c: ["merge", _folder_with(c, "taken", {"notes.txt": "x"}), str(c["good"] / "run")],
        ("is not empty", "notes.txt", "--overwrite")),
    "merge-output-is-an-input": Case(lambda c: ["merge", str(c["good"] / "run" / "sub"), str(c["good"] / "run")],
                                     ("is inside the input",)),
    "merge-output-is-a-file": Case(lambda c: ["merge", str(c["file"]), str(c["good"] / "run")], ("is a file",)),
    # --- report, export, relabel, capture, saes, checkpoints ---------------------------------------
    "report-not-a-run": Case(lambda c: ["report", str(c["tmp"])], ("holds no dataset", "deception run")),
    "report-output-is-a-directory": Case(lambda c: ["report", str(c["good"] / "run"), "-o", str(c["tmp"])],
                                         ("'--output'", "is a directory")),
    "export-unknown-activations": Case(
        lambda c: ["export", str(c["good"] / "run"), "-o", str(c["out"] / "x.parquet"), "--activations", "99:reply_mean"],
        ("no activations for layer 99", "it has layers")),
    "export-activations-malformed": Case(
        lambda c: ["export", str(c["good"] / "run"), "-o", str(c["out"] / "x.parquet"), "--activations", "nonsense"],
        ("--activations takes LAYER:POSITION", "6:reply_mean")),
    "export-not-a-run": Case(lambda c: ["export", str(c["tmp"]), "-o", str(c["out"] / "x.parquet")],
                             ("holds no dataset", "deception run")),
    "export-unknown-format": Case(lambda c: ["export", str(c["good"] / "run"), "-o", str(c["out"]), "--format", "xml"],
                                  ("'xml' is not one of", "parquet")),
    "relabel-unknown-evaluator": Case(lambda c: ["relabel", str(c["good"] / "run"), "--evaluator", "oracle"],
                                      ("unknown evaluator 'oracle'", "Valid names:", "echo-judge")),
    "relabel-missing-key": Case(lambda c: ["relabel", str(c["good"] / "run"), "--evaluator", "together"],
                                ("TOGETHER_API_KEY", "--evaluator local"), env={"TOGETHER_API_KEY": None},
                                needs="together"),
    "relabel-not-a-run": Case(lambda c: ["relabel", str(c["tmp"])], ("holds no dataset", "deception run")),
    "relabel-unknown-label-policy": Case(lambda c: ["relabel", str(c["good"] / "run"), "--label-policy", "vote"],
                                         ("'vote' is not one of", "agree", "rule")),
    "capture-missing-data": Case(
        lambda c: ["capture", str(c["tmp"] / "nope.jsonl"), "-m", str(c["model"]), "-o", str(c["out"])],
        ("does not exist", "pass a .jsonl or .csv file")),
    "capture-unknown-format": Case(lambda c: ["capture", str(c["file"]), "-m", str(c["model"]), "-o", str(c["out"])],
                                   ("unknown format", "use .jsonl or .csv")),
    "capture-layer-out-of-range": Case(
        lambda c: ["capture", _write(c, "statements.jsonl", STATEMENTS), "-m", str(c["model"]), "--layers", "99",
                   "-o", str(c["out"])],
        ("--layers 99", "has decoder blocks 0..")),
    "capture-output-not-empty": Case(
        lambda c: ["capture", _write(c, "statements.jsonl", STATEMENTS), "-m", str(c["model"]),
                   "-o", _folder_with(c, "taken-capture", {"notes.txt": "x"})],
        ("is not empty", "choose a new --output")),
    "saes-negative-layer": Case(lambda c: ["saes", "--layer", "-3"], ("'--layer'", "x>=0")),
    "saes-layer-not-a-number": Case(lambda c: ["saes", "--layer", "six"], ("'--layer'", "'six' is not a valid integer")),
    "checkpoints-a-file": Case(lambda c: ["checkpoints", str(c["file"])], ("'DIRECTORY'", "is a file")),
    "checkpoints-missing": Case(lambda c: ["checkpoints", str(c["tmp"] / "nope")], ("'DIRECTORY'", "does not exist")),
}


def _skip_reason(case: Case) -> str | None:
    if case.needs in ("together", "google") and not _remote_evaluator_available(case.needs):
        return f"the {case.needs} evaluator is not installed in this checkout"
    if case.needs == "no-cuda" and _cuda():
        return "CUDA is available here"
    if case.needs == "no-mps" and _mps():
        return "MPS is available here"
    return None


def _mps() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _snapshot(*roots: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for root in roots for p in root.rglob("*")}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_the_fix_and_writes_nothing(case, good_run, tiny_model_dir, tmp_path, monkeypatch) -> None:
    spec = CASES[case]
    reason = _skip_reason(spec)
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)
    for name, value in spec.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    reset_plugin_set()

    def no_model(*_args, **_kwargs):
        raise AssertionError("a model was loaded for bad input")

    monkeypatch.setattr("deception_core.model.surface.load_model", no_model)
    out = tmp_path / "out"
    (tmp_path / "a-file").write_text("not a directory")
    bad_ckpt = tmp_path / "bad-ckpt"
    bad_ckpt.mkdir()
    (bad_ckpt / "manifest.json").write_text("{ torn")
    context = {
        "run": lambda **flags: base_args(tiny_model_dir, out, **flags),
        "file": tmp_path / "a-file", "good": good_run, "bad_ckpt": bad_ckpt, "tmp": tmp_path, "out": out,
        "model": tiny_model_dir, "corrupt": lambda damage: _corrupt_copy(good_run, tmp_path, damage),
    }
    args = spec.build(context)
    before = _snapshot(tmp_path, good_run, tiny_model_dir)
    try:
        result = CliRunner().invoke(cli, args)
    finally:
        reset_plugin_set()
    assert result.exit_code == 2, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # an answer, not a crash
    assert "Traceback" not in result.output
    for text in spec.expected:
        assert text in result.output, result.output
    if spec.secret:
        assert spec.secret not in result.output
    assert not out.exists(), "an output directory was created for bad input"
    assert _snapshot(tmp_path, good_run, tiny_model_dir) == before, "bad input changed or created files"
    assert json.loads((only_area(good_run / "ckpt") / "manifest.json").read_text())["identity"]["max_tokens"] == 6


def test_the_catalogue_covers_every_class_of_bad_input() -> None:
    """Each class of the issue's list has cases (the catalogue grows by class, not by example)."""
    prefixes = ("config-", "model-", "output-", "checkpoint-", "key-", "judge-url-", "env-", "analyze-", "merge-",
                "temperature-", "positions-", "trials-", "report-", "export-", "relabel-", "capture-", "saes-",
                "checkpoints-")
    for prefix in prefixes:
        assert sum(name.startswith(prefix) for name in CASES) >= 2, prefix
    assert len(CASES) >= 100
