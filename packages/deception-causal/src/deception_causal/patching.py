"""Activation patching between matched runs: does the source run's state along the probe
direction, put into the target run, make the target produce the source's reply?"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from deception_causal.common import CausalRun, CausalSettings, jsonable, not_computable, stored_reply
from deception_causal.direction import NotComputable, resolve_direction
from deception_causal.measures import patch_deltas, patched_reply_logprob, prompt_states, reply_logprob_rows
from deception_causal.selection import matched_pairs, trial_keys
from deception_causal.stats import bootstrap_ci, compare_with_null, describe_effect
from deception_core.analysis import CausalContext, CausalTest

log = logging.getLogger("deception")


class ActivationPatching(CausalTest):
    name = "patching"
    settings_class = CausalSettings

    def __init__(self, settings: CausalSettings | None = None) -> None:
        self.settings = settings or CausalSettings()

    def run(self, context: CausalContext) -> dict[str, Any]:
        dataset = context.dataset
        seed = int(getattr(context.config, "seed", 0))
        n = int(getattr(context.config, "causal_samples", 20))
        pairs = matched_pairs(dataset, n, seed) if len(dataset) else []
        if not pairs:
            return not_computable(self.name, "no matched pairs: need rows of the same scenario, trial index and round "
                                  "in paired conditions (HIGH/LOW incentive or deceptive/honest instruction)")
        rows = sorted({p.source for p in pairs} | {p.target for p in pairs})
        try:
            direction = resolve_direction(dataset, context.direction, trial_keys(dataset, rows))
            run = CausalRun(context, self.settings, rows=rows, direction=direction)
        except NotComputable as reason:
            return not_computable(self.name, str(reason))
        record: dict[str, Any] = jsonable(patching_result(run, pairs))
        return record


def patching_result(run: CausalRun, pairs: list[Any]) -> dict[str, Any]:
    layer, unit = run.direction.layer, run.unit
    tokenizer = run.context.model.tokenizer
    randoms = run.random_units(run.settings.n_random_forward, salt=5)
    records, src_gain, tgt_loss, full_gain, clean_gap = [], [], [], [], []
    src_null, tgt_null, score_shift, score_null = [], [], [], []
    w = run.direction.vector
    for index, pair in enumerate(pairs):
        log.info("causal patching: pair %d/%d (rows %d -> %d, %s)", index + 1, len(pairs), pair.source, pair.target,
                 pair.kind)
        source_prompt, target_prompt = run.dataset.prompt_ids(pair.source), run.dataset.prompt_ids(pair.target)
        src_reply = stored_reply(run.dataset, pair.source, tokenizer)
        tgt_reply = stored_reply(run.dataset, pair.target, tokenizer)
        if not src_reply or not tgt_reply:
            continue
        h_s = prompt_states(run.hf, source_prompt, layer, run.pad_id)
        h_t = prompt_states(run.hf, target_prompt, layer, run.pad_id)
        deltas = patch_deltas(h_s, h_t, unit, randoms)
        if deltas["full"].shape[0] == 0:
            continue  # a one-token prompt: nothing but the sink to patch
        stacked_t = torch.cat([deltas["direction"][None], deltas["full"][None], deltas["random"]])
        on_src = patched_reply_logprob(run.hf, target_prompt, src_reply, layer, stacked_t, run.pad_id)
        on_tgt = patched_reply_logprob(run.hf, target_prompt, tgt_reply, layer, stacked_t, run.pad_id)
        clean_source = float(reply_logprob_rows(run.hf, source_prompt, src_reply, [layer],
                                                add=np.zeros((1, run.d_model)), pad_id=run.pad_id)[0])
        base_src, base_tgt = on_src[0], on_tgt[0]
        src_gain.append(on_src[1] - base_src)
        full_gain.append(on_src[2] - base_src)
        src_null.append(on_src[3:] - base_src)
        tgt_loss.append(on_tgt[1] - base_tgt)
        tgt_null.append(on_tgt[3:] - base_tgt)
        clean_gap.append(clean_source - base_src)
        last_t = h_t[-1].double().numpy()
        score_shift.append(float(deltas["direction"][-1].double().numpy() @ w))
        score_null.append(deltas["random"][:, -1].double().numpy() @ w)
        records.append({
            "source_row": pair.source, "target_row": pair.target, "kind": pair.kind,
            "source_label": run.dataset.samples[pair.source].label,
            "target_label": run.dataset.samples[pair.target].label,
            "n_positions_patched": int(deltas["full"].shape[0]),
            "target_probe_score": float(run.direction.score(last_t[None])[0]),
            "source_reply_logprob": {"target_clean": float(base_src), "direction_patch": float(on_src[1]),
                                     "full_patch": float(on_src[2]), "source_clean": clean_source},
            "target_reply_logprob": {"target_clean": float(base_tgt), "direction_patch": float(on_tgt[1]),
                                     "full_patch": float(on_tgt[2])},
        })
    if not records:
        return {**run.base_record("patching"), **not_computable("patching", "every matched pair has an empty reply")}
    seed = run.seed
    effects = {
        "source_reply_logprob_change": compare_with_null(
            np.array(src_gain), np.array(src_null).T, name="log p(source reply | target prompt) change, direction patch",
            unit="nats/token", seed=seed, expected_sign=1),
        "target_reply_logprob_change": compare_with_null(
            np.array(tgt_loss), np.array(tgt_null).T, name="log p(target reply | target prompt) change, direction patch",
            unit="nats/token", seed=seed, expected_sign=-1),
        "probe_score_shift": compare_with_null(
            np.array(score_shift), np.array(score_null).T, name="probe score shift at the last prompt token",
            unit="probe score", seed=seed, expected_sign=1),
    }
    effects["probe_score_shift"]["note"] = ("read at the patched layer, so the direction patch moves it by construction; "
                                            "the reply log-probabilities are the causal measures")
    gains, gaps = np.array(src_gain), np.array(clean_gap)
    nie = float(gains.mean() / gaps.mean()) if gaps.mean() != 0 else None
    stacked_pairs = np.stack([gains, gaps], axis=1)
    nie_ci = bootstrap_ci(stacked_pairs, seed=seed,
                          statistic=lambda v: float(v[:, 0].mean() / v[:, 1].mean()) if v[:, 1].mean() != 0 else None)
    kinds = [r["kind"] for r in records]
    result = run.base_record("patching")
    result.update({
        "method": "residual stream after the probe layer, over the prompt positions aligned at the prompt end "
                  "(never the first position of either prompt, the beginning-of-sequence attention sink): "
                  "target + ((source - target).u)u (direction patch) and source (full patch); random controls add a "
                  "change of the same norm per position along unit directions orthogonal to u",
        "pairs": {"n": len(records), "label_pairs": kinds.count("label"), "condition_pairs": kinds.count("condition")},
        "effects": effects,
        "primary": "source_reply_logprob_change",
        "full_patch_source_logprob_change": {"value": float(np.mean(full_gain)),
                                             "per_pair": [float(v) for v in full_gain]},
        "normalised_indirect_effect": {"value": nie, "ci_low": nie_ci[0], "ci_high": nie_ci[1],
                                       "definition": "mean(direction-patched - clean target) / mean(clean source - clean "
                                                     "target) of log p(source reply)"},
        "per_pair": records,
    })
    result["prompts"]["pair_kinds"] = kinds
    result["summary"] = (f"patching (layer {layer}, {len(records)} pairs): "
                         + describe_effect(effects["source_reply_logprob_change"])
                         + (f"; NIE {nie:+.3g}" if nie is not None else ""))
    return result
