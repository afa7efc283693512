"""--fast, --ultrafast and --self-report through a real run: calls made, what is recorded, the summary."""

from __future__ import annotations

import json

import pytest
from test_run_scenarios import JudgePlugin

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.base.records import Sample, Trial
from deception_core.play.accounts import account_counts, read_self_report
from deception_core.play.calls import call_summary
from deception_core.plugins import build_plugin_set

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run(model_dir, out, **options):
    config = RunConfig(model=str(model_dir), scenario_names=["ultimatum_bluff"], trials=2, max_rounds=2, max_tokens=4,
                       evaluator="recording-judge", output=str(out), analyze=False, **options)
    results = InterpretabilityRunner(config, plugins=build_plugin_set(extra_plugins={"judge": JudgePlugin()})).run()
    trials = [json.loads(line) for line in (out / "dataset" / "trials.jsonl").read_text().splitlines()]
    return results, trials


def test_ultrafast_makes_fewer_calls_than_fast_on_the_same_run(tiny_model_dir, tmp_path) -> None:
    _, fast = _run(tiny_model_dir, tmp_path / "fast", fast=True)
    results, ultra = _run(tiny_model_dir, tmp_path / "ultra", ultrafast=True)
    fast_calls = sum(len(t["calls"]) for t in fast)
    ultra_calls = sum(len(t["calls"]) for t in ultra)
    assert ultra_calls < fast_calls
    for trial in ultra:
        assert {c["caller"] for c in trial["calls"]} == {"negotiator.act"}
        assert len(trial["calls"]) == trial["outcome"]["rounds_played"]  # one call per talk round
        assert trial["outcome"]["counterpart"] == "scripted"
    for trial in fast:
        assert {c["caller"] for c in trial["calls"]} == {"negotiator.act", "counterpart.act"}
    assert f"generation calls: {ultra_calls} in 4 trial(s)" in results.summary
    assert "1.00 per talk round (ultrafast)" in results.summary
    assert "2 with --fast (2.0x as many) and 3 with the default (3.0x as many)" in results.summary


def test_self_report_is_recorded_per_sample_and_analysed(tiny_model_dir, tmp_path) -> None:
    results, trials = _run(tiny_model_dir, tmp_path / "report", fast=True, self_report=True)
    samples = results.dataset.samples
    assert samples
    assert all(isinstance(s.self_report, str) for s in samples)
    callers = [c["caller"] for t in trials for c in t["calls"]]
    assert callers.count("negotiator.self_report") == callers.count("negotiator.act") == len(samples)
    assert "[agent's own account" in results.summary
    assert results.dataset.meta.result_config["self_report"] is True
    counts = account_counts(samples)
    assert sum(c["self_report"] for c in counts.values()) == len(samples)


def test_self_report_answers_are_read_as_admissions() -> None:
    assert read_self_report("Yes, it matched.") == "matches"
    assert read_self_report("No - I overstated my minimum.") == "admits"
    assert read_self_report("Well, partly.") == "unclear"
    assert read_self_report(None) is None
    counts = account_counts([Sample(trial_key="t", label="deceptive", self_report="No.", belief="They want more."),
                             Sample(trial_key="t", label="deceptive", self_report="Yes.", belief=None),
                             Sample(trial_key="t", label="honest", self_report="yes", belief=None)])
    assert counts["deceptive"] == {"samples": 2, "belief": 1, "self_report": 2, "admits": 1, "matches": 1}
    assert counts["honest"] == {"samples": 1, "self_report": 1, "matches": 1}


def test_call_summary_counts_talk_rounds_and_savings() -> None:
    trials = [Trial(trial_key="t", calls=[{"request_id": "negotiator.act#r1"}, {"request_id": "counterpart.act#r1"},
                                          {"request_id": "negotiator.act#r2"}, {"request_id": "counterpart.act#r2"},
                                          {"request_id": "negotiator.vote#final"}], outcome={"rounds_played": 2})]
    line = call_summary(trials, {"fast": True})
    assert line.startswith("generation calls: 5 in 1 trial(s), 5.0 per trial, 2.00 per talk round (fast)")
    assert "per talk round 2 call(s) here against 3 with the default (1.5x as many)" in line
    assert "--fast (" not in line
