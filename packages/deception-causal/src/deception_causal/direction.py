"""The direction the causal tests intervene on: the one the run's analysis chose, or a difference of means."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from deception_core import Dataset, ProbeDirection

log = logging.getLogger("deception")


class NotComputable(Exception):
    """The data cannot support a test; the message says why (it goes into the result JSON)."""


def labelled_rows(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Rows labelled honest or deceptive, and their labels (1 = deceptive)."""
    labels = dataset.column("label")
    rows = np.array([i for i, v in enumerate(labels) if v in ("honest", "deceptive")], dtype=np.int64)
    y = np.array([1 if labels[i] == "deceptive" else 0 for i in rows], dtype=np.int64)
    return rows, y


#: 1 = the condition that favours deception, 0 = its matched honest counterpart
CONDITION_SIDE = {"high_incentive": 1, "deceptive_instruction": 1, "low_incentive": 0, "honest_instruction": 0}


def condition_rows(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Every row with a paired condition, and its side (1 = deception-favouring)."""
    conditions = dataset.column("condition")
    rows = np.array([i for i, c in enumerate(conditions) if c in CONDITION_SIDE], dtype=np.int64)
    return rows, np.array([CONDITION_SIDE[conditions[i]] for i in rows], dtype=np.int64)


def difference_of_means(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Mass-mean direction (deceptive minus honest) and the bias putting the midpoint at 0."""
    mu_d, mu_h = X[y == 1].mean(axis=0), X[y == 0].mean(axis=0)
    vector = (mu_d - mu_h).astype(np.float64)
    return vector, float(-(mu_d + mu_h) @ vector / 2)


def resolve_direction(dataset: Dataset, chosen: ProbeDirection | None,
                      held_out_trials: Sequence[str] = ()) -> ProbeDirection:
    """The direction the run's analysis chose, when the dataset holds its layer and position;
    otherwise a difference of means at the middle captured layer, fit without the trials the
    causal prompts come from when enough labelled rows remain, so scores on those prompts are
    held out."""
    usable = chosen is not None and chosen.layer in dataset.layers and chosen.position in dataset.positions
    if chosen is not None and usable and np.linalg.norm(chosen.vector) > 0:
        return chosen
    why = "no analysis chose a direction" if chosen is None else (
        f"the chosen direction (layer {chosen.layer}, {chosen.position}) is not usable on this dataset")
    layers = dataset.layers
    if not layers:
        raise NotComputable("the dataset holds no activations")
    layer = layers[len(layers) // 2]
    positions = dataset.positions
    position = "last_prompt" if "last_prompt" in positions else positions[0]
    rows, y = labelled_rows(dataset)
    counts = {"honest": int((y == 0).sum()), "deceptive": int((y == 1).sum())}
    source, contrast = "difference_of_means", "deceptive minus honest replies"
    if min(counts.values()) < 1:
        rows, y = condition_rows(dataset)
        if (y == 1).sum() < 1 or (y == 0).sum() < 1:
            raise NotComputable(
                f"no chosen direction, labelled replies {counts['honest']} honest / {counts['deceptive']} deceptive "
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
              "why": why}
    return ProbeDirection(layer, position, vector, bias, source, detail)


#: what each `ProbeDirection.source` means, as the causal results' headlines say it
ORIGINS = {
    "probe": "probe direction",
    "difference_of_means": "difference of means of deceptive and honest replies (no usable probe direction)",
    "condition_difference_of_means": "condition difference of means (no labelled samples): deception-favouring "
                                     "minus honesty-favouring conditions",
}


def direction_origin(direction: ProbeDirection) -> str:
    """Where the direction the causal tests intervene on came from, in words."""
    return ORIGINS.get(direction.source, f"{direction.source} direction")


def origin_short(direction: ProbeDirection) -> str:
    """The origin in a few words, for headlines and plot titles."""
    return {"probe": "probe direction", "difference_of_means": "difference of means",
            "condition_difference_of_means": "condition difference of means"}.get(direction.source, direction.source)
