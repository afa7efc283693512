"""`deception export --format inspect` and `deception capture inspect`: a run as an Inspect eval log, read by
inspect_ai's own readers, and an Inspect log's dialogues captured back (the round trip keeps the texts)."""

from __future__ import annotations

import json
import sys
import zipfile

import pandas as pd
import pytest
from click.testing import CliRunner

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.cli import cli
from deception_core.report.inputs import analysis_output
from deception_core.store import read_dataset

pytest.importorskip("inspect_ai")

from inspect_ai.analysis import samples_df
from inspect_ai.log import read_eval_log


def export(run, out, *extra: str):
    return CliRunner().invoke(cli, ["export", str(run), "--format", "inspect", "-o", str(out), *extra])


@pytest.fixture(scope="module")
def synthetic_log(synthetic_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("inspect") / "run.eval"
    result = export(synthetic_run, out)
    assert result.exit_code == 0, result.output
    return out


def _key(sample) -> str:
    return sample.request_id or sample.sample_id


def test_read_eval_log_holds_one_sample_per_trial_with_every_utterances_labels(synthetic_run, synthetic_log) -> None:
    dataset = read_dataset(synthetic_run)
    log = read_eval_log(str(synthetic_log))
    by_id = {s.id: s for s in log.samples}
    assert sorted(by_id) == sorted({s.trial_key for s in dataset.samples})
    for sample in dataset.samples:
        scores = by_id[sample.trial_key].scores
        assert scores["label"].value[_key(sample)] == sample.label
        assert scores["rule_label"].value[_key(sample)] == sample.rule_label
        assert scores["judge_label"].value[_key(sample)] == sample.judge_label
        assert scores["judge_label"].metadata["judge_raw"][_key(sample)] == sample.judge_raw


def test_the_probe_scores_are_sample_scores(synthetic_run, synthetic_log) -> None:
    dataset = read_dataset(synthetic_run)
    stored = pd.read_parquet(analysis_output(synthetic_run, "scores")).set_index("row")
    by_id = {s.id: s for s in read_eval_log(str(synthetic_log)).samples}
    for sample in dataset.samples:
        probe = by_id[sample.trial_key].scores["probe_score"]
        assert probe.value[_key(sample)] == pytest.approx(stored.loc[sample.row, "score"], abs=0, rel=1e-12)
        assert probe.metadata["score_source"][_key(sample)] == stored.loc[sample.row, "score_source"]


def test_the_messages_are_the_transcript_with_the_agent_as_assistant(synthetic_run, synthetic_log) -> None:
    dataset = read_dataset(synthetic_run)
    trial = dataset.trials[0]
    sample = next(s for s in read_eval_log(str(synthetic_log)).samples if s.id == trial.trial_key)
    assert len(sample.messages) == len(trial.transcript)
    for message, line in zip(sample.messages, trial.transcript, strict=True):
        expected = line["text"] if line["speaker"] == "Negotiator" else f"{line['speaker']}: {line['text']}"
        assert (message.role, message.text) == ("assistant" if line["speaker"] == "Negotiator" else "user", expected)
    focal = [m.metadata["deception"]["sample_id"] for m in sample.messages if "deception" in (m.metadata or {})]
    assert focal == [s.sample_id for s in dataset.samples if s.trial_key == trial.trial_key]


def test_the_samples_data_frame_holds_every_sample_label_and_score(synthetic_run, synthetic_log) -> None:
    dataset = read_dataset(synthetic_run)
    stored = pd.read_parquet(analysis_output(synthetic_run, "scores")).set_index("row")
    frame = samples_df(str(synthetic_log)).set_index("id")
    assert sorted(frame.index) == sorted({s.trial_key for s in dataset.samples})
    for sample in dataset.samples:
        row = frame.loc[sample.trial_key]
        assert json.loads(row["score_label"])[_key(sample)] == sample.label
        assert json.loads(row["score_judge_label"])[_key(sample)] == sample.judge_label
        assert json.loads(row["score_probe_score"])[_key(sample)] == pytest.approx(stored.loc[sample.row, "score"])
        assert row["metadata_scenario"] == sample.scenario


def test_the_log_header_counts_the_labels(synthetic_run, synthetic_log) -> None:
    labels = read_dataset(synthetic_run).column("label")
    metrics = read_eval_log(str(synthetic_log), header_only=True).results.scores[0].metrics
    assert {name: metric.value for name, metric in metrics.items()} == {
        name: labels.count(name) for name in ("honest", "deceptive", "ambiguous")}


def test_an_existing_file_needs_overwrite(synthetic_run, synthetic_log) -> None:
    before = synthetic_log.read_bytes()
    result = export(synthetic_run, synthetic_log)
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert synthetic_log.read_bytes() == before


@pytest.mark.parametrize(("name", "extra", "message"), [
    ("run.parquet", (), "an Inspect log is a .eval (or .json) file"),
    ("run.eval", ("--activations", "1:reply_mean"), "an Inspect log holds no vectors"),
])
def test_bad_export_arguments_exit_2_and_write_nothing(synthetic_run, tmp_path, name, extra, message) -> None:
    result = export(synthetic_run, tmp_path / name, *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_missing_extra_names_the_install_command(synthetic_run, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # `import inspect_ai` now raises ImportError
    result = export(synthetic_run, tmp_path / "run.eval")
    assert result.exit_code == 2
    assert "pip install 'deception-core[inspect]'" in result.output
    assert list(tmp_path.iterdir()) == []


# --- the other direction: `deception capture inspect --param path=LOG` -----------------------------------------


def capture(log, model, out, *params: str):
    args = ["capture", "inspect", "--param", f"path={log}", *[p for param in params for p in ("--param", param)],
            "--model", str(model), "--dtype", "float32", "--output", str(out)]
    return CliRunner().invoke(cli, args)


@pytest.fixture(scope="module")
def echo_run(tiny_model_dir, tmp_path_factory):
    """A finished run of the tiny model (echo scenario: the agent's every reply is a focal utterance)."""
    from deception_core.plugins import build_plugin_set
    from deception_core.testing.fakes import FakePlugin

    out = tmp_path_factory.mktemp("echo") / "run"
    config = RunConfig(model=str(tiny_model_dir), scenario_names=["echo"], mode="emergent", trials=3, max_rounds=2,
                       max_tokens=6, evaluator="echo-judge", output=str(out), analyze=False, report=False)
    InterpretabilityRunner(config, plugins=build_plugin_set(extra_plugins={"fake": FakePlugin()})).run()
    return out


def test_the_round_trip_gives_the_same_texts_and_labels(echo_run, tiny_model_dir, tmp_path) -> None:
    log = tmp_path / "echo.eval"
    assert export(echo_run, log).exit_code == 0
    original = read_dataset(echo_run)
    result = capture(log, tiny_model_dir, tmp_path / "back", "replies=labelled")
    assert result.exit_code == 0, result.output
    back = read_dataset(tmp_path / "back")
    kept = [s for s in original.samples if s.reply_text.strip()]  # a reply with no text has nothing to score
    assert len(back) == len(kept) > 0
    assert [s.reply_text for s in back.samples] == [s.reply_text for s in kept]
    assert [s.label for s in back.samples] == [s.label for s in kept]
    assert [s.trial_key for s in back.samples] == [s.trial_key for s in kept]
    assert [s.scenario for s in back.samples] == [s.scenario for s in kept]


def test_a_capture_without_transcripts_exports_its_prompts_and_replies(echo_run, tiny_model_dir, tmp_path) -> None:
    first = tmp_path / "echo.eval"
    assert export(echo_run, first).exit_code == 0
    assert capture(first, tiny_model_dir, tmp_path / "back", "replies=labelled").exit_code == 0
    captured = read_dataset(tmp_path / "back")
    again = tmp_path / "again.eval"
    result = export(tmp_path / "back", again)
    assert result.exit_code == 0, result.output
    messages = [m for s in read_eval_log(str(again)).samples for m in s.messages]
    assert [m.text for m in messages if m.role == "assistant"] == [s.reply_text for s in captured.samples]
    assert [m.text for m in messages if m.role == "user"] == [s.prompt_text for s in captured.samples]


def test_any_inspect_log_is_captured_reply_by_reply(synthetic_log, tiny_model_dir, tmp_path) -> None:
    """replies=all takes every assistant message (the agent's private lines too), replies=last one per sample."""
    log = read_eval_log(str(synthetic_log))
    assistant = [m for s in log.samples for m in s.messages if m.role == "assistant" and m.text.strip()]
    result = capture(synthetic_log, tiny_model_dir, tmp_path / "all")
    assert result.exit_code == 0, result.output
    back = read_dataset(tmp_path / "all")
    assert [s.reply_text for s in back.samples] == [m.text for m in assistant]
    assert [s.label for s in back.samples] == [(m.metadata or {}).get("deception", {}).get("label", "ambiguous")
                                               for m in assistant]
    last = capture(synthetic_log, tiny_model_dir, tmp_path / "last", "replies=last")
    assert last.exit_code == 0, last.output
    assert len(read_dataset(tmp_path / "last")) == len(log.samples)


def test_private_lines_come_back_unlabelled(synthetic_log, tiny_model_dir, tmp_path) -> None:
    result = capture(synthetic_log, tiny_model_dir, tmp_path / "all")
    assert result.exit_code == 0, result.output
    back = read_dataset(tmp_path / "all")
    private = [s for s in back.samples if s.reply_text == "They want a low price."]
    assert private
    assert {s.label for s in private} == {"ambiguous"}


@pytest.mark.parametrize(("content", "name", "message"), [
    (b"not a zip archive", "log.eval", "is not an Inspect .eval log"),
    (b'{"status": "success"}', "log.json", "is not a readable Inspect eval log"),
    (b"{", "log.json", "is not a readable Inspect eval log"),
    (b"text", "log.txt", "an Inspect log is a .eval (or .json) file"),
])
def test_a_malformed_log_exits_2_naming_the_problem_and_writes_nothing(tmp_path, content, name, message) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out"
    result = capture(path, "embedded:gemma-3-270m", out)
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_a_zip_that_is_not_an_inspect_log_exits_2(tmp_path) -> None:
    path = tmp_path / "other.eval"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    result = capture(path, "embedded:gemma-3-270m", tmp_path / "out")
    assert result.exit_code == 2
    assert "is not a readable Inspect eval log" in result.output
    assert not (tmp_path / "out").exists()


def test_an_unknown_replies_value_exits_2(synthetic_log, tmp_path) -> None:
    result = capture(synthetic_log, "embedded:gemma-3-270m", tmp_path / "out", "replies=first")
    assert result.exit_code == 2
    assert "replies" in result.output
    assert not (tmp_path / "out").exists()


def test_a_json_log_holds_the_same_samples(synthetic_run, synthetic_log, tmp_path) -> None:
    out = tmp_path / "run.json"
    result = export(synthetic_run, out)
    assert result.exit_code == 0, result.output
    as_json = {s.id: s.scores["label"].value for s in read_eval_log(str(out)).samples}
    assert as_json == {s.id: s.scores["label"].value for s in read_eval_log(str(synthetic_log)).samples}


def test_the_inspect_view_server_lists_and_serves_the_log(synthetic_log) -> None:
    """The JSON API that `inspect view` starts (its page reads the log through it; the page itself needs a browser)."""
    from urllib.parse import quote

    testclient = pytest.importorskip("fastapi.testclient")
    from inspect_ai._view.fastapi_server import view_server_app

    client = testclient.TestClient(view_server_app(default_dir=str(synthetic_log.parent)))
    listed = client.get("/log-files").json()["files"]
    assert [entry["name"] for entry in listed] == [synthetic_log.as_uri()]
    served = client.get("/logs/" + quote(str(synthetic_log), safe=""))
    assert served.status_code == 200
    assert len(served.json()["samples"]) == len(read_eval_log(str(synthetic_log)).samples)
