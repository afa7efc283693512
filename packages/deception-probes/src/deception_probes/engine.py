"""The probe analysis of one dataset: every layer x position x method, nested and grouped by trial.

Returns the ``probe_results.json`` document (see ``schemas/probe_results.schema.json``). Data that
cannot support a figure gets a status and a reason in its place: ambiguous-only or one-class data
trains no probe, too few trials give no cross-validation, and a split without both classes is
"not computable".
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from deception_core import JSONObject, ProbeDirection, Sample
from deception_probes.baseline import judge_baseline, label_policy
from deception_probes.confounds import metadata_baselines
from deception_probes.crossval import CrossValResult, FoldPlan, cross_validate
from deception_probes.directions import alternatives, probe_direction
from deception_probes.generalise import leave_one_scenario_out, transfer_matrices
from deception_probes.informative import constant_cells, describe
from deception_probes.lexical import lexical_baseline
from deception_probes.methods import LinearProbe, ProbeMethod, dense_methods
from deception_probes.metrics import (
    auroc,
    auroc_ci,
    balanced_accuracy,
    class_counts,
    recall_at_fpr,
)
from deception_probes.multilayer import multi_layer_probes
from deception_probes.nulls import PermutationScheme, permutation_scheme, permutation_test, random_direction_null
from deception_probes.sae_features import analyse_sae
from deception_probes.scores import THRESHOLD, ScoreScale, sample_probes, stored_reply_tokens, write_score_files
from deception_probes.settings import ProbeSettings
from deception_probes.splits import both_classes, feasible_folds, grouped_folds, inner_folds, trials_per_class

if TYPE_CHECKING:
    from deception_core import Dataset, ReplyTokenStates

log = logging.getLogger("deception.probes")
RESULTS_SCHEMA_VERSION = 1
LABEL_VALUE = {"honest": 0, "deceptive": 1}


def dataset_summary(dataset: Dataset) -> dict[str, Any]:
    labels = Counter(s.label for s in dataset.samples)
    groups: dict[tuple[str, str, str], Counter[str]] = {}
    for s in dataset.samples:
        key = (str(s.scenario), str(s.mode), str(s.condition))
        groups.setdefault(key, Counter())[s.label] += 1
    model = dataset.meta.model
    return {
        "n_samples": len(dataset.samples),
        "n_trials": len({s.trial_key for s in dataset.samples}),
        "model": model.get("id") if isinstance(model, dict) else str(model),
        "layers": dataset.layers,
        "positions": dataset.positions,
        "label_counts": {k: int(labels.get(k, 0)) for k in ("honest", "deceptive", "ambiguous")},
        "by_group": [
            {"scenario": k[0], "mode": k[1], "condition": k[2], "honest": int(c["honest"]),
             "deceptive": int(c["deceptive"]), "ambiguous": int(c["ambiguous"])}
            for k, c in sorted(groups.items())
        ],
    }


def _blocking_reason(y: np.ndarray, groups: np.ndarray, settings: ProbeSettings, n_samples: int,
                     layers_positions: bool) -> str | None:
    if n_samples == 0:
        return "the dataset has no samples: no probe trained"
    if not layers_positions:
        return "the dataset stores no activations (no layers or positions in its meta): no probe trained"
    if len(y) == 0:
        return f"all {n_samples} samples are ambiguous: no probe trained"
    counts = class_counts(y)
    if not both_classes(y):
        return f"one class only ({counts['honest']} honest, {counts['deceptive']} deceptive): no probe trained"
    honest_trials, deceptive_trials = trials_per_class(y, groups)
    if feasible_folds(y, groups, max(settings.n_folds, 2)) < 2:
        return (f"too few trials for grouped CV: {honest_trials} trial(s) with honest and {deceptive_trials} with "
                "deceptive samples; at least 2 of each are needed (run more trials)")
    return None


def _plans(y: np.ndarray, groups: np.ndarray, settings: ProbeSettings) -> tuple[list[FoldPlan], list[dict[str, Any]]]:
    k = feasible_folds(y, groups, settings.n_folds)
    plans, records = [], []
    for number, (tr, te) in enumerate(grouped_folds(y, groups, k, settings.seed)):
        usable = both_classes(y[tr])
        inner = inner_folds(y[tr], groups[tr], settings.inner_folds, settings.seed + 1 + number) if usable else []
        plans.append(FoldPlan(tr, te, inner, usable))
        records.append({"fold": number, "train": class_counts(y[tr], groups[tr]), "test": class_counts(y[te], groups[te]),
                        "validation_folds": len(inner),
                        "status": "ok" if usable else "skipped: the training side lacks a class"})
    return plans, records


def _cell_entry(layer: int, position: str, cv: CrossValResult, y: np.ndarray, groups: np.ndarray, plans: list[FoldPlan],
                settings: ProbeSettings) -> dict[str, Any]:
    mask = cv.scored
    scores, yy, gg = cv.scores[mask], y[mask], groups[mask]
    return {
        "layer": layer,
        "position": position,
        "method": cv.method,
        "n_scored": int(mask.sum()),
        "auroc": auroc_ci(scores, yy, gg),
        "balanced_accuracy": balanced_accuracy(scores, yy),
        "recall_at_fpr": recall_at_fpr(scores, yy, settings.fpr),
        "fold_aurocs": [auroc(cv.scores[p.test], y[p.test]) if p.usable else None for p in plans],
        "hypers": cv.hypers,
        "validation_auroc": cv.validation_auroc,
        "permutation": None,
    }


def _with_refit_variance(entry: dict[str, Any], scores: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
    """Recompute the cell's interval with the refitting variance its permutation null measured."""
    perm = entry["permutation"]
    extra = (perm or {}).get("refit_logit_variance") or 0.0
    if entry["auroc"] is not None and extra > 0:
        mask = ~np.isnan(scores)
        entry["auroc"] = auroc_ci(scores[mask], y[mask], groups[mask], extra_logit_variance=extra)


def analyse_layer_position(layer: int, position: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray,
                           plans: list[FoldPlan], scheme: PermutationScheme, settings: ProbeSettings
                           ) -> tuple[list[dict[str, Any]], dict[str, CrossValResult]]:
    """Every method at one layer and position: nested CV, permutation null, random directions.

    Runs in a worker process (one BLAS thread); it depends only on its arguments, so the results
    are the same whichever worker runs it and however many there are.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        entries, cvs = [], {}
        observed: dict[str, float | None] = {}
        norms: list[float] = []
        for method in dense_methods(settings.c_grid):
            t0, c0 = time.perf_counter(), time.process_time()
            cv = cross_validate(method, X, y, plans, settings.seed)
            cvs[method.name] = cv
            entry = _cell_entry(layer, position, cv, y, groups, plans, settings)
            value = entry["auroc"]["value"] if entry["auroc"] else None
            entry["permutation"] = permutation_test(method, X, scheme, plans, groups, cv.chosen_hyper(), value,
                                                   settings.seed)
            _with_refit_variance(entry, cv.scores, y, groups)
            observed[method.name] = value
            if method.name == "logistic":
                norms = cv.direction_norms
            entry["elapsed_s"] = round(time.perf_counter() - t0, 3)
            entry["cpu_s"] = round(time.process_time() - c0, 3)
            entries.append(entry)
        null = random_direction_null(X, y, float(np.mean(norms)) if norms else 1.0, settings.n_random_directions,
                                     settings.seed + layer, observed)
        for entry in entries:
            entry["random_directions"] = null
    return entries, cvs


def _analyse_cells(dataset: Dataset, keys: list[tuple[int, str]], rows: np.ndarray, y: np.ndarray, groups: np.ndarray,
                   plans: list[FoldPlan], scheme: PermutationScheme, settings: ProbeSettings
                   ) -> tuple[list[dict[str, Any]], dict[tuple[int, str, str], CrossValResult]]:
    """The layer x position cells ``keys``, spread over ``settings.n_jobs()`` processes with joblib."""
    from joblib import Parallel, delayed

    width = int(np.asarray(dataset.matrix(keys[0][0], keys[0][1])).shape[1])
    n_jobs = min(settings.n_jobs(len(rows) * width), len(keys))
    tasks = (delayed(analyse_layer_position)(layer, position, np.asarray(dataset.matrix(layer, position))[rows], y,
                                             groups, plans, scheme, settings) for layer, position in keys)
    outputs = Parallel(n_jobs=n_jobs, backend="loky" if n_jobs > 1 else "sequential")(tasks)
    cells: list[dict[str, Any]] = []
    cvs: dict[tuple[int, str, str], CrossValResult] = {}
    for (layer, position), (entries, by_method) in zip(keys, outputs, strict=True):
        for entry in entries:
            log.info("probes: layer %s %s %s: held-out AUROC %s (%.1fs)", layer, position, entry["method"],
                     "n/a" if entry["auroc"] is None else f"{entry['auroc']['value']:.3f}", entry["elapsed_s"])
        cells += entries
        cvs.update({(layer, position, name): cv for name, cv in by_method.items()})
    return cells, cvs


@attrs.define
class Outcome:
    """The results document plus what the plots need (the best cell's held-out scores and labels), and
    the chosen read-out handed to the causal tests as a value (with the next-best cells' probes)."""

    results: dict[str, Any]
    best_scores: np.ndarray | None = None
    y: np.ndarray | None = None
    direction: ProbeDirection | None = None
    alternatives: tuple[ProbeDirection, ...] = ()


@attrs.frozen
class Labelled:
    """Which samples train and test probes: labelled rows, their labels and trials; the rest are ambiguous."""

    rows: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    ambiguous_rows: np.ndarray

    @classmethod
    def of(cls, samples: list[Sample]) -> Labelled:
        rows = np.array([i for i, s in enumerate(samples) if _field(s, "label") in LABEL_VALUE], dtype=np.int64)
        return cls(rows, np.array([LABEL_VALUE[_field(samples[i], "label")] for i in rows], dtype=np.int64),
                   np.array([str(_field(samples[i], "trial_key")) for i in rows], dtype=object),
                   np.array([i for i, s in enumerate(samples) if _field(s, "label") not in LABEL_VALUE], dtype=np.int64))


def _field(sample: Sample | Mapping[str, object], name: str) -> Any:
    """A sample's field, whether samples are dicts (samples.jsonl) or typed records."""
    return sample.get(name) if isinstance(sample, dict) else getattr(sample, name, None)


def _empty_results(dataset: Dataset, settings: ProbeSettings, labelled: Labelled) -> dict[str, Any]:
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "status": "ok",
        "reasons": [],
        "dataset": dataset_summary(dataset),
        "settings": settings.to_dict(),
        "labelled": {**class_counts(labelled.y, labelled.groups), "ambiguous_excluded": int(len(labelled.ambiguous_rows))},
        "splits": {"grouping": "trial_key", "n_folds": 0, "folds": []},
        "cells": [],
        "nested": None,
        "best": None,
        "ambiguous": {"n": int(len(labelled.ambiguous_rows)), "excluded_from_training": True,
                      "best_probe_scores": None},
        "generalisation": None,
        "confounds": None,
        "not_informative": [],
        "lexical_baseline": None,
        "sae": None,
        "scores": None,
        "judge_baseline": None,
        "multi_layer": [],
        "plots": [],
        "files": [],
    }


def run_probe_analysis(dataset: Dataset, out_dir: Path, settings: ProbeSettings, reply_states: ReplyTokenStates | None = None,
                       control: Dataset | None = None) -> Outcome:
    """The analysis of ``dataset``; ``reply_states`` (a `deception_core.capture.reply_states.ReplyTokenStates`)
    gives the reply tokens' activations where the dataset did not store them, ``control`` (a dataset)
    the reference of the score scale (`deception_probes.scores.ScoreScale`)."""
    started = time.time()
    samples = dataset.samples
    labelled = Labelled.of(samples)
    rows, y, groups, ambiguous_rows = labelled.rows, labelled.y, labelled.groups, labelled.ambiguous_rows
    results = _empty_results(dataset, settings, labelled)
    blocking = _blocking_reason(y, groups, settings, len(samples), bool(dataset.layers and dataset.positions))
    if blocking:
        results["status"] = "no_probe"
        results["reasons"].append(blocking)
        results["sae"] = {"status": "not computable", "reason": blocking, "positions": []}
        results["elapsed_s"] = round(time.time() - started, 3)
        return Outcome(results)

    plans, fold_records = _plans(y, groups, settings)
    results["splits"] = {"grouping": "trial_key", "n_folds": len(plans), "folds": fold_records,
                         "splitter": "class-balanced grouped k-fold (outer); grouped validation folds inside each training set"}
    if len(plans) < settings.n_folds:
        results["reasons"].append(f"only {len(plans)} grouped folds (asked for {settings.n_folds}): limited by trials per class")
    if not any(p.inner for p in plans):
        results["reasons"].append("too few trials for validation folds: hyper-parameters fixed at defaults")

    width = int(np.asarray(dataset.matrix(dataset.layers[0], dataset.positions[0])).shape[1])
    n_permutations = settings.permutations_for(len(y), width)
    results["settings"]["n_permutations"] = n_permutations
    scheme = permutation_scheme(y, groups, plans, n_permutations, settings.seed + 7)
    results["permutation_scheme"] = {**scheme.describe(), "n_permutations": int(scheme.labellings.shape[1])}
    if not scheme.testable and n_permutations > 0:
        results["reasons"].append(f"permutation test {scheme.reason}")
    constant = constant_cells(dataset, rows)
    results["not_informative"] = describe(constant, dataset.layers, dataset.positions, len(rows))
    keys = [(layer, position) for layer in dataset.layers for position in dataset.positions
            if (layer, position) not in constant]
    if not keys:
        results["status"] = "no_probe"
        results["reasons"].append("every captured layer and position holds the same activations for all samples: "
                                  "no probe trained (capture positions that differ between records)")
        results["sae"] = {"status": "not computable", "reason": results["reasons"][-1], "positions": []}
        results["elapsed_s"] = round(time.time() - started, 3)
        return Outcome(results)
    cells, cvs = _analyse_cells(dataset, keys, rows, y, groups, plans, scheme, settings)
    results["cells"] = cells
    results["multi_layer"], ensembles = multi_layer_probes(cvs, dataset.layers, dataset.positions, y, groups, plans,
                                                           settings.fpr)
    results["nested"] = _nested({**cvs, **ensembles}, y, groups, plans, settings, cells)
    methods = dense_methods(settings.c_grid)
    best_key, selected_on = _select_best(cvs, cells)
    X_best = np.asarray(dataset.matrix(best_key[0], best_key[1]))[rows]
    results["best"], best_probe = _save_best(best_key, selected_on, cvs, methods, X_best, y, results, dataset,
                                             ambiguous_rows, out_dir, settings)
    best_method = next(m for m in methods if m.name == best_key[2])
    hyper = cvs[best_key].chosen_hyper()
    results["judge_baseline"] = judge_baseline(
        samples, rows, y, groups, cvs[best_key].scores, label_policy(dataset.meta.to_json()),
        {"layer": best_key[0], "position": best_key[1], "method": best_key[2], "scores": "held-out folds"})
    scale = _score_scale(cvs[best_key], y, best_key, best_probe, control, settings)
    results["best"]["threshold"] = THRESHOLD
    results["best"]["scale"] = scale.to_dict()
    results["scores"] = _write_scores(dataset, out_dir, best_key, best_method, best_probe, cvs[best_key], X_best,
                                      labelled, plans, settings, scale, reply_states)
    scen = np.array([str(_field(samples[i], "scenario")) for i in rows], dtype=object)
    labelled_samples = [samples[i] for i in rows]
    results["generalisation"] = {
        "layer": best_key[0], "position": best_key[1], "method": best_key[2], "hyper": hyper,
        "leave_one_scenario_out": leave_one_scenario_out(best_method, X_best, y, groups, scen, hyper, settings),
        "transfer": transfer_matrices(best_method, X_best, y, groups, labelled_samples, hyper, settings),
    }
    nested_auroc = (results["nested"]["auroc"] or {}).get("value")
    results["confounds"] = metadata_baselines(labelled_samples, y, groups, settings,
                                              nested_auroc if nested_auroc is not None else results["best"]["auroc"])
    results["lexical_baseline"] = lexical_baseline(
        samples, rows, y, groups, plans, settings, cvs[best_key].scores,
        {"layer": best_key[0], "position": best_key[1], "method": best_key[2], "scores": "held-out folds"})
    results["sae"] = analyse_sae(dataset, rows, y, groups, plans, settings, out_dir)
    direction = probe_direction(best_probe, results["best"])
    others = alternatives(dataset, rows, y, cvs, methods, best_key, settings.seed)
    results["elapsed_s"] = round(time.time() - started, 3)
    return Outcome(results, cvs[best_key].scores, y, direction, others)


def _nested(cvs: dict[tuple[int, str, str], CrossValResult], y: np.ndarray, groups: np.ndarray,
            plans: list[FoldPlan], settings: ProbeSettings, cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Per outer fold, the (layer, position, method) with the best validation AUROC; its held-out scores pooled.

    Its interval carries the largest refitting variance measured by any cell's permutation null.
    """
    scores = np.full(len(y), np.nan)
    choices = []
    for number, plan in enumerate(plans):
        candidates = {k: v for k, cv in cvs.items() if (v := cv.validation_auroc[number]) is not None}
        if not plan.usable or not candidates:
            choices.append({"fold": number, "status": "no validation folds: nothing selected"})
            continue
        key = max(candidates, key=lambda k: candidates[k])
        scores[plan.test] = cvs[key].scores[plan.test]
        choices.append({"fold": number, "layer": key[0], "position": key[1], "method": key[2],
                        "hyper": cvs[key].hypers[number], "validation_auroc": candidates[key]})
    mask = ~np.isnan(scores)
    extra = max([(c["permutation"] or {}).get("refit_logit_variance") or 0.0 for c in cells], default=0.0)
    ci = auroc_ci(scores[mask], y[mask], groups[mask], extra_logit_variance=extra) if mask.any() else None
    return {"auroc": ci, "n_scored": int(mask.sum()), "choices": choices,
            "status": "ok" if ci is not None else "not computable",
            "reason": None if ci is not None else "too few trials to select on validation folds",
            "balanced_accuracy": balanced_accuracy(scores[mask], y[mask]) if mask.any() else None,
            "recall_at_fpr": recall_at_fpr(scores[mask], y[mask], settings.fpr) if mask.any() else None}


def _select_best(cvs: dict[tuple[int, str, str], CrossValResult], cells: list[dict[str, Any]]
                 ) -> tuple[tuple[int, str, str], str]:
    """Best (layer, position, method) by mean validation AUROC; held-out AUROC only when no validation exists."""
    means = {}
    for key, cv in cvs.items():
        values = [v for v in cv.validation_auroc if v is not None]
        if values:
            means[key] = float(np.mean(values))
    if means:
        return max(means, key=lambda k: means[k]), "validation folds (mean validation AUROC)"
    held = {(c["layer"], c["position"], c["method"]): c["auroc"]["value"] for c in cells if c["auroc"]}
    if held:
        return max(held, key=lambda k: held[k]), "held-out folds (too few trials for validation folds): optimistic"
    first = next(iter(cvs))
    return first, "none (no figure could be computed): first layer, position and method"


def _score_scale(cv: CrossValResult, y: np.ndarray, key: tuple[int, str, str], probe: LinearProbe, control: Dataset | None,
                 settings: ProbeSettings) -> ScoreScale:
    """The scale of every written score: anchored on the control set's scores under the final probe
    where a control set with this layer and position was given, else on the honest samples' held-out scores."""
    if control is not None:
        matrix = control.arrays.get(f"layer{key[0]}/{key[1]}")
        if matrix is not None and np.asarray(matrix).shape[1:] == (probe.dim,) and len(matrix):
            return ScoreScale.fit(probe.score(np.asarray(matrix)), settings.fpr, "control samples")
        log.warning("probes: the control set has no layer %s %s activations of width %d; the score scale "
                    "uses the honest samples' held-out scores", key[0], key[1], probe.dim)
    honest = cv.scores[(y == 0) & ~np.isnan(cv.scores)]
    return ScoreScale.fit(honest, settings.fpr, "honest samples (held-out scores)")


def _write_scores(dataset: Dataset, out_dir: Path, key: tuple[int, str, str], method: ProbeMethod, probe: LinearProbe,
                  cv: CrossValResult, X: np.ndarray, labelled: Labelled, plans: list[FoldPlan],
                  settings: ProbeSettings, scale: ScoreScale, reply_states: ReplyTokenStates | None) -> JSONObject:
    """The per-sample (and per-token) score files of the best probe; see `deception_probes.scores`.

    Reply tokens come from the stored ``reply_all`` activations, else from ``reply_states`` (one
    teacher-forced pass at the probe's layer); neither, or ``settings.token_scores`` off: no token file.
    """

    tokens = stored_reply_tokens(dataset, key[0]) if settings.token_scores else None
    source = "stored reply_all activations" if tokens is not None else None
    if tokens is None and settings.token_scores and reply_states is not None:
        rows = [i for i, s in enumerate(dataset.samples) if _field(s, "reply_ids")]
        started = time.perf_counter()
        tokens = _timed(reply_states.states(dataset, key[0], rows), started, key[0], len(rows))
        source = "teacher-forced pass over the stored prompt and reply ids"
    probes = (sample_probes(method, X, labelled.y, plans, cv.hypers, probe, labelled.rows, len(dataset.samples),
                            settings.seed) if tokens is not None else [probe] * len(dataset.samples))
    paths = write_score_files(dataset, out_dir, key, cv.scores, labelled.rows, probes, probe, scale, tokens)
    return {"files": [p.name for p in paths], "layer": key[0], "position": key[1], "method": key[2],
            "token_scores": tokens is not None, "token_source": source, "scale": scale.to_dict(),
            "note": "labelled samples: held-out fold scores; other samples: the probe fitted on all labelled samples; "
                    "score: on the scale (0 = decision threshold), score_raw: the raw projection"}


def _timed(states: Iterator[tuple[int, np.ndarray]], started: float, layer: int, n: int
           ) -> Iterator[tuple[int, np.ndarray]]:
    """``states`` passed through, logging how long the pass took once it is used up."""
    yield from states
    log.info("probes: token scores of %d replies at layer %s by a teacher-forced pass (%.1fs)", n, layer,
             time.perf_counter() - started)


def _save_best(key: tuple[int, str, str], selected_on: str, cvs: dict[tuple[int, str, str], CrossValResult],
               methods: list[ProbeMethod], X: np.ndarray, y: np.ndarray, results: dict[str, Any], dataset: Dataset,
               ambiguous_rows: np.ndarray, out_dir: Path, settings: ProbeSettings) -> tuple[JSONObject, LinearProbe]:
    layer, position, method_name = key
    probes_dir = out_dir / "probes"
    per_method = {}
    best_probe = None
    for method in methods:
        hyper = cvs[(layer, position, method.name)].chosen_hyper()
        probe = method.fit(X, y, hyper, settings.seed)
        path = probe.save(probes_dir / f"{method.name}_L{layer}_{position}.safetensors", layer=layer, position=position)
        per_method[method.name] = str(path.relative_to(out_dir))
        if method.name == method_name:
            best_probe = probe
    assert best_probe is not None
    path = best_probe.save(probes_dir / "best_probe.safetensors", layer=layer, position=position,
                           selected_on=selected_on)
    cell = next(c for c in results["cells"] if (c["layer"], c["position"], c["method"]) == key)
    nested = results["nested"]
    if len(ambiguous_rows):
        amb = best_probe.score(np.asarray(dataset.matrix(layer, position))[ambiguous_rows])
        honest_scores, deceptive_scores = best_probe.score(X[y == 0]), best_probe.score(X[y == 1])
        results["ambiguous"]["best_probe_scores"] = {
            "mean": float(amb.mean()), "median": float(np.median(amb)),
            "fraction_above_zero": float((amb > 0).mean()),
            "honest_mean_in_sample": float(honest_scores.mean()), "deceptive_mean_in_sample": float(deceptive_scores.mean()),
        }
    return {
        "layer": layer,
        "position": position,
        "method": method_name,
        "hyper": best_probe.hyper,
        "file": str(path.relative_to(out_dir)),
        "auroc": cell["auroc"]["value"] if cell["auroc"] else None,
        "auroc_ci": [cell["auroc"]["ci_low"], cell["auroc"]["ci_high"]] if cell["auroc"] else None,
        "nested_auroc": nested["auroc"]["value"] if nested["auroc"] else None,
        "selected_on": selected_on,
        "direction_norm": float(np.linalg.norm(best_probe.direction)),
        "bias": best_probe.bias,
        "dim": best_probe.dim,
        "per_method_files": per_method,
        "note": "auroc: held-out AUROC of this cell; nested_auroc: held-out AUROC of the whole selection procedure",
    }, best_probe
