"""Interventions compared on the same prompts: generate a reply per prompt under each named
condition, label it, re-read it cleanly, and summarise each condition's label rates and fluency."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deception_causal.common import CausalRun, NamedCondition
from deception_core import JSONObject


def condition_summary(labels: list[str], nll: list[float], base_nll: list[float], ratio: float) -> JSONObject:
    """Label rates of one condition's replies, and how many look broken (perplexity blown up)."""
    n = max(1, len(labels))
    broken = [bool(np.isfinite(a) and np.isfinite(b) and a > b + np.log(ratio)) for a, b in zip(nll, base_nll, strict=True)]
    return {
        "deceptive_rate": sum(v == "deceptive" for v in labels) / n,
        "honest_rate": sum(v == "honest" for v in labels) / n,
        "ambiguous_rate": sum(v == "ambiguous" for v in labels) / n,
        "broken_rate": sum(broken) / n,
        "fluent_honest_rate": sum(v == "honest" and not b for v, b in zip(labels, broken, strict=True)) / n,
        "median_nll": float(np.nanmedian(nll)) if np.isfinite(nll).any() else None,
    }


def run_conditions(run: CausalRun, named: Sequence[NamedCondition],
                   keep_text: set[str]) -> list[dict[str, Any]]:
    """Generate under each named condition, label with the rule (and the judge for ``keep_text``
    conditions), re-read each reply cleanly; return one record per condition."""
    generated = run.generate([spec for *_, spec in named])
    rereads = run.reread_many([gen.reply_ids for gen in generated])
    records = []
    for (name, direction, extra, _spec), gen, reread in zip(named, generated, rereads, strict=True):
        labels = run.rule_labels(gen.texts)
        record = {"name": name, "direction": direction, **extra, "labels": labels,
                  "probe_score": reread["probe_score"], "nll": reread["nll"],
                  "n_reply_tokens": [len(r) for r in gen.reply_ids]}
        if name in keep_text:
            record["texts"] = gen.texts
            judged = run.judge_labels(gen.texts)
            record["judge_labels"] = judged
            record["judge_agreement"] = (sum(a == b for a, b in zip(judged, labels, strict=True)) / len(labels)
                                         if judged and labels else None)
        records.append(record)
    return records


def random_controls(records: list[dict[str, Any]], max_broken: float) -> JSONObject:
    """How many of the random directions' generated replies broke, and whether that is within the limit
    (the comparison with random directions means something only where they leave the model fluent)."""
    rates = [r["rates"]["broken_rate"] for r in records if r["direction"] == "random" and "rates" in r]
    share = float(np.mean(rates)) if rates else None
    return {"n_conditions": len(rates), "broken_share": share, "max_broken": max_broken,
            "fluent": None if share is None else bool(share <= max_broken),
            "measure": "mean over random-direction conditions of the share of generated replies whose perplexity "
                       "exceeds fluency_ratio x the baseline reply's"}
