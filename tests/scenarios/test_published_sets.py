"""The field's published sets as statement sets: each reads its fixture (invented records in the published
format), `deception capture NAME --param path=FIXTURE` writes a dataset whose texts and labels match it, and a
malformed file exits 2 naming the record, before any model loads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deception_core.base.registry import Kind
from deception_core.cli import cli
from deception_core.plugins import get_plugin_set
from deception_core.store.dataset import read_dataset
from deception_scenarios.contrast import DISHONEST, HONEST
from deception_scenarios.published.sets import (
    AILiar,
    ApolloInstructedPairs,
    ApolloRoleplaying,
    LiarsBench,
    LiarsBenchSettings,
    PublishedSettings,
)

DATA = Path(__file__).parent / "data" / "published"
FIXTURES = {"apollo_roleplaying": DATA / "dataset.yaml", "apollo_instructed_pairs": DATA / "true_false_facts.csv",
            "ai_liar": DATA / "goal_directed_lying.json", "liars_bench": DATA / "liars_bench.jsonl"}
NEVER_LOADED = "embedded:gemma-3-270m"  # every refusal below comes before the model would load


def capture(name: str, path: Path, out: Path, model: str, *extra: str):
    return CliRunner().invoke(cli, ["capture", name, "--param", f"path={path}", *extra, "--model", model,
                                    "--dtype", "float32", "--output", str(out)])


# ---- registration and listing ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_each_set_is_registered_with_where_its_data_comes_from(name):
    entry = get_plugin_set().registry.get(Kind.STATEMENT_SET, name)
    assert entry.metadata["source"]


def test_the_listings_name_the_sources():
    scenarios = CliRunner().invoke(cli, ["scenarios"]).output
    assert "statement sets (deception capture NAME):" in scenarios
    assert "data: Liars' Bench (Kretschmar et al. 2025, arXiv:2511.16035)" in scenarios
    assert "Pacchiardi et al. 2023" in scenarios
    plugins = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    components = {c["name"]: c for row in plugins for c in row["components"]}
    assert "data/roleplaying/dataset.yaml" in components["apollo_roleplaying"]["source"]
    assert "Cadenza-Labs/liars-bench" in components["liars_bench"]["source"]


def test_listing_imports_no_reader_of_data():
    code = ("import sys; from deception_core.plugins import get_registry; get_registry(); "
            "print(any(m in sys.modules for m in ('datasets', 'pyarrow.parquet', 'deception_scenarios.published.sets')))")
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


# ---- each set reads its published format ------------------------------------------------------------------------

def test_roleplaying_items_become_honest_and_deceptive_completions_of_one_prompt():
    items = yaml.safe_load((DATA / "dataset.yaml").read_text())
    records = ApolloRoleplaying(PublishedSettings(path=str(DATA / "dataset.yaml"))).records()
    assert len(records) == 2 * len(items)
    first_honest, first_deceptive = records[0], records[1]
    assert first_honest["messages"] == first_deceptive["messages"]
    assert first_honest["messages"][1] == {"role": "user", "content": items[0]["question"]}
    assert first_honest["messages"][0]["content"].startswith(items[0]["scenario"])
    assert first_honest["reply"] == f"{items[0]['answer_prefix']} {items[0]['honest_completion']}"
    assert first_deceptive["reply"] == f"{items[0]['answer_prefix']} {items[0]['deceptive_completion']}"
    assert [r["label"] for r in records[:2]] == ["honest", "deceptive"]
    assert records[0]["group"] == records[1]["group"] != records[2]["group"]


def test_instructed_pairs_keep_only_true_facts_each_under_both_personas():
    records = ApolloInstructedPairs(PublishedSettings(path=str(DATA / "true_false_facts.csv"))).records()
    assert [r["reply"] for r in records[::2]] == ["Water boils at 100 degrees Celsius at sea level.",
                                                  "A week has seven days.", "Copper conducts electricity."]
    assert [r["messages"][0]["content"] for r in records[:2]] == [HONEST, DISHONEST]
    assert [r["label"] for r in records[:2]] == ["honest", "deceptive"]


def test_ai_liar_gives_one_answer_under_both_instructions_and_leaves_out_excluded_items():
    items = json.loads((DATA / "goal_directed_lying.json").read_text())
    records = AILiar(PublishedSettings(path=str(DATA / "goal_directed_lying.json"))).records()
    assert len(records) == 4  # the third item says include_in_with_answers: false
    honest, deceptive = records[0], records[1]
    assert honest["messages"][0]["content"] == items[0]["normal_instruction"]
    assert deceptive["messages"][0]["content"] == items[0]["deceive_instruction"]
    assert honest["messages"][1]["content"] == items[0]["question_prefix"] + items[0]["question"]
    assert honest["reply"] == deceptive["reply"] == f"{items[0]['answer_prefix']} {items[0]['answer']}"


def test_liars_bench_rows_split_into_prompt_and_reply_labelled_by_deceptive():
    rows = [json.loads(line) for line in (DATA / "liars_bench.jsonl").read_text().splitlines()]
    records = LiarsBench(LiarsBenchSettings(path=str(DATA / "liars_bench.jsonl"))).records()
    assert [r["label"] for r in records] == ["deceptive" if row["deceptive"] else "honest" for row in rows]
    assert records[0]["messages"] == rows[0]["messages"][:-1]
    assert records[0]["reply"] == rows[0]["messages"][-1]["content"]
    assert records[2]["scenario"] == "liars_bench/harm-pressure-choice"
    assert records[2]["condition"] == "model-b"


def test_liars_bench_filters_by_model_and_dataset():
    chosen = LiarsBench(LiarsBenchSettings(path=str(DATA / "liars_bench.jsonl"), model="model-b")).records()
    assert {r["condition"] for r in chosen} == {"model-b"}
    assert len(chosen) == 2


def test_liars_bench_reads_its_parquet_form(tmp_path):
    import pyarrow
    import pyarrow.parquet

    rows = [json.loads(line) for line in (DATA / "liars_bench.jsonl").read_text().splitlines()]
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "test.parquet")
    from_parquet = LiarsBench(LiarsBenchSettings(path=str(tmp_path / "test.parquet"))).records()
    from_jsonl = LiarsBench(LiarsBenchSettings(path=str(DATA / "liars_bench.jsonl"))).records()
    assert from_parquet == from_jsonl


def test_limit_keeps_the_first_items():
    records = ApolloRoleplaying(PublishedSettings(path=str(DATA / "dataset.yaml"), limit=1)).records()
    assert len(records) == 2


# ---- capture by name ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_capture_by_name_writes_the_fixtures_texts_and_labels(name, tmp_path, tiny_model_dir):
    result = capture(name, FIXTURES[name], tmp_path / "out", str(tiny_model_dir))
    assert result.exit_code == 0, result.output
    registered = get_plugin_set().registry.get(Kind.STATEMENT_SET, name).load()
    expected = registered(registered.settings_class(path=str(FIXTURES[name]))).records()
    dataset = read_dataset(tmp_path / "out")
    assert [s.reply_text for s in dataset.samples] == [r["reply"] for r in expected]
    assert [s.label for s in dataset.samples] == [r["label"] for r in expected]
    assert dataset.samples[0].prompt_text.count(expected[0]["messages"][-1]["content"]) == 1


# ---- bad input: exit 2 naming the record, nothing written -------------------------------------------------------

def _refused(name: str, path: Path, out: Path) -> str:
    result = capture(name, path, out, NEVER_LOADED)
    assert result.exit_code == 2, result.output
    assert not out.exists()
    return result.output


def test_a_roleplay_without_its_question_is_refused_naming_the_record(tmp_path):
    items = yaml.safe_load((DATA / "dataset.yaml").read_text())
    del items[1]["question"]
    bad = tmp_path / "dataset.yaml"
    bad.write_text(yaml.safe_dump(items))
    output = _refused("apollo_roleplaying", bad, tmp_path / "out")
    assert f"{bad} record 2: 'question' is missing" in output


def test_a_fact_with_a_label_other_than_0_or_1_is_refused_naming_the_line(tmp_path):
    bad = tmp_path / "facts.csv"
    bad.write_text("statement,label\nGrass is green.,1\nSnow is hot.,maybe\n")
    output = _refused("apollo_instructed_pairs", bad, tmp_path / "out")
    assert f"{bad}:3: 'label' must be 1" in output


def test_an_ai_liar_item_with_a_number_for_text_is_refused_naming_the_record(tmp_path):
    items = json.loads((DATA / "goal_directed_lying.json").read_text())
    items[1]["question"] = 7
    bad = tmp_path / "liar.json"
    bad.write_text(json.dumps(items))
    output = _refused("ai_liar", bad, tmp_path / "out")
    assert f"{bad} record 2: 'question' must be text" in output


def test_a_liars_bench_row_not_ending_with_the_reply_is_refused_naming_the_line(tmp_path):
    lines = (DATA / "liars_bench.jsonl").read_text().splitlines()
    row = json.loads(lines[1])
    row["messages"] = row["messages"][:-1]
    bad = tmp_path / "bench.jsonl"
    bad.write_text("\n".join([lines[0], json.dumps(row)]) + "\n")
    output = _refused("liars_bench", bad, tmp_path / "out")
    assert f"{bad}:2: 'messages' must end with the assistant's reply" in output


def test_a_liars_bench_row_whose_label_is_not_a_boolean_is_refused(tmp_path):
    row = json.loads((DATA / "liars_bench.jsonl").read_text().splitlines()[0])
    row["deceptive"] = "yes"
    bad = tmp_path / "bench.jsonl"
    bad.write_text(json.dumps(row) + "\n")
    assert f"{bad}:1: 'deceptive' must be true or false" in _refused("liars_bench", bad, tmp_path / "out")


def test_a_file_in_another_format_is_refused_naming_the_published_one(tmp_path):
    wrong = tmp_path / "dataset.json"
    wrong.write_text("[]")
    assert "is not a .yaml or .yml file" in _refused("apollo_roleplaying", wrong, tmp_path / "out")


def test_invalid_yaml_is_refused(tmp_path):
    bad = tmp_path / "dataset.yaml"
    bad.write_text("- scenario: [unclosed\n")
    assert f"{bad}: not valid YAML" in _refused("apollo_roleplaying", bad, tmp_path / "out")


def test_a_set_without_a_path_says_where_its_file_comes_from(tmp_path):
    result = CliRunner().invoke(cli, ["capture", "apollo_roleplaying", "--model", NEVER_LOADED,
                                      "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "pass the published file with --param path=FILE" in result.output
    assert "data/roleplaying/dataset.yaml" in result.output


def test_the_hub_without_datasets_installed_is_a_clear_exit_2(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    result = CliRunner().invoke(cli, ["capture", "liars_bench", "--param", "subset=instructed-deception",
                                      "--model", NEVER_LOADED, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "needs the `datasets` package" in result.output
    assert not (tmp_path / "out").exists()


def test_an_unreachable_hub_is_a_clear_exit_2(tmp_path, monkeypatch):
    import types

    def load_dataset(*_args: object, **_kwargs: object) -> None:
        raise ConnectionError("the hub cannot be reached")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    result = CliRunner().invoke(cli, ["capture", "liars_bench", "--param", "subset=instructed-deception",
                                      "--model", NEVER_LOADED, "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "could not load Cadenza-Labs/liars-bench (subset instructed-deception, split test)" in result.output
    assert "pass --param path=FILE" in result.output


def test_rows_from_the_hub_are_read_like_the_files_rows(monkeypatch):
    import types

    rows = [json.loads(line) for line in (DATA / "liars_bench.jsonl").read_text().splitlines()]
    asked = []

    def load_dataset(repo: str, subset: str | None, split: str) -> list[dict]:
        asked.append((repo, subset, split))
        return rows

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    from_hub = LiarsBench(LiarsBenchSettings(subset="instructed-deception")).records()
    assert asked == [("Cadenza-Labs/liars-bench", "instructed-deception", "test")]
    assert from_hub == LiarsBench(LiarsBenchSettings(path=str(DATA / "liars_bench.jsonl"))).records()
