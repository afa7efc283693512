"""Directional ablation: project the probe direction out of the residual stream during generation."""

from __future__ import annotations

from typing import Any

import numpy as np

from deception_causal.common import CausalRun, GenerationTest, deceptive_indicator, label_sign, stored_reply
from deception_causal.conditions import condition_summary, run_conditions
from deception_causal.measures import ablation_change
from deception_causal.stats import compare_with_null, describe_effect


class DirectionalAblation(GenerationTest):
    name = "ablation"

    def result(self, run: CausalRun) -> dict[str, Any]:
        return ablation_result(run)


def ablation_result(run: CausalRun) -> dict[str, Any]:
    settings, unit, layer = run.settings, run.unit, run.direction.layer
    all_layers = list(range(run.context.model.n_layers))
    randoms = run.random_units(settings.n_random, salt=1)
    scopes = {"layer": [layer]} | ({"all_layers": all_layers} if settings.ablate_all_layers else {})
    named: list[tuple[str, str, dict[str, Any], dict[int, Any]]] = [("baseline", "none", {"scope": None}, {})]
    for scope, layers in scopes.items():
        named.append((f"probe_{scope}", "probe", {"scope": scope}, {lay: (unit, None) for lay in layers}))
        for k, r in enumerate(randoms):
            named.append((f"random{k}_{scope}", "random", {"scope": scope, "index": k},
                          {lay: (r, None) for lay in layers}))
    keep = {"baseline"} | {f"probe_{s}" for s in scopes}
    records = run_conditions(run, named, keep)
    by_name = {r["name"]: r for r in records}
    base = by_name["baseline"]
    base_d, base_s = deceptive_indicator(base["labels"]), np.array(base["probe_score"])
    for record in records:
        record["rates"] = condition_summary(record["labels"], record["nll"], base["nll"], settings.fluency_ratio)
    effects: dict[str, Any] = {}
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
    effects.update(_logprob_effects(run, scopes))
    result = run.base_record("ablation")
    result.update({
        "method": "x - (x.u)u on the residual stream after the block(s), at every position and decoding step; "
                  "random controls are unit directions orthogonal to u",
        "labeller": "scenario rule (all conditions); the run's evaluator on baseline and probe conditions",
        "probe_read_position": "reply_mean" if run.direction.position == "last_prompt" else run.direction.position,
        "effects": effects,
        "primary": "deception_rate_change_layer",
        "conditions": records,
    })
    result["summary"] = f"ablation (layer {layer}): " + describe_effect(effects["deception_rate_change_layer"])
    signed = effects.get("reply_logprob_change_layer")
    if signed and signed["n_prompts"]:
        result["summary"] += "; " + describe_effect(signed)
    return result


def _logprob_effects(run: CausalRun, scopes: dict[str, list[int]]) -> dict[str, Any]:
    """Teacher-forced: change of log p(original reply), signed so that + means 'more like the
    original deceptive reply / less like the original honest one'."""
    randoms = run.random_units(run.settings.n_random_forward, salt=2)
    units = np.vstack([run.unit, randoms])
    effects = {}
    for scope, layers in scopes.items():
        per_prompt, null = [], []
        for row, prompt in zip(run.rows, run.prompts, strict=True):
            sample = run.dataset.samples[row]
            sign = label_sign(sample.label)
            reply = stored_reply(run.dataset, row, run.context.model.tokenizer)
            if sign == 0 or not reply:
                continue
            change = ablation_change(run.hf, prompt, reply, layers, units, pad_id=run.pad_id) * sign
            per_prompt.append(change[0])
            null.append(change[1:])
        null_matrix = np.array(null).T if null else np.zeros((len(randoms), 0))
        effects[f"reply_logprob_change_{scope}"] = compare_with_null(
            np.array(per_prompt), null_matrix, name=f"signed log p(original reply) change ({scope})",
            unit="nats/token", seed=run.seed, expected_sign=-1)
    return effects
