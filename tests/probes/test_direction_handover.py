"""The probes analysis hands its chosen read-out to the causal tests as a value: the same vector and bias
as the saved probe, with nothing read back from disk on the way."""

from __future__ import annotations

import shutil
from typing import Any, ClassVar

import numpy as np
import pytest

from deception_core.analyse.analyse import chosen_alternatives, chosen_direction
from deception_core.base.registry import Kind, Provider, Registry
from deception_core.contracts.analysis import CausalContext, CausalTest
from deception_core.intervene.causal import run_causal_tests
from deception_probes import load_probe
from deception_probes.analysis import ProbeAnalysis
from deception_probes.settings import ProbeSettings


@pytest.fixture()
def analysed(tmp_path, make_dataset, make_labels, fast):
    labels = make_labels(40, 3, seed=2)
    dataset, _ = make_dataset(labels, width=12, layers=(1, 3, 4), signal={3: 4.0, 4: 2.0}, seed=2)
    report = ProbeAnalysis(ProbeSettings(seed=0, **fast, plots=False)).run(dataset, tmp_path, {})
    return dataset, report, tmp_path


def test_the_handed_direction_is_the_saved_probe(analysed):
    _, report, out = analysed
    saved = load_probe(out / report.results["best"]["file"])
    np.testing.assert_array_equal(report.direction.vector, saved.direction)
    assert report.direction.bias == saved.bias


def test_the_handed_direction_names_the_selected_cell(analysed):
    _, report, _ = analysed
    best = report.results["best"]
    assert (report.direction.layer, report.direction.position) == (best["layer"], best["position"])
    assert report.direction.provenance["method"] == best["method"]


def test_the_alternatives_are_other_cells_ranked_by_validation_auroc(analysed):
    _, report, _ = analysed
    layers = [d.layer for d in report.alternatives]
    assert report.direction.layer not in layers
    assert layers == [4, 1]  # the weaker signal ranks before the layer without one


class RecordingTest(CausalTest):
    name = "record"
    seen: ClassVar[list[Any]] = []

    def run(self, context: CausalContext) -> dict[str, Any]:
        RecordingTest.seen.append((context.direction, context.alternatives))
        return {"status": "ok"}


def test_the_causal_stage_gets_the_direction_with_the_probe_files_gone(analysed, monkeypatch):
    import deception_probes.methods

    dataset, report, out = analysed
    shutil.rmtree(out / "probes")

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("the causal path read a probe file")

    monkeypatch.setattr(deception_probes.methods, "load_probe", refuse)
    registry = Registry()
    registry.bound(Kind.CAUSAL_TEST, Provider("test")).add("record", lambda: RecordingTest, summary="records")
    reports = {"probes": report}
    context = CausalContext(None, None, dataset, chosen_direction(reports), type("C", (), {
        "component_params": staticmethod(lambda kind, name: {})})(), {}, None, out, None,
        alternatives=chosen_alternatives(reports))
    RecordingTest.seen.clear()
    run_causal_tests(registry, context, out)
    [(direction, alternatives)] = RecordingTest.seen
    assert direction is report.direction
    assert alternatives is report.alternatives
