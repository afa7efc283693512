"""PNG plots of the probe results (matplotlib's Agg canvas; pyplot's global state is never touched)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deception_core import JSONValue, json_array, json_number, json_object
from deception_probes.metrics import auroc, recall_at_fpr

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: text on the transfer matrix's grey "not computable" cells
MISSING_TEXT_COLOUR = "black"
MISSING_FACE = "#dddddd"

#: the probe results document (``probe_results.json``) as read from JSON
Record = Mapping[str, JSONValue]


def _figure(width: float, height: float) -> Figure:
    """A figure with constrained layout: titles, the suptitle and tick labels never overlap."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, bbox_inches="tight")
    tmp.replace(path)
    return path


def auroc_by_layer(results: Record, path: Path) -> Path | None:
    """AUROC (held-out, 95% trial-clustered interval) against layer: one panel per position, one line per method."""
    fig = auroc_by_layer_figure(results)
    return None if fig is None else _save(fig, path)


def dodge_offsets(n_methods: int, layers: list[int]) -> list[float]:
    """Horizontal offsets that keep the methods' error bars apart: a fifth of the closest layer gap in all."""
    gaps = np.diff(sorted(set(layers)))
    spacing = float(gaps.min()) if len(gaps) else 1.0
    step = 0.2 * spacing / max(n_methods - 1, 1)
    return [(i - (n_methods - 1) / 2) * step for i in range(n_methods)]


def auroc_by_layer_figure(results: Record) -> Figure | None:
    cells = [cell for cell in (json_object(c) for c in json_array(results["cells"])) if cell["auroc"] is not None]
    if not cells:
        return None
    dataset = json_object(results["dataset"])
    analysed = {json_object(c)["position"] for c in json_array(results["cells"])}  # not the "not informative" ones
    positions = [p for p in json_array(dataset["positions"]) if p in analysed]
    layers = sorted({int(json_number(layer)) for layer in json_array(dataset["layers"])})
    methods = sorted({str(c["method"]) for c in cells})
    offsets = dodge_offsets(len(methods), layers)
    fig = _figure(4.2 * len(positions), 3.9)
    axes = fig.subplots(1, len(positions), sharey=True, squeeze=False)[0]
    for ax, position in zip(axes, positions, strict=True):
        for offset, method in zip(offsets, methods, strict=True):
            rows = sorted((c for c in cells if c["position"] == position and c["method"] == method),
                          key=lambda c: json_number(c["layer"]))
            if not rows:
                continue
            x = np.array([json_number(c["layer"]) for c in rows], dtype=float) + offset
            metrics = [json_object(c["auroc"]) for c in rows]
            values = np.array([json_number(m["value"]) for m in metrics])
            pairs = list(zip(metrics, values, strict=True))
            low = np.array([json_number(m["ci_low"]) if m["ci_low"] is not None else v for m, v in pairs])
            high = np.array([json_number(m["ci_high"]) if m["ci_high"] is not None else v for m, v in pairs])
            ax.errorbar(x, values, yerr=[values - low, high - values], marker="o", ms=4, capsize=3, label=method)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(str(position))
        ax.set_xlabel("layer (captured layers only)")
        ax.set_xticks(layers)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("held-out AUROC (95% CI, trials resampled)")
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.suptitle("Probe AUROC by layer (chance = 0.5)")
    return fig


def roc_best(results: Record, scores: np.ndarray, y: np.ndarray, path: Path) -> Path | None:
    """ROC of the best probe's held-out scores, with the 1%-FPR operating point."""
    fig = roc_best_figure(results, scores, y)
    return None if fig is None else _save(fig, path)


def roc_best_figure(results: Record, scores: np.ndarray, y: np.ndarray) -> Figure | None:
    mask = ~np.isnan(scores)
    scores, y = scores[mask], y[mask]
    value = auroc(scores, y)
    if value is None:
        return None
    fpr, tpr = roc_points(scores, y)
    best = json_object(results["best"])
    target = json_number(json_object(results.get("settings") or {}).get("fpr", 0.01))
    fig = _figure(4.6, 4.4)
    ax = fig.subplots()
    ax.plot(fpr, tpr, lw=2, label=f"{best['method']} L{best['layer']} {best['position']} (AUROC {value:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="chance")
    point = recall_at_fpr(scores, y, target)
    if point is not None:
        ax.axvline(target, color="black", lw=0.6, ls=":")
        ax.plot([json_number(point["achieved_fpr"])], [json_number(point["value"])], marker="o", ms=8, color="crimson", ls="none",
                label=f"{target:.0%} FPR target: recall {point['value']:.2f} at FPR {point['achieved_fpr']:.3f}"
                      + (" (few honest samples)" if point["resolution_limited"] else ""))
    ax.set_xlabel("false positive rate (honest)")
    ax.set_ylabel("true positive rate (deceptive)")
    ax.set_title(f"ROC of the best probe (held-out, n={len(y)})")
    ax.legend(loc="lower right", fontsize=7)
    return fig


def roc_points(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-scores, kind="mergesort")
    s, labels = scores[order], y[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # last index of each tied block
    tp = np.cumsum(labels == 1)[last]
    fp = np.cumsum(labels == 0)[last]
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def transfer_heatmap(results: Record, path: Path) -> Path | None:
    """Train-group x test-group AUROC for each transfer matrix; "n/a" marks splits that are not computable."""
    fig = transfer_figure(results)
    return None if fig is None else _save(fig, path)


def transfer_figure(results: Record) -> Figure | None:
    gen = json_object(results.get("generalisation") or {})
    if not gen.get("transfer"):
        return None
    transfer = json_object(gen["transfer"])
    fig = _figure(4.4 * len(transfer) + 0.8, 4.0)
    axes = fig.subplots(1, len(transfer), squeeze=False)[0]
    image = None
    for ax, (name, item) in zip(axes, transfer.items(), strict=True):
        matrix = json_object(item)
        labels = [str(group) for group in json_array(matrix["groups"])]
        grid = np.full((len(labels), len(labels)), np.nan)
        for cell in (json_object(c) for c in json_array(matrix["cells"])):
            i, j = labels.index(str(cell["train"])), labels.index(str(cell["test"]))
            if cell["auroc"] is not None:
                grid[i, j] = json_number(json_object(cell["auroc"])["value"])
        image = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap="viridis")
        for i in range(len(labels)):
            for j in range(len(labels)):
                missing = bool(np.isnan(grid[i, j]))
                text = "n/a" if missing else f"{grid[i, j]:.2f}"
                colour = MISSING_TEXT_COLOUR if missing else ("white" if grid[i, j] < 0.6 else "black")
                ax.text(j, i, text, ha="center", va="center", color=colour)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("test on")
        ax.set_ylabel("train on")
        ax.set_title(f"{name} transfer (AUROC)")
        ax.set_facecolor(MISSING_FACE)
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8)
    fig.suptitle(f"{gen['method']} at layer {gen['layer']} {gen['position']}; diagonal = grouped CV within the group")
    return fig
