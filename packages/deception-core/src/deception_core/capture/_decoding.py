"""Decoding helpers for HF ``generate``: per-request seeded sampling and delayed stop strings.

Sampling with one seed per request (instead of the global RNG) makes a reply independent of which
other requests share its batch, so batched, unbatched and resumed runs draw the same tokens.

Stop strings are honoured one step late: the token that completes a stop string is still fed
through the model once, so its residual stream is recorded in the same generate call (no second
forward pass); the extra token generated meanwhile is discarded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import LogitsProcessor, StoppingCriteria


class SeededSampler(LogitsProcessor):
    """Temperature + top-p sampling with a private generator per batch row."""

    def __init__(self, seeds: Sequence[int], temperature: float, top_p: float, device: torch.device) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.generators = [torch.Generator(device=device).manual_seed(int(s) % (2**63)) for s in seeds]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True, dim=-1)
            cumulative = sorted_probs.cumsum(dim=-1)
            drop = cumulative - sorted_probs > self.top_p
            sorted_probs = sorted_probs.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        chosen = torch.stack(
            [torch.multinomial(probs[row], 1, generator=gen) for row, gen in enumerate(self.generators)]
        )
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter(-1, chosen.to(scores.device), 0.0)


class DelayedStopStrings(StoppingCriteria):
    """Stop a row one step after its new text first contains a stop string."""

    def __init__(self, tokenizer, stops: Sequence[str], prompt_length: int, batch_size: int) -> None:
        self.tokenizer = tokenizer
        self.stops = tuple(s for s in stops if s)
        self.prompt_length = prompt_length
        self.hit_at = [-1] * batch_size  # generated length at which the stop string appeared
        self.window = 2 + max((len(s) for s in self.stops), default=0)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        generated = input_ids.shape[1] - self.prompt_length
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(input_ids.shape[0]):
            if self.hit_at[row] >= 0:
                done[row] = True
                continue
            tail = self.tokenizer.decode(input_ids[row, -min(generated, self.window):], skip_special_tokens=False)
            if any(stop in tail for stop in self.stops):
                self.hit_at[row] = generated
        return done


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the first stop string; report whether one was found."""
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
