"""The HTML report's content, read as text: self-contained, every transcript, labels, scores and flags."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
from report_helpers import squash, visible_text

from deception_core.report import write_report
from deception_core.report.inputs import decision_threshold
from deception_core.store import read_dataset
from deception_core.store.dataset import sha256_file
from deception_core.testing.report_fixture import WordTokenizer


def test_report_is_self_contained(synthetic_run) -> None:
    page = write_report(synthetic_run, tokenizer=WordTokenizer()).read_text()
    assert re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", page) == []
    assert "@import" not in page
    assert "@font-face" not in page
    assert re.findall(r"<script[^>]+src=", page) == []


def test_report_shows_every_reply_label_and_score(synthetic_run) -> None:
    page = write_report(synthetic_run, tokenizer=WordTokenizer()).read_text()
    text = visible_text(page)
    dataset = read_dataset(synthetic_run)
    scores = pd.read_parquet(synthetic_run / "synthetic_scores.parquet").set_index("row")["score"]
    for sample in dataset.samples:
        assert squash(sample.reply_text) in text
        assert f"{scores[sample.row]:.3f}" in page
    assert text.count("no score") == 0


def test_report_says_no_score_without_score_files(synthetic_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    (run / "synthetic_scores.parquet").unlink()
    (run / "synthetic_token_scores.parquet").unlink()
    text = visible_text(write_report(run).read_text())
    assert text.count("no score") >= len(read_dataset(run))


def test_flags_mark_probe_label_and_rule_judge_disagreements(synthetic_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    # the synthetic scores agree with every label (mean token score around +1 / -1 with 12 tokens): move every
    # fifth sample's score to the other side of the boundary so that the probe flag has cases to mark
    path = run / "synthetic_scores.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame["row"] % 5 == 0, "score"] *= -1
    frame.to_parquet(path, index=False)
    manifest = json.loads((run / "analyses.json").read_text())  # the analysis's record of its files, updated
    manifest["sha256"][path.name] = sha256_file(path)
    (run / "analyses.json").write_text(json.dumps(manifest))
    page = write_report(run, tokenizer=WordTokenizer()).read_text()
    dataset = read_dataset(run)
    scores = frame.set_index("row")["score"]
    threshold = 0.0  # the synthetic results state none: the probes' decision boundary (above 0 is "deceptive")
    expected_rule_judge = {s.row for s in dataset.samples if s.judge_label != s.rule_label}
    expected_probe = {s.row for s in dataset.samples if s.label in ("honest", "deceptive")
                      and (scores[s.row] > threshold) != (s.label == "deceptive")}
    assert 0 < len(expected_probe) < len(dataset)  # both kinds of sample are there to be told apart
    assert 0 < len(expected_rule_judge) < len(dataset)
    flagged = {int(row): flags.split() for row, flags in
               re.findall(r'id="s-(\d+)" data-label="[a-z]+" data-flags="([a-z ]*)"', page)}
    assert len(flagged) == len(dataset)
    assert {r for r, f in flagged.items() if "rulejudge" in f} == expected_rule_judge
    assert {r for r, f in flagged.items() if "probe" in f} == expected_probe


def test_threshold_is_the_decision_boundary_unless_stated() -> None:
    from deception_core.report.inputs import SampleScore
    from deception_core.store.dataset import Dataset

    dataset = Dataset({}, [{"row": 0, "label": "honest"}], [], {})
    scores = {0: SampleScore(1.5, "heldout", "logistic", 1, "reply_mean")}
    assert decision_threshold(dataset, scores, None)[0] == 0.0
    assert decision_threshold(dataset, scores, {"best": {"threshold": 0.7}})[0] == 0.7
    assert decision_threshold(dataset, {}, None)[0] is None


def test_token_texts_come_from_the_token_ids(synthetic_run) -> None:
    from deception_core.report.inputs import read_token_scores

    tokens = read_token_scores(synthetic_run, WordTokenizer())
    dataset = read_dataset(synthetic_run)
    first = dataset.samples[0]
    assert "".join(tokens[0].texts).strip() == first.reply_text
    assert len(tokens[0].scores) == first.n_reply_tokens


def test_report_command_writes_where_asked(synthetic_run, tmp_path) -> None:
    from click.testing import CliRunner

    from deception_core.cli import cli

    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", str(synthetic_run), "--no-tokens", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 10_000


def test_report_command_refuses_a_folder_without_a_dataset(tmp_path) -> None:
    from click.testing import CliRunner

    from deception_core.cli import cli

    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "holds no dataset" in result.output
    assert list(tmp_path.iterdir()) == []


def test_tokenizer_loads_from_a_local_model_and_never_downloads(tiny_model_dir) -> None:
    from deception_core.report.inputs import load_tokenizer

    tokenizer = load_tokenizer({"config": {"model": str(tiny_model_dir)}})
    assert tokenizer.decode(tokenizer.encode("ab", add_special_tokens=False)) == "ab"
    assert load_tokenizer({"config": {"model": "no-such-org/no-such-model"}}) is None


def test_report_shows_the_lexical_baseline_and_the_positions_left_out(synthetic_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synthetic_run, run)
    results = json.loads((run / "synthetic_results.json").read_text())
    results["lexical_baseline"] = {
        "status": "ok", "auroc": {"value": 0.87, "ci_low": 0.84, "ci_high": 0.9},
        "probe": {"method": "logistic", "layer": 1, "position": "reply_mean"},
        "probe_auroc": {"value": 0.91, "ci_low": 0.88, "ci_high": 0.93},
        "difference": {"value": 0.04, "ci_low": 0.01, "ci_high": 0.07}, "warning": "the words explain most of it"}
    results["not_informative"] = [{"position": "last_prompt", "layers": [1], "whole_position": True,
                                   "reason": "the same for every sample"}]
    (run / "synthetic_results.json").write_text(json.dumps(results))
    manifest = json.loads((run / "analyses.json").read_text())  # the analysis's record of its files, updated
    manifest["sha256"]["synthetic_results.json"] = sha256_file(run / "synthetic_results.json")
    (run / "analyses.json").write_text(json.dumps(manifest))
    text = squash(visible_text(write_report(run, tokenizer=WordTokenizer()).read_text()))
    assert "the words alone (bag of words + logistic regression) 0.87 [0.84, 0.90]" in text
    assert "best probe minus the words 0.04 [0.01, 0.07]" in text
    assert "warning: the words explain most of it" in text
    assert "not informative: last_prompt: the same for every sample" in text
