"""Run folders for the report tests: a synthetic one (any size, with score files) and the reader helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory) -> Path:
    """2 scenarios x 2 modes x 2 conditions x 2 trials x 3 rounds = 48 samples, with both score files."""
    from deception_core.testing.report_fixture import write_synthetic_run

    return write_synthetic_run(tmp_path_factory.mktemp("synthetic-run"), trials=2, scenarios=2, reply_tokens=12)


@pytest.fixture()
def artefacts(tmp_path) -> Path:
    """Where browser screenshots go: ``$DECEPTION_TEST_ARTEFACTS`` when set (kept), else the test's tmp dir."""
    target = os.environ.get("DECEPTION_TEST_ARTEFACTS")
    path = Path(target) if target else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path
