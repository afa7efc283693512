"""The generalisation matrix: train on each dataset, evaluate on every dataset (`deception analyze --matrix`).

Each dataset that can be trained on (both labels in at least two trials each) chooses its probe
(layer, position, method, hyper-parameter) on its own grouped validation folds, or at the layer and
position the user fixed; the probe is then fitted on all of its labelled samples and scores every
other dataset. The diagonal is the held-out score of the same choice under grouped cross-validation
within the dataset (the folds and groups of the probe analysis), so no cell is scored by a probe
that trained on its samples. Per cell: AUROC with the trial-clustered interval (`metrics.auroc_ci`)
and, with a control set, recall on deceptive samples and the share of honest samples flagged at the
threshold that flags ``fpr`` (1 %) of the control set under the probe that scored the cell (on the
diagonal, each fold's probe sets its own threshold). A dataset that cannot be trained on still gets
its column; its row says why it has no probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from deception_core import JSONObject, JSONValue, UsageError, atomic_write_text, json_array, json_number, json_object
from deception_probes.crossval import CrossValResult
from deception_probes.engine import Labelled, _plans
from deception_probes.lexical import METHOD as LEXICAL_METHOD
from deception_probes.lexical import LexicalModel, lexical_baseline, most_common_hyper, sample_texts
from deception_probes.methods import LinearProbe, ProbeMethod
from deception_probes.metrics import auroc_ci, class_counts
from deception_probes.plots import MISSING_FACE, MISSING_TEXT_COLOUR, _figure, _save
from deception_probes.settings import ProbeSettings
from deception_probes.splits import FoldPlan
from deception_probes.transfer import (
    READ_POSITIONS,
    FittedProbe,
    best_by_validation,
    cannot_train,
    check_compatible,
    control_threshold,
    evaluate,
    flag_counts,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from deception_core import Dataset

MATRIX_JSON = "generalisation_matrix.json"
MATRIX_TABLE = "generalisation_matrix.txt"
MATRIX_PLOT = "generalisation_matrix.png"
MATRIX_SCHEMA_VERSION = 1


@attrs.frozen
class MatrixChoice:
    """Where every probe reads: a fixed layer and/or position, or (None) the best by each dataset's validation folds."""

    layer: int | None = None
    position: str | None = None

    def describe(self) -> str:
        fixed = [f"layer {self.layer}" if self.layer is not None else "",
                 f"position {self.position}" if self.position is not None else ""]
        given = " and ".join(f for f in fixed if f)
        rest = "method and C" if given else "layer, position, method and C"
        return (f"{given + ' fixed; ' if given else ''}{rest} chosen on each training dataset's own grouped "
                "validation folds")


@attrs.frozen
class TrainedProbe:
    """One training dataset's choice: the probe fitted on all of it, and its cross-validation at that choice."""

    layer: int
    position: str
    method: ProbeMethod
    cv: CrossValResult
    plans: list[FoldPlan]
    probe: LinearProbe
    validation_auroc: float | None


def train(dataset: Dataset, layers: list[int], positions: list[str], settings: ProbeSettings) -> TrainedProbe:
    """The (layer, position, method) with the best mean validation AUROC, fitted on all labelled samples."""
    labelled = Labelled.of(dataset.samples)
    y, groups = labelled.y, labelled.groups
    plans, _ = _plans(y, groups, settings)
    score, layer, position, method, cv = best_by_validation(dataset, labelled, plans, layers, positions, settings)
    X = np.asarray(dataset.matrix(layer, position))[labelled.rows]
    probe = method.fit(X, y, cv.chosen_hyper(), settings.seed)
    return TrainedProbe(layer, position, method, cv, plans, probe, score if score >= 0 else None)


def _flag_rates(flagged: np.ndarray, y: np.ndarray) -> JSONObject:
    return {"recall_at_control_fpr": float(flagged[y == 1].mean()) if (y == 1).any() else None,
            "honest_flagged": float(flagged[y == 0].mean()) if (y == 0).any() else None}


def within_cell(dataset: Dataset, trained: TrainedProbe, control: Dataset | None, settings: ProbeSettings) -> JSONObject:
    """The diagonal: held-out scores of the chosen cell under grouped CV; with a control set, each
    fold's probe (refitted as the cross-validation fitted it) sets its own 1 % threshold."""
    labelled = Labelled.of(dataset.samples)
    y, groups = labelled.y, labelled.groups
    cv = trained.cv
    mask = cv.scored
    ci = auroc_ci(cv.scores[mask], y[mask], groups[mask])
    entry: JSONObject = {"counts": class_counts(y, groups), "status": "ok" if ci else "not computable",
                         "auroc": ci, "reason": None if ci else "the held-out folds lack a class",
                         "note": f"within the dataset: grouped {len(trained.plans)}-fold cross-validation"}
    if control is None:
        return entry
    X = np.asarray(dataset.matrix(trained.layer, trained.position))[labelled.rows]
    C = np.asarray(control.matrix(trained.layer, trained.position))
    flagged = np.zeros(len(y), dtype=bool)
    for plan, hyper in zip(trained.plans, cv.hypers, strict=True):
        if not plan.usable:
            continue
        fold_probe = trained.method.fit(X[plan.train], y[plan.train], hyper, settings.seed)
        threshold = json_number(control_threshold(fold_probe.score(C), settings.fpr)["threshold"])
        flagged[plan.test] = fold_probe.score(X[plan.test]) > threshold
    entry.update(_flag_rates(flagged[mask], y[mask]))
    return entry


def generalisation_matrix(named: Mapping[str, Dataset], control: Dataset | None, settings: ProbeSettings,
                          choice: MatrixChoice | None = None) -> JSONObject:
    """Train on each of ``named`` (name -> dataset) and evaluate on each; see the module docstring."""
    choice = choice or MatrixChoice()
    if len(named) < 2:
        raise UsageError("a generalisation matrix needs at least two datasets; pass two or more")
    layers, positions = check_compatible({**named, **({"control": control} if control is not None else {})})
    if choice.layer is not None:
        if choice.layer not in layers:
            raise UsageError(f"--layer {choice.layer} is not stored in every dataset; the shared layers are {layers}")
        layers = [choice.layer]
    if choice.position is not None:
        if choice.position not in positions:
            raise UsageError(f"--position {choice.position} is not stored in every dataset; the shared positions "
                             f"are {positions}")
        positions = [choice.position]
    else:
        positions = [p for p in positions if p in READ_POSITIONS] or positions
    blocked = {name: reason for name, d in named.items() if (reason := cannot_train(d, settings)) is not None}
    if len(blocked) == len(named):
        listing = "; ".join(f"{n}: {r}" for n, r in blocked.items())
        raise UsageError(f"no dataset can be trained on ({listing}). Pass at least one labelled dataset")
    rows: list[JSONObject] = []
    for train_name, dataset in named.items():
        if train_name in blocked:
            rows.append({"train": train_name, "status": "not trained", "reason": blocked[train_name], "cells": []})
            continue
        trained = train(dataset, layers, positions, settings)
        threshold = None
        if control is not None:
            threshold = control_threshold(trained.probe.score(
                np.asarray(control.matrix(trained.layer, trained.position))), settings.fpr)
        fitted = _as_fitted(trained)
        cells: list[JSONObject] = []
        for test_name, test in named.items():
            if test_name == train_name:
                cell = within_cell(test, trained, control, settings)
            else:
                cell = evaluate(fitted, test, threshold)
                cell["all_samples"] = flag_counts(fitted, test, threshold)
            cells.append({"test": test_name, **cell})
        rows.append({"train": train_name, "status": "ok", "reason": None, "layer": trained.layer,
                     "position": trained.position, "method": trained.method.name, "hyper": trained.probe.hyper,
                     "validation_auroc": trained.validation_auroc, "control_threshold": threshold, "cells": cells,
                     "lexical": lexical_row(train_name, named, trained.plans, settings)})
    return {"schema_version": MATRIX_SCHEMA_VERSION, "datasets": list(named), "layers": layers,
            "positions": positions, "selected_on": choice.describe(), "fpr": settings.fpr,
            "control": None if control is None else {"n_samples": len(control)},
            "auroc_interval": "95% interval with trials as the independent units (clustered DeLong, logit scale)",
            "rows": rows}


def lexical_row(train_name: str, named: Mapping[str, Dataset], plans: list[FoldPlan],
                settings: ProbeSettings) -> JSONObject:
    """The words-alone row beside a probe's: a bag-of-words detector (`lexical.LexicalModel`) trained on
    ``train_name``'s labelled texts and scored on every dataset's. The diagonal is the lexical baseline
    on the probe's own outer folds; elsewhere the detector is fitted on all of the training texts with
    the (IDF, C) its folds chose most often. Where the words carry over as well as the probe does, the
    probe's transfer says little about the model."""
    dataset = named[train_name]
    labelled = Labelled.of(dataset.samples)
    diagonal = lexical_baseline(dataset.samples, labelled.rows, labelled.y, labelled.groups, plans, settings,
                                None, {})
    row: JSONObject = {"train": train_name, "method": LEXICAL_METHOD}
    if diagonal["status"] != "ok":
        row.update({"status": "not computable", "reason": diagonal["reason"], "cells": []})
        return row
    hypers = [(bool(h["idf"]), json_number(h["C"])) for h in (json_object(x) for x in json_array(diagonal["hypers"])
                                                      if x is not None)]
    texts, _ = sample_texts(dataset.samples, labelled.rows)
    model = LexicalModel.fit(texts, labelled.y, most_common_hyper(hypers), settings.seed)
    cells: list[JSONObject] = []
    for test_name, test in named.items():
        if test_name == train_name:
            cells.append({"test": test_name, "status": "ok", "auroc": diagonal["auroc"],
                          "note": "within the dataset: the probe's outer folds"})
            continue
        target = Labelled.of(test.samples)
        test_texts, _ = sample_texts(test.samples, target.rows)
        ci = auroc_ci(model.score(test_texts), target.y, target.groups) if len(target.y) and any(test_texts) else None
        cells.append({"test": test_name, "status": "ok" if ci else "not computable", "auroc": ci})
    row.update({"status": "ok", "reason": None, "cells": cells})
    return row


def _as_fitted(trained: TrainedProbe) -> FittedProbe:
    """The shape `transfer.evaluate` reads (layer, position, probe)."""
    return FittedProbe(layer=trained.layer, position=trained.position, method=trained.method.name,
                       hyper=trained.probe.hyper, probe=trained.probe, validation_auroc=trained.validation_auroc,
                       within_auroc=None)


def auroc_grid(result: Mapping[str, JSONValue]) -> np.ndarray:
    """AUROC values as a train x test array (NaN where not computable or not trained)."""
    names = [str(n) for n in json_array(result["datasets"])]
    grid = np.full((len(names), len(names)), np.nan)
    for i, row in enumerate(json_object(r) for r in json_array(result["rows"])):
        for cell in (json_object(c) for c in json_array(row["cells"])):
            if cell.get("auroc") is not None:
                grid[i, names.index(str(cell["test"]))] = json_number(json_object(cell["auroc"])["value"])
    return grid


def _interval(ci: JSONValue) -> str:
    if ci is None:
        return "n/a"
    ci = json_object(ci)
    if ci.get("ci_low") is None:
        return f"{json_number(ci['value']):.2f}"
    return f"{json_number(ci['value']):.2f} [{json_number(ci['ci_low']):.2f},{json_number(ci['ci_high']):.2f}]"


def _share(value: JSONValue) -> str:
    return "n/a" if value is None else f"{json_number(value):.2f}"


def short_names(names: list[str]) -> dict[str, str]:
    """A short label per dataset for tables and plots: the folder name, numbered where two agree."""
    bases = [Path(n.rstrip("/")).name or n for n in names]
    return {n: b if bases.count(b) == 1 else f"{b}#{i + 1}" for i, (n, b) in enumerate(zip(names, bases, strict=True))}


def _grid_text(title: str, names: list[str], short: Mapping[str, str], rows: list[Mapping[str, JSONValue]],
               value: str) -> list[str]:
    width = max(12, *(len(short[n]) for n in names))
    cell_width = max(19 if value == "auroc" else 8, *(len(short[n]) for n in names))
    lines = [title, " " * width + "  " + "".join(f"{short[n]:>{cell_width + 2}}" for n in names)]
    for row in rows:
        cells = {str(c["test"]): json_object(c) for c in (json_object(x) for x in json_array(row["cells"]))}
        texts = []
        for n in names:
            cell = cells.get(n)
            if cell is None:
                texts.append("-")
            elif value == "auroc":
                texts.append(_interval(cell.get("auroc")))
            elif value == "flagged_share":
                texts.append(_share(json_object(cell.get("all_samples") or {}).get("flagged_share")))
            else:
                texts.append(_share(cell.get(value)))
        lines.append(f"{short[str(row['train'])]:<{width}}  " + "".join(f"{t:>{cell_width + 2}}" for t in texts))
    return lines


def matrix_table(result: Mapping[str, JSONValue]) -> str:
    """The matrix as text: AUROC [95% CI] (train = rows, test = columns), then the rates at the control's threshold."""
    names = [str(n) for n in json_array(result["datasets"])]
    short = short_names(names)
    rows = [json_object(r) for r in json_array(result["rows"])]
    lines = ["generalisation matrix: rows train, columns test; diagonal: grouped cross-validation within the dataset",
             *(f"  {short[n]} = {n}" for n in names),
             f"  choice: {result['selected_on']}"]
    for row in rows:
        if row["status"] == "ok":
            lines.append(f"  {short[str(row['train'])]}: {row['method']} at layer {row['layer']} {row['position']}")
        else:
            lines.append(f"  {short[str(row['train'])]}: no probe ({row['reason']})")
    lines += _grid_text("AUROC [95% CI]", names, short, rows, "auroc")
    lexical = [json_object(r["lexical"]) for r in rows if r.get("lexical") is not None]
    if lexical:
        lines += _grid_text("the words alone (bag of words + logistic regression, the lexical baseline): AUROC "
                            "[95% CI]", names, short, lexical, "auroc")
    if result.get("control") is not None:
        fpr = json_number(result["fpr"])
        lines += _grid_text(f"recall on deceptive samples at the threshold flagging {fpr:.0%} of the control set",
                            names, short, rows, "recall_at_control_fpr")
        lines += _grid_text("share of honest samples flagged at that threshold", names, short, rows, "honest_flagged")
        lines += _grid_text("share of every sample flagged, labelled or not (off the diagonal)", names, short, rows,
                            "flagged_share")
    return "\n".join(lines)


def matrix_figure(result: Mapping[str, JSONValue]) -> Figure:
    """The AUROC heat map, train on rows and test on columns; grey "n/a" where a cell has no AUROC."""
    names = [str(n) for n in json_array(result["datasets"])]
    short = short_names(names)
    labels = [short[n] for n in names]
    grid = auroc_grid(result)
    size = 1.3 * len(names) + 2.5
    fig = _figure(size + 1.0, size)
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap="viridis")
    rows = [json_object(r) for r in json_array(result["rows"])]
    for i, row in enumerate(rows):
        cells = {str(json_object(c)["test"]): json_object(c) for c in json_array(row["cells"])}
        for j, name in enumerate(names):
            missing = bool(np.isnan(grid[i, j]))
            text = _interval(cells[name]["auroc"]).replace(" [", "\n[") if not missing else (
                "no probe" if row["status"] != "ok" else
                "no labels" if cells[name].get("status") == "scored without labels" else "n/a")
            colour = MISSING_TEXT_COLOUR if missing else ("white" if grid[i, j] < 0.6 else "black")
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("test on")
    ax.set_ylabel("train on")
    ax.set_facecolor(MISSING_FACE)
    ax.set_title("AUROC [95% CI]; diagonal: grouped CV within the dataset", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def write_matrix(result: Mapping[str, JSONValue], out_dir: Path) -> list[Path]:
    """The JSON, the table and the heat map into ``out_dir`` (each written atomically); their paths."""
    import json

    out_dir = Path(out_dir)
    paths = [out_dir / MATRIX_JSON, out_dir / MATRIX_TABLE]
    atomic_write_text(paths[0], json.dumps(result, indent=2, allow_nan=False, default=str))
    atomic_write_text(paths[1], matrix_table(result) + "\n")
    paths.append(_save(matrix_figure(result), out_dir / MATRIX_PLOT))
    return paths
