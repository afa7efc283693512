"""The contract of a dataset analysis (probes are one) and of a causal test."""

from __future__ import annotations

import abc
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import attrs

from deception_core.base.records import AnalysisReport, CausalResult, ProbeDirection
from deception_core.base.types import JSONObject

if TYPE_CHECKING:
    from deception_core.config.resolved import ResolvedRun
    from deception_core.config.run import RunConfig
    from deception_core.contracts.capture import CaptureBackend, Sampling
    from deception_core.contracts.evaluator import Evaluator
    from deception_core.contracts.scenario import Scenario
    from deception_core.model.surface import Model
    from deception_core.store.dataset import Dataset

__all__ = ["Analysis", "AnalysisReport", "CausalContext", "CausalResult", "CausalTest", "ProbeDirection"]


class Analysis(abc.ABC):
    """An analysis of a stored dataset. One that takes settings declares ``settings_class`` (a frozen
    attrs class) and takes the structured value in its constructor; a settings field named ``seed``
    or ``jobs`` defaults to the run's (`deception_core.analyse.analyse.build_analyses`)."""

    name: ClassVar[str]
    settings_class: ClassVar[type | None] = None

    #: True when `run_matrix` computes a generalisation matrix (`deception analyze --matrix`)
    has_matrix: ClassVar[bool] = False

    @abc.abstractmethod
    def run(self, dataset: Dataset, out_dir: Path, options: JSONObject) -> AnalysisReport:
        """Analyse ``dataset`` and write into ``out_dir``; expose the chosen direction, if any, on the report."""

    def run_matrix(self, datasets: Mapping[str, Dataset], control: Dataset | None, out_dir: Path,
                   options: JSONObject) -> AnalysisReport | None:
        """Train on each of ``datasets`` (name -> dataset, read and checked to come from one model) and
        evaluate on each, thresholds set on ``control``; write into ``out_dir``. None: this analysis
        has no matrix (``has_matrix`` is False)."""
        return None


@attrs.define
class CausalContext:
    """What a causal test gets from the run that invokes it.

    ``direction`` is the read-out an analysis chose (None when no analysis exposed one: the tests
    then fall back to a difference of means); ``alternatives`` the read-outs the analysis ranked
    next, best first (the tests move to one when norm-matched random directions at ``direction``
    already break the model); ``results`` holds the results of the tests this one declared in
    `CausalTest.requires`, computed earlier in the same run; ``run`` the resolved run (its batch
    size, every component's settings as the run used them; None outside a run). All are values
    handed over in memory.
    """

    model: Model
    backend: CaptureBackend | None
    dataset: Dataset
    direction: ProbeDirection | None
    config: RunConfig
    scenarios: Mapping[str, Scenario]
    evaluator: Evaluator | None
    out_dir: Path
    sampling: Sampling | None
    results: Mapping[str, CausalResult] = attrs.field(factory=dict)
    alternatives: tuple[ProbeDirection, ...] = ()
    run: ResolvedRun | None = None


class CausalTest(abc.ABC):
    """A causal test a plugin registers (``register_causal_tests``): it intervenes on the run's model
    along a probe direction and returns its result."""
    name: ClassVar[str]
    #: names of the causal tests whose results this one reads from `CausalContext.results`; the
    #: runner runs those first
    requires: ClassVar[tuple[str, ...]] = ()
    #: the frozen attrs class of this test's settings (built from ``components.causal_test.<name>``
    #: and passed to the constructor); None when the test takes none
    settings_class: ClassVar[type | None] = None

    @abc.abstractmethod
    def run(self, context: CausalContext) -> JSONObject:
        """Run the test; the runner writes the result to ``causal_<name>.json``."""
