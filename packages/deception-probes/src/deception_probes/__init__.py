"""deception_probes: linear probes on activations, and the statistics to judge them.

For your own arrays (``X`` rows of activations, ``y`` 1 = deceptive, 0 = honest, ``groups`` the trial
of each row)::

    from deception_probes import LogisticMethod, auroc_ci, grouped_folds

    probe = LogisticMethod().fit(X_train, y_train, hyper=0.01, seed=0)
    auroc_ci(probe.score(X_test), y_test, groups_test)  # AUROC with a trial-clustered interval

Probe methods (`LogisticMethod`, `MeanDifferenceMethod`, `LatMethod`, `SparseLogisticMethod`) fit a
`LinearProbe` (save/`load_probe`); the metrics (`auroc`, `auroc_ci`, `auroc_difference_ci`,
`balanced_accuracy`, `recall_at_fpr`); trial-grouped folds and nested cross-validation
(`grouped_folds`, `cross_validate`); the nulls (`permutation_scheme`, `permutation_test`,
`random_direction_null`). `ProbeAnalysis` is the analysis `deception run` and `deception analyze` run.

Importing this package is light (the plugin entry point imports it): each name's module, with numpy
and scikit-learn, is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deception_core import lazy_exports

if TYPE_CHECKING:
    from deception_probes.analysis import ProbeAnalysis
    from deception_probes.crossval import CrossValResult, FoldPlan, cross_validate
    from deception_probes.methods import (
        LatMethod,
        LinearProbe,
        LogisticMethod,
        MeanDifferenceMethod,
        ProbeMethod,
        SparseLogisticMethod,
        dense_methods,
        load_probe,
    )
    from deception_probes.metrics import (
        auroc,
        auroc_ci,
        auroc_difference_ci,
        balanced_accuracy,
        class_counts,
        recall_at_fpr,
    )
    from deception_probes.nulls import PermutationScheme, permutation_scheme, permutation_test, random_direction_null
    from deception_probes.settings import ProbeSettings
    from deception_probes.splits import grouped_folds, inner_folds

#: public name -> ``module:attribute`` it is read from on first use
_LAZY: dict[str, str] = {
    **{name: f"deception_probes.methods:{name}" for name in (
        "LatMethod", "LinearProbe", "LogisticMethod", "MeanDifferenceMethod", "ProbeMethod", "SparseLogisticMethod",
        "dense_methods", "load_probe")},
    **{name: f"deception_probes.metrics:{name}" for name in (
        "auroc", "auroc_ci", "auroc_difference_ci", "balanced_accuracy", "class_counts", "recall_at_fpr")},
    **{name: f"deception_probes.splits:{name}" for name in ("grouped_folds", "inner_folds")},
    **{name: f"deception_probes.crossval:{name}" for name in ("CrossValResult", "FoldPlan", "cross_validate")},
    **{name: f"deception_probes.nulls:{name}" for name in (
        "PermutationScheme", "permutation_scheme", "permutation_test", "random_direction_null")},
    "ProbeSettings": "deception_probes.settings:ProbeSettings",
    "ProbeAnalysis": "deception_probes.analysis:ProbeAnalysis",
}

__all__ = [
    "CrossValResult",
    "FoldPlan",
    "LatMethod",
    "LinearProbe",
    "LogisticMethod",
    "MeanDifferenceMethod",
    "PermutationScheme",
    "ProbeAnalysis",
    "ProbeMethod",
    "ProbeSettings",
    "SparseLogisticMethod",
    "auroc",
    "auroc_ci",
    "auroc_difference_ci",
    "balanced_accuracy",
    "class_counts",
    "cross_validate",
    "dense_methods",
    "grouped_folds",
    "inner_folds",
    "load_probe",
    "permutation_scheme",
    "permutation_test",
    "random_direction_null",
    "recall_at_fpr",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
