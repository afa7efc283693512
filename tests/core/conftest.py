"""Fixtures the reliability tests share: the test plugin set, the tiny model loaded once per module,
and an uninterrupted reference run to compare resumed and recovered runs with."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import CliRunner
from reliability_plugin import PLUGIN_REF, load_tiny, plugin_set, read_exact, run_config

from deception_core import InterpretabilityRunner
from deception_core.plugins import EXTRA_ENV, reset_plugin_set


class ReferenceRun(NamedTuple):
    out: Path
    exact: dict[str, Any]  # `reliability_plugin.read_exact` of ``out``


@pytest.fixture()
def cli_with_plugin(monkeypatch):
    """A CLI runner that sees the reliability test plugin (the plugin set rebuilt around it)."""
    monkeypatch.setenv(EXTRA_ENV, PLUGIN_REF)
    reset_plugin_set()
    yield CliRunner()
    reset_plugin_set()


@pytest.fixture(scope="module")
def plugins():
    return plugin_set()


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_tiny(tiny_model_dir)


@pytest.fixture(scope="module")
def reference(tiny_model_dir, tmp_path_factory, plugins, model) -> ReferenceRun:
    """An uninterrupted run without a checkpoint (3 trials x 2 conditions) and its exact content."""
    out = tmp_path_factory.mktemp("reference") / "out"
    InterpretabilityRunner(run_config(tiny_model_dir, out, analyze=False), plugins=plugins, model=model).run()
    return ReferenceRun(out, read_exact(out))
