"""`deception run` writes report.html at the end, unless --no-report."""

from __future__ import annotations

from report_helpers import squash, visible_text

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.cli.options import given_values
from deception_core.cli.run import run as run_command


def test_run_writes_the_report_and_no_report_skips_it(tiny_model_dir, tmp_path, fake_plugin_set) -> None:
    base = dict(model=str(tiny_model_dir), scenario_names=["echo"], trials=1, max_rounds=2, max_tokens=4,
                evaluator="echo-judge", analyze=False)
    results = InterpretabilityRunner(RunConfig(**base, output=str(tmp_path / "with")), plugins=fake_plugin_set).run()
    text = visible_text((tmp_path / "with" / "report.html").read_text())
    for sample in results.dataset.samples:
        assert squash(sample["reply_text"]) in text
    InterpretabilityRunner(RunConfig(**base, output=str(tmp_path / "without"), report=False),
                           plugins=fake_plugin_set).run()
    assert not (tmp_path / "without" / "report.html").exists()


def test_no_report_flag_sets_the_config_field() -> None:
    context = run_command.make_context("run", ["--no-report"])
    assert given_values(RunConfig, context, context.params) == {"report": False}
    assert RunConfig().report is True
