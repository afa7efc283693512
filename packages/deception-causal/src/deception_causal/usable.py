"""Choosing a direction the causal tests can use: one at which norm-matched random directions leave the
model fluent.

An effect is read against random directions of the same norm at the same layer. Where those already
break the model (for example at a layer whose residual norm is dominated by a massive activation, so
the intervention strength, a multiple of that norm, is enormous for every other dimension), a large
"effect" of the probe direction is damage, not deception, and the comparison says nothing. So before
the tests run, each candidate (the analysis's chosen direction, then the read-outs it ranked next;
each at the full steering scale, then at smaller ones) is checked cheaply: the original replies of a
few chosen prompts are teacher-forced with each random direction added at plus and minus the
strongest steering alpha, and projected out (ablation), at the candidate's layer; a reply whose
perplexity exceeds ``fluency_ratio`` x its clean one is broken, as in the tests' own fluency measure.
The first candidate at which at most ``max_random_broken`` of those replies break is used, and the
choice, with every rejected candidate and why, goes into each result's ``direction_selection``. When
none qualifies the tests report "not testable" with the reason instead of an effect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deception_causal.direction import NotComputable
from deception_causal.measures import reply_logprob_rows
from deception_core.dataset import Dataset
from deception_core.records import ProbeDirection


class NotTestable(NotComputable):
    """No candidate direction keeps the random controls fluent; ``selection`` records every check."""

    def __init__(self, reason: str, selection: dict[str, Any]) -> None:
        super().__init__(reason)
        self.selection = selection


def usable_on(dataset: Dataset, direction: ProbeDirection) -> bool:
    """The dataset holds the direction's layer and position, and the direction is not zero."""
    return (direction.layer in dataset.layers and direction.position in dataset.positions
            and bool(np.linalg.norm(direction.vector) > 0))


def typical_norm(dataset: Dataset, direction: ProbeDirection) -> float:
    """Median residual norm at the direction's layer over the dataset's samples (the steering scale)."""
    position = "last_prompt" if "last_prompt" in dataset.positions else direction.position
    X = np.asarray(dataset.matrix(direction.layer, position), dtype=np.float64)
    return float(np.median(np.linalg.norm(X, axis=1)))


def broken_fraction(hf_model: Any, checks: Sequence[tuple[Sequence[int], Sequence[int]]], layer: int,
                    randoms: np.ndarray, strength: float, fluency_ratio: float, pad_id: int = 0) -> dict[str, float]:
    """Fraction of (prompt, random direction, edit) replies made broken by adding ``+-strength * r`` or by
    projecting ``r`` out at ``layer``: mean NLL above the clean one by more than ``log(fluency_ratio)``."""
    d = randoms.shape[1]
    adds = np.vstack([np.zeros((1, d)), strength * randoms, -strength * randoms])
    projects = np.vstack([np.zeros((1, d)), randoms])
    threshold = float(np.log(fluency_ratio))
    steered, ablated = [], []
    for prompt, reply in checks:
        values = reply_logprob_rows(hf_model, prompt, reply, [layer], add=adds, pad_id=pad_id)
        steered.extend((values[0] - values[1:]) > threshold)
        values = reply_logprob_rows(hf_model, prompt, reply, [layer], project=projects, pad_id=pad_id)
        ablated.extend((values[0] - values[1:]) > threshold)
    return {"steering": float(np.mean(steered)) if steered else 0.0,
            "ablation": float(np.mean(ablated)) if ablated else 0.0}


def choose_direction(dataset: Dataset, hf_model: Any, chosen: ProbeDirection,
                     alternatives: Sequence[ProbeDirection], checks: Sequence[tuple[Sequence[int], Sequence[int]]],
                     random_units: Callable[[int], np.ndarray], settings: Any,
                     pad_id: int = 0) -> tuple[ProbeDirection, float, dict[str, Any]]:
    """The first candidate whose random controls stay fluent, its steering-scale factor, and the record
    of the selection (see the module docstring); raises `NotTestable` when none does."""
    a_max = float(np.max(np.abs(settings.alphas)))
    candidates = [chosen, *(d for d in alternatives if usable_on(dataset, d) and d is not chosen)]
    tried: list[dict[str, Any]] = []
    record: dict[str, Any] = {
        "criterion": (f"at most {settings.max_random_broken:g} of the replies broken (perplexity above "
                      f"{settings.fluency_ratio:g}x the clean one) under {settings.n_random} norm-matched random "
                      f"directions added at +-{a_max:g} x the scale and projected out, on {len(checks)} prompts' "
                      "original replies"),
        "n_prompts_checked": len(checks), "tried": tried}
    if not checks:
        record.update({"status": "not checked: no stored replies to teacher-force", "candidate": 0, "scale_factor": 1.0})
        return chosen, 1.0, record
    for index, candidate in enumerate(candidates):
        randoms = random_units(candidate.vector.shape[0])
        norm = typical_norm(dataset, candidate)
        for factor in settings.scale_factors:
            broken = broken_fraction(hf_model, checks, candidate.layer, randoms, a_max * norm * factor,
                                     settings.fluency_ratio, pad_id)
            fluent = max(broken.values()) <= settings.max_random_broken
            tried.append({"candidate": index, "layer": candidate.layer, "position": candidate.position,
                          "source": candidate.source, "rank": candidate.provenance.get("rank", index),
                          "scale_factor": factor, "typical_residual_norm": norm, "random_broken": broken,
                          "usable": fluent})
            if fluent:
                moved = index > 0 or factor != settings.scale_factors[0]
                record.update({"status": "moved off the chosen direction" if index else (
                    "the chosen direction at a smaller scale" if moved else "the chosen direction"),
                    "candidate": index, "scale_factor": factor})
                if moved:
                    record["reason"] = ("norm-matched random directions broke the model at the earlier candidates "
                                        "(see tried), so their effects would measure damage, not deception")
                return candidate, factor, record
            if broken["ablation"] > settings.max_random_broken:
                break  # projecting out does not depend on the scale: a smaller one cannot help
    worst = ", ".join(f"layer {t['layer']} {t['position']} x{t['scale_factor']:g}: "
                      f"{max(t['random_broken'].values()):.0%} broken" for t in tried)
    reason = (f"not testable: norm-matched random directions already break the model at every candidate direction "
              f"and scale ({worst}); an effect there would measure damage, not deception")
    record.update({"status": "not testable", "reason": reason})
    raise NotTestable(reason, record)
