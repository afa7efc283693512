"""Activation patching between matched runs: does the source run's state along the probe
direction, put into the target run, make the target produce the source's reply?"""

from __future__ import annotations

import logging

import attrs
import numpy as np
import torch

from deception_causal.common import CausalRun, CausalSettings, jsonable, not_computable, stored_reply
from deception_causal.direction import NotComputable, origin_short, resolve_direction
from deception_causal.interventions import RowEdit, teacher_forced
from deception_causal.measures import patch_deltas, reply_logprobs
from deception_causal.selection import MatchedPair, matched_pairs, trial_keys
from deception_causal.stats import bootstrap_ci, compare_with_null, describe_effect
from deception_core import CausalContext, CausalTest, JSONObject, json_object, replies_after_prompts

log = logging.getLogger("deception")


class ActivationPatching(CausalTest):
    """Patch the residual stream between matched runs, along the direction and whole (``patching``)."""
    name = "patching"
    settings_class = CausalSettings

    def __init__(self, settings: CausalSettings | None = None) -> None:
        self.settings = settings or CausalSettings()

    def run(self, context: CausalContext) -> JSONObject:
        dataset = context.dataset
        seed = int(getattr(context.config, "seed", 0))
        n = self.settings.samples
        pairs = matched_pairs(dataset, n, seed) if len(dataset) else []
        if not pairs:
            return not_computable(self.name, "no matched pairs: need rows of the same scenario, trial index and round "
                                  "in paired conditions (HIGH/LOW incentive or deceptive/honest instruction)")
        rows = sorted({p.source for p in pairs} | {p.target for p in pairs})
        try:
            direction = resolve_direction(dataset, context.direction, trial_keys(dataset, rows))
            # no fluency selection: patching's controls are the pairs' own state differences along random
            # directions (a real difference's size), not a steering-strength push
            run = CausalRun(context, self.settings, rows=rows, direction=direction)
        except NotComputable as reason:
            return not_computable(self.name, str(reason))
        record: JSONObject = jsonable(patching_result(run, pairs))
        return record


@attrs.frozen
class PairMeasure:
    """One matched pair's teacher-forced changes (nats/token) under the direction, full and random patches."""

    source_gain: float  # log p(source reply | target prompt): direction patch minus clean
    full_gain: float  # the same, full patch
    source_null: np.ndarray  # the same, each random patch
    target_loss: float  # log p(target reply | target prompt): direction patch minus clean
    target_null: np.ndarray
    clean_gap: float  # log p(source reply | source prompt) minus log p(source reply | target prompt)
    score_shift: float  # probe score change at the last prompt token, direction patch
    score_null: np.ndarray
    record: JSONObject  # the per-pair JSON record


def measure_pairs(run: CausalRun, pairs: list[MatchedPair], randoms: np.ndarray) -> list[PairMeasure]:
    """Patch each pair's source prompt states into its target's run (see `measure_group`), the
    teacher-forced rows of several pairs sharing forward passes up to the batch size; pairs with an
    empty reply, or whose prompts have nothing but the beginning-of-sequence position to patch, are
    left out."""
    layer, tokenizer = run.direction.layer, run.context.model.tokenizer
    prompts = sorted({r for pair in pairs for r in (pair.source, pair.target)})
    forced = teacher_forced(run.hf, [run.dataset.prompt_ids(r) for r in prompts], [[] for _ in prompts], record=[layer],
                            pad_id=run.pad_id, chunk=run.batch_size)
    states = dict(zip(prompts, forced.hidden[layer], strict=True))
    ready = []
    for pair in pairs:
        src_reply = stored_reply(run.dataset, pair.source, tokenizer)
        tgt_reply = stored_reply(run.dataset, pair.target, tokenizer)
        if not src_reply or not tgt_reply:
            continue
        deltas = patch_deltas(states[pair.source], states[pair.target], run.unit, randoms)
        if deltas["full"].shape[0] == 0:
            continue
        ready.append((pair, src_reply, tgt_reply, deltas))
    per_pair = 2 * (3 + len(randoms)) + 1
    group = max(1, run.batch_size // per_pair)
    measures = []
    for start in range(0, len(ready), group):
        log.info("causal patching: pairs %d-%d of %d", start + 1, min(len(ready), start + group), len(ready))
        measures += measure_group(run, ready[start:start + group], states)
    return measures


def measure_group(run: CausalRun, ready: list[tuple[MatchedPair, list[int], list[int], dict[str, torch.Tensor]]],
                  states: dict[int, torch.Tensor]) -> list[PairMeasure]:
    """One batch of teacher-forced rows for some pairs: per pair, the target prompt with the source's
    and the target's reply, each clean, direction-patched, fully patched and patched along every
    random direction, and the source prompt with its own reply (clean)."""
    values = _patched_values(run, ready)
    measures = []
    offset = 0
    w = run.direction.vector
    for pair, _src, _tgt, delta in ready:
        k = 3 + delta["random"].shape[0]
        on_src, on_tgt = values[offset:offset + k], values[offset + k:offset + 2 * k]
        clean_source = float(values[offset + 2 * k])
        offset += 2 * k + 1
        base_src, base_tgt = on_src[0], on_tgt[0]
        h_t = states[pair.target]
        record: JSONObject = {
            "source_row": pair.source, "target_row": pair.target, "kind": pair.kind,
            "source_label": run.dataset.samples[pair.source].label,
            "target_label": run.dataset.samples[pair.target].label,
            "n_positions_patched": int(delta["full"].shape[0]),
            "target_probe_score": float(run.direction.score(h_t[-1].double().numpy()[None])[0]),
            "source_reply_logprob": {"target_clean": float(base_src), "direction_patch": float(on_src[1]),
                                     "full_patch": float(on_src[2]), "source_clean": clean_source},
            "target_reply_logprob": {"target_clean": float(base_tgt), "direction_patch": float(on_tgt[1]),
                                     "full_patch": float(on_tgt[2])},
        }
        measures.append(PairMeasure(
            source_gain=float(on_src[1] - base_src), full_gain=float(on_src[2] - base_src),
            source_null=np.asarray(on_src[3:] - base_src), target_loss=float(on_tgt[1] - base_tgt),
            target_null=np.asarray(on_tgt[3:] - base_tgt), clean_gap=clean_source - float(base_src),
            score_shift=float(delta["direction"][-1].double().numpy() @ w),
            score_null=np.asarray(delta["random"][:, -1].double().numpy() @ w), record=record))
    return measures


def _patched_values(run: CausalRun,
                    ready: list[tuple[MatchedPair, list[int], list[int], dict[str, torch.Tensor]]]) -> np.ndarray:
    """Mean log p of each row `measure_group` reads, in its order: per pair, the source's reply then the
    target's under each patch (clean, direction, full, each random), then the source prompt's own reply.

    Each patched target prompt runs once and both replies are read from its cache
    (`deception_core.replies_after_prompts`); where a cache cannot stand in for the plain pass,
    every row is a plain teacher-forced pass."""
    layer = run.direction.layer
    prompts: list[list[int]] = []
    reply_sets: list[list[list[int]]] = []
    deltas: list[torch.Tensor] = []
    for pair, src_reply, tgt_reply, delta in ready:
        stacked = torch.cat([torch.zeros_like(delta["full"])[None], delta["direction"][None], delta["full"][None],
                             delta["random"]])
        target_prompt = list(run.dataset.prompt_ids(pair.target))
        prompts += [target_prompt] * len(stacked)
        reply_sets += [[src_reply, tgt_reply]] * len(stacked)
        deltas += list(stacked)
        prompts.append(list(run.dataset.prompt_ids(pair.source)))
        reply_sets.append([src_reply])
        deltas.append(torch.zeros_like(delta["full"][:1]))
    width = max(d.shape[0] for d in deltas)
    padded = torch.zeros(len(deltas), width, run.d_model)
    for row, change in enumerate(deltas):
        padded[row, width - change.shape[0]:] = change
    scored = replies_after_prompts(run.hf, prompts, reply_sets, {layer: RowEdit(prompt_delta=padded)},
                                   pad_id=run.pad_id, chunk=run.batch_size)
    if scored is not None:
        means = [[float(lp.mean()) if lp.numel() else float("nan") for lp in row] for row in scored]
    else:
        flat = [(p, r, d) for p, rs, d in zip(prompts, reply_sets, padded, strict=True) for r in rs]
        plain = reply_logprobs(run.hf, [p for p, _, _ in flat], [r for _, r, _ in flat], None, pad_id=run.pad_id,
                               chunk=run.batch_size, prompt_delta=(layer, torch.stack([d for *_, d in flat])))
        it = iter(plain.tolist())
        means = [[next(it) for _ in rs] for rs in reply_sets]
    values: list[float] = []
    start = 0
    for _pair, _src, _tgt, delta in ready:
        k = 3 + delta["random"].shape[0]
        block = means[start:start + k]
        values += [row[0] for row in block] + [row[1] for row in block] + [means[start + k][0]]
        start += k + 1
    return np.array(values)


def pair_effects(measures: list[PairMeasure], seed: int) -> dict[str, JSONObject]:
    """Each effect over the pairs, against the same change under random directions."""
    def compare(effect: str, null: str, name: str, unit: str, sign: int) -> JSONObject:
        return compare_with_null(np.array([getattr(m, effect) for m in measures]),
                                 np.array([getattr(m, null) for m in measures]).T,
                                 name=name, unit=unit, seed=seed, expected_sign=sign)

    effects = {
        "source_reply_logprob_change": compare("source_gain", "source_null",
                                               "log p(source reply | target prompt) change, direction patch",
                                               "nats/token", 1),
        "target_reply_logprob_change": compare("target_loss", "target_null",
                                               "log p(target reply | target prompt) change, direction patch",
                                               "nats/token", -1),
        "probe_score_shift": compare("score_shift", "score_null", "probe score shift at the last prompt token",
                                     "probe score", 1),
    }
    effects["probe_score_shift"]["note"] = ("read at the patched layer, so the direction patch moves it by construction; "
                                            "the reply log-probabilities are the causal measures")
    return effects


def normalised_indirect_effect(measures: list[PairMeasure], seed: int) -> JSONObject:
    """mean(direction-patched - clean target) / mean(clean source - clean target) of log p(source reply)."""
    gains = np.array([m.source_gain for m in measures])
    gaps = np.array([m.clean_gap for m in measures])
    nie = float(gains.mean() / gaps.mean()) if gaps.mean() != 0 else None
    low, high = bootstrap_ci(np.stack([gains, gaps], axis=1), seed=seed,
                             statistic=lambda v: float(v[:, 0].mean() / v[:, 1].mean()) if v[:, 1].mean() != 0 else None)
    return {"value": nie, "ci_low": low, "ci_high": high,
            "definition": "mean(direction-patched - clean target) / mean(clean source - clean target) of log p(source reply)"}


METHOD = ("residual stream after the probe layer, over the prompt positions aligned at the prompt end "
          "(never the first position of either prompt, the beginning-of-sequence attention sink): "
          "target + ((source - target).u)u (direction patch) and source (full patch); random controls add a "
          "change of the same norm per position along unit directions orthogonal to u")


def patching_result(run: CausalRun, pairs: list[MatchedPair]) -> JSONObject:
    randoms = run.random_units(run.settings.n_random_forward, salt=5)
    measures = measure_pairs(run, pairs, randoms)
    if not measures:
        return {**run.base_record("patching"), **not_computable("patching", "every matched pair has an empty reply")}
    effects = pair_effects(measures, run.seed)
    nie = normalised_indirect_effect(measures, run.seed)
    kinds = [m.record["kind"] for m in measures]
    full_gain = [m.full_gain for m in measures]
    result = run.base_record("patching")
    result.update({
        "method": METHOD,
        "pairs": {"n": len(measures), "label_pairs": kinds.count("label"), "condition_pairs": kinds.count("condition")},
        "effects": effects,
        "primary": "source_reply_logprob_change",
        "full_patch_source_logprob_change": {"value": float(np.mean(full_gain)), "per_pair": full_gain},
        "normalised_indirect_effect": nie,
        "per_pair": [m.record for m in measures],
    })
    result["prompts"] = {**json_object(result["prompts"]), "pair_kinds": kinds}
    result["summary"] = (f"patching (layer {run.direction.layer}, {origin_short(run.direction)}, {len(measures)} pairs): "
                         + describe_effect(effects["source_reply_logprob_change"])
                         + (f"; NIE {nie['value']:+.3g}" if nie["value"] is not None else ""))
    return result
