"""`DatasetMeta`: meta.json as a typed record that reads and writes every document unchanged."""

from __future__ import annotations

import json

import attrs
import pytest

from deception_core.store.meta import DatasetMeta, as_dataset_meta

STORED = {
    "capture_backend": "hf", "created": "2026-01-01T00:00:00+00:00", "files": {"samples.jsonl": "ab12"},
    "judge": {"name": "local"}, "layers": [4, 9], "model": {"id": "m", "d_model": 8}, "n_samples": 3,
    "plugins": {"core": "0.1.0"}, "positions": ["last_prompt", "reply_all"], "scenarios": ["a", "b"],
    "result_config": {"seed": 0, "layers": None}, "schema_version": 2,
}


def test_a_stored_meta_is_written_back_byte_for_byte() -> None:
    meta = DatasetMeta.from_json(STORED)
    assert json.dumps(meta.to_json(), sort_keys=True) == json.dumps(STORED, sort_keys=True)


def test_the_known_fields_are_typed() -> None:
    meta = DatasetMeta.from_json(STORED)
    assert (meta.layers, meta.positions, meta.scenarios, meta.model_id) == ((4, 9), ("last_prompt", "reply_all"),
                                                                            ("a", "b"), "m")


def test_unknown_keys_and_known_keys_stored_as_null_or_of_another_shape_are_kept_as_read() -> None:
    older = {**STORED, "merged_from": [{"source": "x"}], "sae": None, "plugins": ["core"], "config": {"seed": 1}}
    meta = DatasetMeta.from_json(older)
    assert meta.extra == {"merged_from": [{"source": "x"}], "sae": None, "plugins": ["core"], "config": {"seed": 1}}
    assert meta.sae is None
    assert json.dumps(meta.to_json(), sort_keys=True) == json.dumps(older, sort_keys=True)


def test_a_changed_copy_changes_only_that_field() -> None:
    meta = attrs.evolve(DatasetMeta.from_json(STORED), n_samples=5)
    assert meta.to_json() == {**STORED, "n_samples": 5}


def test_a_mapping_given_to_a_dataset_is_read_as_the_document() -> None:
    assert as_dataset_meta(STORED) == DatasetMeta.from_json(STORED)


def test_layers_that_are_not_integers_are_refused() -> None:
    with pytest.raises(TypeError, match="layers"):
        DatasetMeta(layers=["4"], positions=["reply_last"])
