"""Each command's default path through the command line: no switch turned, and the printed output checked.

`test_command_coverage.py` holds the registry of which test covers which command; the tests here are
the ones no other file had (the others are registered where they live).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.base.records import from_json, to_json
from deception_core.cli import cli
from deception_core.store.dataset import read_dataset, write_dataset
from deception_core.testing.fakes import echo_rule


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _label_rows(output: str) -> dict[tuple[str, str, str], list[str]]:
    """The label table's rows (scenario, mode, condition) -> [samples, honest, decept, ambig, agree]."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 8 and parts[3].isdigit() and parts[4].isdigit():
            rows[(parts[0], parts[1], parts[2])] = parts[3:]
    return rows


@pytest.fixture()
def stated_numbers_run(tiny_model_dir, tmp_path, fake_plugin_set, monkeypatch):
    """A finished echo run whose utterances state a number: the right one in even trials, a wrong one in odd.

    A random tiny model states no number, so every label would be ambiguous; the stored replies are
    rewritten (with the rule's verdict on them) to give the relabelling a known answer: half honest, half
    deceptive. The CLI sees the echo scenario and judge through the process-wide plugin set.
    """
    from deception_core import plugins

    out = tmp_path / "run"
    config = RunConfig(model=str(tiny_model_dir), scenario_names=["echo"], mode="emergent", trials=2, max_rounds=2,
                       max_tokens=4, evaluator="echo-judge", output=str(out), analyze=False, report=False)
    InterpretabilityRunner(config, plugins=fake_plugin_set).run()
    dataset = read_dataset(out)
    secrets = {t.trial_key: t.facts["secret"] for t in dataset.trials}
    samples = []
    for sample in dataset.samples:
        secret = secrets[sample.trial_key]
        claim = secret if sample.trial_index % 2 == 0 else secret % 9 + 1
        record = to_json(sample)
        verdict = echo_rule(f"My number is {claim}.", secret)
        record.update(reply_text=f"My number is {claim}.", rule_label=verdict.label.value, rule_trace=verdict.trace,
                      label="ambiguous")
        samples.append(from_json(type(sample), record, reply_ids=sample.reply_ids))
    shutil.rmtree(out / "dataset")
    write_dataset(out / "dataset", type(dataset)(dataset.meta, samples, dataset.trials, dataset.arrays))
    monkeypatch.setattr(plugins, "_CACHED", fake_plugin_set)
    return out


def test_relabel_default_path_prints_the_new_labels_and_the_analysis_tables(stated_numbers_run) -> None:
    result = invoke("relabel", str(stated_numbers_run))
    assert result.exit_code == 0, result.output
    # 2 conditions x 2 trials x 2 rounds, every label was "ambiguous": the judge (the run's, echo-judge) agrees
    # with the rule everywhere, so under the run's policy (agree) each sample takes the rule's label
    assert "relabel: 8 of 8 label(s) changed by echo-judge (agree)" in result.output
    assert "judge cache: 0 hit(s), 8 new answer(s)" in result.output
    rows = _label_rows(result.output)
    assert sorted(rows) == [("echo", "emergent", "high_incentive"), ("echo", "emergent", "low_incentive")]
    # per condition: trial 0 (2 rounds) states the secret, trial 1 (2 rounds) a wrong number
    assert rows[("echo", "emergent", "high_incentive")] == ["4", "2", "2", "0", "1.00"]
    assert rows[("echo", "emergent", "low_incentive")] == ["4", "2", "2", "0", "1.00"]
    assert "\n[probes]\n" in result.output
    probes_table = result.output.split("\n[probes]\n", 1)[1]
    assert "AUROC" in probes_table
    assert "best probe" in probes_table
    assert "labels separated by the words alone" in probes_table  # the lexical baseline, on a game run
    saved = json.loads((stated_numbers_run / "probe_results.json").read_text())
    assert saved["lexical_baseline"]["text_sources"]["reply"] == 8
    assert saved["labelled"]["honest"] == 4
    assert saved["labelled"]["deceptive"] == 4


def test_relabel_default_path_twice_answers_from_the_cache(stated_numbers_run) -> None:
    assert invoke("relabel", str(stated_numbers_run)).exit_code == 0
    again = invoke("relabel", str(stated_numbers_run))
    assert again.exit_code == 0, again.output
    assert "relabel: 0 of 8 label(s) changed" in again.output
    assert "judge cache: 8 hit(s), 0 new answer(s)" in again.output


@pytest.fixture(scope="module")
def tiny_cli_run(tiny_model_dir, tmp_path_factory) -> tuple[Path, str]:
    """`deception run` on the tiny model with nothing switched off (analysis and report included)."""
    out = tmp_path_factory.mktemp("cli-run") / "run"
    result = invoke("run", "--model", str(tiny_model_dir), "--scenario-name", "ultimatum_bluff", "--mode", "emergent",
                    "--trials", "1", "--max-rounds", "1", "--max-tokens", "4", "--output", str(out))
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_default_path_labels_analyses_and_reports(tiny_cli_run) -> None:
    out, output = tiny_cli_run
    dataset = read_dataset(out)
    rows = _label_rows(output)
    # one trial per condition, one round: the agent speaks once per trial
    assert sorted(rows) == [("ultimatum_bluff", "emergent", "high_incentive"),
                            ("ultimatum_bluff", "emergent", "low_incentive")]
    assert sum(int(r[0]) for r in rows.values()) == len(dataset) == 2
    assert "[probes]" in output
    assert (out / "summary.txt").read_text().strip() in output.replace("\r", "")
    assert (out / "report.html").stat().st_size > 10_000
    assert (out / "probe_results.json").is_file()
    assert not (out / "checkpoint").exists()  # removed once the dataset is complete


def test_report_default_path_writes_the_page_with_every_reply(tiny_cli_run, tmp_path) -> None:
    out, _ = tiny_cli_run
    page = tmp_path / "page.html"
    result = invoke("report", str(out), "-o", str(page))
    assert result.exit_code == 0, result.output
    match = re.fullmatch(r"report: (.+) \((\d+\.\d) MB\)\n", result.output)
    assert match is not None, result.output
    assert Path(match.group(1)) == page
    html = page.read_text()
    assert float(match.group(2)) == pytest.approx(page.stat().st_size / 1e6, abs=0.05)
    dataset = read_dataset(out)
    for sample in dataset.samples:
        if sample.reply_text.strip():
            assert sample.sample_id in html


def test_export_default_path_writes_parquet_one_row_per_sample(tiny_cli_run, tmp_path) -> None:
    import pyarrow.parquet as pq

    out, _ = tiny_cli_run
    target = tmp_path / "samples.parquet"
    result = invoke("export", str(out), "-o", str(target))
    assert result.exit_code == 0, result.output
    table = pq.read_table(target)
    assert result.output == f"export: 2 rows x {table.num_columns} columns -> {target}\n"
    assert table.num_rows == 2
    assert table.column("sample_id").to_pylist() == [s.sample_id for s in read_dataset(out).samples]


def test_checkpoints_default_path_lists_the_area_of_a_run(tiny_model_dir, tmp_path) -> None:
    ckpt = tmp_path / "ckpt"
    ran = invoke("run", "--model", str(tiny_model_dir), "--scenario-name", "ultimatum_bluff", "--mode", "emergent",
                 "--trials", "1", "--max-rounds", "1", "--max-tokens", "2", "--output", str(tmp_path / "run"),
                 "--checkpoint-dir", str(ckpt))
    assert ran.exit_code == 0, ran.output
    result = invoke("checkpoints", str(ckpt))
    assert result.exit_code == 0, result.output
    (area,) = [p for p in ckpt.iterdir() if p.is_dir()]
    assert area.name in result.output
    assert re.search(r"ultimatum_bluff\D+2\b", result.output), result.output  # 2 finished trials (2 conditions)


def test_plugins_default_path_prints_a_table_of_plugins() -> None:
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    names = {line.split()[0] for line in result.output.splitlines() if line.strip()}
    assert {"core", "scenarios", "probes", "causal"} <= names


def test_saes_default_path_lists_releases_offline() -> None:
    result = invoke("saes")
    assert result.exit_code == 0, result.output
    assert "gemma-2b-it-res-jb" in result.output
    assert "gemma-scope-9b-it-res-canonical" in result.output


def test_capture_default_path_writes_a_dataset_of_the_statements(tiny_model_dir, tmp_path) -> None:
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in
                            [("Paris is in France.", "honest"), ("Paris is in Peru.", "deceptive"),
                             ("Snow is white.", "honest")]))
    out = tmp_path / "captured"
    result = invoke("capture", str(data), "--model", str(tiny_model_dir), "--output", str(out))
    assert result.exit_code == 0, result.output
    dataset = read_dataset(out)
    assert dataset.column("label") == ["honest", "deceptive", "honest"]
    assert "3" in result.output
    assert str(out) in result.output
