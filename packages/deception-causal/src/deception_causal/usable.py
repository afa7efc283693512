"""Choosing, once per run, a direction and a steering strength the causal tests can use: ones at which
norm-matched random directions leave the model fluent.

An effect is read against random directions of the same norm at the same layer. Where those already
break the model, a large "effect" of the probe direction is damage, not deception, and the comparison
says nothing. So before the tests run, each candidate (the analysis's chosen direction, then the
read-outs it ranked next) is checked cheaply: the original replies of a few chosen prompts are
teacher-forced with each random direction ablated, and added at plus and minus the strongest
steering alpha, at the candidate's layer; the largest steering scale at which they stay fluent is
found by trying the largest of ``scale_factors`` and then bisecting the rest (breaking grows with
the strength); a reply whose
mean negative log-likelihood exceeds its clean one by more than ``log(fluency_ratio)`` is broken, as
in the tests' own fluency measure.

Ablation and steering get their own verdicts from the same checks: the first candidate at which
both tests' controls break at most ``max_random_broken`` of the replies is used by both; where no
candidate suits both, each test takes the first candidate that suits it, or reports "not testable"
with the reason. Steering searches its scales whatever ablation's verdict (ablation does not depend on
the scale). The choice, every candidate tried and why it was rejected, goes into each result's
``direction_selection``.

Units. The steering strength is a multiple of the *spread* of the activations: the median distance
of the run's samples from their mean, at the direction's layer and position. The residual norm is
the wrong unit in models with outlier ("massive") channels, a few huge and nearly constant
dimensions (Gemma, Llama and most large models carry them): they dominate the norm while carrying
none of the variation between samples, so a multiple of the norm is many times the whole spread of
the data and every random direction breaks the model. The spread ignores the constant channels (they
cancel in ``x - mean``), so a push of one unit is as large as the differences the model itself
produces between prompts. Ablation likewise projects the direction out about the dataset mean
(``h - ((h - mean).u)u``, mean ablation) rather than about zero: about zero, a random direction's
small overlap with the constant channels is removed too, which moves them by a large amount; about
the mean only the variation along the direction goes. Both old choices stay available as settings
(``steering_unit="residual_norm"``, ``ablation="zero"``, the latter as in Arditi et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import numpy as np

from deception_causal.direction import NotComputable
from deception_causal.interventions import EditSites
from deception_causal.measures import centred_ablation, reply_logprobs
from deception_core import Dataset, JSONObject, ProbeDirection

if TYPE_CHECKING:
    from transformers import PreTrainedModel

Checks = Sequence[tuple[Sequence[int], Sequence[int]]]
#: one row of a fluency check: (check index, (unit vector to project out or None, vector to add or None))
CheckRow = tuple[int, tuple[np.ndarray | None, np.ndarray | None]]



class SelectionSettings(Protocol):
    """The settings the selection reads: `deception_causal.common.CausalSettings` (which imports this module)."""

    @property
    def alphas(self) -> tuple[float, ...]: ...
    @property
    def max_random_broken(self) -> float: ...
    @property
    def fluency_ratio(self) -> float: ...
    @property
    def n_random(self) -> int: ...
    @property
    def ablation(self) -> str: ...
    @property
    def steering_unit(self) -> str: ...
    @property
    def scale_factors(self) -> tuple[float, ...]: ...
    @property
    def steering_check_share(self) -> float: ...
    @property
    def edit_sites(self) -> str: ...


UNIT_STATISTICS = {
    "spread": "median L2 distance of the run's samples from their mean, at the direction's layer and position "
              "(outlier channels that are nearly constant cancel, so the unit follows the data's variation)",
    "residual_norm": "median L2 norm of the run's samples at the direction's layer and position (dominated by "
                     "outlier channels in models that carry them)",
}
ABLATION_METHODS = {
    "mean": "h - ((h - mu).u)u: the direction projected out about the dataset mean mu at that layer, so only "
            "the variation along u is removed and constant (outlier) channels stay in place",
    "zero": "h - (h.u)u: the direction projected out about zero (as in Arditi et al. 2024); also removes u's "
            "overlap with the mean state, which moves outlier channels",
}


class NotTestable(NotComputable):
    """No candidate direction keeps the random controls fluent; ``selection`` records every check."""

    def __init__(self, reason: str, selection: JSONObject) -> None:
        super().__init__(reason)
        self.selection = selection


def usable_on(dataset: Dataset, direction: ProbeDirection) -> bool:
    """The dataset holds the direction's layer and position, and the direction is not zero."""
    return (direction.layer in dataset.layers and direction.position in dataset.positions
            and bool(np.linalg.norm(direction.vector) > 0))


def _states(dataset: Dataset, direction: ProbeDirection) -> np.ndarray:
    position = "last_prompt" if "last_prompt" in dataset.positions else direction.position
    return np.asarray(dataset.matrix(direction.layer, position), dtype=np.float64)


def typical_norm(dataset: Dataset, direction: ProbeDirection) -> float:
    """Median residual norm at the direction's layer over the dataset's samples."""
    return float(np.median(np.linalg.norm(_states(dataset, direction), axis=1)))


def spread(dataset: Dataset, direction: ProbeDirection) -> float:
    """Median distance of the dataset's samples from their mean at the direction's layer."""
    X = _states(dataset, direction)
    return float(np.median(np.linalg.norm(X - X.mean(axis=0), axis=1)))


def dataset_mean(dataset: Dataset, direction: ProbeDirection) -> np.ndarray:
    """The mean state at the direction's layer (the centre of mean ablation)."""
    return np.asarray(_states(dataset, direction).mean(axis=0))


@attrs.frozen
class Unit:
    """What one steering alpha means: ``value`` activation units (``name`` in `UNIT_STATISTICS`)."""

    name: str
    value: float
    layer: int

    def describe(self) -> JSONObject:
        return {"name": self.name, "value": self.value, "layer": self.layer, "statistic": UNIT_STATISTICS[self.name]}


def steering_unit(dataset: Dataset, direction: ProbeDirection, name: str) -> Unit:
    value = spread(dataset, direction) if name == "spread" else typical_norm(dataset, direction)
    return Unit(name, value, direction.layer)


@attrs.frozen
class TestChoice:
    """One test's outcome of the selection: the direction (None: not testable) and its steering factor."""

    direction: ProbeDirection | None
    scale_factor: float
    fluent: bool
    random_broken: float | None
    reason: str | None = None


@attrs.frozen
class Selection:
    """The selection's outcome for ablation and steering, and its JSON record."""

    ablation: TestChoice
    steering: TestChoice
    record: dict[str, Any]

    def for_test(self, name: str) -> TestChoice:
        return self.steering if name == "steering" else self.ablation


def _broken(values: np.ndarray, clean: np.ndarray, threshold: float) -> np.ndarray:
    return np.asarray((clean - values) > threshold)


def random_broken(hf_model: PreTrainedModel, checks: Checks, clean: np.ndarray, rows: Sequence[CheckRow],
                  layer: int, fluency_ratio: float, give_up_above: float | None = None, pad_id: int = 0,
                  chunk: int = 16, sites: EditSites = "reply") -> float:
    """Fraction of ``rows`` (check index, (project, add) of one row at ``layer``) whose reply breaks.

    Rows run ``chunk`` at a time across prompts and directions; once more than ``give_up_above`` of
    all rows have broken the verdict cannot change, and the rest are skipped (the fraction returned
    is then a lower bound above the limit)."""
    threshold = float(np.log(fluency_ratio))
    broken = 0
    for start in range(0, len(rows), max(1, chunk)):
        part = rows[start:start + chunk]
        project = [p for _, (p, _a) in part]
        add = [a for _, (_p, a) in part]
        d = len(next(v for v in (*project, *add) if v is not None))
        edits = {layer: (None if all(p is None for p in project) else
                         np.vstack([np.zeros(d) if p is None else p for p in project]),
                         None if all(a is None for a in add) else np.vstack([np.zeros(d) if a is None else a for a in add]))}
        values = reply_logprobs(hf_model, [checks[i][0] for i, _ in part], [checks[i][1] for i, _ in part], edits,
                                pad_id=pad_id, chunk=chunk, sites=sites)
        broken += int(_broken(values, clean[[i for i, _ in part]], threshold).sum())
        if give_up_above is not None and broken > give_up_above * len(rows):
            return broken / len(rows)
    return broken / len(rows) if rows else 0.0


def steering_rows(n_checks: int, randoms: np.ndarray, strength: float) -> list[CheckRow]:
    """``+-strength * r`` for every random direction and check, interleaved so early chunks mix prompts."""
    return [(i, (None, sign * strength * r)) for r in randoms for sign in (1.0, -1.0) for i in range(n_checks)]


def ablation_rows(n_checks: int, randoms: np.ndarray, mean: np.ndarray | None) -> list[CheckRow]:
    project, add = centred_ablation(randoms, mean)
    return [(i, (project[k], None if add is None else add[k])) for k in range(len(randoms)) for i in range(n_checks)]


def clean_logprobs(hf_model: PreTrainedModel, checks: Checks, pad_id: int = 0, chunk: int = 16) -> np.ndarray:
    return reply_logprobs(hf_model, [p for p, _ in checks], [r for _, r in checks], None, pad_id=pad_id, chunk=chunk)


def broken_fraction(hf_model: PreTrainedModel, checks: Checks, layer: int, randoms: np.ndarray, strength: float,
                    fluency_ratio: float, pad_id: int = 0, mean: np.ndarray | None = None,
                    chunk: int = 16, sites: EditSites = "reply") -> dict[str, float]:
    """Fraction of (prompt, random direction, edit) replies made broken by adding ``+-strength * r``, and by
    projecting ``r`` out (about ``mean``, or about zero when None) at ``layer``."""
    clean = clean_logprobs(hf_model, checks, pad_id, chunk)
    n = len(checks)
    return {"steering": random_broken(hf_model, checks, clean, steering_rows(n, randoms, strength), layer,
                                      fluency_ratio, pad_id=pad_id, chunk=chunk, sites=sites),
            "ablation": random_broken(hf_model, checks, clean, ablation_rows(n, randoms, mean), layer,
                                      fluency_ratio, pad_id=pad_id, chunk=chunk, sites=sites)}


def choose_direction(dataset: Dataset, hf_model: PreTrainedModel, chosen: ProbeDirection,
                     alternatives: Sequence[ProbeDirection], checks: Checks,
                     random_units: Callable[[int], np.ndarray], settings: SelectionSettings, pad_id: int = 0,
                     chunk: int = 16) -> Selection:
    """Ablation's and steering's directions (and steering's scale factor), with the selection's record
    (see the module docstring). A test with no fluent candidate gets ``direction`` None."""
    a_max = float(np.max(np.abs(settings.alphas)))
    sites: EditSites = "reply" if settings.edit_sites == "reply" else "all"
    limit = settings.max_random_broken
    steering_limit = limit * settings.steering_check_share  # generated replies break more: see the setting
    candidates = [chosen, *(d for d in alternatives if usable_on(dataset, d) and d is not chosen)]
    tried: list[dict[str, Any]] = []
    record: dict[str, Any] = {
        "criterion": (f"at most {limit:g} of the replies broken (perplexity above {settings.fluency_ratio:g}x the "
                      f"clean one) under {settings.n_random} norm-matched random directions on {len(checks)} "
                      f"prompts' original replies: ablated ({settings.ablation} ablation) for ablation; for steering, "
                      f"added at +-{a_max:g} x the scale factor x the unit, at most {steering_limit:g} (generated "
                      f"replies compound the push and break about twice as often as teacher-forced ones)"),
        "steering_unit": settings.steering_unit, "ablation": settings.ablation, "edit_sites": settings.edit_sites,
        "n_prompts_checked": len(checks), "tried": tried}
    if not checks:
        record.update({"status": "not checked: no stored replies to teacher-force", "candidate": 0,
                       "scale_factor": settings.scale_factors[0]})
        factor = settings.scale_factors[0]
        unchecked = TestChoice(chosen, factor, True, None)
        return Selection(unchecked, unchecked, record)
    clean = clean_logprobs(hf_model, checks, pad_id, chunk)
    first: dict[str, TestChoice] = {}
    both: tuple[int, TestChoice, TestChoice] | None = None
    for index, candidate in enumerate(candidates):
        randoms = random_units(candidate.vector.shape[0])
        unit = steering_unit(dataset, candidate, settings.steering_unit)
        mean = dataset_mean(dataset, candidate) if settings.ablation == "mean" else None
        ablated = random_broken(hf_model, checks, clean, ablation_rows(len(checks), randoms, mean), candidate.layer,
                                settings.fluency_ratio, limit, pad_id, chunk, sites)
        ablation_choice = TestChoice(candidate, 1.0, ablated <= limit, ablated)
        entry: dict[str, Any] = {"candidate": index, "layer": candidate.layer, "position": candidate.position,
                                 "source": candidate.source, "rank": candidate.provenance.get("rank", index),
                                 "unit": unit.describe(), "random_broken_ablation": ablated,
                                 "ablation_usable": ablation_choice.fluent, "random_broken_steering": {},
                                 "steering_scale_factor": None}
        tried.append(entry)
        steering_choice = None
        factors = settings.scale_factors
        low, high = 0, len(factors)  # the first fluent factor lies in [low, high); high: none found yet
        while low < high:
            # the largest factor first: where it is fluent (as edits at the reply sites often are) one check
            # decides; otherwise bisection over the rest
            middle = 0 if low == 0 and high == len(factors) else (low + high) // 2
            factor = factors[middle]
            steered = random_broken(hf_model, checks, clean, steering_rows(len(checks), randoms, a_max * unit.value * factor),
                                    candidate.layer, settings.fluency_ratio, steering_limit, pad_id, chunk, sites)
            entry["random_broken_steering"][f"{factor:g}"] = steered
            if steered <= steering_limit:
                steering_choice = TestChoice(candidate, factor, True, steered)
                high = middle
            else:
                low = middle + 1
        if steering_choice is not None:
            entry["steering_scale_factor"] = steering_choice.scale_factor
        entry["steering_usable"] = steering_choice is not None
        if ablation_choice.fluent:
            first.setdefault("ablation", ablation_choice)
        if steering_choice is not None:
            first.setdefault("steering", steering_choice)
        if ablation_choice.fluent and steering_choice is not None:
            both = (index, ablation_choice, steering_choice)
            break
    worst = "; ".join(
        f"layer {t['layer']} {t['position']}: ablation {t['random_broken_ablation']:.0%} broken, steering "
        + ", ".join(f"x{f} {v:.0%}" for f, v in t["random_broken_steering"].items()) for t in tried)
    choices: dict[str, TestChoice] = {}
    for test in ("ablation", "steering"):
        if both is not None:
            choices[test] = both[1] if test == "ablation" else both[2]
        elif test in first:
            choices[test] = first[test]
        else:
            reason = (f"not testable: norm-matched random directions {'ablated' if test == 'ablation' else 'added'} "
                      f"at every candidate direction{'' if test == 'ablation' else ' and scale'} break the model "
                      f"({worst}); an effect there would measure damage, not deception")
            choices[test] = TestChoice(None, settings.scale_factors[-1], False, None, reason)
    verdicts = {}
    for test, choice in choices.items():
        if choice.direction is None:
            verdicts[test] = {"status": "not testable", "random_controls_fluent": False, "reason": choice.reason}
            continue
        index = candidates.index(choice.direction)
        moved = index > 0 or (test == "steering" and choice.scale_factor != settings.scale_factors[0])
        verdicts[test] = {"status": "moved off the chosen direction" if index else (
                              "the chosen direction at a smaller scale" if moved else "the chosen direction"),
                          "candidate": index, "random_controls_fluent": True, "random_broken": choice.random_broken}
        if test == "steering":
            verdicts[test]["scale_factor"] = choice.scale_factor
        if moved:
            verdicts[test]["reason"] = ("norm-matched random directions broke the model at the earlier candidates or "
                                        "scales (see tried), so their effects would measure damage, not deception")
    record["verdicts"] = verdicts
    return Selection(choices["ablation"], choices["steering"], record)


def selection_for(record: dict[str, Any], test: str) -> JSONObject:
    """The selection record as one test reports it: the shared checks, that test's verdict on top."""
    verdict = record.get("verdicts", {}).get(test, {})
    return {**{k: v for k, v in record.items() if k != "verdicts"}, **verdict, "test": test,
            "other_verdicts": {k: v for k, v in record.get("verdicts", {}).items() if k != test}}


def not_testable(choice: TestChoice, record: dict[str, Any], test: str) -> NotTestable:
    return NotTestable(choice.reason or "not testable", selection_for(record, test))
