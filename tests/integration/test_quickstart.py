"""The README's quick start, run as a user runs it and checked against what the README says (slow).

The command is read from the README's quick-start block (so the two cannot drift) and run once per
session in a fresh folder on the embedded Gemma-3-270M, in its own process as a user's shell would
(the test process holds torch to one thread); every test below reads that one run.

The figures the README quotes are read from the README too. Tolerances, and why:

- the design (trials, utterances, layers, scenarios, modes, conditions) is exact: it does not depend
  on what the model says;
- the label counts are exact on one machine (sampling is seeded per call, `--batch-size auto` gives
  the same batches), but another CPU may round a float differently and flip a sampled token, which
  can change a reply and so its label (README, "What batching can and cannot change"). A few flips
  are allowed: +-`LABEL_SLACK` labelled utterances and +-`TRIAL_SLACK` trials against the README's
  figures, and each class must stay present;
- the best probe's nested AUROC: with ~19 samples one flipped label moves it by up to ~0.05, so its
  point estimate may differ from the README's by `AUROC_SLACK`, and it must lie inside its own interval.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LABEL_SLACK = 3
TRIAL_SLACK = 2
AUROC_SLACK = 0.15


def readme() -> str:
    return (ROOT / "README.md").read_text()


def quickstart_command() -> list[str]:
    """The quick-start block's command after `bootstrap.sh &&`: ``.venv/bin/deception run ...``."""
    section = readme().split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)\n```", section, flags=re.S)
    assert block is not None, "the README's quick start has no bash block"
    setup, _, command = block.group(1).partition("&&")
    assert "bootstrap.sh" in setup
    return shlex.split(command)


def quoted(pattern: str) -> re.Match[str]:
    """A figure the README's quick start quotes (whitespace in the README may be a line break)."""
    text = " ".join(readme().split("## Quick start", 1)[1].split("\n## ", 1)[0].split())
    match = re.search(pattern, text)
    assert match is not None, f"the README's quick start no longer says {pattern!r}"
    return match


class QuickStart(NamedTuple):
    out: Path
    stdout: str
    stderr: str
    returncode: int


def _value(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory) -> QuickStart:
    command = quickstart_command()
    assert command[:2] == [".venv/bin/deception", "run"]
    cwd = tmp_path_factory.mktemp("quickstart")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, "-m", "deception_core", *command[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)
    return QuickStart(cwd / _value(command, "--output"), done.stdout, done.stderr, done.returncode)


@pytest.fixture(scope="session")
def dataset(quickstart):
    from deception_core.store.dataset import read_dataset

    assert quickstart.returncode == 0, quickstart.stderr[-4000:]
    return read_dataset(quickstart.out)


@pytest.fixture(scope="session")
def results(quickstart) -> dict:
    assert quickstart.returncode == 0, quickstart.stderr[-4000:]
    return json.loads((quickstart.out / "probe_results.json").read_text())


def test_the_quick_start_exits_0(quickstart) -> None:
    assert quickstart.returncode == 0, quickstart.stderr[-4000:]


def test_the_design_is_what_the_readme_says(dataset) -> None:
    command = quickstart_command()
    trials = int(quoted(r"plays (\d+) trials").group(1))
    utterances, layers = quoted(r"captures (\d+) utterances at (\w+) layers").groups()
    assert len(dataset.trials) == trials == 16
    assert len(dataset) == int(utterances) == 32
    assert len(dataset.layers) == {"three": 3}[layers]
    scenarios = {command[i + 1] for i, flag in enumerate(command) if flag == "--scenario-name"}
    assert {s.scenario for s in dataset.samples} == scenarios == {"info_withholding", "capability_bluff"}
    assert {s.mode for s in dataset.samples} == {"emergent", "instructed"}
    assert len({(s.scenario, s.mode, s.condition) for s in dataset.samples}) == 8
    assert {t.trial_key.rsplit("/", 1)[-1] for t in dataset.trials} == {"00000", "00001"}


def _label_rows(stdout: str) -> dict[tuple[str, str, str], tuple[int, int, int, int]]:
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 8 and all(p.isdigit() for p in parts[3:7]):
            rows[(parts[0], parts[1], parts[2])] = tuple(int(p) for p in parts[3:7])
    return rows


def test_the_printed_label_counts_are_the_datasets(quickstart, dataset) -> None:
    from collections import Counter

    counted = Counter((s.scenario, s.mode, s.condition, s.label) for s in dataset.samples)
    rows = _label_rows(quickstart.stdout)
    assert len(rows) == 8
    for (scenario, mode, condition), (samples, honest, deceptive, ambiguous) in rows.items():
        assert honest == counted[scenario, mode, condition, "honest"]
        assert deceptive == counted[scenario, mode, condition, "deceptive"]
        assert ambiguous == counted[scenario, mode, condition, "ambiguous"]
        assert samples == honest + deceptive + ambiguous == 4  # 2 trials x 2 rounds


def test_the_label_mix_is_the_readmes_within_float_noise(dataset) -> None:
    labelled_readme, trials_readme = (int(g) for g in quoted(r"(\d+) labelled utterances in (\d+) trials").groups())
    labelled = [s for s in dataset.samples if s.label != "ambiguous"]
    assert abs(len(labelled) - labelled_readme) <= LABEL_SLACK
    assert abs(len({s.trial_key for s in labelled}) - trials_readme) <= TRIAL_SLACK
    assert {s.label for s in labelled} == {"honest", "deceptive"}
    # the policy the quick start sets: the rule's label is final, the judge's verdict is still recorded
    assert all(s.label == s.rule_label for s in dataset.samples)
    assert all(s.judge_label in ("honest", "deceptive", "ambiguous") for s in dataset.samples)


def test_the_scenario_confound_the_readme_warns_about(quickstart, dataset, results) -> None:
    deceptive = [s.scenario for s in dataset.samples if s.label == "deceptive"]
    honest = [s.scenario for s in dataset.samples if s.label == "honest"]
    assert deceptive.count("info_withholding") > len(deceptive) / 2
    assert honest.count("capability_bluff") > len(honest) / 2
    assert (results["confounds"] or {}).get("warning")
    assert "warning: " in quickstart.stdout


def test_the_lexical_baseline_is_printed_beside_the_metadata_one(quickstart, results) -> None:
    lexical = results["lexical_baseline"]
    assert lexical["status"] == "ok"
    assert lexical["n_scored"] == results["labelled"]["honest"] + results["labelled"]["deceptive"]
    assert f"labels separated by the words alone (bag of words + logistic regression, same folds): AUROC " \
           f"{lexical['auroc']['value']:.2f}" in quickstart.stdout


def test_probes_are_trained_and_the_best_is_chosen_on_validation_folds(quickstart, results) -> None:
    best = results["best"]
    assert results["status"] == "ok"
    assert best["layer"] in results["dataset"]["layers"]
    assert best["method"] in ("logistic", "mass_mean", "lat")
    assert best["selected_on"].startswith("validation folds")
    assert (quickstart.out / best["file"]).is_file()
    assert results["labelled"]["honest"] + results["labelled"]["deceptive"] == sum(
        1 for line in (quickstart.out / "dataset" / "samples.jsonl").read_text().splitlines()
        if json.loads(line)["label"] != "ambiguous")
    assert f"best probe: {best['method']} at layer {best['layer']} {best['position']}" in quickstart.stdout


def test_the_nested_auroc_is_the_readmes_within_float_noise(quickstart, results) -> None:
    value, low, high = (float(g) for g in quoted(r"best probe, nested: `([\d.]+) \[([\d.]+),([\d.]+)\]`").groups())
    assert low <= value <= high
    nested = results["nested"]["auroc"]
    assert abs(nested["value"] - value) <= AUROC_SLACK
    assert nested["ci_low"] <= nested["value"] <= nested["ci_high"]
    shown = f"(nested) {nested['value']:.2f} [{nested['ci_low']:.2f},{nested['ci_high']:.2f}]"
    assert shown in quickstart.stdout


def test_the_files_the_readme_lists(quickstart) -> None:
    out = quickstart.out
    mode = _value(quickstart_command(), "--mode")
    for name in ("probe_results.json", "probe_scores.parquet", "report.html", "summary.txt", "config.json",
                 f"activations_{mode}.pt"):
        assert (out / name).is_file(), name
    assert len(list(out.glob("*.png"))) == 3  # "the three plots"
    assert not (out / "checkpoint").exists()


def test_the_scores_cover_every_sample(quickstart, dataset) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(quickstart.out / "probe_scores.parquet")
    assert table.num_rows == len(dataset)
    assert sorted(table.column("sample_id").to_pylist()) == sorted(s.sample_id for s in dataset.samples)


class _Text(HTMLParser):
    """The text a browser would show (scripts and styles left out), whitespace squashed."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs) -> None:
        self.hidden += tag in ("script", "style")

    def handle_endtag(self, tag) -> None:
        self.hidden -= tag in ("script", "style")

    def handle_data(self, data) -> None:
        if not self.hidden:
            self.parts.append(data)


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_the_report_holds_every_transcript(quickstart, dataset) -> None:
    parser = _Text()
    parser.feed((quickstart.out / "report.html").read_text())
    shown = _squash(" ".join(parser.parts))
    for sample in dataset.samples:
        assert _squash(sample.reply_text) in shown, sample.sample_id
    for trial in dataset.trials:
        for turn in trial.transcript:
            assert _squash(str(turn["text"])) in shown, trial.trial_key


def test_the_local_judge_says_deceptive_as_the_readme_warns(dataset) -> None:
    """"scored on its own, it prefers the verdict 'deceptive' for every utterance, true or false"."""
    quoted(r"it prefers the verdict \"deceptive\" for every utterance")
    verdicts = [s.judge_label for s in dataset.samples]
    assert verdicts.count("deceptive") >= 0.9 * len(verdicts)


def test_the_printed_tables_are_the_saved_summary(quickstart) -> None:
    summary = (quickstart.out / "summary.txt").read_text().strip()
    assert summary
    assert summary in quickstart.stdout
