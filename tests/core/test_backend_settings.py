"""The hf capture backend's setting reaches it through ``components``; misspelt settings are refused."""

from __future__ import annotations

import numpy as np
import pytest

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.base.errors import ConfigError
from deception_core.base.registry import Kind
from deception_core.capture.hf import HFCaptureBackend, HFSettings
from deception_core.config.components import settings_for


def _run(tiny_model_dir, out, fake_plugin_set, components):
    backends: list = []

    def keep(backend):
        backends.append(backend)
        return backend

    config = RunConfig(model=str(tiny_model_dir), scenario_names=["echo"], trials=2, max_rounds=2, max_tokens=6,
                       evaluator="echo-judge", output=str(out), analyze=False, batch_size=4,
                       components=components)
    dataset = InterpretabilityRunner(config, plugins=fake_plugin_set, wrap_backend=keep).run().dataset
    [backend] = backends
    return backend, dataset


def test_retire_finished_rows_false_gives_plain_generate_with_the_same_results(tiny_model_dir, tmp_path,
                                                                                 fake_plugin_set) -> None:
    default, expected = _run(tiny_model_dir, tmp_path / "a", fake_plugin_set, {})
    plain, got = _run(tiny_model_dir, tmp_path / "b", fake_plugin_set,
                      {"capture_backend": {"hf": {"retire_finished_rows": False}}})
    assert isinstance(plain, HFCaptureBackend)
    assert default.retire_finished_rows is True
    assert plain.retire_finished_rows is False
    assert plain.settings == HFSettings(retire_finished_rows=False)
    assert got.column("reply_text") == expected.column("reply_text")
    np.testing.assert_allclose(got.matrix(1, "reply_mean"), expected.matrix(1, "reply_mean"), rtol=1e-4, atol=1e-5)


def test_a_misspelt_or_mistyped_backend_setting_is_refused_with_the_valid_keys() -> None:
    with pytest.raises(ConfigError, match="capture backend 'hf'.*retire_rows.*Valid keys: retire_finished_rows"):
        settings_for(Kind.CAPTURE_BACKEND, "hf", HFCaptureBackend, {"retire_rows": False})
    with pytest.raises(ConfigError, match="retire_finished_rows"):
        settings_for(Kind.CAPTURE_BACKEND, "hf", HFCaptureBackend, {"retire_finished_rows": "no"})
