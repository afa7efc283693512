"""Steering during generation: add alpha x the unit direction x the steering scale.

The scale is the steering unit (by default the spread of the activations: the median distance of
the run's samples from their mean at that layer, see `deception_causal.usable`) times the factor
the run's fluency selection chose. Random controls add the same alpha x scale along random unit
directions, so every control adds a vector of exactly the probe direction's norm."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from deception_causal.common import CausalRun, GenerationTest, NamedCondition, deceptive_indicator, labelled_replies
from deception_causal.conditions import condition_summary, random_controls, run_conditions
from deception_causal.direction import origin_short
from deception_causal.measures import reply_logprobs
from deception_causal.stats import bootstrap_ci, compare_with_null, describe_effect
from deception_core import JSONObject, json_object

log = logging.getLogger("deception")

PLOT_FILE = "causal_dose_response.png"


def per_sample_slopes(alphas: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of ``values`` ``[n, len(alphas)]`` against ``alphas``."""
    a = alphas - alphas.mean()
    return np.asarray((values - values.mean(axis=1, keepdims=True)) @ a / float(a @ a))


def steerability(slopes: np.ndarray, tolerance: float = 1e-9) -> JSONObject:
    """Fraction of prompts moving the expected way (+), the opposite way (anti-steerable), or not at all."""
    n = int(slopes.size)
    if n == 0:
        return {"n": 0, "expected": None, "opposite": None, "unchanged": None}
    return {"n": n, "expected": float((slopes > tolerance).mean()), "opposite": float((slopes < -tolerance).mean()),
            "unchanged": float((np.abs(slopes) <= tolerance).mean())}


class Steering(GenerationTest):
    """Add the direction during generation at several strengths and measure the dose-response (``steering``)."""
    name = "steering"

    def result(self, run: CausalRun) -> JSONObject:
        result = steering_result(run)
        plot = dose_response_plot(result, Path(run.context.out_dir) / PLOT_FILE)
        result["plot"] = plot.name if plot else None
        return result


def steering_conditions(alphas: np.ndarray, scale: float, unit: np.ndarray, randoms: np.ndarray,
                        layer: int) -> list[NamedCondition]:
    """The probe direction at every alpha (alpha 0 is the baseline), and each random direction at +-max alpha."""
    a_max = float(np.max(np.abs(alphas)))
    named: list[NamedCondition] = []
    for alpha in alphas:
        spec = {layer: (None, alpha * scale * unit)} if alpha != 0 else {}
        named.append((_name(alpha), "probe" if alpha else "none", {"alpha": float(alpha)}, spec))
    for k, r in enumerate(randoms):
        for sign in (1.0, -1.0):
            named.append((f"random{k}_alpha{sign * a_max:+g}", "random", {"alpha": sign * a_max, "index": k},
                          {layer: (None, sign * a_max * scale * r)}))
    return named


def _plus_minus(plus: dict[str, Any], minus: dict[str, Any], key: str) -> np.ndarray:
    """Per prompt: the measure at +max alpha minus at -max alpha (``deceptive``: the label indicator)."""
    if key == "deceptive":
        return np.asarray(deceptive_indicator(plus["labels"]) - deceptive_indicator(minus["labels"]))
    return np.asarray(np.array(plus[key]) - np.array(minus[key]))


def steering_effects(by_name: dict[str, dict[str, Any]], a_max: float, n_random: int, seed: int) -> dict[str, JSONObject]:
    """Deception rate and reply probe score at +max minus -max alpha, against the random directions."""
    plus, minus = by_name[_name(a_max)], by_name[_name(-a_max)]
    null_pairs = [(by_name[f"random{k}_alpha{a_max:+g}"], by_name[f"random{k}_alpha{-a_max:+g}"])
                  for k in range(n_random)]

    def compare(key: str, name: str, unit: str) -> JSONObject:
        null = np.array([_plus_minus(p, m, key) for p, m in null_pairs])
        return compare_with_null(_plus_minus(plus, minus, key), null, name=name, unit=unit, seed=seed, expected_sign=1)

    return {
        "deception_rate_difference": compare("deceptive", f"deception rate at alpha=+{a_max:g} minus alpha=-{a_max:g}",
                                             "fraction of replies"),
        "probe_score_difference": compare("probe_score", f"reply probe score at +{a_max:g} minus -{a_max:g}",
                                          "probe score"),
    }


def dose_response(probe_records: list[dict[str, Any]], seed: int) -> list[JSONObject]:
    """Per alpha of the probe direction: the label rates with an interval, and the mean reply probe score."""
    dose = []
    for record in probe_records:
        low, high = bootstrap_ci(deceptive_indicator(record["labels"]), seed=seed)
        dose.append({"alpha": record["alpha"], **record["rates"], "deceptive_rate_ci": [low, high],
                     "mean_probe_score": float(np.mean(record["probe_score"]))})
    return dose


def behaviour_slopes(by_name: dict[str, dict[str, Any]], alphas: np.ndarray, n_prompts: int) -> np.ndarray:
    """Per prompt: the slope of its deceptive-reply indicator against alpha."""
    return np.array([
        per_sample_slopes(alphas, np.array([[deceptive_indicator(by_name[_name(a)]["labels"])[i] for a in alphas]]))[0]
        for i in range(n_prompts)])


def steering_result(run: CausalRun) -> JSONObject:
    settings, layer = run.settings, run.direction.layer
    scale = run.steering_scale()
    alphas = np.array(sorted(settings.alphas), dtype=np.float64)
    a_max = float(np.max(np.abs(alphas)))
    randoms = run.random_units(settings.n_random, salt=3)
    named = steering_conditions(alphas, scale, run.unit, randoms, layer)
    # texts of every probe-direction condition; the evaluator judges the headline's (+-max alpha) and the baseline
    records = run_conditions(run, named, {n for n, d, *_ in named if d != "random"},
                             judge={"baseline", _name(a_max), _name(-a_max)})
    by_name = {r["name"]: r for r in records}
    for record in records:
        record["rates"] = condition_summary(record["labels"], record["nll"], by_name["baseline"]["nll"],
                                            settings.fluency_ratio)
    effects = steering_effects(by_name, a_max, len(randoms), run.seed)
    started = time.monotonic()
    logprob = _logprob_steering(run, alphas, scale)
    log.info("causal: steering's teacher-forced log-probabilities in %.0f s", time.monotonic() - started)
    effects["reply_logprob_slope"] = dict(json_object(logprob.pop("effect")))
    random_rates = {s: [by_name[f"random{k}_alpha{s * a_max:+g}"]["rates"]["deceptive_rate"] for k in range(len(randoms))]
                    for s in (1, -1)}
    slopes = behaviour_slopes(by_name, alphas, len(run.rows))
    result = run.base_record("steering")
    result.update({
        "method": "h + alpha * scale * u on the residual stream after the block at every position and decoding step; "
                  "random controls: unit directions orthogonal to u with the same alpha and scale (norm-matched to "
                  "the vector added)",
        "scale": {"unit": run.strength_unit.name, "unit_value": run.strength_unit.value, "factor": run.scale_factor,
                  "value": scale, "layer": layer, "typical_residual_norm": run.typical_norm(),
                  "statistic": f"{run.strength_unit.describe()['statistic']}; times the factor the direction "
                               "selection chose"},
        "random_controls": random_controls(records, settings.max_random_broken),
        "alphas": alphas.tolist(),
        "labeller": "scenario rule (all conditions); the run's evaluator on the baseline and at +-max alpha",
        "effects": effects,
        "primary": "deception_rate_difference",
        "dose_response": dose_response([r for r in records if r["direction"] != "random"], run.seed),
        "random_dose": {"alpha": [a_max, -a_max], "deceptive_rates": [random_rates[1], random_rates[-1]]},
        "per_sample_steerability": {
            "behaviour": {**steerability(slopes), "slopes": slopes.tolist(),
                          "measure": "slope of the deceptive-reply indicator vs alpha, per prompt"},
            "logprob": logprob,
        },
        "conditions": records,
    })
    summary = (f"steering (layer {layer}, {origin_short(run.direction)}, scale {run.scale_factor:g} x "
               f"{run.strength_unit.name} = {scale:.3g}): " + describe_effect(effects["deception_rate_difference"])
               + "; " + describe_effect(effects["reply_logprob_slope"]))
    controls = json_object(result["random_controls"])
    if controls["broken_share"] is not None:
        summary += f"; random controls broke {controls['broken_share']:.0%} of replies"
    result["summary"] = summary
    return result


def _name(alpha: float) -> str:
    return f"alpha{alpha:+g}" if alpha else "baseline"


def _logprob_steering(run: CausalRun, alphas: np.ndarray, scale: float) -> JSONObject:
    """Teacher-forced per-sample steerability (Tan et al. 2024): the slope of the signed log-prob
    of the prompt's original reply against alpha; + means steering toward 'deceptive' makes a
    deceptive reply likelier (an honest one less likely)."""
    a_max = float(np.max(np.abs(alphas)))
    randoms = run.random_units(run.settings.n_random_forward, salt=4)
    probe_rows = np.outer(alphas, run.unit * scale)
    random_rows = np.vstack([np.outer([a_max, -a_max], r * scale) for r in randoms])
    adds = np.vstack([probe_rows, random_rows])
    slopes, two_point, null, curves = [], [], [], []
    labelled = labelled_replies(run)
    k = len(adds)
    every: np.ndarray | list[np.ndarray] = reply_logprobs(run.hf, [p for p, _, _ in labelled for _ in range(k)],
                           [r for _, r, _ in labelled for _ in range(k)],
                           {run.direction.layer: (None, np.tile(adds, (len(labelled), 1)))},
                           pad_id=run.pad_id, chunk=run.batch_size, sites=run.sites).reshape(len(labelled), k) if labelled else []
    for (_, _, sign), row_values in zip(labelled, every, strict=True):
        values = row_values * sign
        curve = values[: len(alphas)]
        curves.append(curve.tolist())
        slopes.append(per_sample_slopes(alphas, curve[None, :])[0])
        two_point.append((curve[-1] - curve[0]) / (alphas[-1] - alphas[0]))
        rand = values[len(alphas):].reshape(len(randoms), 2)
        null.append((rand[:, 0] - rand[:, 1]) / (2 * a_max))
    slopes_arr = np.array(slopes)
    effect = compare_with_null(np.array(two_point), np.array(null).T if null else np.zeros((len(randoms), 0)),
                               name="signed log p(original reply) slope", unit="nats/token per alpha",
                               seed=run.seed, expected_sign=1)
    return {"effect": effect, **steerability(slopes_arr), "slopes": slopes_arr.tolist(), "curves": curves,
            "measure": "least-squares slope over alphas of sign(label) x mean log p(original reply)",
            "n_labelled_prompts": len(slopes)}


def plot_title(result: dict[str, Any]) -> str:
    """The dose-response plot's title: which direction (probe or a difference of means), where, on how many prompts."""
    origin = result.get("direction_origin_short") or "probe direction"
    return (f"steering along the {origin} at layer {result['direction']['layer']} "
            f"({result['prompts']['n_used']} prompts)")


def dose_response_plot(result: dict[str, Any], path: Path) -> Path | None:
    """Deception rate, broken-reply rate and reply probe score against alpha, with the random band."""
    dose = result.get("dose_response") or []
    if not dose:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas = [d["alpha"] for d in dose]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    rates = [d["deceptive_rate"] for d in dose]
    lows = [d["deceptive_rate_ci"][0] if d["deceptive_rate_ci"][0] is not None else r for d, r in zip(dose, rates, strict=True)]
    highs = [d["deceptive_rate_ci"][1] if d["deceptive_rate_ci"][1] is not None else r for d, r in zip(dose, rates, strict=True)]
    origin = result.get("direction_origin_short") or "probe direction"
    left.plot(alphas, rates, "o-", label=f"deceptive ({origin})")
    left.fill_between(alphas, lows, highs, alpha=0.2)
    left.plot(alphas, [d["fluent_honest_rate"] for d in dose], "s--", label="honest and fluent")
    left.plot(alphas, [d["broken_rate"] for d in dose], "x:", label="broken (perplexity)")
    random = result.get("random_dose") or {}
    for alpha, values in zip(random.get("alpha", []), random.get("deceptive_rates", []), strict=True):
        if values:
            left.errorbar([alpha], [float(np.mean(values))], yerr=[[float(np.mean(values) - np.min(values))],
                          [float(np.max(values) - np.mean(values))]], fmt="k^", capsize=3)
    left.plot([], [], "k^", label="deceptive (random directions)")
    unit = result.get("scale") or {}
    left.set_xlabel(f"alpha (x {unit.get('factor', 1):g} x {unit.get('unit', 'spread')})")
    left.set_ylabel("fraction of replies")
    left.set_ylim(-0.05, 1.05)
    left.legend(fontsize=7)
    right.plot(alphas, [d["mean_probe_score"] for d in dose], "o-")
    right.set_xlabel("alpha")
    right.set_ylabel("mean probe score of the reply (clean re-read)")
    fig.suptitle(plot_title(result))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
