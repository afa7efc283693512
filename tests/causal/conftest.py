"""Fixtures of the causal tests: the planted tiny model (see `causal_planted`)."""

from __future__ import annotations

import pytest
from causal_planted import Planted, build_planted


@pytest.fixture(scope="session")
def planted() -> Planted:
    return build_planted()


@pytest.fixture(scope="session")
def planted_model_dir(planted, tmp_path_factory):
    directory = tmp_path_factory.mktemp("planted-llama")
    planted.model.save_pretrained(directory)
    planted.tokenizer.save_pretrained(directory)
    return directory
