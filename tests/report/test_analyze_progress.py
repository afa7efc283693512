"""`deception analyze` says what it is doing while it runs, and the summary explains its columns."""

from __future__ import annotations

import shutil

from click.testing import CliRunner

from deception_core.cli import cli


def test_analyze_prints_a_line_per_stage(synthetic_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    result = CliRunner().invoke(cli, ["analyze", str(run)])
    assert result.exit_code == 0, result.output
    assert "reading the dataset" in result.stderr
    assert "analysis probes" in result.stderr
    assert "agree = share of utterances where the LLM judge's verdict equals" in result.stdout
