"""Score fixed answers by their log-probability after each prompt (the local judge's choice mode).

Each prompt is run once (batches ordered by length, left padding; a shared opening, given or
found within a batch, is run once, see `deception_core.model.shared_prefix`) and its key/value
cache is reused for every answer: scoring three answers costs one prompt pass and one short pass
(the answers side by side) instead of three prompt passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from deception_core.model import shared_prefix
from deception_core.model.shared_prefix import PrefixMemory, PromptPass

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@torch.inference_mode()
def score_answers(hf_model: PreTrainedModel, prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]],
                  pad: int, max_batch: int, memory: PrefixMemory | None = None) -> list[list[float]]:
    """``[prompt][answer]``: the summed log-probability of each answer's tokens after each prompt."""
    device = _input_device(hf_model)
    longest = max(len(a) for a in answers)
    padded = torch.tensor([list(a) + [pad] * (longest - len(a)) for a in answers], dtype=torch.long, device=device)
    lengths = torch.tensor([len(a) for a in answers], device=device)
    out = [[0.0] * len(answers) for _ in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    for start in range(0, len(order), max_batch):
        rows = order[start : start + max_batch]
        passed = shared_prefix.prompt_pass(hf_model, [prompts[i] for i in rows], pad, device, memory=memory)
        logits = passed.output.logits
        assert logits is not None, "a causal LM's forward pass returns logits"
        first = torch.log_softmax(logits[:, -1].float(), dim=-1)
        totals = [first[:, answer[0]] for answer in answers]
        if longest > 1:  # every answer's later tokens, all answers in one pass over the shared cache
            rest = _answer_tokens(hf_model, passed, padded, lengths)
            totals = [total + rest[:, j] for j, total in enumerate(totals)]
        for j, total in enumerate(totals):
            for r, i in enumerate(rows):
                out[i][j] = float(total[r])
    return out


def _input_device(hf_model: PreTrainedModel) -> torch.device:
    """Where inputs go (the first GPU of a model split over several)."""
    weight = hf_model.get_input_embeddings().weight
    assert isinstance(weight, torch.Tensor)
    return weight.device


def _answer_tokens(hf_model: PreTrainedModel, passed: PromptPass, answers: torch.Tensor,
                   lengths: torch.Tensor) -> torch.Tensor:
    """``[rows, answers]``: the summed log-probability of every answer token after its first, each
    row's prompt cache repeated once per answer so that all answers run in one forward call.
    ``answers`` is ``[answers, longest]``, padded on the right (padding is fed but never scored);
    ``lengths`` holds each answer's true length. The prompt cache is extended in place."""
    rows, k = passed.mask.shape[0], answers.shape[0]
    n, device = answers.shape[1] - 1, answers.device
    cache = passed.cache
    cache.batch_repeat_interleave(k)
    mask = passed.mask.repeat_interleave(k, dim=0)
    feed = answers[:, :n].repeat(rows, 1)
    logits = hf_model(input_ids=feed, attention_mask=torch.cat([mask, mask.new_ones((rows * k, n))], 1),
                      position_ids=passed.position[:, -1:].repeat_interleave(k, dim=0) + torch.arange(1, n + 1, device=device),
                      past_key_values=cache, use_cache=True).logits.float()
    out = logits.device  # the last layer's device when a model is split over several GPUs
    targets = answers[:, 1:].repeat(rows, 1).to(out)
    picked = logits.gather(-1, targets[..., None])[..., 0] - torch.logsumexp(logits, dim=-1)
    scored = torch.arange(1, n + 1, device=out)[None, :] < lengths.to(out)[:, None]
    summed: torch.Tensor = (picked * scored.repeat(rows, 1)).sum(dim=-1).view(rows, k)
    return summed
