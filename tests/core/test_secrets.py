"""API keys come from the environment and never reach the config, logs, outputs or checkpoints."""

from __future__ import annotations

import attrs
import pytest
from click.testing import CliRunner
from reliability_plugin import PLUGIN_REF, base_args, unready_analysis_plugins

from deception_core.cli import cli
from deception_core.config.run import RunConfig
from deception_core.plugins import DISABLE_ENV, EXTRA_ENV, reset_plugin_set

PLANTED = {"TOGETHER_API_KEY": "sk-planted-together-7f3a9c51e0", "GOOGLE_API_KEY": "AIza-planted-google-d41d8cd98f"}


@pytest.fixture()
def cli_runner(monkeypatch):
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)
    monkeypatch.setenv(DISABLE_ENV, ",".join(unready_analysis_plugins()))
    reset_plugin_set()
    yield CliRunner()
    reset_plugin_set()


def test_planted_keys_appear_in_no_output_file(tiny_model_dir, tmp_path, cli_runner) -> None:
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    args = base_args(tiny_model_dir, out, **{"--evaluator": "keyed-judge", "--checkpoint-dir": ckpt})
    result = cli_runner.invoke(cli, [*args, "--verbose"])
    assert result.exit_code == 0, result.output
    merged = cli_runner.invoke(cli, ["merge", str(tmp_path / "merged"), str(out)])
    assert merged.exit_code == 0, merged.output
    analysed = cli_runner.invoke(cli, ["analyze", str(tmp_path / "merged")])
    assert analysed.exit_code == 0, analysed.output

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"config.json", "run.log", "samples.jsonl", "manifest.json", "activations_emergent.pt",
            "merge.json"} <= names
    assert sum(p.suffix == ".safetensors" for p in files) >= 6 + 2  # shards and datasets
    for path in files:
        data = path.read_bytes()
        for name, value in PLANTED.items():
            assert value.encode() not in data, f"{name} leaked into {path}"
    for text in (result.output, merged.output, analysed.output):
        assert not any(value in text for value in PLANTED.values())
    assert "keyed-judge" in (out / "config.json").read_text()


def test_the_config_has_no_place_for_a_key() -> None:
    names = [f.name for f in attrs.fields(RunConfig)]
    assert not [n for n in names if "key" in n or "token" in n.replace("max_tokens", "") or "secret" in n]
