"""A trial's samples do not depend on which other trials shared its batches.

Every pending call of every trial in flight shares batches, so a trial meets different partners
when the run plays more trials, other modes or another batch size. Seeded per-request sampling
keeps its replies, labels and activations the same (activations up to float noise).
"""

from __future__ import annotations

import numpy as np
import pytest

from deception_core import InterpretabilityRunner, RunConfig
from deception_core.contracts.capture import CaptureBackend


class _BatchLog(CaptureBackend):
    name = "batch-log"

    def __init__(self, inner: CaptureBackend, sizes: list[int]) -> None:
        super().__init__(inner.model, inner.spec)
        self.inner, self.sizes = inner, sizes

    def generate(self, requests, sampling, interventions=()):
        self.sizes.append(len(requests))
        return self.inner.generate(requests, sampling, interventions)


def _run(tiny_model_dir, plugins, out, sizes: list[int], **changes):
    values = dict(model=str(tiny_model_dir), scenario_names=["echo"], trials=2, max_rounds=2, max_tokens=6,
                  evaluator="echo-judge", output=str(out), analyze=False, device="cpu", dtype="float32",
                  positions="last_prompt,reply_mean,reply_last,reply_all")
    config = RunConfig(**{**values, **changes})
    runner = InterpretabilityRunner(config, plugins=plugins, wrap_backend=lambda backend: _BatchLog(backend, sizes))
    return runner.run().dataset


def _by_id(dataset):
    return {sample.sample_id: sample for sample in dataset.samples}


@pytest.fixture(scope="module")
def runs(tiny_model_dir, tmp_path_factory):
    from deception_core.plugins import build_plugin_set
    from deception_core.testing.fakes import FakePlugin

    fake_plugin_set = build_plugin_set(extra_plugins={"fake": FakePlugin()})
    root = tmp_path_factory.mktemp("partners")
    sizes: dict[str, list[int]] = {"alone": [], "crowd": []}
    alone = _run(tiny_model_dir, fake_plugin_set, root / "alone", sizes["alone"], mode="emergent", batch_size=1)
    crowd = _run(tiny_model_dir, fake_plugin_set, root / "crowd", sizes["crowd"], mode="both", trials=4, batch_size=5)
    return alone, crowd, sizes


def test_batches_mix_modes_and_conditions(runs) -> None:
    _alone, crowd, sizes = runs
    assert set(sizes["alone"]) == {1}
    assert max(sizes["crowd"]) == 5  # 16 trials in waves of 10: calls of both modes and all conditions share batches
    assert len(crowd.samples) == 32


def test_text_and_labels_do_not_depend_on_batch_partners(runs) -> None:
    alone, crowd, _sizes = runs
    shared = _by_id(crowd)
    for sample_id, sample in _by_id(alone).items():
        other = shared[sample_id]
        assert other.reply_text == sample.reply_text, sample_id
        assert other.label == sample.label, sample_id
        assert other.n_reply_tokens == sample.n_reply_tokens, sample_id


def test_activations_do_not_depend_on_batch_partners_beyond_float_noise(runs) -> None:
    alone, crowd, _sizes = runs
    rows = {s.sample_id: s.row for s in crowd.samples}
    for sample in alone.samples:
        row = rows[sample.sample_id]
        for layer in alone.layers:
            for position in alone.positions:
                np.testing.assert_allclose(crowd.matrix(layer, position)[row],
                                           alone.matrix(layer, position)[sample.row], rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(crowd.reply_tokens(layer, row), alone.reply_tokens(layer, sample.row),
                                       rtol=1e-4, atol=1e-5)
