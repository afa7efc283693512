"""SAEs: the release table, the compatibility check before weights load, and sparse codes in a run."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from deception_core import RunConfig
from deception_core.dataset import read_dataset
from deception_core.errors import UsageError
from deception_core.sae import builtin_releases, resolve_sae
from deception_core.sae.encode import encode_matrix


def _save_sae(directory, d_in: int, hook_name: str, d_sae: int = 96, arch: str = "standard", seed: int = 0):
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig

    torch.manual_seed(seed)
    if arch == "jumprelu":
        sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=d_in, d_sae=d_sae, dtype="float32", device="cpu"))
        with torch.no_grad():
            sae.threshold.fill_(0.05)
    else:
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, dtype="float32", device="cpu"))
    sae.cfg.metadata.hook_name = hook_name
    sae.save_model(str(directory))
    return sae


@pytest.mark.parametrize("arch", ["standard", "jumprelu"])
def test_encoding_is_sparse_csr_and_matches_dense_codes(tmp_path, arch) -> None:
    sae = _save_sae(tmp_path / "sae", 16, "blocks.1.hook_resid_post", d_sae=40, arch=arch)
    x = np.random.default_rng(0).normal(size=(7, 16)).astype(np.float32)
    indices, values, offsets, mse = encode_matrix(sae, x, batch=3)
    dense = sae.encode(torch.from_numpy(x)).detach().numpy()
    assert offsets.dtype == np.int64
    assert indices.dtype == np.int32
    assert values.dtype == np.float32
    assert offsets.shape == (8,)
    assert offsets[-1] == len(indices) == len(values) == int((dense != 0).sum())
    rebuilt = np.zeros_like(dense)
    for row in range(7):
        rebuilt[row, indices[offsets[row]:offsets[row + 1]]] = values[offsets[row]:offsets[row + 1]]
    np.testing.assert_allclose(rebuilt, dense, rtol=1e-5, atol=1e-6)
    recon = sae.decode(torch.from_numpy(dense)).detach().numpy()
    np.testing.assert_allclose(mse, ((recon - x) ** 2).mean(axis=1), rtol=1e-5)


def test_release_table_ids_exist_in_sae_lens() -> None:
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    for release in builtin_releases():
        assert release.release in directory, release.release
        ids = set(directory[release.release].saes_map)
        for layer in release.layers:
            assert release.sae_id(layer) in ids, (release.release, layer)


def _resolve(**kw):
    base = dict(layer=12, releases=builtin_releases(), release=None, sae_id=None, path=None)
    return resolve_sae(**{**base, **kw})


def test_release_chosen_per_family_and_checked() -> None:
    gemma2 = _resolve(model_id="google/gemma-2-2b-it", model_type="gemma2", n_layers=26, d_model=2304)
    assert (gemma2.release, gemma2.sae_id, gemma2.d_sae) == (
        "gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical", 16384)
    gemma3 = _resolve(model_id="embedded:gemma-3-270m", model_type="gemma3_text", n_layers=18, d_model=640)
    assert (gemma3.release, gemma3.sae_id) == ("gemma-scope-2-270m-pt-res", "layer_12_width_16k_l0_medium")
    other_layer = _resolve(layer=3, model_id="google/gemma-3-270m", model_type="gemma3_text", n_layers=18, d_model=640)
    assert other_layer.release == "gemma-scope-2-270m-pt-res-all"
    assert other_layer.sae_id.startswith("layer_3_")
    with pytest.raises(UsageError, match=r"gemma-scope-2-270m-pt-res-all covers layer 3"):
        _resolve(layer=3, release="gemma-scope-2-270m-pt-res", model_id="x", model_type="gemma3_text",
                 n_layers=18, d_model=640)
    with pytest.raises(UsageError, match=r"--sae-id layer_5/width_16k/canonical is for layer 5.*--sae-layer 5"):
        _resolve(model_id="google/gemma-2-2b", model_type="gemma2", n_layers=26, d_model=2304,
                 sae_id="layer_5/width_16k/canonical")


def test_gemma1_with_gemma_scope_is_refused_naming_a_fitting_choice() -> None:
    with pytest.raises(UsageError) as error:
        _resolve(model_id="google/gemma-2b-it", model_type="gemma", n_layers=18, d_model=2048,
                 release="gemma-scope-2b-pt-res-canonical")
    message = str(error.value)
    assert "does not fit --model google/gemma-2b-it (model_type gemma, 18 layers, width 2048)" in message
    assert "--model google/gemma-2-2b --sae-release gemma-scope-2b-pt-res-canonical" in message
    with pytest.raises(UsageError, match="no known SAE release fits"):
        _resolve(model_id="google/gemma-2b-it", model_type="gemma", n_layers=18, d_model=2048)


@pytest.fixture()
def echo_env(monkeypatch, tiny_model_dir, fake_plugin_set):
    """Let the CLI (in this process) see the echo test scenario and judge."""
    from deception_core import plugins

    monkeypatch.setattr(plugins, "_CACHED", fake_plugin_set)
    return tiny_model_dir


def _cli(args):
    from deception_core.cli import cli

    return CliRunner().invoke(cli, args, catch_exceptions=False)


def test_cli_run_with_local_sae_stores_sparse_codes(echo_env, tmp_path) -> None:
    sae = _save_sae(tmp_path / "sae", 64, "blocks.2.hook_resid_post", d_sae=96, arch="jumprelu")
    out = tmp_path / "out"
    result = _cli(["run", "--model", str(echo_env), "--scenario-name", "echo", "--trials", "2", "--max-rounds", "2",
                   "--max-tokens", "5", "--evaluator", "echo-judge", "--layers", "0", "--sae", "--sae-layer", "2",
                   "--sae-path", str(tmp_path / "sae"), "--no-analyze", "--output", str(out)])
    assert result.exit_code == 0, result.output
    dataset = read_dataset(out)
    assert dataset.layers == [0, 2]
    meta = dataset.meta["sae"]
    assert meta["d_sae"] == 96
    assert meta["layer"] == 2
    assert meta["hook_name"] == "blocks.2.hook_resid_post"
    assert meta["path"].endswith("sae")
    assert meta["release"] is None
    n = len(dataset)
    for position in ("last_prompt", "reply_mean", "reply_last"):
        offsets = dataset.arrays[f"sae/{position}/offsets"]
        indices = dataset.arrays[f"sae/{position}/indices"]
        values = dataset.arrays[f"sae/{position}/values"]
        assert offsets.shape == (n + 1,)
        assert offsets.dtype == np.int64
        assert indices.dtype == np.int32
        assert values.dtype == np.float32
        assert len(indices) == offsets[-1]
        assert 0 < offsets[-1] < n * 96
        assert indices.max() < 96
        x = torch.from_numpy(dataset.matrix(2, position))
        dense = sae.encode(x).detach().numpy()
        for row in range(n):
            codes = np.zeros(96, np.float32)
            codes[indices[offsets[row]:offsets[row + 1]]] = values[offsets[row]:offsets[row + 1]]
            np.testing.assert_allclose(codes, dense[row], rtol=1e-5, atol=1e-6)
            expected = float(((sae.decode(torch.from_numpy(dense[row:row + 1])) - x[row]) ** 2).mean().detach())
            assert dataset.samples[row].sae_reconstruction_mse[position] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("case", ["d_in", "layer", "hook"])
def test_incompatible_local_sae_exits_2_before_weights_load(echo_env, tmp_path, monkeypatch, case) -> None:
    d_in, hook, message = {
        "d_in": (32, "blocks.2.hook_resid_post", r"d_in=32 but .* has width 64; use an SAE with d_in=64"),
        "layer": (64, "blocks.1.hook_resid_post", r"layer 1\) but --sae-layer is 2; pass --sae-layer 1"),
        "hook": (64, "blocks.2.hook_mlp_out", r"reads hook 'blocks.2.hook_mlp_out'.*blocks.2.hook_resid_post"),
    }[case]
    _save_sae(tmp_path / "sae", d_in, hook)
    from deception_core.models import loading

    def refuse(*a, **k):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(loading, "load_model", refuse)
    out = tmp_path / "out"
    result = CliRunner().invoke(__import__("deception_core.cli", fromlist=["cli"]).cli,
                                ["run", "--model", str(echo_env), "--scenario-name", "echo", "--evaluator", "echo-judge",
                                 "--sae", "--sae-layer", "2", "--sae-path", str(tmp_path / "sae"), "--output", str(out)])
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output.replace("\n", " ")), result.output
    assert not out.exists()


def test_gemma1_config_with_gemma_scope_exits_2_without_weights(echo_env, tmp_path) -> None:
    model_dir = tmp_path / "gemma-2b-it"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({
        "model_type": "gemma", "num_hidden_layers": 18, "hidden_size": 2048, "architectures": ["GemmaForCausalLM"]}))
    result = _cli(["run", "--model", str(model_dir), "--scenario-name", "echo", "--evaluator", "echo-judge",
                   "--sae", "--sae-layer", "12", "--sae-release", "gemma-scope-2b-pt-res-canonical",
                   "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "Gemma Scope" in result.output
    assert "--model google/gemma-2-2b" in result.output


def test_sae_options_without_sae_flag_are_refused(echo_env, tmp_path) -> None:
    with pytest.raises(UsageError, match="only with --sae"):  # refused when the config is built
        RunConfig(model=str(echo_env), scenario_names=["echo"], evaluator="echo-judge",
                  sae_path=str(tmp_path), output=str(tmp_path / "out"))
