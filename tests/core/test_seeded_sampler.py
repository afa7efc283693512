"""Per-request seeded sampling: the right distribution, the nucleus respected, rows independent."""

from __future__ import annotations

import numpy as np
import torch

from deception_core.capture._decoding import SeededSampler


def draw(logits: torch.Tensor, seeds, temperature=1.0, top_p=1.0, candidates=2048) -> np.ndarray:
    sampler = SeededSampler(seeds, temperature, top_p, torch.device("cpu"), candidates=candidates)
    scores = sampler(torch.zeros(len(seeds), 1, dtype=torch.long), logits.expand(len(seeds), -1).clone())
    assert bool((torch.isfinite(scores).sum(dim=-1) == 1).all())  # exactly one token allowed per row
    return scores.argmax(dim=-1).numpy()


def nucleus_probabilities(logits: torch.Tensor, temperature: float, top_p: float) -> np.ndarray:
    p = torch.softmax(logits / temperature, dim=-1).double().numpy()
    order = np.argsort(-p)
    keep = np.cumsum(p[order]) - p[order] <= top_p
    out = np.zeros_like(p)
    out[order[keep]] = p[order[keep]]
    return out / out.sum()


def test_frequencies_match_the_temperature_and_top_p_distribution() -> None:
    logits = torch.tensor([2.0, 1.5, 1.0, 0.3, -0.5, -3.0, -4.0, -6.0])
    n = 20_000
    for temperature, top_p in [(1.0, 1.0), (0.7, 0.9), (1.3, 0.6)]:
        expected = nucleus_probabilities(logits, temperature, top_p)
        counts = np.bincount(draw(logits, range(n), temperature, top_p), minlength=logits.numel())
        assert np.all(counts[expected == 0] == 0), "a token outside the nucleus was drawn"
        observed = counts / n
        tolerance = 4 * np.sqrt(expected * (1 - expected) / n) + 1e-9
        assert np.all(np.abs(observed - expected) <= tolerance), (temperature, top_p, observed, expected)


def test_a_flat_distribution_widens_the_candidate_set_and_stays_exact() -> None:
    logits = torch.linspace(0.0, -1.0, 4096)  # nearly flat, no ties (ties make the nucleus order-dependent)
    tokens = draw(logits, range(3000), top_p=0.95, candidates=8)  # 8 candidates cover far less than 0.95
    assert len(set(tokens.tolist())) > 1000
    p = nucleus_probabilities(logits, 1.0, 0.95)
    assert all(p[t] > 0 for t in tokens)


def test_a_row_draws_the_same_token_whatever_shares_its_batch() -> None:
    torch.manual_seed(0)
    logits = torch.randn(5, 1000) * 2
    sampler = SeededSampler([11, 12, 13, 14, 15], 0.7, 0.9, torch.device("cpu"))
    together = sampler(None, logits.clone()).argmax(dim=-1)
    for row, seed in enumerate([11, 12, 13, 14, 15]):
        alone = SeededSampler([seed], 0.7, 0.9, torch.device("cpu"))(None, logits[row:row + 1].clone()).argmax(dim=-1)
        assert int(alone) == int(together[row])


def test_the_same_seed_gives_the_same_sequence_of_draws() -> None:
    logits = torch.randn(1, 500)
    first = SeededSampler([7], 1.0, 0.9, torch.device("cpu"))
    second = SeededSampler([7], 1.0, 0.9, torch.device("cpu"))
    assert [int(first(None, logits).argmax()) for _ in range(20)] == [int(second(None, logits).argmax()) for _ in range(20)]
