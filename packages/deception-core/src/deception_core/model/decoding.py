"""Decoding helpers for HF ``generate``: per-request seeded sampling and delayed stop strings.

Sampling with one seed per request (instead of the global RNG) makes a reply independent of which
other requests share its batch, so batched, unbatched and resumed runs draw the same tokens.

Stop strings are honoured one step late: the token that completes a stop string is still fed
through the model once, so its residual stream is recorded in the same generate call (no second
forward pass); the extra token generated meanwhile is discarded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase, StoppingCriteria


class SeededSampler(LogitsProcessor):
    """Temperature + top-p sampling with a private generator per batch row.

    Each row draws one uniform number from its own generator and picks the token by inverse CDF
    over its nucleus (the most probable tokens, in descending order, up to mass ``top_p``). The
    nucleus is found with ``topk`` over a few thousand candidates, widened only when they do not
    reach ``top_p``: sorting and sampling over a 262k-token vocabulary at every step would cost
    more than the model's forward pass on a CPU.
    """

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, device: torch.device,
                 candidates: int = 2048) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.candidates = candidates
        self.generators = [torch.Generator(device=device).manual_seed(int(s) % (2**63)) for s in seeds]

    def nucleus(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(probabilities, token ids)``, ``[batch, k]`` in descending order, zero beyond each
        row's nucleus."""
        vocab = logits.shape[-1]
        log_total = torch.logsumexp(logits, dim=-1, keepdim=True)
        k = min(self.candidates, vocab) if self.top_p < 1.0 else vocab
        while True:
            top, order = torch.topk(logits, k, dim=-1)
            probs = torch.exp(top - log_total)
            cumulative = probs.cumsum(dim=-1)
            if k == vocab or bool((cumulative[:, -1] >= self.top_p).all()):
                break
            k = min(vocab, k * 16)
        if self.top_p < 1.0:
            probs = probs.masked_fill(cumulative - probs > self.top_p, 0.0)
        return probs, order

    def choose(self, scores: torch.Tensor) -> torch.Tensor:
        """``[batch]`` the token each row draws (what `__call__` marks, without a vocabulary-wide tensor)."""
        probs, order = self.nucleus(scores.float() / self.temperature)
        cumulative = probs.cumsum(dim=-1)
        uniform = torch.cat([torch.rand(1, generator=gen, device=gen.device) for gen in self.generators])
        target = uniform.to(cumulative.device)[:, None] * cumulative[:, -1:]
        index = torch.searchsorted(cumulative, target, right=True)
        index = torch.minimum(index, (probs > 0).sum(dim=-1, keepdim=True) - 1)  # float rounding at the top end
        return order.gather(-1, index)[:, 0]

    def __call__(self, input_ids: torch.LongTensor | None, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen = self.choose(scores)[:, None]
        return cast(torch.FloatTensor, torch.full_like(scores, float("-inf")).scatter_(-1, chosen.to(scores.device), 0.0))


class DelayedStopStrings(StoppingCriteria):
    """Stop a row one step after its new text first contains one of its own stop strings.

    ``stops`` holds one tuple of stop strings per batch row, so a row never stops on a string
    that only its batch partners asked for.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stops: Sequence[Sequence[str]], prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.stops = [tuple(s for s in row if s) for row in stops]
        self.prompt_length = prompt_length
        self.hit_at = [-1] * len(self.stops)  # generated length at which the stop string appeared
        self.window = 2 + max((len(s) for row in self.stops for s in row), default=0)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.prompt_length
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(input_ids.shape[0]):
            if self.hit_at[row] >= 0:
                done[row] = True
                continue
            if not self.stops[row]:
                continue
            tail = self.tokenizer.decode(input_ids[row, -min(generated, self.window):], skip_special_tokens=False)
            if any(stop in tail for stop in self.stops[row]):
                self.hit_at[row] = generated
        return cast(torch.BoolTensor, done)


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; report whether one was found."""
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
