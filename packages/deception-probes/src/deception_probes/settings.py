"""Settings of the probe analysis: ``components: {analysis: {probes: {...}}}`` in a ``--config``
file of `deception run` or `deception analyze`, structured by the core (unknown keys refused there
with the valid ones); ``seed`` and ``jobs`` default to the run's."""

from __future__ import annotations

import attrs

from deception_core import JSONObject, UsageError


def _positive(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise UsageError(f"probe setting {attribute.name} must be >= 0, got {value}")


#: below this many activation entries per matrix, the default is one process (see `ProbeSettings.n_jobs`)
PARALLEL_MIN_CELLS = 100_000
#: above this many activation entries per matrix, the automatic permutation count drops to 20
LARGE_DATA_CELLS = 2_000_000


@attrs.frozen(kw_only=True)
class ProbeSettings:
    """The probe analysis's settings (``components: {analysis: {probes: {...}}}`` in a ``--config`` file)."""
    seed: int = 0  # seeds the grouped folds and every other random choice of the analysis
    n_folds: int = attrs.field(default=5, validator=_positive)  # outer folds, grouped by trial
    inner_folds: int = attrs.field(default=2, validator=_positive)  # validation folds inside each training set
    #: inverse regularisation strengths C the logistic probe chooses from on the validation folds
    c_grid: tuple[float, ...] = attrs.field(default=(0.001, 0.01, 0.1, 1.0), converter=tuple)
    #: shuffled-label reruns of the CV per layer x position x method; None: 100 on small data, 20 on large
    n_permutations: int | None = None
    #: norm-matched random directions whose AUROCs are the baseline of each probe's
    n_random_directions: int = attrs.field(default=100, validator=_positive)
    fpr: float = 0.01  # the false-positive rate of the recall column and of the score scale's 1 mark
    top_features: int = attrs.field(default=20, validator=_positive)  # SAE features listed per probe (with --sae)
    plots: bool = True  # write the PNG plots
    #: score every reply token with the best probe (from stored reply_all activations, else by one
    #: teacher-forced pass when the model is at hand); false: per-sample scores only
    token_scores: bool = True
    #: worker processes for the per-layer x position work; None: every core this process may use
    jobs: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))

    def permutations_for(self, n_samples: int, width: int) -> int:
        if self.n_permutations is not None:
            return self.n_permutations
        return 100 if n_samples * width <= LARGE_DATA_CELLS else 20

    def n_jobs(self, cells: int | None = None) -> int:
        """``jobs``, or the cores this process may run on; by default one process when each layer x
        position matrix has fewer than ``PARALLEL_MIN_CELLS`` entries (``cells``), where starting
        worker processes costs more than the work they would share."""
        if self.jobs is not None:
            return self.jobs
        if cells is not None and cells < PARALLEL_MIN_CELLS:
            return 1
        import os

        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def to_dict(self) -> JSONObject:
        return {**attrs.asdict(self), "c_grid": list(self.c_grid)}
