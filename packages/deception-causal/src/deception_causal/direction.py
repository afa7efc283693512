"""The direction the causal tests intervene on: the best probe's, or a difference of means."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

log = logging.getLogger("deception")


class NotComputable(Exception):
    """The data cannot support a test; the message says why (it goes into the result JSON)."""


@attrs.frozen
class ProbeDirection:
    """A linear read-out in raw activation space: ``score(x) = x . vector + bias``."""

    layer: int
    position: str
    vector: np.ndarray
    bias: float
    source: str  # "probe_file" | "difference_of_means" | "condition_difference_of_means"
    detail: dict[str, Any] = attrs.field(factory=dict)

    @property
    def unit(self) -> np.ndarray:
        return self.vector / np.linalg.norm(self.vector)

    def score(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ self.vector + self.bias

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "layer": self.layer, "position": self.position,
                "norm": float(np.linalg.norm(self.vector)), "bias": self.bias, **self.detail}


def labelled_rows(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Rows labelled honest or deceptive, and their labels (1 = deceptive)."""
    labels = dataset.column("label")
    rows = np.array([i for i, v in enumerate(labels) if v in ("honest", "deceptive")], dtype=np.int64)
    y = np.array([1 if labels[i] == "deceptive" else 0 for i in rows], dtype=np.int64)
    return rows, y


#: 1 = the condition that favours deception, 0 = its matched honest counterpart
CONDITION_SIDE = {"high_incentive": 1, "deceptive_instruction": 1, "low_incentive": 0, "honest_instruction": 0}


def condition_rows(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every row with a paired condition, and its side (1 = deception-favouring)."""
    conditions = dataset.column("condition")
    rows = np.array([i for i, c in enumerate(conditions) if c in CONDITION_SIDE], dtype=np.int64)
    return rows, np.array([CONDITION_SIDE[conditions[i]] for i in rows], dtype=np.int64)


def difference_of_means(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Mass-mean direction (deceptive minus honest) and the bias putting the midpoint at 0."""
    mu_d, mu_h = X[y == 1].mean(axis=0), X[y == 0].mean(axis=0)
    vector = (mu_d - mu_h).astype(np.float64)
    return vector, float(-(mu_d + mu_h) @ vector / 2)


def _from_probe_file(best: dict[str, Any], out_dir: Path) -> ProbeDirection | None:
    file = best.get("file")
    if not file:
        return None
    path = Path(file) if Path(file).is_absolute() else Path(out_dir) / file
    if not path.is_file():
        log.warning("causal: probe file %s is missing; using a difference of means instead", path)
        return None
    try:
        from deception_probes import load_probe
    except ImportError:
        log.warning("causal: deception-probes is not installed; using a difference of means instead")
        return None
    probe = load_probe(path)
    vector = np.asarray(probe.direction, dtype=np.float64).ravel()
    if not np.linalg.norm(vector) > 0:
        return None
    detail = {"file": str(path), "method": best.get("method"), "probe_auroc": best.get("auroc")}
    return ProbeDirection(int(best["layer"]), str(best["position"]), vector, float(probe.bias), "probe_file", detail)


def resolve_direction(dataset: Any, probe_results: dict[str, Any] | None, out_dir: Path,
                      held_out_trials: Sequence[str] = ()) -> ProbeDirection:
    """The best probe's direction when ``probe_results`` names a readable probe file; otherwise
    a difference of means at the best (or middle captured) layer, fit without the trials the
    causal prompts come from when enough labelled rows remain, so scores on those prompts are
    held out."""
    best = (probe_results or {}).get("best") or {}
    if best:
        found = _from_probe_file(best, out_dir)
        if found is not None:
            return found
    layers = dataset.layers
    if not layers:
        raise NotComputable("the dataset holds no activations")
    layer = int(best["layer"]) if best.get("layer") in layers else layers[len(layers) // 2]
    positions = dataset.positions
    position = str(best.get("position")) if best.get("position") in positions else (
        "last_prompt" if "last_prompt" in positions else positions[0])
    rows, y = labelled_rows(dataset)
    counts = {"honest": int((y == 0).sum()), "deceptive": int((y == 1).sum())}
    source, contrast = "difference_of_means", "deceptive minus honest replies"
    if min(counts.values()) < 1:
        rows, y = condition_rows(dataset)
        if (y == 1).sum() < 1 or (y == 0).sum() < 1:
            raise NotComputable(
                f"no probe file, labelled replies {counts['honest']} honest / {counts['deceptive']} deceptive "
                f"({len(dataset) - sum(counts.values())} ambiguous), and no paired conditions to contrast; a "
                "difference of means needs honest and deceptive replies (or HIGH and LOW incentive trials)")
        source = "condition_difference_of_means"
        contrast = "deception-favouring minus honesty-favouring condition (no labelled class contrast)"
    held = set(held_out_trials)
    keys = dataset.column("trial_key")
    train = np.array([keys[r] not in held for r in rows], dtype=bool)
    fit_rows, fit_y, held_out = rows, y, False
    if held and train.any() and (y[train] == 1).any() and (y[train] == 0).any():
        fit_rows, fit_y, held_out = rows[train], y[train], True
    X = np.asarray(dataset.matrix(layer, position), dtype=np.float64)[fit_rows]
    vector, bias = difference_of_means(X, fit_y)
    if not np.linalg.norm(vector) > 0:
        raise NotComputable("the honest and deceptive class means coincide; there is no direction to test")
    detail = {"method": "difference_of_means", "contrast": contrast, "n_fit_rows": int(len(fit_rows)),
              "class_counts": counts,
              "fit_excludes_causal_prompt_trials": held_out,
              "why": "no probe_results best file" if not best else "probe file unreadable"}
    return ProbeDirection(layer, position, vector, bias, source, detail)
