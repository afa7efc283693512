"""SAEs: the release table, the compatibility check before weights load, and sparse codes in a run."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from deception_core import RunConfig
from deception_core.base.errors import UsageError
from deception_core.sae import resolve_sae, sae_lens_directory
from deception_core.sae.encode import encode_matrix
from deception_core.store import read_dataset


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


def test_directory_reading_agrees_with_sae_lens_reader() -> None:
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    directory = get_pretrained_saes_directory()
    ours = sae_lens_directory()
    assert {s.release for s in ours} <= set(directory)
    for sae in ours:
        lookup = directory[sae.release]
        assert sae.sae_id in lookup.saes_map
        assert sae.neuronpedia_id == lookup.neuronpedia_id[sae.sae_id]
        assert sae.model == lookup.model
    parsed_ids = {(s.release, s.sae_id) for s in ours}
    assert ("gemma-2b-it-res-jb", "blocks.12.hook_resid_post") in parsed_ids


def test_entry_parsing_reads_layer_hook_and_width() -> None:
    from deception_core.sae.releases import parse_entry

    jb = parse_entry("gemma-2b-it-res-jb", "gemma-2b-it", {
        "id": "blocks.12.hook_resid_post", "path": "gemma_2b_it_blocks.12.hook_resid_post_16384", "l0": 61.0,
        "neuronpedia": "gemma-2b-it/12-res-jb"})
    assert (jb.layer, jb.hook, jb.width, jb.l0, jb.neuronpedia_id) == (12, "resid_post", "16384", 61.0,
                                                                      "gemma-2b-it/12-res-jb")
    scope = parse_entry("gemma-scope-2b-pt-res-canonical", "gemma-2-2b",
                        {"id": "layer_5/width_16k/canonical", "path": "layer_5/width_16k/average_l0_68"})
    assert (scope.layer, scope.hook, scope.width) == (5, "resid_post", "16k")
    scope2 = parse_entry("gemma-scope-2-270m-pt-mlp", "google/gemma-3-270m",
                         {"id": "layer_3_width_16k_l0_small", "path": "mlp_out/layer_3_width_16k_l0_small"})
    assert (scope2.layer, scope2.hook) == (3, "mlp_out")
    assert parse_entry("gemma-scope-2b-pt-res", "gemma-2-2b", {"id": "embedding/width_4k/average_l0_6",
                                                               "path": "embedding/width_4k/average_l0_6"}) is None


def _resolve(**kw):
    base = dict(layer=12, saes=sae_lens_directory(), release=None, sae_id=None, path=None)
    return resolve_sae(**{**base, **kw})


def test_guide_choice_gemma_2b_it_layer_12_resolves_to_its_jb_release() -> None:
    choice = _resolve(model_id="google/gemma-2b-it", model_type="gemma", n_layers=18, d_model=2048)
    assert (choice.release, choice.sae_id) == ("gemma-2b-it-res-jb", "blocks.12.hook_resid_post")
    assert choice.hook_name == "blocks.12.hook_resid_post"
    assert choice.neuronpedia_id == "gemma-2b-it/12-res-jb"


def test_release_chosen_per_family_and_checked() -> None:
    gemma2 = _resolve(model_id="google/gemma-2-2b-it", model_type="gemma2", n_layers=26, d_model=2304)
    assert (gemma2.release, gemma2.sae_id) == ("gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical")
    gemma3 = _resolve(model_id="embedded:gemma-3-270m", model_type="gemma3_text", n_layers=18, d_model=640)
    assert (gemma3.release, gemma3.sae_id) == ("gemma-scope-2-270m-pt-res", "layer_12_width_16k_l0_medium")
    other_layer = _resolve(layer=3, model_id="google/gemma-3-270m", model_type="gemma3_text", n_layers=18, d_model=640)
    assert other_layer.release == "gemma-scope-2-270m-pt-res-all"
    assert other_layer.sae_id.startswith("layer_3_")
    with pytest.raises(UsageError, match=r"gemma-scope-2-270m-pt-res-all covers layer 3"):
        _resolve(layer=3, release="gemma-scope-2-270m-pt-res", model_id="google/gemma-3-270m",
                 model_type="gemma3_text", n_layers=18, d_model=640)
    with pytest.raises(UsageError, match=r"--sae-id layer_5/width_16k/canonical is for layer 5.*--sae-layer 5"):
        _resolve(model_id="google/gemma-2-2b", model_type="gemma2", n_layers=26, d_model=2304,
                 release="gemma-scope-2b-pt-res-canonical", sae_id="layer_5/width_16k/canonical")


def test_release_of_another_model_is_refused_naming_a_fitting_choice() -> None:
    with pytest.raises(UsageError) as error:
        _resolve(model_id="google/gemma-2b-it", model_type="gemma", n_layers=18, d_model=2048,
                 release="gemma-scope-2b-pt-res-canonical")
    message = str(error.value)
    assert "trained on gemma-2-2b, which does not fit --model google/gemma-2b-it" in message
    assert "--sae-release gemma-2b-it-res-jb --sae-id blocks.12.hook_resid_post" in message


def test_layer_without_sae_names_the_layers_that_have_one() -> None:
    with pytest.raises(UsageError, match=r"reads --sae-layer 13.*gemma-2b-it-res-jb with --sae-layer 12"):
        _resolve(layer=13, model_id="google/gemma-2b-it", model_type="gemma", n_layers=18, d_model=2048)


def test_model_without_directory_sae_names_models_that_have_one() -> None:
    with pytest.raises(UsageError) as error:
        _resolve(model_id="/tmp/tiny", model_type="llama", n_layers=4, d_model=64, names=["tiny"])
    message = str(error.value)
    assert "no sae-lens SAE fits --model /tmp/tiny" in message
    assert "--sae-path DIR" in message
    assert "--sae-release" in message


def test_cli_saes_lists_the_guide_release_offline(monkeypatch) -> None:
    from deception_core.cli import cli

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(cli, ["saes", "--model", "google/gemma-2b-it", "--layer", "12"])
    assert result.exit_code == 0, result.output
    row = next(line.split() for line in result.output.splitlines() if line.startswith("gemma-2b-it-res-jb"))
    assert row == ["gemma-2b-it-res-jb", "blocks.12.hook_resid_post", "12", "16384", "61", "gemma-2b-it/12-res-jb"]


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
    from deception_core.model import surface

    def refuse(*a, **k):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(surface, "load_model", refuse)
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
    message = result.output.replace("\n", " ")
    assert "gemma-scope-2b-pt-res-canonical was trained on gemma-2-2b" in message
    assert "--sae-release gemma-2b-it-res-jb --sae-id blocks.12.hook_resid_post" in message


def test_the_sae_settings_are_the_sae_components(echo_env, tmp_path) -> None:
    """In Python the SAE is a component (``--sae-path`` without ``--sae`` is refused by `deception run`:
    test_bad_input); its settings refuse unknown keys."""
    from deception_core.base.errors import ConfigError
    from deception_core.config.sae import SaeSettings, sae_settings

    config = RunConfig(model=str(echo_env), components={"sae": {"sae-lens": {"path": str(tmp_path), "layer": 2}}})
    assert sae_settings(config.components) == SaeSettings(layer=2, path=str(tmp_path))
    with pytest.raises(ConfigError, match="unknown SaeSettings key"):
        sae_settings({"sae": {"sae-lens": {"lyer": 2}}})
