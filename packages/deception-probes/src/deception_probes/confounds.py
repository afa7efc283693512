"""Metadata baselines: how well the run's design alone (scenario, mode, condition) separates the labels.

A probe can score well by reading which scenario or condition a prompt came from rather than
whether the utterance is deceptive; on a small run in which one scenario supplies most deceptive
utterances and another most honest ones, that is the easy explanation. Each field scores every
labelled sample by the deceptive fraction of its value, so the AUROC describes how far the field
separates the labels *in this dataset* (a property of the data the probes were trained on, so it
is computed in sample; held-out target encoding would be biased below 0.5 under the null). When a
field separates the labels about as well as the probes do, the headline table says so. A field
with many values and few samples per value (scenario+condition on a small run) overstates the
separation, as any in-sample fit does; its number of values is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deception_core import JSONObject, Sample, json_number, json_object
from deception_probes.metrics import auroc_ci
from deception_probes.settings import ProbeSettings

FIELDS: tuple[tuple[str, ...], ...] = (("scenario",), ("mode",), ("condition",), ("scenario", "condition"))
#: a field whose (in-sample) AUROC reaches this is flagged as a possible confound
WARN_AUROC = 0.8


def field_values(samples: Sequence[Sample], field: tuple[str, ...]) -> np.ndarray:
    return np.array(["|".join(str(getattr(s, name)) for name in field) for s in samples], dtype=object)


def baseline_scores(values: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each sample's score: the deceptive fraction among the labelled samples sharing its value."""
    scores = np.empty(len(y))
    for value in set(values.tolist()):
        same = values == value
        scores[same] = y[same].mean()
    return scores


def metadata_baselines(samples: Sequence[Sample], y: np.ndarray, groups: np.ndarray,
                       settings: ProbeSettings, probe_auroc: float | None) -> JSONObject:
    """One AUROC (with a trial-bootstrap interval) per metadata field, and a warning when a field
    alone separates the labels about as well as the probes do."""
    entries: list[JSONObject] = []
    for field in FIELDS:
        values = field_values(samples, field)
        n_values = len(set(values.tolist()))
        metric = auroc_ci(baseline_scores(values, y), y, groups) \
            if n_values > 1 else None
        entries.append({"field": "+".join(field), "n_values": n_values, "auroc": metric,
                        "status": "ok" if metric else "not computable",
                        "reason": None if metric else "one value only"})
    scored = [(json_number(json_object(e["auroc"])["value"]), e) for e in entries if e["auroc"]]
    best = max(scored, key=lambda pair: pair[0]) if scored else None
    strongest = best[1] if best else None
    warning = None
    if best and best[0] >= WARN_AUROC:
        warning = (f"{best[1]['field']} alone separates the labels with AUROC "
                   f"{best[0]:.2f}")
        if probe_auroc is not None:
            warning += f" (best probe {probe_auroc:.2f})"
        warning += (": the probes may read the run's design rather than deception; look at leave-one-scenario-out "
                    "and the transfer matrices, or run more scenarios and conditions")
    return {"method": "in-sample: each labelled sample scored by the deceptive fraction of its field value; "
                      "interval from resampling trials",
            "fields": entries, "strongest": strongest["field"] if strongest else None,
            "warn_auroc": WARN_AUROC, "warning": warning}
