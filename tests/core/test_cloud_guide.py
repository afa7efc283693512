"""The cloud guide's example commands, as its users type them, on tiny local models.

The eleven `deception run` examples of the predecessor's cloud guide (RunPod guide, sections 6 to
8) are transcribed below; only ``--model`` (a local tiny model instead of a hub id), ``--device``
(cpu: no CUDA here) and the output folders are swapped. Every command must get past validation, or
exit 2 naming a release or a layer that fits. With a tiny Gemma-3 model and a random local SAE
(``--sae-path``), the ``--sae`` examples run end to end, with trials, rounds and tokens cut down.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

GUIDE_COMMANDS = {
    "quick-test": "--scenarios 1 --trials 2 --max-rounds 2 --hybrid --device cuda --dtype bfloat16",
    "development": "--scenarios 3 --trials 10 --max-rounds 3 --mode both --fast --hybrid --sae --sae-layer 12 "
                   "--device cuda --dtype bfloat16",
    "full-experiment": "--scenarios 6 --trials 50 --max-rounds 3 --mode both --hybrid --sae --sae-layer 20 --causal "
                       "--causal-samples 30 --checkpoint-dir CKPT --device cuda --dtype bfloat16",
    "copy-quick-test": "--scenarios 1 --trials 1 --max-rounds 2 --mode both --hybrid --device cuda --dtype bfloat16",
    "copy-development": "--scenarios 3 --trials 10 --max-rounds 3 --mode both --fast --hybrid --sae --sae-layer 12 "
                        "--device cuda --dtype bfloat16 --checkpoint-dir CKPT",
    "copy-full": "--scenarios 6 --trials 50 --max-rounds 3 --mode both --hybrid --sae --sae-layer 20 --causal "
                 "--causal-samples 30 --device cuda --dtype bfloat16 --checkpoint-dir CKPT",
    "pod-ultimatum": "--scenario-name ultimatum_bluff --mode both --trials 50 --max-rounds 3 --hybrid --sae "
                     "--sae-layer 12 --device cuda --dtype bfloat16",
    "pod-alliance": "--scenario-name alliance_betrayal --mode both --trials 50 --max-rounds 3 --hybrid --sae "
                    "--sae-layer 12 --device cuda --dtype bfloat16",
    "resume": "--scenarios 6 --trials 50 --mode both --hybrid --sae --sae-layer 12 --causal --checkpoint-dir CKPT",
    "budget": "--scenarios 6 --trials 25 --mode both --fast --hybrid --sae --sae-layer 12 --device cuda "
              "--dtype bfloat16",
    "research": "--scenarios 6 --trials 40 --mode both --hybrid --sae --sae-layer 20 --causal --causal-samples 20 "
                "--device cuda --dtype bfloat16 --checkpoint-dir CKPT",
}


class _Validated(Exception):
    pass


def _args(name: str, model, tmp_path, **swap: str) -> list[str]:
    words = GUIDE_COMMANDS[name].replace("CKPT", str(tmp_path / "ckpt")).split()
    words = ["cpu" if w == "cuda" else w for w in words]
    for flag, value in swap.items():
        if flag in words:
            words[words.index(flag) + 1] = value
        else:
            words += [flag, value]
    return ["run", "--model", str(model), *words, "--output", str(tmp_path / name)]


@pytest.fixture()
def validate_only(monkeypatch):
    """The CLI as typed, stopped once the run is validated (before any model loads)."""
    from deception_core import pipeline as runner

    class Checked(runner.InterpretabilityRunner):
        def run(self):
            self.validate()
            raise click.exceptions.Exit(0)

    monkeypatch.setattr(runner, "InterpretabilityRunner", Checked)


@pytest.mark.parametrize("name", sorted(GUIDE_COMMANDS))
def test_guide_command_on_a_tiny_model_validates_or_names_what_fits(name, tiny_model_dir, tmp_path, validate_only):
    from deception_core.cli import cli

    result = CliRunner().invoke(cli, _args(name, tiny_model_dir, tmp_path))
    if "--sae" not in GUIDE_COMMANDS[name]:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    message = result.output.replace("\n", " ")
    # the tiny model has 4 layers: the guide's --sae-layer does not exist, and the message names those that do
    assert "valid: 0 to 3" in message


def test_guide_sae_command_with_a_layer_that_exists_names_fitting_releases(tiny_model_dir, tmp_path, validate_only):
    from deception_core.cli import cli

    result = CliRunner().invoke(cli, _args("development", tiny_model_dir, tmp_path, **{"--sae-layer": "2"}))
    assert result.exit_code == 2
    message = result.output.replace("\n", " ")
    assert "no sae-lens SAE fits --model" in message
    assert "--sae-release gemma-2b-it-res-jb --sae-layer 12" in message or "--sae-release" in message
    assert "--sae-path DIR" in message


@pytest.fixture(scope="module")
def tiny_gemma3(tmp_path_factory):
    """A tiny random Gemma-3 text model, deep enough for the guide's SAE layers 12 and 20."""
    from deception_core.testing.tiny_models import save_tiny_model

    return save_tiny_model(tmp_path_factory.mktemp("gemma3") / "tiny-gemma-3", arch="gemma3", n_layers=21,
                           d_model=32)


def _random_sae(directory, layer: int, d_in: int = 32):
    import torch
    from sae_lens import StandardSAE, StandardSAEConfig

    torch.manual_seed(layer)
    sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=48, dtype="float32", device="cpu"))
    sae.cfg.metadata.hook_name = f"blocks.{layer}.hook_resid_post"
    sae.save_model(str(directory))
    return directory


def _effective(name: str) -> tuple[str, ...]:
    """The example's flags as a run sees them once trials, rounds, tokens and samples are cut down."""
    words = _args(name, "MODEL", Path("TMP"), **_SWAP, **_causal_swap(name))[:-2]  # without --output
    pairs = []
    for i, word in enumerate(words):
        if word.startswith("--"):
            value = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else ""
            pairs.append(f"{word}={value}")
    return tuple(sorted(pairs))


_SWAP = {"--trials": "1", "--max-rounds": "1", "--max-tokens": "4"}


def _causal_swap(name: str) -> dict[str, str]:
    causal = "--causal-samples" in GUIDE_COMMANDS[name] or "--causal" in GUIDE_COMMANDS[name].split()
    return {"--causal-samples": "2"} if causal else {}


def _run_sae_example(name, model, tmp_path, **more):
    from deception_core.cli import cli
    from deception_core.store import read_dataset

    layer = 20 if "--sae-layer 20" in GUIDE_COMMANDS[name] else 12
    swap = {**_SWAP, "--sae-path": str(_random_sae(tmp_path / "sae", layer)), **_causal_swap(name), **more}
    result = CliRunner().invoke(cli, _args(name, model, tmp_path, **swap), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    dataset = read_dataset(tmp_path / name)
    assert dataset.meta.sae["layer"] == layer
    assert dataset.meta.sae["hook_name"] == f"blocks.{layer}.hook_resid_post"
    assert dataset.arrays["sae/reply_mean/offsets"].shape == (len(dataset) + 1,)
    return dataset


#: the example the default suite runs end to end (below)
DEFAULT_SUITE_EXAMPLE = "pod-alliance"


def test_guide_development_example_runs_end_to_end_with_a_local_sae(tiny_gemma3, tmp_path) -> None:
    dataset = _run_sae_example(DEFAULT_SUITE_EXAMPLE, tiny_gemma3, tmp_path)
    assert {s.mode for s in dataset.samples} == {"emergent", "instructed"}
    assert dataset.meta.capture_backend == "hybrid"


def _distinct_sae_examples() -> dict[tuple[str, ...], list[str]]:
    """The --sae examples grouped by what a run sees once cut down: several of the guide's examples are the
    same run then (e.g. full-experiment, copy-full and research), and one run serves them all."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name in sorted(n for n, c in GUIDE_COMMANDS.items() if "--sae" in c):
        groups.setdefault(_effective(name), []).append(name)
    return groups


def test_examples_that_share_a_run_are_the_same_run_once_cut_down() -> None:
    groups = {tuple(names) for names in _distinct_sae_examples().values()}
    assert ("copy-full", "full-experiment", "research") in groups
    assert ("pod-alliance",) in groups
    assert sum(len(g) for g in groups) == sum("--sae" in c for c in GUIDE_COMMANDS.values()) == 9
    assert _effective("development") != _effective("copy-development")  # --checkpoint-dir differs


@pytest.mark.slow
@pytest.mark.parametrize("names", [names for names in _distinct_sae_examples().values()
                                   if DEFAULT_SUITE_EXAMPLE not in names], ids="+".join)
def test_every_guide_sae_example_runs_end_to_end_with_a_local_sae(names, tiny_gemma3, tmp_path) -> None:
    dataset = _run_sae_example(names[0], tiny_gemma3, tmp_path)
    assert {s.mode for s in dataset.samples} == {"emergent", "instructed"}
