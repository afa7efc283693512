"""PNG plots of the probe results (matplotlib's Agg canvas; pyplot's global state is never touched)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deception_core import json_number
from deception_probes.metrics import auroc, recall_at_fpr

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: text on the transfer matrix's grey "not computable" cells
MISSING_TEXT_COLOUR = "black"
MISSING_FACE = "#dddddd"


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


def auroc_by_layer(results: dict[str, Any], path: Path) -> Path | None:
    """AUROC (held-out, 95% trial-clustered interval) against layer: one panel per position, one line per method."""
    fig = auroc_by_layer_figure(results)
    return None if fig is None else _save(fig, path)


def dodge_offsets(n_methods: int, layers: list[int]) -> list[float]:
    """Horizontal offsets that keep the methods' error bars apart: a fifth of the closest layer gap in all."""
    gaps = np.diff(sorted(set(layers)))
    spacing = float(gaps.min()) if len(gaps) else 1.0
    step = 0.2 * spacing / max(n_methods - 1, 1)
    return [(i - (n_methods - 1) / 2) * step for i in range(n_methods)]


def auroc_by_layer_figure(results: dict[str, Any]) -> Figure | None:
    cells = [c for c in results["cells"] if c["auroc"] is not None]
    if not cells:
        return None
    positions = results["dataset"]["positions"]
    layers = sorted({int(layer) for layer in results["dataset"]["layers"]})
    methods = sorted({c["method"] for c in cells})
    offsets = dodge_offsets(len(methods), layers)
    fig = _figure(4.2 * len(positions), 3.9)
    axes = fig.subplots(1, len(positions), sharey=True, squeeze=False)[0]
    for ax, position in zip(axes, positions, strict=True):
        for offset, method in zip(offsets, methods, strict=True):
            rows = sorted((c for c in cells if c["position"] == position and c["method"] == method), key=lambda c: c["layer"])
            if not rows:
                continue
            x = np.array([c["layer"] for c in rows], dtype=float) + offset
            values = np.array([c["auroc"]["value"] for c in rows])
            pairs = list(zip(rows, values, strict=True))
            low = np.array([c["auroc"]["ci_low"] if c["auroc"]["ci_low"] is not None else v for c, v in pairs])
            high = np.array([c["auroc"]["ci_high"] if c["auroc"]["ci_high"] is not None else v for c, v in pairs])
            ax.errorbar(x, values, yerr=[values - low, high - values], marker="o", ms=4, capsize=3, label=method)
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_title(position)
        ax.set_xlabel("layer (captured layers only)")
        ax.set_xticks(layers)
        ax.set_ylim(0, 1.02)
    axes[0].set_ylabel("held-out AUROC (95% CI, trials resampled)")
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.suptitle("Probe AUROC by layer (chance = 0.5)")
    return fig


def roc_best(results: dict[str, Any], scores: np.ndarray, y: np.ndarray, path: Path) -> Path | None:
    """ROC of the best probe's held-out scores, with the 1%-FPR operating point."""
    fig = roc_best_figure(results, scores, y)
    return None if fig is None else _save(fig, path)


def roc_best_figure(results: dict[str, Any], scores: np.ndarray, y: np.ndarray) -> Figure | None:
    mask = ~np.isnan(scores)
    scores, y = scores[mask], y[mask]
    value = auroc(scores, y)
    if value is None:
        return None
    fpr, tpr = roc_points(scores, y)
    best = results["best"]
    target = float((results.get("settings") or {}).get("fpr", 0.01))
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


def transfer_heatmap(results: dict[str, Any], path: Path) -> Path | None:
    """Train-group x test-group AUROC for each transfer matrix; "n/a" marks splits that are not computable."""
    fig = transfer_figure(results)
    return None if fig is None else _save(fig, path)


def transfer_figure(results: dict[str, Any]) -> Figure | None:
    transfer = (results.get("generalisation") or {}).get("transfer")
    if not transfer:
        return None
    fig = _figure(4.4 * len(transfer) + 0.8, 4.0)
    axes = fig.subplots(1, len(transfer), squeeze=False)[0]
    image = None
    for ax, (name, matrix) in zip(axes, transfer.items(), strict=True):
        labels = matrix["groups"]
        grid = np.full((len(labels), len(labels)), np.nan)
        for cell in matrix["cells"]:
            i, j = labels.index(cell["train"]), labels.index(cell["test"])
            if cell["auroc"] is not None:
                grid[i, j] = cell["auroc"]["value"]
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
    gen = results["generalisation"]
    fig.suptitle(f"{gen['method']} at layer {gen['layer']} {gen['position']}; diagonal = grouped CV within the group")
    return fig
