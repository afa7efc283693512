"""Teacher-forced scoring equals a plain, unbatched forward pass, whatever else is in the batch."""

from __future__ import annotations

import pytest
import torch

from deception_causal.interventions import RowEdit, teacher_forced
from deception_core.model import forced
from deception_core.testing.tiny_models import tiny_hf_model


def plain_reply_logprobs(model, prompt, reply):
    ids = torch.tensor([list(prompt) + list(reply)])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    n_p = len(prompt)
    reply_lp = lp[torch.arange(n_p - 1, n_p + len(reply) - 1), torch.tensor(list(reply), dtype=torch.long)]
    return reply_lp, lp[n_p - 1]


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_mixed_lengths_in_one_chunk_score_like_separate_passes(arch) -> None:
    model = tiny_hf_model(arch, n_layers=2, d_model=32, seed=3)
    if arch == "gemma3":
        model.config.final_logit_softcapping = 5.0  # the head's post-processing must still apply
    prompts = [[5, 9, 11, 40, 41, 42, 43, 44, 45], [7, 8], [20, 21, 22, 23], [30, 31, 32, 33, 34, 35]]
    replies = [[50, 51], [60, 61, 62, 63, 64, 65, 66], [], [70]]
    out = teacher_forced(model, prompts, replies, record=[1], pad_id=1, chunk=3)
    for row, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
        expected, expected_next = plain_reply_logprobs(model, prompt, reply)
        assert out.reply_logprobs[row].shape == (len(reply),)
        torch.testing.assert_close(out.reply_logprobs[row], expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out.next_logprobs[row], expected_next, rtol=1e-4, atol=1e-5)
        assert out.hidden[1][row].shape[0] == len(prompt) + len(reply)


def test_rows_keep_their_own_edit_when_chunked() -> None:
    model = tiny_hf_model("llama", n_layers=2, d_model=32, seed=4)
    prompt, reply = [5, 6, 7, 8], [9, 10, 11]
    add = torch.zeros(5, 32)
    add[2, 0] = 8.0
    add[4, 3] = -8.0
    out = teacher_forced(model, [prompt] * 5, [reply] * 5, {0: RowEdit(add=add)}, pad_id=1, chunk=2)
    means = [float(lp.mean()) for lp in out.reply_logprobs]
    assert means[0] == pytest.approx(means[1]) == pytest.approx(means[3])
    assert abs(means[2] - means[0]) > 1e-3
    assert abs(means[4] - means[0]) > 1e-3
    assert abs(means[2] - means[4]) > 1e-3


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_replies_of_a_repeated_prompt_score_like_separate_passes(arch) -> None:
    """Clean rows that repeat a prompt run it once and read the replies from its cache: same numbers."""
    model = tiny_hf_model(arch, n_layers=2, d_model=32, seed=5)
    if arch == "gemma3":
        model.config.final_logit_softcapping = 5.0
    first, second = [5, 9, 11, 40, 41, 42], [7, 8, 12]
    prompts = [first, second, first, first, second, first]
    replies = [[50, 51], [60, 61, 62, 63, 64], [], [70], [71, 72], [80, 81, 82, 83, 84, 85, 86]]
    out = teacher_forced(model, prompts, replies, record=[0, 1], pad_id=1, chunk=2)
    assert forced._shared_prompts(model, prompts, replies, [0, 1], 2) is not None  # the cached path ran
    for row, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
        expected, expected_next = plain_reply_logprobs(model, prompt, reply)
        single = teacher_forced(model, [prompt], [reply], record=[0, 1], pad_id=1)
        assert out.reply_logprobs[row].shape == (len(reply),)
        torch.testing.assert_close(out.reply_logprobs[row], expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out.next_logprobs[row], expected_next, rtol=1e-4, atol=1e-5)
        for layer in (0, 1):
            torch.testing.assert_close(out.hidden[layer][row], single.hidden[layer][0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_replies_after_patched_prompts_score_like_plain_patched_passes(arch) -> None:
    """Patching reads several replies from one patched prompt's cache: the numbers of a plain pass per reply."""
    from deception_causal.measures import reply_logprobs
    from deception_core import replies_after_prompts

    model = tiny_hf_model(arch, n_layers=2, d_model=32, seed=6)
    prompts = [[5, 9, 11, 40, 41, 42], [7, 8, 12], [5, 9, 11, 40, 41, 42]]
    reply_sets = [[[50, 51, 52], [60]], [[61, 62, 63, 64], []], [[70, 71], [72, 73, 74, 75]]]
    delta = torch.randn(3, 2, 32, generator=torch.Generator().manual_seed(0)) * 3.0
    scored = replies_after_prompts(model, prompts, reply_sets, {1: RowEdit(prompt_delta=delta)}, pad_id=1, chunk=4)
    assert scored is not None
    for row, replies in enumerate(reply_sets):
        for j, reply in enumerate(replies):
            plain = reply_logprobs(model, [prompts[row]], [reply], None, pad_id=1, prompt_delta=(1, delta[row:row + 1]))
            assert scored[row][j].shape == (len(reply),)
            if reply:
                assert float(scored[row][j].mean()) == pytest.approx(float(plain[0]), abs=1e-4)
