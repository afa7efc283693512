"""Bring your own data: statements and dialogues captured with a plain forward pass, as a standard dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from deception_core.base.errors import UsageError
from deception_core.capture.texts import TextRecord, capture_texts, read_text_records
from deception_core.model.surface import from_hf
from deception_core.store.dataset import read_dataset, write_dataset
from deception_core.testing.tiny_models import tiny_hf_model, tiny_tokenizer

STATEMENTS = [
    {"text": "Paris is the capital of France.", "label": "honest", "group": "p1"},
    {"text": "Paris is the capital of Spain.", "label": "deceptive", "group": "p1"},
    {"text": "Two plus two is four.", "label": "honest", "group": "p2"},
    {"messages": [{"role": "user", "content": "How far is it?"}], "reply": "About ten miles.", "label": "deceptive"},
]


@pytest.fixture(scope="module")
def loaded():
    return from_hf(tiny_hf_model("llama", n_layers=3), tiny_tokenizer(), model_id="tiny-llama", source="test")


def _write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_captured_statements_equal_a_plain_forward_pass(tmp_path, loaded):
    records = read_text_records(_write_jsonl(tmp_path / "facts.jsonl", STATEMENTS))
    dataset = capture_texts(loaded, records, layers=[0, 2], batch_size=3, name="facts")
    tokenizer = loaded.tokenizer
    for row, record in enumerate(STATEMENTS[:3]):
        ids = tokenizer(record["text"], add_special_tokens=True)["input_ids"]
        with torch.no_grad():
            hidden = loaded.hf_model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        for layer in (0, 2):
            states = hidden[layer + 1][0].numpy()  # the output of decoder block `layer`
            span = states[1:]  # the statement's tokens after the beginning-of-sequence token
            np.testing.assert_allclose(dataset.matrix(layer, "reply_mean")[row], span.mean(axis=0), atol=1e-5)
            np.testing.assert_allclose(dataset.matrix(layer, "reply_last")[row], states[-1], atol=1e-5)
    dialogue = dataset.samples[3]
    assert dialogue.n_reply_tokens == len(tokenizer("About ten miles.", add_special_tokens=False)["input_ids"])
    assert [s.trial_key for s in dataset.samples[:3]] == ["p1", "p1", "p2"]
    assert [s.label for s in dataset.samples] == ["honest", "deceptive", "honest", "deceptive"]


def test_the_dataset_round_trips_and_merges(tmp_path, loaded):
    from deception_core.pipeline.merge import merge_runs

    first = capture_texts(loaded, [TextRecord(text="The sky is green.", label="deceptive", group="a")], name="one")
    second = capture_texts(loaded, [TextRecord(text="Snow is white.", label="honest", group="b")], name="two")
    write_dataset(tmp_path / "one", first)
    write_dataset(tmp_path / "two", second)
    merged = merge_runs(tmp_path / "merged", [tmp_path / "one", tmp_path / "two"])
    assert len(merged.samples) == 2
    back = read_dataset(tmp_path / "one")
    np.testing.assert_array_equal(back.matrix(1, "reply_mean"), first.matrix(1, "reply_mean"))


def test_csv_input_with_messages_as_json(tmp_path, loaded):
    path = tmp_path / "chats.csv"
    path.write_text('messages,reply,label\n"[{""role"": ""user"", ""content"": ""Hi""}]",Hello there,honest\n')
    [record] = read_text_records(path)
    assert record.messages[0].content == "Hi"
    assert record.reply == "Hello there"


@pytest.mark.parametrize(("line", "problem"), [
    ('{"label": "honest"}', "exactly one of 'text'"),
    ('{"text": "x", "label": "lying"}', "label 'lying'"),
    ('{"text": "x", "colour": "red"}', "unknown field"),
    ("not json", "not valid JSON"),
])
def test_bad_records_are_refused_with_the_line(tmp_path, line, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(UsageError, match=problem):
        read_text_records(path)


def test_capture_command_refuses_bad_input_before_loading(tmp_path):
    from deception_core.cli import cli

    data = _write_jsonl(tmp_path / "facts.jsonl", STATEMENTS)
    result = CliRunner().invoke(cli, ["capture", str(data), "--model", "embedded:gemma-3-270m", "--layers", "99",
                                      "--output", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "decoder blocks 0..17" in result.output
    assert not (tmp_path / "out").exists()
