"""Faithfulness: does the probe's reading of the replies track the behaviour the interventions cause?

Every ablation and steering condition (probe and random directions) changes, per prompt, both the
reply's label and the probe's score of the reply (a clean re-read). Across conditions, a faithful
probe's mean score change follows the mean deception-rate change. The per-condition records are
the ablation and steering results of the same run, which the runner computes first and passes in
(`Faithfulness.requires`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from deception_causal.common import CausalSettings, deceptive_indicator, jsonable, not_computable
from deception_causal.direction import NotComputable, resolve_direction
from deception_causal.sae_splice import load_run_sae, run_sae_settings, sae_reconstruction_result, sae_reconstructor
from deception_causal.stats import binary_auroc, bootstrap_ci, correlation, describe_effect
from deception_core import CausalContext, CausalTest, JSONObject, json_object

if TYPE_CHECKING:
    from sae_lens import SAE

log = logging.getLogger("deception")

N_PERMUTATIONS = 2000


def condition_deltas(result: dict[str, Any]) -> list[JSONObject]:
    """Per non-baseline condition: per-prompt change of the deceptive indicator and of the probe score."""
    conditions = result.get("conditions") or []
    base = next((c for c in conditions if c["name"] == "baseline"), None)
    if base is None:
        return []
    base_d, base_s = deceptive_indicator(base["labels"]), np.array(base["probe_score"], dtype=np.float64)
    out = []
    for c in conditions:
        if c["name"] == "baseline":
            continue
        out.append({"test": result["test"], "name": c["name"], "direction": c["direction"],
                    "behaviour": deceptive_indicator(c["labels"]) - base_d,
                    "score": np.array(c["probe_score"], dtype=np.float64) - base_s,
                    "labels": c["labels"], "scores": np.array(c["probe_score"], dtype=np.float64)})
    return out


def tracking(deltas: list[dict[str, Any]], seed: int) -> JSONObject:
    """Correlation across conditions of mean score change vs mean behaviour change, with a bootstrap
    interval over prompts and a permutation p-value over conditions."""
    if len(deltas) < 3:
        return {"n_conditions": len(deltas), "correlation": None, "reason": "fewer than 3 conditions"}
    behaviour = np.stack([d["behaviour"] for d in deltas])  # [conditions, prompts]
    score = np.stack([d["score"] for d in deltas])
    b_mean, s_mean = behaviour.mean(axis=1), score.mean(axis=1)
    r = correlation(s_mean, b_mean)
    out: dict[str, Any] = {"n_conditions": len(deltas), "n_prompts": int(behaviour.shape[1]), "correlation": r,
                           "ci_low": None, "ci_high": None, "p_value_permutation": None,
                           "condition_means": [{"name": d["name"], "test": d["test"], "direction": d["direction"],
                                                "behaviour_change": float(b), "score_change": float(s)}
                                               for d, b, s in zip(deltas, b_mean, s_mean, strict=True)]}
    if r is None:
        out["reason"] = "the deception rate or the probe score does not vary across conditions"
        return out
    both = np.concatenate([behaviour, score]).T  # [prompts, 2 * conditions]
    k = behaviour.shape[0]
    out["ci_low"], out["ci_high"] = bootstrap_ci(
        both, seed=seed, statistic=lambda v: correlation(v[:, k:].mean(axis=0), v[:, :k].mean(axis=0)))
    rng = np.random.default_rng(seed)
    null = [correlation(s_mean, rng.permutation(b_mean)) for _ in range(N_PERMUTATIONS)]
    kept = np.array([v for v in null if v is not None])
    if kept.size:
        out["p_value_permutation"] = float((1 + np.sum(np.abs(kept) >= abs(r))) / (kept.size + 1))
    return out


def probe_accuracy_on_interventions(deltas: list[dict[str, Any]], seed: int) -> JSONObject:
    """AUROC of the re-read probe score against the rule labels of every intervened reply."""
    labels = [v for d in deltas for v in d["labels"]]
    scores = np.concatenate([d["scores"] for d in deltas]) if deltas else np.zeros(0)
    keep = np.array([v in ("honest", "deceptive") for v in labels], dtype=bool)
    y = np.array([v == "deceptive" for v in labels], dtype=bool)[keep] if labels else np.zeros(0, bool)
    s = scores[keep] if labels else scores
    counts = {"honest": int((~y).sum()), "deceptive": int(y.sum())}
    if min(counts.values()) == 0:
        return {"auroc": None, "class_counts": counts, "reason": "one class only among intervened replies"}
    data = np.stack([y.astype(np.float64), s], axis=1)
    low, high = bootstrap_ci(data, seed=seed, statistic=lambda v: binary_auroc(v[:, 0] > 0.5, v[:, 1]))
    return {"auroc": binary_auroc(y, s), "ci_low": low, "ci_high": high, "class_counts": counts}


class Faithfulness(CausalTest):
    """Whether the probe's score follows the behaviour change across ablation and steering (``faithfulness``)."""
    name = "faithfulness"
    requires = ("ablation", "steering")
    settings_class = CausalSettings

    def __init__(self, settings: CausalSettings | None = None, sae: tuple[SAE, int] | None = None) -> None:
        self.settings = settings or CausalSettings()
        self.sae = sae  # (reconstruct function, layer), to test without sae-lens

    def _sae(self, context: CausalContext) -> JSONObject:
        """The SAE splice, when the run has ``--sae`` (or an SAE was given to this test)."""

        if self.sae is None and run_sae_settings(context) is None:
            return {"status": "not_run", "reason": "the run has no --sae"}
        try:
            if self.sae is not None:
                reconstruct, layer = self.sae
            else:
                sae, layer = load_run_sae(context)
                reconstruct = sae_reconstructor(sae)
            try:
                direction = resolve_direction(context.dataset, context.direction)
            except NotComputable:
                direction = None
            return sae_reconstruction_result(context, reconstruct, layer, self.settings.n_random_forward, direction,
                                             samples=self.settings.samples)
        except Exception as error:  # an SAE that cannot load must not lose the other results
            log.warning("causal: SAE reconstruction test failed: %s", error)
            return {"status": "not_run", "reason": f"{type(error).__name__}: {error}"}

    def run(self, context: CausalContext) -> JSONObject:
        seed = int(getattr(context.config, "seed", 0))
        missing = [name for name in self.requires if name not in context.results]
        if missing:
            return not_computable(self.name, f"the {' and '.join(missing)} result(s) this test reads were not passed in; "
                                             "run it through the runner, which runs them first")
        upstream = [context.results[name].record for name in self.requires]
        sources = {name: f"the {name} test of this run" for name in self.requires}
        usable = [r for r in upstream if r.get("status") == "ok"]
        if not usable:
            reasons = "; ".join(f"{r.get('test')}: {r.get('reason')}" for r in upstream)
            return not_computable(self.name, f"neither ablation nor steering produced results ({reasons})")
        deltas = [d for r in usable for d in condition_deltas(r)]
        probe_only = [d for d in deltas if d["direction"] == "probe"]
        random_only = [d for d in deltas if d["direction"] == "random"]
        all_conditions = tracking(deltas, seed)
        accuracy = probe_accuracy_on_interventions(deltas, seed)
        sae = self._sae(context)
        result: JSONObject = {
            "format_version": 1, "test": self.name, "status": "ok",
            "direction": usable[0]["direction"], "direction_origin": usable[0].get("direction_origin"),
            "direction_origin_short": usable[0].get("direction_origin_short"), "prompts": usable[0]["prompts"],
            "units_by_test": {str(r["test"]): r.get("units") for r in usable},
            "settings": {"n_permutations": N_PERMUTATIONS},
            "sources": sources,
            "tracking": {"all_conditions": all_conditions, "probe_direction_conditions": tracking(probe_only, seed),
                         "random_direction_conditions": tracking(random_only, seed)},
            "probe_accuracy_on_intervened_replies": accuracy,
            "sae_reconstruction": sae,
        }
        r = all_conditions.get("correlation")
        if r is None:
            line = f"correlation not computable ({all_conditions.get('reason')})"
        else:
            lo, hi, p = all_conditions["ci_low"], all_conditions["ci_high"], all_conditions["p_value_permutation"]
            ci = "n/a" if lo is None else f"[{lo:+.3g}, {hi:+.3g}]"
            line = (f"corr(probe score change, deception rate change) over {all_conditions['n_conditions']} conditions "
                    f"(probe and random directions) = {r:+.3g} (95% CI {ci}), permutation p={p:.3g}")
        if accuracy.get("auroc") is not None:
            line += f"; probe AUROC on intervened replies {accuracy['auroc']:.3g}"
        if sae.get("status") == "ok":
            line += "; SAE splice: " + describe_effect(json_object(sae["loss_change_without_error"]))
        origin = result["direction_origin_short"]
        result["summary"] = f"faithfulness{f' ({origin})' if origin else ''}: " + line
        record: JSONObject = jsonable(result)
        return record
