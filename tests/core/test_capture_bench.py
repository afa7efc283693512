"""`deception bench` times every stage and reports ratios to bare generate from its own numbers."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from deception_core.bench.capture import StageResult, format_table
from deception_core.cli import cli


@pytest.fixture()
def keep_torch_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # `--threads` sets it for the whole (test) process


def test_bench_times_every_stage_on_a_tiny_model(tiny_model_dir, tmp_path, keep_torch_threads) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(cli, ["bench", "--model", str(tiny_model_dir), "--device", "cpu", "--threads", "1",
                                      "--batch-sizes", "1,2", "--new-tokens", "3", "--repeats", "2",
                                      "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    stages = [(r["stage"], r["batch_size"]) for r in data["results"]]
    assert stages == [("bare generate", 1), ("hf capture (3 layers)", 1), ("bare generate", 2),
                      ("hf capture (3 layers)", 2), ("transformer-lens", 1), ("hybrid", 1)]
    bare = {r["batch_size"]: r["tok_per_s_median"] for r in data["results"] if r["stage"] == "bare generate"}
    for row in data["results"]:
        assert len(row["tok_per_s_rounds"]) == 2
        assert row["tokens"] > 0
        assert row["peak_bytes"] > 0
        assert row["ratio_to_bare"] == pytest.approx(row["tok_per_s_median"] / bare[row["batch_size"]])
        assert f"{row['ratio_to_bare']:.2f}" in result.output
    assert "peak MB" in result.output
    assert data["layers"] == [1, 2, 3]


def test_table_ratios_are_computed_from_medians() -> None:
    rows = [StageResult("bare generate", 1, 100, [10.0, 12.0, 11.0], 2**30),
            StageResult("hf capture (3 layers)", 1, 100, [9.0, 10.0, 100.0], 2**30),
            StageResult("bare generate", 4, 100, [40.0], 2**30)]
    lines = format_table(rows).splitlines()
    assert lines[2].split()[-4:] == ["10.0", "0.91", "0.91", "1024"]  # median 10 over bare median 11
    assert lines[3].split()[-3:] == ["1.00", "3.64", "1024"]


def test_bench_refuses_bad_options_before_loading(tiny_model_dir) -> None:
    result = CliRunner().invoke(cli, ["bench", "--model", str(tiny_model_dir), "--layers", "9"])
    assert result.exit_code == 2
    assert "has 4 layers" in result.output
    result = CliRunner().invoke(cli, ["bench", "--model", str(tiny_model_dir), "--backends", "vllm"])
    assert result.exit_code == 2
    assert "--backends" in result.output


def test_pipeline_bench_refuses_zero_repeats_before_loading(tiny_model_dir) -> None:
    result = CliRunner().invoke(cli, ["bench", "--pipeline", "--model", str(tiny_model_dir), "--repeats", "0"])
    assert result.exit_code == 2
    assert "--repeats" in result.output
