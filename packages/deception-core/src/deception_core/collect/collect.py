"""Turn a played trial into dataset rows: labels from the rule and the judge, and activations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np

from deception_core.base.records import Sample, Trial
from deception_core.base.types import JSONObject, JudgeVerdict, Label, Position, combine_labels
from deception_core.contracts.capture import CaptureResult
from deception_core.contracts.evaluator import JudgeRequest, JudgesMany
from deception_core.contracts.scenario import FocalUtterance, Scenario
from deception_core.play.play import PlayedTrial
from deception_core.store.dataset import REPLY_ALL, activation_key, ragged_arrays

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@attrs.define
class TrialOutput:
    """Everything one finished trial contributes to the dataset."""

    trial: Trial
    samples: list[Sample]
    vectors: list[dict[str, np.ndarray]]  # per sample: position -> [n_layers, d_model]
    reply_all: list[np.ndarray | None]  # per sample: [n_reply, n_layers, d_model] or None
    prompt_ids: list[list[int]] = attrs.field(factory=list)  # per sample: the exact prompt token ids

    @property
    def key(self) -> str:
        return self.trial.trial_key


def collect_trial(
    played: PlayedTrial,
    scenario: Scenario,
    evaluator: JudgesMany | None,
    tokenizer: PreTrainedTokenizerBase,
    label_policy: str,
) -> TrialOutput:
    spec, game = played.spec, played.game
    result = game.result()
    facts_text = scenario.describe_facts(played.facts)
    question = scenario.judge_question(played.facts)
    judge_requests = [
        JudgeRequest(spec.scenario, facts_text, question, tuple(game.dialogue_until(u.request_id)), u.text)
        for u in result.focal
    ]
    verdicts: Sequence[JudgeVerdict | None] = (
        evaluator.judge_many(judge_requests) if evaluator is not None else [None] * len(result.focal))
    samples, vectors, reply_all, prompt_ids = [], [], [], []
    for utterance, verdict in zip(result.focal, verdicts, strict=True):
        capture = played.captures.get(utterance.request_id)
        if capture is None or capture.activations is None:
            raise RuntimeError(f"focal utterance {utterance.request_id} of {spec.key} has no captured activations")
        samples.append(_sample(played, utterance, verdict, capture, tokenizer, label_policy, result.outcome))
        vectors.append({p.value: v.numpy() for p, v in capture.activations.items()})
        reply_all.append(capture.reply_all.numpy() if capture.reply_all is not None else None)
        prompt_ids.append(list(capture.prompt_ids))
    trial = Trial(trial_key=spec.key, scenario=spec.scenario, mode=spec.mode.value, condition=spec.condition.value,
                  index=spec.index, seed=spec.seed, facts=played.facts, transcript=tuple(result.transcript),
                  outcome=result.outcome, calls=tuple(played.calls))
    return TrialOutput(trial, samples, vectors, reply_all, prompt_ids)


def _sample(played: PlayedTrial, utterance: FocalUtterance, verdict: JudgeVerdict | None, capture: CaptureResult,
            tokenizer: PreTrainedTokenizerBase, label_policy: str, outcome: JSONObject) -> Sample:
    """The dataset record of one focal utterance (its caller and tag come from the request that produced it)."""
    spec = played.spec
    request = played.requests.get(utterance.request_id)
    caller, _, tag = utterance.request_id.partition("#")  # games driven without play_batch keep no request
    return Sample(
        sample_id=f"{spec.key}/{utterance.request_id}",
        trial_key=spec.key,
        scenario=spec.scenario,
        mode=spec.mode.value,
        condition=spec.condition.value,
        trial_index=spec.index,
        trial_seed=spec.seed,
        round=utterance.round,
        request_id=utterance.request_id,
        caller=request.caller if request is not None else caller,
        tag=request.tag if request is not None else tag,
        prompt_text=str(tokenizer.decode(list(capture.prompt_ids), skip_special_tokens=False)),
        n_prompt_tokens=len(capture.prompt_ids),
        reply_text=utterance.text,
        n_reply_tokens=len(capture.reply_ids),
        reply_ids=tuple(capture.reply_ids),
        stopped_by=capture.stopped_by,
        rule_label=utterance.verdict.label.value if utterance.verdict.checkable else None,  # None: no rule can check
        rule_trace=utterance.verdict.trace,
        claims=utterance.verdict.claims,
        judge_label=verdict.label.value if verdict else None,
        judge_raw=verdict.raw if verdict else None,
        judge_error=verdict.error if verdict else None,
        agreement=(verdict.label is utterance.verdict.label) if verdict and utterance.verdict.checkable else None,
        label=combine_labels(utterance.verdict, verdict, label_policy).value,
        belief=utterance.belief,
        self_report=utterance.self_report,
        outcome=outcome,
    )


def label_counts(samples: Sequence[Sample]) -> dict[str, int]:
    counts = {label.value: 0 for label in Label}
    for sample in samples:
        counts[sample.label] += 1
    return counts


def assemble_arrays(
    outputs: Sequence[TrialOutput], layers: Sequence[int], positions: Sequence[Position]
) -> tuple[list[Sample], dict[str, np.ndarray]]:
    """Stack the trials' rows (in the given order) into dataset arrays."""

    samples: list[Sample] = []
    rows: dict[str, list[np.ndarray]] = {}
    tokens: dict[int, list[np.ndarray]] = {layer: [] for layer in layers}
    offset = 0
    for output in outputs:
        for sample, vectors, reply in zip(output.samples, output.vectors, output.reply_all, strict=True):
            sample = attrs.evolve(sample, row=len(samples))
            for position in positions:
                if position is Position.REPLY_ALL:
                    continue
                stacked = vectors[position.value]
                for i, layer in enumerate(layers):
                    rows.setdefault(activation_key(layer, position.value), []).append(stacked[i])
            if Position.REPLY_ALL in positions and reply is not None:
                sample = attrs.evolve(sample, reply_all_offset=offset, reply_all_length=int(reply.shape[0]))
                offset += int(reply.shape[0])
                for i, layer in enumerate(layers):
                    tokens[layer].append(reply[:, i, :])
            samples.append(sample)
    arrays = {key: np.stack(values).astype(np.float32) for key, values in rows.items()}
    arrays["prompt_ids/values"], arrays["prompt_ids/offsets"] = ragged_arrays(
        [ids for output in outputs for ids in output.prompt_ids])
    if Position.REPLY_ALL in positions:
        for layer, chunks in tokens.items():
            if chunks:
                arrays[activation_key(layer, REPLY_ALL)] = np.concatenate(chunks).astype(np.float32)
    return samples, arrays
