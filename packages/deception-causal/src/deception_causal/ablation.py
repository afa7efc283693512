"""Directional ablation: project the direction out of the residual stream during generation.

By default about the dataset mean (mean ablation, ``h - ((h - mu).u)u``): only the variation along
the direction goes, and outlier channels that are nearly constant stay where they are. About zero
(``CausalSettings.ablation="zero"``, as in Arditi et al. 2024) a random direction's overlap with
those channels is removed too, which alone can break the model (see `deception_causal.usable`)."""

from __future__ import annotations

import logging
import time

import numpy as np

from deception_causal.common import (
    CausalRun,
    CausalSettings,
    ConditionSpec,
    GenerationTest,
    NamedCondition,
    deceptive_indicator,
    labelled_replies,
)
from deception_causal.conditions import condition_summary, random_controls, run_conditions
from deception_causal.direction import origin_short
from deception_causal.measures import centred_ablation, reply_logprobs
from deception_causal.stats import compare_with_null, describe_effect
from deception_core import JSONObject, json_object

log = logging.getLogger("deception")


class DirectionalAblation(GenerationTest):
    """Project the direction out during generation and measure the change in deception (``ablation``)."""
    name = "ablation"

    def result(self, run: CausalRun) -> JSONObject:
        return ablation_result(run)


def ablation_result(run: CausalRun) -> JSONObject:
    settings, unit, layer = run.settings, run.unit, run.direction.layer
    randoms = run.random_units(settings.n_random, salt=1)
    scopes = ablation_scopes(layer, run.context.model.n_layers, settings)
    means = run.layer_means(sorted({lay for layers in scopes.values() for lay in layers}))

    def ablate(vector: np.ndarray, layers: list[int]) -> ConditionSpec:
        edits = {lay: centred_ablation(vector, None if means is None else means[lay]) for lay in layers}
        return {lay: (project[0], None if add is None else add[0]) for lay, (project, add) in edits.items()}

    named: list[NamedCondition] = [("baseline", "none", {"scope": None}, {})]
    for scope, layers in scopes.items():
        named.append((f"probe_{scope}", "probe", {"scope": scope}, ablate(unit, layers)))
        for k, r in enumerate(randoms):
            named.append((f"random{k}_{scope}", "random", {"scope": scope, "index": k}, ablate(r, layers)))
    keep = {"baseline"} | {f"probe_{s}" for s in scopes}
    records = run_conditions(run, named, keep)
    by_name = {r["name"]: r for r in records}
    base = by_name["baseline"]
    base_d, base_s = deceptive_indicator(base["labels"]), np.array(base["probe_score"])
    for record in records:
        record["rates"] = condition_summary(record["labels"], record["nll"], base["nll"], settings.fluency_ratio)
    effects: dict[str, JSONObject] = {}
    for scope in scopes:
        probe = by_name[f"probe_{scope}"]
        null = [by_name[f"random{k}_{scope}"] for k in range(len(randoms))]
        effects[f"deception_rate_change_{scope}"] = compare_with_null(
            deceptive_indicator(probe["labels"]) - base_d,
            np.array([deceptive_indicator(r["labels"]) - base_d for r in null]),
            name=f"deception rate change ({scope})", unit="fraction of replies", seed=run.seed, expected_sign=-1)
        effects[f"probe_score_change_{scope}"] = compare_with_null(
            np.array(probe["probe_score"]) - base_s, np.array([np.array(r["probe_score"]) - base_s for r in null]),
            name=f"probe score change of the replies ({scope})", unit="probe score", seed=run.seed, expected_sign=-1)
    started = time.monotonic()
    effects.update(_logprob_effects(run, scopes, means))
    log.info("causal: ablation's teacher-forced log-probabilities in %.0f s", time.monotonic() - started)
    result = run.base_record("ablation")
    centre = "(x - mu).u" if means is not None else "x.u"
    result.update({
        "method": f"x - ({centre})u on the residual stream after the block(s), at every position and decoding step "
                  f"({run.settings.ablation} ablation; mu: the mean state at each layer, see units.ablation); "
                  "random controls are unit directions orthogonal to u, ablated the same way",
        # the headline scope's (the direction's layer), and each scope's: ablating at more layers breaks more
        "random_controls": {**random_controls([r for r in records if r["scope"] in (None, "layer")],
                                              run.settings.max_random_broken), "scope": "layer",
                            "by_scope": {scope: random_controls([r for r in records if r["scope"] == scope],
                                                                run.settings.max_random_broken) for scope in scopes}},
        "labeller": "scenario rule (all conditions); the run's evaluator on baseline and probe conditions",
        "probe_read_position": "reply_mean" if run.direction.position == "last_prompt" else run.direction.position,
        "effects": effects,
        "primary": "deception_rate_change_layer",
        "conditions": records,
    })
    summary = (f"ablation (layer {layer}, {origin_short(run.direction)}, {run.settings.ablation} ablation): "
               + describe_effect(effects["deception_rate_change_layer"]))
    by_scope = json_object(json_object(result["random_controls"])["by_scope"])
    broken = "; ".join(f"{scope}: {controls['broken_share']:.0%}" for scope, controls
                       in ((s, json_object(c)) for s, c in by_scope.items()) if controls["broken_share"] is not None)
    summary += f"; random controls broke {broken} of replies"
    signed = effects.get("reply_logprob_change_layer")
    if signed and signed["n_prompts"]:
        summary += "; " + describe_effect(signed)
    result["summary"] = summary
    return result


def ablation_scopes(layer: int, n_layers: int, settings: CausalSettings) -> dict[str, list[int]]:
    """The layers each scope ablates: ``layer`` (the headline) and, with ``ablate_all_layers``, the wider
    scope ``settings.wide_scope``: ``later_layers`` (``layer`` and every later one) or ``all_layers``."""
    scopes = {"layer": [layer]}
    if settings.ablate_all_layers:
        first = layer if settings.wide_scope == "later_layers" else 0
        scopes[settings.wide_scope] = list(range(first, n_layers))
    return scopes


def _logprob_effects(run: CausalRun, scopes: dict[str, list[int]],
                     means: dict[int, np.ndarray] | None) -> dict[str, JSONObject]:
    """Teacher-forced: change of log p(original reply), signed so that + means 'more like the
    original deceptive reply / less like the original honest one'. Every prompt's rows (clean,
    direction, random directions) share forward passes."""
    randoms = run.random_units(run.settings.n_random_forward, salt=2)
    units = np.vstack([np.zeros((1, run.d_model)), run.unit, randoms])
    labelled = labelled_replies(run)
    effects = {}
    for scope, layers in scopes.items():
        per_prompt, null = [], []
        if labelled:
            edits = {lay: centred_ablation(units, None if means is None else means[lay]) for lay in layers}
            k = len(units)
            tiled = {lay: (np.tile(p, (len(labelled), 1)), None if a is None else np.tile(a, (len(labelled), 1)))
                     for lay, (p, a) in edits.items()}
            values = reply_logprobs(run.hf, [p for p, _, _ in labelled for _ in range(k)],
                                    [r for _, r, _ in labelled for _ in range(k)], tiled, pad_id=run.pad_id,
                                    chunk=run.batch_size, sites=run.sites).reshape(len(labelled), k)
            for (_, _, sign), row_values in zip(labelled, values, strict=True):
                change = (row_values[1:] - row_values[0]) * sign
                per_prompt.append(change[0])
                null.append(change[1:])
        null_matrix = np.array(null).T if null else np.zeros((len(randoms), 0))
        effects[f"reply_logprob_change_{scope}"] = compare_with_null(
            np.array(per_prompt), null_matrix, name=f"signed log p(original reply) change ({scope})",
            unit="nats/token", seed=run.seed, expected_sign=-1)
    return effects
