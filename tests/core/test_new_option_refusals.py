"""Bad input for the options added with the output policy, relabel's judge threshold and bench --causal:
exit 2, a message that names the fix, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from deception_core.cli import cli


def _files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@pytest.mark.parametrize(("extra", "message"), [
    (["--causal-samples", "3"], "--causal-samples takes effect only with --causal"),
    (["--causal-samples", "10"], "--causal-samples takes effect only with --causal"),  # the default, written out
    (["--trials", "2"], "--trials takes effect only with --pipeline or --causal"),
    (["--causal", "--backends", "hf"], "--backends takes effect only with the capture benchmark"),
])
def test_bench_options_of_another_benchmark_are_refused(tiny_model_dir, tmp_path, extra, message) -> None:
    before = _files(tmp_path)
    outcome = CliRunner().invoke(cli, ["bench", "--model", str(tiny_model_dir), "--json", str(tmp_path / "b.json"),
                                       *extra])
    assert outcome.exit_code == 2
    assert message in outcome.output
    assert outcome.exc_info is None or outcome.exc_info[0] is SystemExit
    assert _files(tmp_path) == before


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_relabel_refuses_a_failure_share_outside_0_to_1(tmp_path, value) -> None:
    run = tmp_path / "run"
    run.mkdir()
    before = _files(tmp_path)
    outcome = CliRunner().invoke(cli, ["relabel", str(run), "--max-judge-failures", value])
    assert outcome.exit_code == 2
    assert "--max-judge-failures" in outcome.output
    assert "0<=x<=1" in outcome.output
    assert _files(tmp_path) == before
