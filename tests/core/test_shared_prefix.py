"""A prompt pass that runs shared prefixes once leaves the same state as a plain left-padded pass."""

from __future__ import annotations

import random

import pytest
import torch

from deception_core.model.shared_prefix import PrefixMemory, prefix_groups, prompt_pass
from deception_core.testing.tiny_models import tiny_hf_model

PAD = 1


def _prompts(shared: int, tails: list[int], seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    head = [rng.randrange(2, 300) for _ in range(shared)]
    return [head + [rng.randrange(2, 300) for _ in range(tail)] for tail in tails]


def _plain(model, prompts, min_shared=10**9):
    return prompt_pass(model, prompts, PAD, "cpu", min_shared=min_shared)


def _next_logits(model, passed, token: int = 7) -> torch.Tensor:
    """Logits of one more token fed after the prompt pass (exercises the rebuilt cache)."""
    rows = passed.mask.shape[0]
    mask = torch.cat([passed.mask, passed.mask.new_ones((rows, 1))], 1)
    return model(input_ids=torch.full((rows, 1), token), attention_mask=mask,
                 position_ids=passed.position[:, -1:] + 1, past_key_values=passed.cache, use_cache=True).logits[:, -1]


def test_prefix_groups_split_where_neighbours_share_little() -> None:
    a, b = _prompts(40, [5, 9], seed=1), _prompts(40, [3, 6, 8], seed=2)
    group_of, shared = prefix_groups(a + b, min_shared=32)
    assert sorted(shared) == [40, 40]


def test_prefix_groups_keep_one_prompt_token_to_feed() -> None:
    prompts = _prompts(50, [0, 4])
    _, shared = prefix_groups(prompts, min_shared=32)
    assert shared == [49]


def test_a_lone_prompt_shares_nothing() -> None:
    prompts = _prompts(50, [3, 4], seed=1)[:1] + _prompts(50, [5], seed=2)
    _, shared = prefix_groups(prompts, min_shared=32)
    assert shared == [0, 0]


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_shared_prefix_pass_matches_the_plain_pass(arch: str) -> None:
    # gemma3's tiny config has a 64-token sliding window: prompts of up to 150 tokens cross it
    model = tiny_hf_model(arch, n_layers=2)
    prompts = _prompts(48, [3, 30, 102, 17], seed=3)
    with torch.inference_mode():
        shared = prompt_pass(model, prompts, PAD, "cpu", min_shared=16)
        plain = _plain(model, prompts)
        assert shared.shared_tokens > 0
        assert torch.allclose(shared.output.logits, plain.output.logits, atol=1e-4)
        assert torch.allclose(_next_logits(model, shared), _next_logits(model, plain), atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_two_prefix_groups_in_one_batch_match_the_plain_pass(arch: str) -> None:
    model = tiny_hf_model(arch, n_layers=2)
    prompts = _prompts(40, [5, 20], seed=4) + _prompts(36, [12, 30], seed=5)
    with torch.inference_mode():
        shared = prompt_pass(model, prompts, PAD, "cpu", min_shared=16)
        plain = _plain(model, prompts)
        assert shared.shared_tokens > 0
        assert torch.allclose(_next_logits(model, shared), _next_logits(model, plain), atol=1e-4)


def test_prompts_sharing_too_little_take_the_plain_pass() -> None:
    model = tiny_hf_model("llama", n_layers=2)
    prompts = _prompts(8, [20, 25], seed=6)
    with torch.inference_mode():
        assert prompt_pass(model, prompts, PAD, "cpu", min_shared=16).shared_tokens == 0


def _calls(seed: int) -> tuple[tuple[int, ...], list[list[list[int]]]]:
    """An opening of 70 tokens (the last 10 never shared) and three calls whose prompts begin with
    its first 60: two single prompts, then a pair."""
    rng = random.Random(seed)
    head = [rng.randrange(2, 300) for _ in range(60)]
    opening = (*head, *[1] * 10)

    def prompt(tail: int) -> list[int]:
        return head + [rng.randrange(2, 300) for _ in range(tail)]

    return opening, [[prompt(9)], [prompt(40)], [prompt(5), prompt(90)]]


def _through_memory(model, calls, memory) -> list:
    """Each call's prompt pass, in order, through one memory."""
    with torch.inference_mode():
        return [prompt_pass(model, prompts, PAD, "cpu", min_shared=16, memory=memory) for prompts in calls]


def _matches_plain(model, prompts, passed) -> bool:
    with torch.inference_mode():
        return torch.allclose(_next_logits(model, passed), _next_logits(model, _plain(model, prompts)), atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_remembered_prefix_matches_the_plain_pass_call_after_call(arch: str) -> None:
    model = tiny_hf_model(arch, n_layers=2)
    opening, calls = _calls(seed=7)
    passes = _through_memory(model, calls, PrefixMemory(opening))
    assert all(_matches_plain(model, prompts, passed) for prompts, passed in zip(calls, passes, strict=True))


def test_a_single_prompt_takes_the_shared_part_of_the_opening() -> None:
    model = tiny_hf_model("llama", n_layers=2)
    opening, calls = _calls(seed=8)
    assert _through_memory(model, calls[:1], PrefixMemory(opening))[0].shared_tokens == 60


def test_the_opening_is_run_once() -> None:
    model = tiny_hf_model("llama", n_layers=2)
    opening, calls = _calls(seed=10)
    memory = PrefixMemory(opening)
    _through_memory(model, calls[:1], memory)
    kept = memory.cache
    _through_memory(model, calls[1:], memory)
    assert memory.cache is kept


def test_a_pass_does_not_depend_on_the_calls_before_it() -> None:
    # what makes a replayed batch (a resumed run) give the same numbers as the first time
    model = tiny_hf_model("gemma3", n_layers=2)
    opening, calls = _calls(seed=14)
    alone = _through_memory(model, calls[2:], PrefixMemory(opening))[-1]
    after_others = _through_memory(model, calls, PrefixMemory(opening))[-1]
    with torch.inference_mode():
        assert torch.equal(_next_logits(model, alone), _next_logits(model, after_others))


def test_prompts_that_do_not_open_with_it_still_match_the_plain_pass() -> None:
    model = tiny_hf_model("gemma3", n_layers=2)
    opening, _ = _calls(seed=11)
    stranger = _prompts(30, [12, 50], seed=12)
    assert _matches_plain(model, stranger, _through_memory(model, [stranger], PrefixMemory(opening))[0])


def test_an_opening_longer_than_the_window_keeps_what_the_window_holds() -> None:
    model = tiny_hf_model("gemma3", n_layers=2)
    rng = random.Random(13)
    head = [rng.randrange(2, 300) for _ in range(80)]
    prompts = [head + [rng.randrange(2, 300) for _ in range(tail)] for tail in (3, 20)]
    memory = PrefixMemory(tuple(head))
    passed = _through_memory(model, [prompts], memory)[0]
    assert len(memory.tokens) == 63  # window 64 less one: a sliding layer keeps no more
    assert _matches_plain(model, prompts, passed)
