"""Train here, evaluate there: probes trained on one dataset, evaluated on others, calibrated on a control set.

The field's protocol (Apollo Research, "Detecting Strategic Deception Using Linear Probes"): train a
probe on simple contrast data, evaluate it on strategic deception, and set the alarm threshold on a
large benign control set so that it rarely fires on ordinary replies. For each training dataset, the
(layer, reply position, method) and hyper-parameter are chosen on ITS OWN grouped validation folds (the
evaluation sets are never looked at); the probe is then fitted on all of its labelled samples and
scores every other dataset. Reported per evaluation set: AUROC with a trial-clustered interval,
recall on deceptive samples at the threshold that flags ``fpr`` of the control set, and the fraction
of the evaluation set's honest samples flagged at that threshold. The matrix over all datasets has
the within-dataset cross-validated AUROC of the chosen cell on its diagonal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from deception_core import (
    JSONObject,
    JSONValue,
    UsageError,
    fingerprint_mismatch,
    json_array,
    json_number,
    json_object,
    read_dataset,
)
from deception_probes.crossval import CrossValResult, cross_validate
from deception_probes.engine import Labelled, _plans
from deception_probes.methods import LinearProbe, ProbeMethod, dense_methods
from deception_probes.metrics import auroc_ci, class_counts
from deception_probes.settings import ProbeSettings
from deception_probes.splits import FoldPlan, feasible_folds

if TYPE_CHECKING:
    from deception_core import Dataset

TRANSFER_FILE = "probe_transfer.json"
#: the positions a transferred probe reads: the reply's own tokens, as the field scores responses. The
#: prompt's last token is left out: in a contrast set (and in instructed games) the prompt carries the
#: instruction itself ("pretend to be dishonest"), which a probe there reads instead of the reply's intent.
READ_POSITIONS = ("reply_mean", "reply_last")


def _model_id(dataset: Dataset) -> JSONValue:
    model = dataset.meta.model
    return model.get("id") if isinstance(model, dict) else model


def check_compatible(named: Mapping[str, Dataset]) -> tuple[list[int], list[str]]:
    """The layers and positions every dataset shares; refuses datasets of different models or none in common."""

    models = {name: _model_id(d) for name, d in named.items()}
    if len(set(map(str, models.values()))) > 1:
        listing = ", ".join(f"{n}: {m}" for n, m in models.items())
        raise UsageError(f"the datasets come from different models ({listing}); a probe reads one model's "
                         "activations: capture every dataset with the same --model")
    different = fingerprint_mismatch({name: d.meta.to_json() for name, d in named.items()})
    if different:
        raise UsageError(f"the datasets come from different models, though their ids agree: {different}; a probe "
                         "reads one model's activations: capture every dataset with the same model files")
    empty = [name for name, d in named.items() if len(d) == 0]
    if empty:
        raise UsageError(f"{', '.join(empty)} hold(s) no samples; pass datasets with samples")
    layers = sorted(set.intersection(*(set(d.layers) for d in named.values())))
    positions = [p for p in next(iter(named.values())).positions if all(p in d.positions for d in named.values())]
    if not layers or not positions:
        listing = "; ".join(f"{n}: layers {d.layers}, positions {d.positions}" for n, d in named.items())
        raise UsageError(f"the datasets share no layer and position ({listing}); capture them with the same "
                         "--layers and --positions")
    return layers, positions


@attrs.frozen
class FittedProbe:
    """The probe chosen on one training dataset's validation folds, fitted on all of it."""

    layer: int
    position: str
    method: str
    hyper: float | None
    probe: LinearProbe
    validation_auroc: float | None  # mean validation AUROC of the choice; None when no fold could score it
    within_auroc: JSONObject | None  # held-out AUROC within the dataset (grouped cross-validation)


def cannot_train(dataset: Dataset, settings: ProbeSettings) -> str | None:
    """None when a probe can be trained and cross-validated on ``dataset``; else why not."""
    labelled = Labelled.of(dataset.samples)
    if feasible_folds(labelled.y, labelled.groups, max(settings.n_folds, 2)) >= 2:
        return None
    counts = class_counts(labelled.y, labelled.groups)
    return (f"{counts['honest']} honest and {counts['deceptive']} deceptive samples in {counts.get('trials', 0)} "
            f"trials ({len(labelled.ambiguous_rows)} ambiguous); at least two trials with each label are needed")


def best_by_validation(dataset: Dataset, labelled: Labelled, plans: list[FoldPlan], layers: list[int],
                       positions: list[str], settings: ProbeSettings
                       ) -> tuple[float, int, str, ProbeMethod, CrossValResult]:
    """The (layer, position, method) with the best mean validation AUROC over ``plans``, with that mean (-1 when
    no fold could be scored) and the cross-validation behind it. The first best wins ties."""
    best: tuple[float, int, str, ProbeMethod, CrossValResult] | None = None
    for layer in layers:
        for position in positions:
            X = np.asarray(dataset.matrix(layer, position))[labelled.rows]
            for method in dense_methods(settings.c_grid):
                cv = cross_validate(method, X, labelled.y, plans, settings.seed)
                values = [v for v in cv.validation_auroc if v is not None]
                score = float(np.mean(values)) if values else -1.0
                if best is None or score > best[0]:
                    best = (score, layer, position, method, cv)
    if best is None:
        raise ValueError("no layer or position to choose from")
    return best


def select_and_fit(dataset: Dataset, layers: list[int], positions: list[str], settings: ProbeSettings) -> FittedProbe:
    """Choose (layer, position, method, hyper) on the dataset's own validation folds; fit on all of it."""
    labelled = Labelled.of(dataset.samples)
    y, groups = labelled.y, labelled.groups
    reason = cannot_train(dataset, settings)
    if reason is not None:
        raise UsageError(f"cannot train on this dataset: {reason}")
    plans, _ = _plans(y, groups, settings)
    score, layer, position, method, cv = best_by_validation(dataset, labelled, plans, layers, positions, settings)
    hyper = cv.chosen_hyper()
    X = np.asarray(dataset.matrix(layer, position))[labelled.rows]
    mask = cv.scored
    return FittedProbe(layer=layer, position=position, method=method.name, hyper=hyper,
                       probe=method.fit(X, y, hyper, settings.seed),
                       validation_auroc=score if score >= 0 else None,
                       within_auroc=auroc_ci(cv.scores[mask], y[mask], groups[mask]))


def control_threshold(scores: np.ndarray, fpr: float) -> JSONObject:
    """The threshold that flags ``fpr`` of the control samples (their (1 - fpr) quantile)."""
    threshold = float(np.quantile(scores, 1 - fpr, method="higher"))
    return {"threshold": threshold, "target_fpr": fpr, "n_control": int(len(scores)),
            "achieved_control_fpr": float((scores > threshold).mean()),
            "resolution_limited": bool(len(scores) < 1 / fpr)}


def evaluate(fitted: FittedProbe, dataset: Dataset, threshold: Mapping[str, JSONValue] | None) -> JSONObject:
    """The fitted probe on one evaluation dataset's labelled samples."""
    labelled = Labelled.of(dataset.samples)
    y, groups = labelled.y, labelled.groups
    entry: JSONObject = {"counts": class_counts(y, groups)}
    if not len(y):
        return {**entry, "status": "scored without labels", "auroc": None,
                "reason": "no labelled samples: every sample is scored (all_samples), no AUROC is claimed"}
    scores = fitted.probe.score(np.asarray(dataset.matrix(fitted.layer, fitted.position))[labelled.rows])
    ci = auroc_ci(scores, y, groups)
    entry.update({"status": "ok" if ci else "not computable", "auroc": ci,
                  "reason": None if ci else "the evaluation set lacks a class"})
    if threshold is not None:
        t = json_number(threshold["threshold"])
        entry["recall_at_control_fpr"] = float((scores[y == 1] > t).mean()) if (y == 1).any() else None
        entry["honest_flagged"] = float((scores[y == 0] > t).mean()) if (y == 0).any() else None
    return entry


@attrs.frozen
class TransferOutcome:
    """``probe_transfer.json``'s document, and the probes behind it (by training dataset) with their
    control-set thresholds (None without a control set), for the per-sample score files."""

    result: JSONObject
    fitted: dict[str, FittedProbe]
    thresholds: dict[str, JSONObject | None]


def transfer_analysis(run: Dataset, train_from: Mapping[str, Dataset], control: Dataset | None, settings: ProbeSettings,
                      run_name: str = "this run") -> JSONObject:
    """Every training dataset (``train_from`` and the run itself) evaluated on every other one."""
    return run_transfer(run, train_from, control, settings, run_name).result


def run_transfer(run: Dataset, train_from: Mapping[str, Dataset], control: Dataset | None, settings: ProbeSettings,
                 run_name: str = "this run") -> TransferOutcome:
    """`transfer_analysis` with its probes. The run itself is a training set only where it can be one:
    a run without enough labels (all ambiguous, say) is scored by the other datasets' probes, with
    the share of its samples flagged at the control set's threshold, and no AUROC."""
    named = {run_name: run, **train_from}
    if control is not None:
        layers, positions = check_compatible({**named, "control": control})
    else:
        layers, positions = check_compatible(named)
    reply_positions = [p for p in positions if p in READ_POSITIONS] or positions
    run_blocked = cannot_train(run, settings) if train_from else None
    for name, d in train_from.items():
        reason = cannot_train(d, settings)
        if reason is not None:
            raise UsageError(f"cannot train on --train-from {name}: {reason}. Pass a labelled dataset")
    fitted = {name: select_and_fit(d, layers, reply_positions, settings) for name, d in named.items()
              if not (name == run_name and run_blocked)}
    rows: list[JSONObject] = []
    if run_blocked:
        rows.append({"train": run_name, "status": "not trained", "reason": run_blocked, "cells": []})
    thresholds: dict[str, JSONObject | None] = {}
    for train_name, fit in fitted.items():
        threshold = None
        if control is not None:
            threshold = control_threshold(fit.probe.score(
                np.asarray(control.matrix(fit.layer, fit.position))), settings.fpr)
        thresholds[train_name] = threshold
        cells: list[JSONObject] = []
        for test_name, test in named.items():
            if test_name == train_name:
                cells.append({"test": test_name, "status": "ok" if fit.within_auroc else "not computable",
                              "auroc": fit.within_auroc, "note": "within the dataset: grouped cross-validation"})
            else:
                cells.append({"test": test_name, **evaluate(fit, test, threshold),
                              "all_samples": flag_counts(fit, test, threshold)})
        rows.append({"train": train_name, "status": "ok", "layer": fit.layer, "position": fit.position,
                     "method": fit.method, "hyper": fit.hyper, "validation_auroc": fit.validation_auroc,
                     "control_threshold": threshold, "cells": cells})
    result: JSONObject = {"datasets": list(named), "layers": layers, "positions": reply_positions,
                          "control": None if control is None else {"n_samples": len(control.samples)},
                          "selected_on": "each training dataset's own grouped validation folds", "rows": rows}
    return TransferOutcome(result, fitted, thresholds)


def flag_counts(fit: FittedProbe, dataset: Dataset, threshold: Mapping[str, JSONValue] | None) -> JSONObject:
    """Every sample of ``dataset``, labelled or not, scored by ``fit``: how many, their mean score, and
    (with a control threshold) how many and what share it flags; the monitoring view, no labels needed."""
    scores = fit.probe.score(np.asarray(dataset.matrix(fit.layer, fit.position)))
    out: JSONObject = {"n_samples": int(len(scores)), "mean_score_raw": float(scores.mean()) if len(scores) else None}
    if threshold is not None:
        t = json_number(threshold["threshold"])
        out["flagged"] = int((scores > t).sum())
        out["flagged_share"] = float((scores > t).mean()) if len(scores) else None
    return out


def _interval(ci: JSONValue) -> str:
    if ci is None:
        return "not computable"
    ci = json_object(ci)
    if ci["ci_low"] is None:
        return f"{json_number(ci['value']):.3f}"
    return f"{json_number(ci['value']):.3f} [{json_number(ci['ci_low']):.3f},{json_number(ci['ci_high']):.3f}]"


def _share(value: JSONValue) -> str:
    return "n/a" if value is None else f"{json_number(value):.3f}"


def transfer_table(result: Mapping[str, JSONValue]) -> str:
    lines = ["train -> test: AUROC [95% CI]; recall at the control set's FPR; honest samples flagged"]
    for row in (json_object(r) for r in json_array(result["rows"])):
        if row.get("status") == "not trained":
            lines.append(f"{row['train']}: no probe trained ({row['reason']}); scored by the others' probes")
            continue
        head = f"{row['train']} ({row['method']} at layer {row['layer']} {row['position']})"
        for cell in (json_object(c) for c in json_array(row["cells"])):
            value = _interval(cell["auroc"])
            if cell.get("status") == "scored without labels":
                value = "no labels, no AUROC"
            extra = ""
            if cell.get("recall_at_control_fpr") is not None or cell.get("honest_flagged") is not None:
                recall, flagged = cell.get("recall_at_control_fpr"), cell.get("honest_flagged")
                extra = f"; recall {_share(recall)}, honest flagged {_share(flagged)}"
            every = json_object(cell.get("all_samples") or {})
            if every.get("flagged") is not None:
                extra += (f"; flagged {every['flagged']} of {every['n_samples']} samples "
                          f"({_share(every.get('flagged_share'))})")
            elif every and cell.get("status") == "scored without labels":
                extra += f"; {every['n_samples']} samples scored (mean raw score {_share(every.get('mean_score_raw'))})"
            lines.append(f"{head} -> {cell['test']}: {value}{extra}")
    return "\n".join(lines)


def load_named(paths: list[str | Path], known: Mapping[str, Dataset] | None = None) -> dict[str, Dataset]:
    """The datasets at ``paths`` by path (those in ``known`` are not read again)."""

    known = known or {}
    return {str(p): known[str(p)] if str(p) in known else read_dataset(p) for p in paths}
