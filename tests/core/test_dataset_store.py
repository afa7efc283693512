"""Datasets round-trip through safetensors + JSONL and corrupt files are refused."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import pytest

from deception_core.base.records import Sample, Trial
from deception_core.store import Dataset, DatasetError, read_dataset, write_dataset
from deception_core.store.dataset import sha256_file


def _dataset(n: int = 4) -> Dataset:
    rng = np.random.default_rng(0)
    samples = [Sample(trial_key=f"t{i // 2}", label="honest" if i % 2 else "deceptive", row=i) for i in range(n)]
    arrays = {"layer1/last_prompt": rng.normal(size=(n, 8)).astype(np.float32),
              "prompt_ids/values": np.arange(10, dtype=np.int32),
              "prompt_ids/offsets": np.array([0, 2, 5, 7, 10], dtype=np.int64)}
    meta = {"layers": [1], "positions": ["last_prompt"], "model": {"id": "m"}}
    return Dataset(meta, samples, [Trial(trial_key="t0"), Trial(trial_key="t1")], arrays)


def test_round_trip_is_exact(tmp_path) -> None:
    original = _dataset()
    write_dataset(tmp_path / "d", original)
    loaded = read_dataset(tmp_path / "d")
    assert loaded.samples == original.samples
    np.testing.assert_array_equal(loaded.matrix(1, "last_prompt"), original.arrays["layer1/last_prompt"])
    assert loaded.prompt_ids(2) == [5, 6]
    assert loaded.arrays["prompt_ids/values"].dtype == np.int32
    assert loaded.meta.schema_version == 2
    assert loaded.meta.n_samples == 4


def test_reply_ids_are_stored_as_a_ragged_array_and_read_back_onto_the_samples(tmp_path) -> None:
    original = _dataset()
    original.samples[:] = [attrs.evolve(s, reply_ids=list(range(i + 1))) for i, s in enumerate(original.samples)]
    write_dataset(tmp_path / "d", original)
    assert "reply_ids" not in (tmp_path / "d" / "samples.jsonl").read_text()
    loaded = read_dataset(tmp_path / "d")
    assert [s.reply_ids for s in loaded.samples] == [(0,), (0, 1), (0, 1, 2), (0, 1, 2, 3)]
    assert "reply_ids/values" not in loaded.arrays  # the samples carry them; arrays hold activations and prompts
    assert loaded.subset([3, 0]).samples[0].reply_ids == (0, 1, 2, 3)


def test_a_dataset_with_reply_ids_on_some_samples_only_is_refused(tmp_path) -> None:
    original = _dataset()
    original.samples[0] = attrs.evolve(original.samples[0], reply_ids=[1, 2])
    with pytest.raises(DatasetError, match="for every sample or for none"):
        write_dataset(tmp_path / "d", original)


def test_a_schema_1_dataset_written_by_the_old_code_still_loads() -> None:
    dataset = read_dataset(Path(__file__).parent / "data" / "dataset_v1")
    assert dataset.meta.schema_version == 1
    assert len(dataset) == 4
    assert [s.tag for s in dataset.samples] == ["r1", "r2", "r1", "r2"]
    assert {s.caller for s in dataset.samples} == {"agent.act"}
    assert all(s.reply_ids is None for s in dataset.samples)
    assert dataset.samples[1].reply_all_offset == 4
    assert dataset.reply_tokens(1, 1).shape == (dataset.samples[1].reply_all_length, 64)
    assert len(dataset.prompt_ids(0)) == dataset.samples[0].n_prompt_tokens
    assert dataset.trials[0].trial_key == dataset.samples[0].trial_key


def test_a_sample_with_a_field_this_schema_does_not_know_is_refused(tmp_path) -> None:
    write_dataset(tmp_path / "d", _dataset())
    lines = (tmp_path / "d" / "samples.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace('"label"', '"colour": "red", "label"')
    (tmp_path / "d" / "samples.jsonl").write_text("\n".join(lines) + "\n")
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())  # a consistent edit: the checksum matches
    meta["files"]["samples.jsonl"] = sha256_file(tmp_path / "d" / "samples.jsonl")
    (tmp_path / "d" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"unknown field\(s\) \['colour'\]"):
        read_dataset(tmp_path / "d")


def test_subset_keeps_ragged_rows_aligned(tmp_path) -> None:
    dataset = _dataset()
    dataset.arrays["sae/reply_mean/indices"] = np.arange(10, dtype=np.int32) + 100
    dataset.arrays["sae/reply_mean/values"] = np.arange(10, dtype=np.float32) / 10
    dataset.arrays["sae/reply_mean/offsets"] = np.array([0, 1, 4, 4, 10], dtype=np.int64)
    subset = dataset.subset([3, 1])
    np.testing.assert_array_equal(subset.arrays["sae/reply_mean/indices"], [104, 105, 106, 107, 108, 109, 101, 102, 103])
    np.testing.assert_allclose(subset.arrays["sae/reply_mean/values"][-3:], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_array_equal(subset.arrays["sae/reply_mean/offsets"], [0, 6, 9])
    assert [s.row for s in subset.samples] == [0, 1]
    assert subset.prompt_ids(0) == [7, 8, 9]
    assert subset.prompt_ids(1) == [2, 3, 4]
    assert {t.trial_key for t in subset.trials} == {"t0", "t1"}


def test_run_directory_is_accepted(tmp_path) -> None:
    write_dataset(tmp_path / "run" / "dataset", _dataset())
    assert len(read_dataset(tmp_path / "run")) == 4


@pytest.mark.parametrize("damage", ["meta", "samples", "activations", "schema", "rows", "missing"])
def test_corrupt_datasets_are_refused(tmp_path, damage) -> None:
    directory = write_dataset(tmp_path / "d", _dataset())
    if damage == "meta":
        (directory / "meta.json").write_text("{not json")
    elif damage == "samples":
        (directory / "samples.jsonl").write_text('{"ok": 1}\n{broken\n')
    elif damage == "activations":
        (directory / "activations.safetensors").write_bytes(b"\x00\x01garbage")
    elif damage == "schema":
        meta = json.loads((directory / "meta.json").read_text())
        (directory / "meta.json").write_text(json.dumps(dict(meta, schema_version=99)))
    elif damage == "rows":
        (directory / "samples.jsonl").write_text('{"trial_key": "t0", "label": "honest"}\n')
    else:
        (directory / "trials.jsonl").unlink()
    with pytest.raises(DatasetError):
        read_dataset(directory)


def test_nothing_there_says_what_to_pass(tmp_path) -> None:
    with pytest.raises(DatasetError, match="holds no dataset"):
        read_dataset(tmp_path)
