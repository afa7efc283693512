"""Interventions compared on the same prompts: generate a reply per prompt under each named
condition, label it, re-read it cleanly, and summarise each condition's label rates and fluency."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from deception_causal.common import CausalRun, Generated, NamedCondition
from deception_core import JSONObject

log = logging.getLogger("deception")


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


def run_conditions(run: CausalRun, named: Sequence[NamedCondition], keep_text: set[str],
                   judge: set[str] | None = None) -> list[dict[str, Any]]:
    """Generate under each named condition, label with the rule, re-read each reply cleanly; return
    one record per condition. ``keep_text`` conditions keep their replies' texts, and the run's
    evaluator labels those of ``judge`` too (default: all of ``keep_text``); the effects use the
    rule's labels, the evaluator's say how far it agrees on intervened replies."""
    judged_names = keep_text if judge is None else judge & keep_text
    baseline = next((k for k, (_n, direction, _e, spec) in enumerate(named) if direction == "none" and not spec), None)
    held = _held_baseline(run) if baseline is not None else None
    edited = [spec for k, (*_, spec) in enumerate(named) if not (k == baseline and held is not None)]
    generated = run.generate(edited)
    if baseline is not None:
        if held is None:
            held = _Baseline(generated[baseline])
            _BASELINE[:] = [(_baseline_key(run), held)]
        else:
            generated.insert(baseline, held.generated)
    started = time.monotonic()
    rereads = run.reread_many([gen.reply_ids for gen in generated])
    log.info("causal: clean re-read of %d replies in %.0f s", sum(len(g.reply_ids) for g in generated),
             time.monotonic() - started)
    records = []
    judging = 0.0
    for (name, direction, extra, _spec), gen, reread in zip(named, generated, rereads, strict=True):
        labels = run.rule_labels(gen.texts)
        record = {"name": name, "direction": direction, **extra, "labels": labels,
                  "probe_score": reread["probe_score"], "nll": reread["nll"],
                  "n_reply_tokens": [len(r) for r in gen.reply_ids]}
        if name in keep_text:
            record["texts"] = gen.texts
        if name in judged_names:
            started = time.monotonic()
            if held is not None and gen is held.generated:
                if held.judged is None:
                    held.judged = run.judge_labels(gen.texts)
                judged = held.judged
            else:
                judged = run.judge_labels(gen.texts)
            judging += time.monotonic() - started
            record["judge_labels"] = judged
            record["judge_agreement"] = (sum(a == b for a, b in zip(judged, labels, strict=True)) / len(labels)
                                         if judged and labels else None)
        records.append(record)
    if judged_names:
        log.info("causal: the evaluator judged %d conditions' replies in %.0f s", len(judged_names), judging)
    return records


@attrs.define
class _Baseline:
    """The chosen prompts' unedited replies, and the evaluator's labels of them once judged."""

    generated: Generated
    judged: list[str] | None = None


#: the last run's baseline, with the objects it was made from: ablation and steering generate the same
#: unedited replies (same prompts, seeds and limits), so the second test reuses the first one's
_BASELINE: list[tuple[tuple[object, ...], _Baseline]] = []


def _baseline_key(run: CausalRun) -> tuple[object, ...]:
    return (run.dataset, run.hf, run.context.sampling, run.seed, tuple(run.rows), tuple(run.max_new_per_prompt),
            tuple(run.stops))


def _held_baseline(run: CausalRun) -> _Baseline | None:
    key = _baseline_key(run)
    for held_key, held in _BASELINE:
        if len(held_key) == len(key) and all(a is b or (isinstance(a, (int, tuple)) and a == b)
                                             for a, b in zip(held_key, key, strict=True)):
            log.info("causal: reusing this run's unedited replies")
            return held
    return None


def random_controls(records: list[dict[str, Any]], max_broken: float) -> JSONObject:
    """How many of the random directions' generated replies broke, and whether that is within the limit
    (the comparison with random directions means something only where they leave the model fluent)."""
    rates = [r["rates"]["broken_rate"] for r in records if r["direction"] == "random" and "rates" in r]
    share = float(np.mean(rates)) if rates else None
    return {"n_conditions": len(rates), "broken_share": share, "max_broken": max_broken,
            "fluent": None if share is None else bool(share <= max_broken),
            "measure": "mean over random-direction conditions of the share of generated replies whose perplexity "
                       "exceeds fluency_ratio x the baseline reply's"}
