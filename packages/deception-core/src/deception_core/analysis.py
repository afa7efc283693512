"""The contract of a dataset analysis (probes are one) and of a causal test."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import attrs


@attrs.define
class AnalysisReport:
    """What an analysis produced: its JSON results, a console table, and the files it wrote."""

    results: dict[str, Any]
    table: str
    files: list[str] = attrs.field(factory=list)


class Analysis(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def run(self, dataset: Any, out_dir: Path, options: dict[str, Any]) -> AnalysisReport:
        """Analyse ``dataset`` (a `deception_core.dataset.Dataset`) and write into ``out_dir``."""


@attrs.define
class CausalContext:
    """What a causal test gets from the run that invokes it."""

    model: Any  # deception_core.models.loading.LoadedModel
    backend: Any  # the run's CaptureBackend (generation with interventions)
    dataset: Any  # deception_core.dataset.Dataset
    probe_results: dict[str, Any]
    config: Any  # RunConfig
    scenarios: dict[str, Any]  # name -> Scenario instance
    evaluator: Any | None
    out_dir: Path
    sampling: Any


class CausalTest(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def run(self, context: CausalContext) -> dict[str, Any]:
        """Run the test; the runner writes the result to ``causal_<name>.json``."""
